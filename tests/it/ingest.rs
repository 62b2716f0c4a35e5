//! Ingest against the real MariaDB and PostgreSQL of the machine: generator invariants, source =
//! bronze = silver, incremental loads, updates/deletes/new columns, crash safety, failures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lakehouse::ingest::generate::rules;
use lakehouse::ingest::{Layer, run_embedded};

use crate::ingest_support::{Sources, lake_query, lake_schema, test_options};

const EVENTS_COLUMNS: &str =
    "ID, ID_PATIENT, PATIENT, SEX, AGE, ID_DOCTOR, ID_SMOKE, SYMPTOMS, DATE_OF_SERVICE";
const PATIENT_COLUMNS: &str = "ID, ID_PATIENT, NAME, SEX, AGE, ADDRESS, COUNTRY, NUMBER, EMAIL";

fn quoted(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_data_keeps_the_rules() {
    let db = Sources::new().await;
    db.generate(2_000, 10_000, 3, false).await;
    assert_eq!(db.mysql_count("SELECT COUNT(*) FROM patient").await, 2_000);
    assert_eq!(db.mysql_count("SELECT COUNT(*) FROM events").await, 10_000);
    assert_eq!(db.mysql_count("SELECT COUNT(*) FROM doctors").await, 30);
    assert_eq!(db.mysql_count("SELECT COUNT(*) FROM shift").await, 3);
    // Gynaecologist/Obstetrician only for females older than 14, Urologist only males,
    // Pediatrician only children.
    let broken = db
        .mysql_count(
            "SELECT COUNT(*) FROM events WHERE \
             (ID_DOCTOR BETWEEN 19 AND 24 AND (SEX <> 'F' OR AGE <= 14)) \
             OR (ID_DOCTOR BETWEEN 25 AND 27 AND SEX <> 'M') \
             OR (ID_DOCTOR BETWEEN 28 AND 30 AND AGE > 12) \
             OR (AGE <= 12 AND ID_DOCTOR NOT BETWEEN 16 AND 18 AND ID_DOCTOR NOT BETWEEN 28 AND 30)",
        )
        .await;
    assert_eq!(broken, 0, "visits breaking the doctor rules");
    // Every specialty occurs.
    let areas: BTreeSet<&str> = db
        .mysql("SELECT DISTINCT ID_DOCTOR FROM events")
        .await
        .iter()
        .map(|r| rules::area_of(r[0].parse().unwrap()))
        .collect();
    assert_eq!(areas.len(), 10);
    // Symptoms belong to the doctor's specialty, NULL where it has none.
    for row in db
        .mysql("SELECT DISTINCT ID_DOCTOR, SYMPTOMS FROM events")
        .await
    {
        let area = rules::area_of(row[0].parse().unwrap());
        let allowed = rules::symptoms_of(area);
        if allowed.is_empty() {
            assert_eq!(row[1], "NULL", "{area} has symptoms");
        } else {
            assert!(allowed.contains(&row[1].as_str()), "{area}: {}", row[1]);
        }
    }
    // ID_SMOKE NULL exactly under 16.
    assert_eq!(
        db.mysql_count(
            "SELECT COUNT(*) FROM events WHERE (AGE < 16) <> (ID_SMOKE IS NULL) OR ID_SMOKE NOT BETWEEN 1 AND 3"
        )
        .await,
        0
    );
    // The eight countries, ages 0..115, both sexes.
    let countries: BTreeSet<String> = db
        .mysql("SELECT DISTINCT COUNTRY FROM patient")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let expected: BTreeSet<String> = [
        "Portugal",
        "Germany",
        "Brazil",
        "Italy",
        "France",
        "United States",
        "Mexico",
        "United Kingdom",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(countries, expected);
    assert_eq!(
        db.mysql_count(
            "SELECT COUNT(*) FROM patient WHERE AGE NOT BETWEEN 0 AND 115 OR SEX NOT IN ('M','F')"
        )
        .await,
        0
    );
    // Service dates from 2020-01-01 up to yesterday.
    assert_eq!(
        db.mysql_count(
            "SELECT COUNT(*) FROM events WHERE DATE_OF_SERVICE < '2020-01-01' OR DATE_OF_SERVICE >= CURDATE()"
        )
        .await,
        0
    );
    // Events copy their patient's name, sex and age.
    assert_eq!(
        db.mysql_count(
            "SELECT COUNT(*) FROM events e JOIN patient p ON p.ID_PATIENT = e.ID_PATIENT \
             WHERE e.PATIENT <> p.NAME OR e.SEX <> p.SEX OR e.AGE <> p.AGE"
        )
        .await,
        0
    );
    // Same seed, same rows.
    let other = Sources::new().await;
    other.generate(2_000, 10_000, 3, false).await;
    let sql = format!("SELECT {EVENTS_COLUMNS} FROM events ORDER BY ID");
    assert_eq!(db.mysql(&sql).await, other.mysql(&sql).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_bronze_silver_and_gold_agree() {
    let db = Sources::new().await;
    db.generate(1_500, 6_000, 11, false).await;
    let report = db.ingest().await;
    assert_eq!(report.rows(Layer::Bronze), 6_000 + 1_500 + 30 + 3 + 100);

    // events: every value, source = bronze = silver (silver without PATIENT and SEX).
    let source = db
        .mysql(&format!("SELECT {EVENTS_COLUMNS} FROM events ORDER BY ID"))
        .await;
    let bronze = db
        .lake(
            "bronze/mysql/ikhospital/events",
            &format!("SELECT {} FROM t ORDER BY \"ID\"", quoted(EVENTS_COLUMNS)),
        )
        .await;
    assert_eq!(source.len(), 6_000);
    assert_eq!(source, bronze);
    let silver = db
        .lake(
            "silver/ikhospital/events",
            "SELECT id, id_patient, age, id_doctor, id_smoke, symptoms, date_of_service FROM t ORDER BY id",
        )
        .await;
    let source_without_patient: Vec<Vec<String>> = source
        .iter()
        .map(|r| [&r[0..2], &r[4..9]].concat())
        .collect();
    assert_eq!(silver, source_without_patient);

    // patient, with its multi-line addresses.
    let source = db
        .mysql(&format!(
            "SELECT {PATIENT_COLUMNS} FROM patient ORDER BY ID"
        ))
        .await;
    let bronze = db
        .lake(
            "bronze/mysql/ikhospital/patient",
            &format!("SELECT {} FROM t ORDER BY \"ID\"", quoted(PATIENT_COLUMNS)),
        )
        .await;
    assert_eq!(source, bronze);
    assert!(source.iter().any(|r| r[5].contains('\n')));
    let silver = db
        .lake(
            "silver/ikhospital/patient",
            "SELECT id, id_patient, name, sex, age, address, country, number, email FROM t ORDER BY id",
        )
        .await;
    assert_eq!(source, silver);

    // The small tables and the medicines; silver's rules.
    assert_eq!(
        db.lake("silver/ikhospital/doctors", "SELECT count(*) FROM t")
            .await[0][0],
        "30"
    );
    let shift_columns: Vec<String> = lake_schema(&db.lake_dir(), "silver/ikhospital/shift")
        .await
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(shift_columns, vec!["id_shift", "shift_name"]);
    let medicine = db
        .lake(
            "silver/ikhospital/medicine",
            "SELECT brand_name, generic_name, product_ndc FROM t WHERE id = 1",
        )
        .await;
    assert_eq!(medicine, vec![vec!["Silicea", "Silicea", "15631-0404"]]);
    let bronze_medicine = db
        .lake(
            "bronze/postgres/ikhospital/medicine",
            "SELECT count(*), max(brand_name) FROM t",
        )
        .await;
    assert_eq!(bronze_medicine[0][0], "100");

    // Metadata columns in bronze.
    let meta = db
        .lake(
            "bronze/mysql/ikhospital/events",
            "SELECT count(DISTINCT _batch_id), min(_source), count(_ingested_at) FROM t",
        )
        .await;
    assert_eq!(
        meta[0],
        vec![
            "1".to_string(),
            format!("mysql:{}.events", db.name),
            "6000".to_string()
        ]
    );

    // Gold: the served contract, with plain Arrow types.
    let gold = |table: &'static str| {
        let dir = db.lake_dir();
        async move {
            lake_query(
                &dir,
                &format!("gold/ikhospital/{table}"),
                "SELECT count(*) FROM t",
            )
            .await[0][0]
                .clone()
        }
    };
    assert_eq!(gold("fact_events").await, "6000");
    assert_eq!(gold("dim_patient").await, "1500");
    assert_eq!(gold("dim_doctors").await, "30");
    assert_eq!(gold("dim_medicine").await, "100");
    let schema = lake_schema(&db.lake_dir(), "gold/ikhospital/fact_events").await;
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        vec![
            "id:Int32",
            "id_patient:Int32",
            "age:Int32",
            "id_doctor:Int32",
            "id_smoke:Int32",
            "symptoms:Utf8",
            "date_of_service:Date32"
        ]
    );
    let doctors = db
        .lake(
            "gold/ikhospital/dim_doctors",
            "SELECT id_doctor, area, name, shift FROM t WHERE id_doctor = 2",
        )
        .await;
    assert_eq!(
        doctors,
        vec![vec!["2", "Allergist", "Sullivan Colt", "Evening"]]
    );
    // dim_date: one row per day from the first to the last visit.
    let calendar = db
        .lake(
            "gold/ikhospital/dim_date",
            "SELECT count(*), count(DISTINCT date), min(date), max(date), max(day_of_week), min(month_name) FROM t",
        )
        .await;
    let range = db
        .mysql("SELECT DATEDIFF(MAX(DATE_OF_SERVICE), MIN(DATE_OF_SERVICE)) + 1, MIN(DATE_OF_SERVICE), MAX(DATE_OF_SERVICE) FROM events")
        .await;
    assert_eq!(calendar[0][0], range[0][0]);
    assert_eq!(calendar[0][1], range[0][0]);
    assert_eq!(
        (&calendar[0][2], &calendar[0][3]),
        (&range[0][1], &range[0][2])
    );
    assert_eq!(calendar[0][4], "7");
    assert_eq!(calendar[0][5], "April");

    // A second run with no change at the source commits nothing to the incremental tables and
    // rebuilds no gold model over them.
    let again = db.ingest().await;
    let events = again.table("bronze/mysql/ikhospital/events").unwrap();
    assert_eq!((events.rows, events.version), (0, None));
    assert_eq!(
        again.table("silver/ikhospital/events").unwrap().version,
        None
    );
    assert_eq!(
        again.table("gold/ikhospital/fact_events").unwrap().version,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_loads_exactly_the_new_rows() {
    let db = Sources::new().await;
    db.generate(500, 2_000, 5, false).await;
    db.ingest().await;
    db.generate(40, 300, 6, true).await;
    assert_eq!(db.mysql_count("SELECT COUNT(*) FROM events").await, 2_300);
    let report = db.ingest().await;
    let bronze_events = report.table("bronze/mysql/ikhospital/events").unwrap();
    assert_eq!(bronze_events.rows, 300, "{}", report.render());
    assert!(
        bronze_events.mode.contains("after 2000"),
        "{}",
        bronze_events.mode
    );
    assert_eq!(
        report
            .table("bronze/mysql/ikhospital/patient")
            .unwrap()
            .rows,
        40
    );
    assert_eq!(report.table("silver/ikhospital/events").unwrap().rows, 300);
    let counts = db
        .lake(
            "bronze/mysql/ikhospital/events",
            "SELECT count(*), count(DISTINCT \"ID\"), count(DISTINCT _batch_id) FROM t",
        )
        .await;
    assert_eq!(counts[0], vec!["2300", "2300", "2"]);
    assert_eq!(
        db.lake("silver/ikhospital/events", "SELECT count(*) FROM t")
            .await[0][0],
        "2300"
    );
    assert_eq!(
        db.lake("silver/ikhospital/patient", "SELECT count(*) FROM t")
            .await[0][0],
        "540"
    );
    assert_eq!(
        db.lake("gold/ikhospital/fact_events", "SELECT count(*) FROM t")
            .await[0][0],
        "2300"
    );
    // New visits of new patients are consistent with them.
    let source = db
        .mysql(&format!(
            "SELECT {EVENTS_COLUMNS} FROM events WHERE ID > 2000 ORDER BY ID"
        ))
        .await;
    let bronze = db
        .lake(
            "bronze/mysql/ikhospital/events",
            &format!(
                "SELECT {} FROM t WHERE \"ID\" > 2000 ORDER BY \"ID\"",
                quoted(EVENTS_COLUMNS)
            ),
        )
        .await;
    assert_eq!(source, bronze);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_deletes_and_new_columns_reach_silver() {
    let db = Sources::new().await;
    db.generate(300, 1_000, 8, false).await;
    db.ingest().await;
    db.mysql_exec(
        "UPDATE patient SET NAME = 'Renamed Person', COUNTRY = 'Portugal' WHERE ID_PATIENT = 7",
    )
    .await;
    db.mysql_exec("DELETE FROM doctors WHERE ID_DOCTOR = 30")
        .await;
    db.mysql_exec("UPDATE shift SET SHIFT_NAME = 'Night' WHERE ID_SHIFT = 3")
        .await;
    db.postgres_exec("DELETE FROM pharmacy.medicine WHERE id = 1")
        .await;
    db.mysql_exec("ALTER TABLE events ADD COLUMN NOTE VARCHAR(20)")
        .await;
    db.generate(0, 50, 9, true).await;
    db.mysql_exec("UPDATE events SET NOTE = 'follow-up' WHERE ID > 1000")
        .await;
    let report = db.ingest().await;
    assert_eq!(
        report
            .table("bronze/mysql/ikhospital/patient")
            .unwrap()
            .rows,
        1
    );

    let patient = db
        .lake(
            "silver/ikhospital/patient",
            "SELECT name, country FROM t WHERE id_patient = 7",
        )
        .await;
    assert_eq!(patient, vec![vec!["Renamed Person", "Portugal"]]);
    assert_eq!(
        db.lake("silver/ikhospital/patient", "SELECT count(*) FROM t")
            .await[0][0],
        "300"
    );
    let doctors = db
        .lake(
            "silver/ikhospital/doctors",
            "SELECT count(*), max(id_doctor) FROM t",
        )
        .await;
    assert_eq!(doctors[0], vec!["29", "29"]);
    assert_eq!(
        db.lake("gold/ikhospital/dim_doctors", "SELECT count(*) FROM t")
            .await[0][0],
        "29"
    );
    let shift = db
        .lake(
            "gold/ikhospital/dim_doctors",
            "SELECT DISTINCT shift FROM t WHERE id_doctor = 3",
        )
        .await;
    assert_eq!(shift, vec![vec!["Night"]]);
    let medicine = db
        .lake(
            "silver/ikhospital/medicine",
            "SELECT count(*), min(id) FROM t",
        )
        .await;
    assert_eq!(medicine[0], vec!["99", "2"]);
    // The new column is in bronze and silver, with its values; older rows have NULL.
    let notes = db
        .lake(
            "bronze/mysql/ikhospital/events",
            "SELECT count(\"NOTE\"), count(*) FROM t",
        )
        .await;
    assert_eq!(notes[0], vec!["50", "1050"]);
    let notes = db
        .lake(
            "silver/ikhospital/events",
            "SELECT count(note), min(note), count(*) FROM t",
        )
        .await;
    assert_eq!(notes[0], vec!["50", "follow-up", "1050"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_rerun_gives_exact_counts() {
    let db = Sources::new().await;
    db.generate(20_000, 150_000, 13, false).await;
    let config = db.write_config(&db.mysql_url(), "");
    let binary = env!("CARGO_BIN_EXE_lakehouse");
    // Kill at different moments of the first run, then of later runs after an append.
    let mut interrupted = 0;
    for (round, delay_ms) in [150u64, 600, 1_200, 2_500].into_iter().enumerate() {
        if round == 2 {
            db.generate(1_000, 20_000, 14, true).await;
        }
        let mut child = std::process::Command::new(binary)
            .args(["ingest", "--once", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        // SIGKILL: no destructor, no flush, no chance to finish a commit cleanly.
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        interrupted >= 2,
        "only {interrupted} of 4 runs were still running when killed"
    );
    db.ingest().await;
    let source = db
        .mysql_count("SELECT COUNT(*) FROM events")
        .await
        .to_string();
    let bronze = db
        .lake(
            "bronze/mysql/ikhospital/events",
            "SELECT count(*), count(DISTINCT \"ID\") FROM t",
        )
        .await;
    assert_eq!(bronze[0], vec![source.clone(), source.clone()]);
    let silver = db
        .lake(
            "silver/ikhospital/events",
            "SELECT count(*), count(DISTINCT id) FROM t",
        )
        .await;
    assert_eq!(silver[0], vec![source.clone(), source.clone()]);
    assert_eq!(
        db.lake("gold/ikhospital/fact_events", "SELECT count(*) FROM t")
            .await[0][0],
        source
    );
    let patients = db
        .mysql_count("SELECT COUNT(*) FROM patient")
        .await
        .to_string();
    let bronze = db
        .lake(
            "bronze/mysql/ikhospital/patient",
            "SELECT count(DISTINCT \"ID\") FROM t",
        )
        .await;
    assert_eq!(bronze[0][0], patients);
    assert_eq!(
        db.lake("silver/ikhospital/patient", "SELECT count(*) FROM t")
            .await[0][0],
        patients
    );
    // And the converged lake does not move on a further run.
    let report = db.ingest().await;
    assert_eq!(
        report.rows(Layer::Bronze),
        30 + 3 + 100,
        "{}",
        report.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_source_is_reported_while_the_others_proceed() {
    let db = Sources::new().await;
    db.generate(10, 10, 1, false).await;
    // Port 1 on loopback: connection refused at once.
    let config_path = db.write_config(&format!("mysql://root@127.0.0.1:1/{}", db.name), "");
    let config = lakehouse::config::Config::load(&config_path).unwrap();
    let report = lakehouse::ingest::run_once(&config, &test_options())
        .await
        .unwrap();
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.starts_with("source \"mysql\"")),
        "{:?}",
        report.failures
    );
    assert_eq!(
        report
            .table("bronze/postgres/ikhospital/medicine")
            .unwrap()
            .rows,
        100
    );
    assert_eq!(
        db.lake("silver/ikhospital/medicine", "SELECT count(*) FROM t")
            .await[0][0],
        "100"
    );
    assert!(report.clone().into_result().is_err());
    // The metrics say which table failed and which were written.
    let metrics = lakehouse::metrics::global().encode();
    assert!(
        metrics.contains("lakehouse_ingest_failures_total{table=\"source \\\"mysql\\\"\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "lakehouse_ingest_last_success_timestamp_seconds{table=\"bronze/postgres/ikhospital/medicine\"}"
        ),
        "{metrics}"
    );
    // ...and so does sys.ingest_runs (the process's status behind it).
    let runs = lakehouse::metrics::status().ingest_runs();
    let run = |path: &str| runs.iter().find(|(p, _)| p == path).map(|(_, r)| r.clone());
    let failed = run("source \"mysql\"").expect("the failed source");
    assert_eq!(failed.outcome, "failed");
    let medicine = run("bronze/postgres/ikhospital/medicine").expect("the bronze table");
    assert_eq!(
        (medicine.outcome.as_str(), medicine.layer.as_str()),
        ("ok", "bronze")
    );
    // The command exits 1 and names what failed.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["ingest", "--once", "--layer", "bronze", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("source \"mysql\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_demo_builds_all_layers_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let root = lakehouse::lake::StorageLocation::parse(
        &dir.path().display().to_string(),
        Default::default(),
    )
    .unwrap();
    let started = Instant::now();
    let report = run_embedded(&root, None, &Default::default(), &test_options())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let count = |table: &'static str| {
        let path = dir.path().to_path_buf();
        async move {
            lake_query(
                &path,
                &format!("gold/ikhospital/{table}"),
                "SELECT count(*) FROM t",
            )
            .await[0][0]
                .clone()
        }
    };
    assert_eq!(count("fact_events").await, "6000");
    assert_eq!(count("dim_patient").await, "1500");
    assert_eq!(count("dim_doctors").await, "30");
    assert_eq!(count("dim_medicine").await, "100");
    assert_ne!(count("dim_date").await, "0");
    // Generous bound for a debug build on 2 cores; a release build takes well under a second.
    assert!(
        elapsed < Duration::from_secs(30),
        "{elapsed:?}\n{}",
        report.render()
    );
    // Running it again is a no-op for the incremental tables.
    let again = run_embedded(&root, None, &Default::default(), &test_options())
        .await
        .unwrap();
    assert_eq!(
        again
            .table("bronze/mysql/ikhospital/events")
            .unwrap()
            .version,
        None
    );
}

#[test]
fn check_reports_model_errors_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("gold")).unwrap();
    std::fs::write(
        dir.path().join("gold/broken.sql"),
        "-- a broken model\nSELECT id,\n  FROM silver.events WHERE\n",
    )
    .unwrap();
    let err = lakehouse::ingest::models::check(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.sql:"), "{err}");
    std::fs::write(
        dir.path().join("gold/broken.sql"),
        "SELECT 1 AS x FROM silver.events",
    )
    .unwrap();
    assert!(lakehouse::ingest::models::check(dir.path()).is_ok());
}
