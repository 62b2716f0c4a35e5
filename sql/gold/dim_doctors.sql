-- Doctors with the name of their shift (SHIFT_NAME as shift), as in the Power BI model.
SELECT
    CAST(d.id_doctor AS INT) AS id_doctor,
    CAST(d.area AS VARCHAR) AS area,
    CAST(d.name AS VARCHAR) AS name,
    CAST(s.shift_name AS VARCHAR) AS shift
FROM silver.doctors AS d
LEFT JOIN silver.shift AS s ON s.id_shift = d.id_shift
-- Sorted by the key: point lookups and joins on it prune Parquet pages by their statistics.
ORDER BY id_doctor
