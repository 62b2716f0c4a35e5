-- One row per visit.
SELECT
    CAST(id AS INT) AS id,
    CAST(id_patient AS INT) AS id_patient,
    CAST(age AS INT) AS age,
    CAST(id_doctor AS INT) AS id_doctor,
    CAST(id_smoke AS INT) AS id_smoke,
    CAST(symptoms AS VARCHAR) AS symptoms,
    CAST(date_of_service AS DATE) AS date_of_service
FROM silver.events
