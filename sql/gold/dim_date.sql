-- A continuous calendar from the first to the last day of service, so that Power BI can
-- slice visits by year, quarter and month. day_of_week is ISO: 1 = Monday ... 7 = Sunday.
WITH bounds AS (
    SELECT min(date_of_service) AS first_day, max(date_of_service) AS last_day
    FROM gold.fact_events
),
days AS (
    SELECT CAST(unnest(range(first_day, last_day + INTERVAL '1 day', INTERVAL '1 day')) AS DATE) AS date
    FROM bounds
    WHERE first_day IS NOT NULL
)
SELECT
    date,
    CAST(date_part('year', date) AS INT) AS year,
    CAST(date_part('quarter', date) AS INT) AS quarter,
    CAST(date_part('month', date) AS INT) AS month,
    CAST(to_char(date, '%B') AS VARCHAR) AS month_name,
    CAST(date_part('day', date) AS INT) AS day,
    CAST(CASE WHEN date_part('dow', date) = 0 THEN 7 ELSE date_part('dow', date) END AS INT) AS day_of_week,
    CAST(to_char(date, '%A') AS VARCHAR) AS day_name
FROM days
-- Sorted by the key: point lookups and joins on it prune Parquet pages by their statistics.
ORDER BY date
