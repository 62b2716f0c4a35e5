//! Delta tables as Databricks, Fabric and Spark write them, hand-written from the protocol
//! specification (`support::delta_protocol`), served over the wire with exactly the answers
//! computed from what was written: deletion vectors (inline and on-disk, files with and without
//! one), column mapping with a renamed and a re-added column, v2 checkpoints,
//! `vacuumProtocolCheck`; refused by name: unknown and unsupported reader features.
//!
//! Every answer is checked as `alice` (everything), `bob` (names masked) and `carol` (Portugal
//! rows only; her fact_events filter is a subquery over the table under test), over the simple
//! protocol (text) and the extended protocol (binary).

use crate::support::delta_protocol::{Columns, Patient, Table, patients, protocol};
use crate::support::{Setup, TestServer, fixture, rows};

/// The default setup with `dim_patient` left to the test, which writes it by hand into `dir`.
fn setup(dir: tempfile::TempDir) -> Setup {
    Setup {
        tables: fixture::hospital()
            .into_iter()
            .filter(|t| t.name != "dim_patient")
            .collect(),
        dir: Some(dir),
        ..Setup::default()
    }
}

fn lake(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("lake")
}

/// What `user` must read of `dim_patient` when `live` are its live rows.
fn expected_for(user: &str, live: &[Patient]) -> Vec<Patient> {
    live.iter()
        .filter(|p| user != "carol" || p.country.as_deref() == Some("Portugal"))
        .map(|p| Patient {
            name: if user == "bob" {
                "****".into()
            } else {
                p.name.clone()
            },
            ..p.clone()
        })
        .collect()
}

/// Checks every query of the suite as every user against the live rows.
async fn check_served(server: &TestServer, live: &[Patient]) {
    let alice = server.connect("alice").await;
    for user in ["alice", "bob", "carol"] {
        let client = server.connect(user).await;
        let expected = expected_for(user, live);
        let context = format!("as {user}");

        // Every data column, simple protocol (text).
        let text = rows(
            &client,
            "select id_patient, name, country from dim_patient order by id_patient",
        )
        .await;
        let want: Vec<Vec<Option<String>>> = expected
            .iter()
            .map(|p| {
                vec![
                    Some(p.id.to_string()),
                    Some(p.name.clone()),
                    p.country.clone(),
                ]
            })
            .collect();
        assert_eq!(text, want, "{context}, simple protocol");

        // The same over the extended protocol (binary results).
        let binary: Vec<Patient> = client
            .query(
                "select id_patient, name, country from dim_patient order by id_patient",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{context}: {e}"))
            .iter()
            .map(|r| Patient {
                id: r.get(0),
                name: r.get(1),
                country: r.get(2),
            })
            .collect();
        assert_eq!(binary, expected, "{context}, extended protocol");

        // Aggregates, with a parameter and a filter on a data column.
        let sum: i64 = expected.iter().map(|p| p.id as i64).sum();
        let agg = client
            .query_one(
                "select count(*), sum(id_patient)::int8 from dim_patient where id_patient > $1",
                &[&0i32],
            )
            .await
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(
            (agg.get::<_, i64>(0), agg.get::<_, i64>(1)),
            (expected.len() as i64, sum),
            "{context}, count and sum"
        );
        let germans = expected
            .iter()
            .filter(|p| p.country.as_deref() == Some("Germany"))
            .count();
        assert_eq!(
            rows(
                &client,
                "select count(*) from dim_patient where country = 'Germany' and name is not null"
            )
            .await,
            vec![vec![Some(germans.to_string())]],
            "{context}, filtered count"
        );

        // A join through the table (carol's fact_events filter is a subquery over it).
        let ids: Vec<String> = expected.iter().map(|p| p.id.to_string()).collect();
        let visible_events = if user == "carol" {
            let list = if ids.is_empty() {
                "NULL".to_string()
            } else {
                ids.join(",")
            };
            rows(
                &alice,
                &format!("select count(*) from fact_events where id_patient in ({list})"),
            )
            .await
        } else {
            rows(&alice, "select count(*) from fact_events").await
        };
        assert_eq!(
            rows(&client, "select count(*) from fact_events").await,
            visible_events,
            "{context}, fact_events"
        );
        let joined = rows(
            &client,
            "select count(*) from fact_events e join dim_patient p using (id_patient)",
        )
        .await;
        let want_joined = if ids.is_empty() {
            vec![vec![Some("0".to_string())]]
        } else {
            rows(
                &alice,
                &format!(
                    "select count(*) from fact_events where id_patient in ({})",
                    ids.join(",")
                ),
            )
            .await
        };
        assert_eq!(joined, want_joined, "{context}, join");
    }
}

/// Polls until `alice` sees `n` live rows (the server refreshes every 200 ms).
async fn wait_for_count(server: &TestServer, n: usize) {
    let alice = server.connect("alice").await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = rows(&alice, "select count(*) from dim_patient").await;
        if got == vec![vec![Some(n.to_string())]] {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let versions = rows(
        &alice,
        "select version, status from sys.lake_tables where table_name = 'dim_patient'",
    )
    .await;
    panic!("dim_patient never reached {n} rows: {got:?}, {versions:?}");
}

/// Three files: one without a deletion vector, one with an inline vector and one with an
/// on-disk vector, as a Databricks DELETE leaves them; then a second DELETE while the server
/// runs, which the result cache must not hide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_vectors_in_some_files_answer_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = Table::create(&lake(&dir), "dim_patient", Columns::plain());
    let features = ["deletionVectors"];
    let a = table.write_file(&patients(1, 12), true);
    let b = table.write_file(&patients(13, 12), true);
    let c = table.write_file(&patients(25, 12), true);
    let mut actions = vec![
        protocol(&features, &features),
        table.metadata(&[("delta.enableDeletionVectors", "true")]),
    ];
    for file in [&a, &b, &c] {
        actions.push(table.add(file, None));
    }
    table.commit(actions);
    // DELETE ... WHERE id_patient IN (13, 14, 20, 24, 26, 27, 28, 36): B gets an inline
    // vector, C an on-disk one, A none.
    let remove_b = table.remove(&b);
    let add_b = table.add(&b, Some(Table::inline_dv(&[0, 1, 7, 11])));
    let remove_c = table.remove(&c);
    let dv_c = table.on_disk_dv(&[1, 2, 3, 11]);
    let add_c = table.add(&c, Some(dv_c));
    table.commit(vec![remove_b, add_b, remove_c, add_c]);
    let live = table.live_rows();
    assert_eq!(live.len(), 36 - 8);

    let server = TestServer::start_with(setup(dir)).await;
    check_served(&server, &live).await;
    // Again: the second answers come from the result cache.
    check_served(&server, &live).await;
    let alice = server.connect("alice").await;
    assert_ne!(
        rows(
            &alice,
            "select count(*) from sys.audit_log where result_cache = 'hit'"
        )
        .await,
        vec![vec![Some("0".to_string())]],
        "the second round is answered from the result cache"
    );

    // A second DELETE, now on file A and again on C (its vector replaced by a larger one).
    let remove_a = table.remove(&a);
    let dv_a = table.on_disk_dv(&[0, 5]);
    let add_a = table.add(&a, Some(dv_a));
    let remove_c = table.remove(&c);
    let add_c = table.add(&c, Some(Table::inline_dv(&[1, 2, 3, 4, 11])));
    table.commit(vec![remove_a, add_a, remove_c, add_c]);
    let live = table.live_rows();
    assert_eq!(live.len(), 36 - 11);
    wait_for_count(&server, live.len()).await;
    check_served(&server, &live).await;

    // A DELETE that removes every row of a file (Databricks drops the file instead, but a
    // vector with every row is valid too).
    let remove_b = table.remove(&b);
    let add_b = table.add(&b, Some(Table::inline_dv(&(0..12).collect::<Vec<u64>>())));
    table.commit(vec![remove_b, add_b]);
    let live = table.live_rows();
    wait_for_count(&server, live.len()).await;
    check_served(&server, &live).await;
    server.stop().await;
}

/// A table as Unity Catalog manages it: `vacuumProtocolCheck`, deletion vectors, column
/// mapping by name (a renamed column, a dropped and re-added column), a v2 checkpoint with its
/// files in a Parquet sidecar and the commits before it cleaned up, then commits after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unity_catalog_managed_table_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut columns = Columns::mapped();
    columns.name.logical = "full_name";
    let mut table = Table::create(&lake(&dir), "dim_patient", columns);
    let reader = [
        "columnMapping",
        "deletionVectors",
        "v2Checkpoint",
        "vacuumProtocolCheck",
    ];
    let writer = [
        "appendOnly",
        "invariants",
        "columnMapping",
        "deletionVectors",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "domainMetadata",
    ];
    let config = [
        ("delta.enableDeletionVectors", "true"),
        ("delta.checkpointPolicy", "v2"),
    ];
    let a = table.write_file(&patients(1, 10), true);
    let b = table.write_file(&patients(11, 10), true);
    let mut actions = vec![protocol(&reader, &writer), table.metadata(&config)];
    actions.push(table.add(&a, None));
    actions.push(table.add(&b, None));
    table.commit(actions);
    // ALTER TABLE RENAME COLUMN full_name TO name: only the logical name changes.
    table.columns.name.logical = "name";
    let metadata = table.metadata(&config);
    table.commit(vec![metadata.clone()]);
    // Version 2: a DELETE leaves an on-disk vector on A.
    let remove_a = table.remove(&a);
    let dv = table.on_disk_dv(&[0, 3, 9]);
    let add_a = table.add(&a, Some(dv));
    table.commit(vec![remove_a, add_a]);
    // A v2 checkpoint at version 2 with its adds (a deletion vector among them) in a Parquet
    // sidecar, then the commits before it are cleaned up.
    table.v2_checkpoint_with_sidecar(2, protocol(&reader, &writer), metadata);
    table.clean_log_before(3);
    // Version 3: DROP COLUMN country, ADD COLUMN country; version 4: new rows with countries.
    table.drop_and_readd_country();
    let metadata = table.metadata(&config);
    table.commit(vec![metadata]);
    let c = table.write_file(&patients(21, 8), true);
    let add_c = table.add(&c, None);
    table.commit(vec![add_c]);
    // Version 5: a DELETE on the new file, inline.
    let remove_c = table.remove(&c);
    let add_c = table.add(&c, Some(Table::inline_dv(&[2])));
    table.commit(vec![remove_c, add_c]);
    let live = table.live_rows();
    assert_eq!(live.len(), 20 - 3 + 8 - 1);
    assert_eq!(
        live.iter().filter(|p| p.country.is_some()).count(),
        7,
        "only the rows written after the re-add have a country"
    );

    let server = TestServer::start_with(setup(dir)).await;
    check_served(&server, &live).await;
    let alice = server.connect("alice").await;
    assert_eq!(
        rows(
            &alice,
            "select column_name from information_schema.columns \
             where table_name = 'dim_patient' order by ordinal_position"
        )
        .await,
        vec![
            vec![Some("id_patient".to_string())],
            vec![Some("name".to_string())],
            vec![Some("country".to_string())],
        ],
        "logical names, not physical ones"
    );
    assert_eq!(
        rows(
            &alice,
            "select reader_features from sys.lake_tables where table_name = 'dim_patient'"
        )
        .await,
        vec![vec![Some(
            "{columnMapping,deletionVectors,v2Checkpoint,vacuumProtocolCheck}".to_string()
        )]]
    );
    server.stop().await;
}

/// Tables needing what the server cannot read are refused with the feature named, and the rest
/// of the lake stays served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unsupported_reader_features_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("future_table", "someFutureReaderFeature"),
        ("widened_table", "typeWidening"),
        ("catalog_managed_table", "catalogManaged"),
    ];
    for (name, feature) in cases {
        let mut table = Table::create(&lake(&dir), name, Columns::plain());
        let file = table.write_file(&patients(1, 3), true);
        let actions = vec![
            protocol(&[feature], &[feature]),
            table.metadata(&[]),
            table.add(&file, None),
        ];
        table.commit(actions);
    }
    let mut setup = setup(dir);
    setup.tables = fixture::hospital();
    let server = TestServer::start_with(setup).await;
    let alice = server.connect("alice").await;
    for (name, feature) in cases {
        let err = alice
            .simple_query(&format!("select * from {name}"))
            .await
            .expect_err(name);
        let db = err.as_db_error().expect("a database error");
        assert!(
            db.message().contains(feature) || db.detail().unwrap_or("").contains(feature),
            "{name}: the refusal names {feature}: {db:?}"
        );
        let status = rows(
            &alice,
            &format!("select status from sys.lake_tables where table_name = '{name}'"),
        )
        .await;
        assert!(
            status[0][0].as_deref().unwrap_or("").contains(feature),
            "{name}: {status:?}"
        );
    }
    // The rest is served, and the server is up.
    assert_eq!(
        rows(&alice, "select count(*) from dim_patient").await,
        vec![vec![Some("40".to_string())]]
    );
    // The profile says so in SQL...
    assert_eq!(
        rows(
            &alice,
            "select feature, reading from sys.delta_features \
             where feature in ('deletionVectors', 'vacuumProtocolCheck', 'typeWidening', 'rowTracking') \
             order by feature"
        )
        .await,
        [
            ("deletionVectors", "served"),
            ("rowTracking", "served"),
            ("typeWidening", "refused"),
            ("vacuumProtocolCheck", "served"),
        ]
        .iter()
        .map(|(f, r)| vec![Some(f.to_string()), Some(r.to_string())])
        .collect::<Vec<_>>()
    );
    // ...and `lakehouse check` per table, before any server is started.
    let report = lakehouse::check::run(&server.dir.path().join("lakehouse.yaml"), None)
        .await
        .unwrap_or_else(|d| panic!("{d}"));
    for (name, feature) in cases {
        assert!(
            report
                .tables
                .iter()
                .any(|l| l.starts_with(&format!("dbo.{name}: refused")) && l.contains(feature)),
            "{name}: {:?}",
            report.tables
        );
    }
    assert!(
        report
            .tables
            .iter()
            .any(|l| l.starts_with("dbo.dim_patient: served")),
        "{:?}",
        report.tables
    );
    server.stop().await;
}

/// 2024-03-31 01:30:00 UTC (the hour Lisbon moves to summer time) and 1969-12-31 23:59:59.5
/// UTC (Portugal kept UTC+1 from 1966 to 1976).
const CLOCK_MICROS: [i64; 2] = [1_711_848_600_000_000, -500_000];

/// A server whose lake also holds `device_clock (id, seen_at timestamp_ntz, recorded_at
/// timestamp)`, both timestamp columns holding [`CLOCK_MICROS`].
async fn clock_server() -> TestServer {
    use datafusion::arrow::array::{Int32Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new(
            "seen_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            Arc::new(TimestampMicrosecondArray::from(CLOCK_MICROS.to_vec())),
            Arc::new(TimestampMicrosecondArray::from(CLOCK_MICROS.to_vec()).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let schema_string = serde_json::json!({"type": "struct", "fields": [
        {"name": "id", "type": "integer", "nullable": false, "metadata": {}},
        {"name": "seen_at", "type": "timestamp_ntz", "nullable": true, "metadata": {}},
        {"name": "recorded_at", "type": "timestamp", "nullable": true, "metadata": {}},
    ]})
    .to_string();
    crate::support::delta_protocol::write_plain_table(
        &lake(&dir),
        "device_clock",
        protocol(&["timestampNtz"], &["timestampNtz"]),
        &schema_string,
        &batch,
    );
    let mut setup = setup(dir);
    setup.tables = fixture::hospital();
    TestServer::start_with(setup).await
}

fn text_rows(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| Some(v.to_string())).collect())
        .collect()
}

/// `timestampNtz`: wall-clock times served as `timestamp without time zone`, unchanged, beside
/// instants served as `timestamp with time zone`, in text and binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_ntz_columns_are_served_unchanged() {
    let server = clock_server().await;
    let alice = server.connect("alice").await;
    assert_eq!(
        rows(
            &alice,
            "select id, seen_at, recorded_at from device_clock order by id"
        )
        .await,
        text_rows(&[
            &["1", "2024-03-31 01:30:00", "2024-03-31 01:30:00+00"],
            &["2", "1969-12-31 23:59:59.5", "1969-12-31 23:59:59.5+00"],
        ])
    );
    let binary: Vec<(chrono::NaiveDateTime, chrono::DateTime<chrono::Utc>)> = alice
        .query(
            "select seen_at, recorded_at from device_clock order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for ((seen, recorded), us) in binary.iter().zip(CLOCK_MICROS) {
        let expected = chrono::DateTime::from_timestamp_micros(us).unwrap();
        assert_eq!(*recorded, expected);
        assert_eq!(*seen, expected.naive_utc());
    }
    assert_eq!(
        rows(
            &alice,
            "select data_type from information_schema.columns \
             where table_name = 'device_clock' order by ordinal_position"
        )
        .await,
        text_rows(&[
            &["integer"],
            &["timestamp without time zone"],
            &["timestamp with time zone"]
        ])
    );
    server.stop().await;
}

/// Session time zones as PostgreSQL has them: `timestamptz` shown, truncated, extracted and
/// cast in the session's zone (from `SET TIME ZONE` or the startup packet), `timestamp` (NTZ)
/// untouched, binary values unchanged, the result cache keyed by zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_time_zones_work_as_in_postgres() {
    let server = clock_server().await;
    let alice = server.connect("alice").await;
    let query = "select recorded_at, seen_at, recorded_at::date, recorded_at::timestamp, \
                 date_trunc('day', recorded_at), extract(hour from recorded_at) \
                 from device_clock order by id";
    // UTC first (and into the result cache).
    assert_eq!(
        rows(&alice, query).await,
        text_rows(&[
            &[
                "2024-03-31 01:30:00+00",
                "2024-03-31 01:30:00",
                "2024-03-31",
                "2024-03-31 01:30:00",
                "2024-03-31 00:00:00+00",
                "1"
            ],
            &[
                "1969-12-31 23:59:59.5+00",
                "1969-12-31 23:59:59.5",
                "1969-12-31",
                "1969-12-31 23:59:59.5",
                "1969-12-31 00:00:00+00",
                "23"
            ],
        ])
    );
    let lisbon = text_rows(&[
        &[
            "2024-03-31 02:30:00+01",
            "2024-03-31 01:30:00",
            "2024-03-31",
            "2024-03-31 02:30:00",
            "2024-03-31 00:00:00+00",
            "2",
        ],
        &[
            "1970-01-01 00:59:59.5+01",
            "1969-12-31 23:59:59.5",
            "1970-01-01",
            "1970-01-01 00:59:59.5",
            "1970-01-01 00:00:00+01",
            "0",
        ],
    ]);
    rows(&alice, "SET TIME ZONE 'europe/lisbon'").await;
    assert_eq!(
        rows(&alice, "show timezone").await,
        text_rows(&[&["Europe/Lisbon"]])
    );
    assert_eq!(rows(&alice, query).await, lisbon, "SET TIME ZONE");

    // The same from the startup packet, as psql's PGTZ and pgJDBC send it.
    let mut config = lakehouse::bench::client_config(server.addr, "bob", crate::support::PASSWORD);
    config.options("-c TimeZone=Europe/Lisbon");
    let (bob, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    assert_eq!(rows(&bob, query).await, lisbon, "startup TimeZone");
    // Binary values are instants: the zone does not change them.
    let instants: Vec<chrono::DateTime<chrono::Utc>> = bob
        .query("select recorded_at from device_clock order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<_> = CLOCK_MICROS
        .iter()
        .map(|us| chrono::DateTime::from_timestamp_micros(*us).unwrap())
        .collect();
    assert_eq!(instants, expected);

    // Literals without an offset, dates and timestamps become instants in the session zone.
    assert_eq!(
        rows(
            &bob,
            "select '2024-06-01 10:00:00'::timestamptz, date '2024-06-01'::timestamptz, \
             timestamp '2024-01-15 12:00:00'::timestamptz, \
             count(*) filter (where recorded_at < '2024-03-31 02:30:00'), \
             count(*) filter (where recorded_at <= '2024-03-31 02:30:00') from device_clock"
        )
        .await,
        text_rows(&[&[
            "2024-06-01 10:00:00+01",
            "2024-06-01 00:00:00+01",
            "2024-01-15 12:00:00+00",
            "1",
            "2"
        ]])
    );
    // now() is an instant.
    let statement = bob.prepare("select now()").await.unwrap();
    assert_eq!(
        statement.columns()[0].type_(),
        &tokio_postgres::types::Type::TIMESTAMPTZ
    );
    // Elsewhere, with half-hour offsets.
    rows(&alice, "SET TIME ZONE 'Asia/Kolkata'").await;
    assert_eq!(
        rows(&alice, "select recorded_at from device_clock where id = 1").await,
        text_rows(&[&["2024-03-31 07:00:00+05:30"]])
    );
    // Back to UTC: the first answers again.
    rows(&alice, "SET TimeZone = 'UTC'").await;
    assert_eq!(
        rows(&alice, "select recorded_at from device_clock where id = 1").await,
        text_rows(&[&["2024-03-31 01:30:00+00"]])
    );
    assert_eq!(
        crate::support::sqlstate(&alice, "SET TIME ZONE 'Mars/Olympus_Mons'").await,
        "22023"
    );
    server.stop().await;
}
