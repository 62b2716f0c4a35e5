-- Silver events: one row per visit. The patient's name and sex live in silver.patient, as in
-- the original notebooks; `*` keeps any column the source adds later.
-- source: mysql/events
-- key: id
SELECT * EXCLUDE (patient, sex) FROM source
