-- Patients; PII columns are masked for PBI_Reader by grants/, not here.
SELECT
    CAST(id_patient AS INT) AS id_patient,
    CAST(name AS VARCHAR) AS name,
    CAST(sex AS VARCHAR) AS sex,
    CAST(age AS INT) AS age,
    CAST(address AS VARCHAR) AS address,
    CAST(country AS VARCHAR) AS country,
    CAST(number AS VARCHAR) AS number,
    CAST(email AS VARCHAR) AS email
FROM silver.patient
-- Sorted by the key: point lookups and joins on it prune Parquet pages by their statistics.
ORDER BY id_patient
