-- Silver shift: one row per shift, without the surrogate ID (the original's rule).
-- source: mysql/shift
-- key: id_shift
SELECT * EXCLUDE (id) FROM source
