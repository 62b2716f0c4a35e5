-- Silver medicine: one row per medicine, names in initcap as in the original notebook.
-- source: postgres/medicine
-- key: id
SELECT * REPLACE (
    initcap(brand_name) AS brand_name,
    initcap(generic_name) AS generic_name,
    initcap(route) AS route,
    initcap(substance_name) AS substance_name
) FROM source
