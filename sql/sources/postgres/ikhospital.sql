-- The PostgreSQL source database `ikhospital`, schema `pharmacy` (the original demo's table).
--
-- `lakehouse generate` creates the database when it is missing (named by the path of its
-- --postgres URL, `ikhospital` by default), then runs this
-- file in it; every statement is idempotent. medicine has no watermark column: it is copied as
-- a full snapshot, which also catches updates and deletes. The rows are the 100 openFDA
-- drug-label records of medicine.csv beside this file.

CREATE SCHEMA IF NOT EXISTS pharmacy;

CREATE TABLE IF NOT EXISTS pharmacy.medicine (
    id SERIAL PRIMARY KEY,
    brand_name TEXT,
    generic_name TEXT,
    manufacturer_name TEXT,
    product_ndc TEXT,
    product_type TEXT,
    route TEXT,
    substance_name TEXT
);
