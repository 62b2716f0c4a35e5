-- Hospital overview: the figures of the original "Overview of the Hospital" Power BI report,
-- over the gold tables of IKHOSPITAL_DW.
--
-- Runs as is in psql:   \i sql/reports/hospital_overview.sql
-- Each statement also works as a Power BI native query (Get data > PostgreSQL > Advanced).

-- Headline figures: patients, visits, doctors.
SELECT
    (SELECT count(*) FROM dbo.dim_patient) AS patients,
    (SELECT count(*) FROM dbo.fact_events) AS visits,
    (SELECT count(*) FROM dbo.dim_doctors) AS doctors;

-- Doctors by area and shift.
SELECT area, shift, count(*) AS doctors
FROM dbo.dim_doctors
GROUP BY area, shift
ORDER BY area, shift;

-- Visits by doctor area.
SELECT d.area, count(*) AS visits
FROM dbo.fact_events AS e
JOIN dbo.dim_doctors AS d ON d.id_doctor = e.id_doctor
GROUP BY d.area
ORDER BY visits DESC, d.area;

-- Visits by shift.
SELECT d.shift, count(*) AS visits
FROM dbo.fact_events AS e
JOIN dbo.dim_doctors AS d ON d.id_doctor = e.id_doctor
GROUP BY d.shift
ORDER BY visits DESC;

-- Visits by symptom (specialties without a symptom list record none).
SELECT coalesce(e.symptoms, '(none recorded)') AS symptom, count(*) AS visits
FROM dbo.fact_events AS e
GROUP BY coalesce(e.symptoms, '(none recorded)')
ORDER BY visits DESC, symptom;

-- Visits by patient country and sex.
SELECT p.country, p.sex, count(*) AS visits, count(DISTINCT p.id_patient) AS patients
FROM dbo.fact_events AS e
JOIN dbo.dim_patient AS p ON p.id_patient = e.id_patient
GROUP BY p.country, p.sex
ORDER BY p.country, p.sex;

-- Visits by year and month.
SELECT c.year, c.month, c.month_name, count(*) AS visits
FROM dbo.fact_events AS e
JOIN dbo.dim_date AS c ON c.date = e.date_of_service
GROUP BY c.year, c.month, c.month_name
ORDER BY c.year, c.month;

-- Medicines distributed today (the original streaming tile), fresh within seconds.
SELECT m.product_ndc, m.brand_name, m.generic_name, d.total_qty, d.n_events, d.last_event_at
FROM dbo.medicine_distribution_daily AS d
JOIN dbo.dim_medicine AS m ON m.product_ndc = d.ndc
WHERE d.day = current_date
ORDER BY d.total_qty DESC, m.product_ndc;
