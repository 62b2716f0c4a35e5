-- Silver doctors: one row per doctor.
-- source: mysql/doctors
-- key: id_doctor
SELECT * FROM source
