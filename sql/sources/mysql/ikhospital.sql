-- The MySQL/MariaDB source database `ikhospital` (the original demo's four tables).
--
-- `lakehouse generate` creates the database when it is missing (named by the path of its
-- --mysql URL, `ikhospital` by default) and runs this file in it; every statement is
-- idempotent. Columns are the original ones (UPPER_CASE); our additions for ingest are:
--   * patient.UPDATED_AT: maintained by the server on every UPDATE, so ingest loads new and
--     changed patients incrementally (the watermark is inferred from the column name);
--   * the table comment 'append-only' on events: visits are never updated or deleted, so
--     ingest uses the auto-increment ID as the watermark.
-- doctors and shift have neither: they are copied as full snapshots, which also catches
-- updates and deletes.

CREATE TABLE IF NOT EXISTS events (
    ID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ID_PATIENT INT NOT NULL,
    PATIENT VARCHAR(100),
    SEX VARCHAR(2),
    AGE INT,
    ID_DOCTOR INT,
    ID_SMOKE INT,
    SYMPTOMS VARCHAR(20),
    DATE_OF_SERVICE DATE
) ENGINE=InnoDB COMMENT='append-only: one row per visit';

CREATE TABLE IF NOT EXISTS doctors (
    ID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ID_DOCTOR INT NOT NULL,
    AREA VARCHAR(100),
    NAME VARCHAR(100),
    ID_SHIFT INT
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS patient (
    ID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ID_PATIENT INT NOT NULL,
    NAME VARCHAR(100),
    SEX VARCHAR(100),
    AGE INT,
    ADDRESS VARCHAR(100),
    COUNTRY VARCHAR(100),
    NUMBER VARCHAR(50),
    EMAIL VARCHAR(100),
    UPDATED_AT TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    KEY patient_updated_at (UPDATED_AT)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS shift (
    ID INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ID_SHIFT INT NOT NULL,
    SHIFT_NAME VARCHAR(20)
) ENGINE=InnoDB;
