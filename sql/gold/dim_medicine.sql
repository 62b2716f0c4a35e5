-- The openFDA medicines, names already in initcap from silver.
SELECT
    CAST(id AS INT) AS id,
    CAST(brand_name AS VARCHAR) AS brand_name,
    CAST(generic_name AS VARCHAR) AS generic_name,
    CAST(manufacturer_name AS VARCHAR) AS manufacturer_name,
    CAST(product_ndc AS VARCHAR) AS product_ndc,
    CAST(product_type AS VARCHAR) AS product_type,
    CAST(route AS VARCHAR) AS route,
    CAST(substance_name AS VARCHAR) AS substance_name
FROM silver.medicine
-- Sorted by the key: point lookups and joins on it prune Parquet pages by their statistics.
ORDER BY id
