-- Silver patient: one row per patient.
-- source: mysql/patient
-- key: id_patient
SELECT * FROM source
