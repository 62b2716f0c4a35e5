//! Grants, masks, row filters and their enforcement on every path to the data; reload; audit.
//!
//! Fixture: 40 patients `Test Patient <i>`, country Portugal when `i % 4` is 0 or 2 (20 of
//! them); 200 visits, patient `(id % 40) + 1`. `bob` reads names masked, `carol` reads only
//! Portuguese patients and their visits, `alice` reads everything and the audit trail.

use std::time::{Duration, Instant};

use crate::support::{PASSWORD, Setup, TestServer, default_grants, rows, sqlstate};

fn one(value: &str) -> Vec<Vec<Option<String>>> {
    vec![vec![Some(value.to_string())]]
}

/// Visits of Portuguese patients in the fixture.
fn portuguese_visits() -> usize {
    (1..=200i64)
        .filter(|id| {
            let patient = (id % 40) + 1;
            patient % 4 == 0 || patient % 4 == 2
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masks_hold_under_where_group_by_join_and_parameters() {
    let server = TestServer::start().await;
    let bob = server.connect("bob").await;
    // No query returns a real name.
    assert_eq!(
        rows(&bob, "select name from dim_patient where id_patient = 1").await,
        one("****")
    );
    assert_eq!(
        rows(&bob, "select count(distinct name) from dim_patient").await,
        one("1")
    );
    assert_eq!(
        rows(&bob, "select name, count(*) from dim_patient group by name").await,
        vec![vec![Some("****".into()), Some("40".into())]]
    );
    // Filtering on the masked column sees only the masked value: no oracle.
    assert_eq!(
        rows(
            &bob,
            "select count(*) from dim_patient where name = 'Test Patient 1'"
        )
        .await,
        one("0")
    );
    assert_eq!(
        rows(
            &bob,
            "select count(*) from dim_patient where name like 'Test%'"
        )
        .await,
        one("0")
    );
    assert_eq!(
        rows(&bob, "select count(*) from dim_patient where name = '****'").await,
        one("40")
    );
    let n: i64 = bob
        .query_one(
            "select count(*) from dim_patient where name = $1",
            &[&"Test Patient 2"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Joining on it too.
    assert_eq!(
        rows(
            &bob,
            "select count(*) from dim_patient a join dim_patient b on a.name = b.name"
        )
        .await,
        one("1600")
    );
    // Through subqueries, CTEs, set operations, window functions.
    assert_eq!(
        rows(
            &bob,
            "with p as (select name from dim_patient) select max(name) from p"
        )
        .await,
        one("****")
    );
    assert_eq!(
        rows(
            &bob,
            "select max(n) from (select name as n from dim_patient union select 'x') t"
        )
        .await,
        one("x")
    );
    assert_eq!(
        rows(
            &bob,
            "select first_value(name) over (order by id_patient) from dim_patient limit 1"
        )
        .await,
        one("****")
    );
    assert_eq!(
        rows(&bob, "select (select max(name) from dim_patient)").await,
        one("****")
    );
    // Other columns are real.
    assert_eq!(
        rows(&bob, "select country from dim_patient where id_patient = 2").await,
        one("Portugal")
    );
    // alice is not masked.
    let alice = server.connect("alice").await;
    assert_eq!(
        rows(&alice, "select name from dim_patient where id_patient = 1").await,
        one("Test Patient 1")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_filters_on_every_path() {
    let server = TestServer::start().await;
    let carol = server.connect("carol").await;
    let visits = portuguese_visits().to_string();
    assert_eq!(
        rows(&carol, "select count(*) from dim_patient").await,
        one("20")
    );
    assert_eq!(
        rows(&carol, "select distinct country from dim_patient").await,
        one("Portugal")
    );
    // fact_events is filtered through the patient's country (a subquery in the filter).
    assert_eq!(
        rows(&carol, "select count(*) from fact_events").await,
        one(&visits)
    );
    assert_eq!(
        rows(&carol, "select count(*) from fact_events e join dim_patient p on e.id_patient = p.id_patient where p.country <> 'Portugal'").await,
        one("0")
    );
    // CTE, union, subquery in FROM and WHERE, window, prepared statement.
    assert_eq!(
        rows(
            &carol,
            "with x as (select * from dim_patient) select count(*) from x"
        )
        .await,
        one("20")
    );
    assert_eq!(rows(&carol, "select count(*) from (select id_patient from dim_patient union all select id_patient from dim_patient) u").await, one("40"));
    assert_eq!(rows(&carol, "select count(*) from fact_events where id_patient not in (select id_patient from dim_patient)").await, one("0"));
    assert_eq!(
        rows(&carol, "select count(*) over () from dim_patient limit 1").await,
        one("20")
    );
    let n: i64 = carol
        .query_one(
            "select count(*) from dim_patient where id_patient > $1",
            &[&0i32],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20);
    // Other tables do not exist for carol.
    assert_eq!(sqlstate(&carol, "select * from dim_doctors").await, "42P01");
    assert_eq!(
        sqlstate(&carol, "select * from dbo.dim_doctors").await,
        "42P01"
    );
    assert_eq!(
        sqlstate(&carol, "select * from sys.audit_log").await,
        "42P01"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_predicates_never_run_on_hidden_rows() {
    let server = TestServer::start().await;
    let carol = server.connect("carol").await;
    // Division by zero only on German patients: it must not be evaluated, so no error.
    assert_eq!(
        rows(&carol, "select count(*) from dim_patient where 1 / (case when country = 'Germany' then 0 else 1 end) = 1").await,
        one("20")
    );
    assert_eq!(
        rows(&carol, "select count(*) from fact_events e where 1 / (case when e.id_patient = 1 then 0 else 1 end) = 1").await,
        one(&portuguese_visits().to_string())
    );
    // EXPLAIN ANALYZE would count the hidden rows: refused. Plain EXPLAIN works.
    assert_eq!(
        sqlstate(&carol, "explain analyze select * from dim_patient").await,
        "42501"
    );
    let plan = rows(&carol, "explain select * from dim_patient").await;
    assert!(format!("{plan:?}").contains("SecurityBarrier"), "{plan:?}");
    // EXPLAIN's columns are its own, not the query's.
    let statement = carol
        .prepare("explain select name from dim_patient")
        .await
        .unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["plan_type", "plan"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_grants_hide_columns_and_denies_win() {
    let grants = format!(
        "{}\n",
        default_grants().replace(
            "users:\n",
            "users:\n  - name: erin\n    scram: \"{scram}\"\n    grant:\n      - table: dbo.dim_patient\n        columns: [id_patient, age, country]\n  - name: frank\n    scram: \"{scram}\"\n    roles: [readers]\n    deny:\n      - table: dbo.dim_patient\n        columns: [email]\n      - table: dbo.fact_events\n"
        )
    );
    let server = TestServer::start_with(Setup {
        grants: vec![("users.yaml".into(), grants)],
        ..Setup::default()
    })
    .await;
    let erin = server.connect("erin").await;
    let star = erin
        .simple_query("select * from dim_patient where id_patient = 3")
        .await
        .unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &star[1] else {
        panic!("{star:?}")
    };
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id_patient", "age", "country"]);
    assert_eq!(
        sqlstate(&erin, "select name from dim_patient").await,
        "42703"
    );
    assert_eq!(
        sqlstate(
            &erin,
            "select count(*) from dim_patient where email like '%x%'"
        )
        .await,
        "42703"
    );
    assert_eq!(sqlstate(&erin, "select * from fact_events").await, "42P01");
    let columns = rows(
        &erin,
        "select column_name from information_schema.columns where table_name = 'dim_patient' order by ordinal_position",
    )
    .await;
    assert_eq!(
        columns,
        vec![
            vec![Some("id_patient".into())],
            vec![Some("age".into())],
            vec![Some("country".into())]
        ]
    );
    let frank = server.connect("frank").await;
    assert_eq!(
        sqlstate(&frank, "select email from dim_patient").await,
        "42703"
    );
    assert_eq!(
        rows(&frank, "select count(name) from dim_patient").await,
        one("40")
    );
    assert_eq!(sqlstate(&frank, "select * from fact_events").await, "42P01");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_show_only_what_the_user_may_read() {
    let server = TestServer::start().await;
    let carol = server.connect("carol").await;
    let tables = rows(
        &carol,
        "select table_schema || '.' || table_name from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') order by 1",
    )
    .await;
    assert_eq!(
        tables,
        vec![
            vec![Some("dbo.dim_patient".into())],
            vec![Some("dbo.fact_events".into())]
        ]
    );
    let classes = rows(
        &carol,
        "select c.relname from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace where n.nspname = 'dbo' order by 1",
    )
    .await;
    assert_eq!(
        classes,
        vec![
            vec![Some("dim_patient".into())],
            vec![Some("fact_events".into())]
        ]
    );
    assert_eq!(
        rows(
            &carol,
            "select has_table_privilege('dbo.dim_patient', 'select')"
        )
        .await,
        one("t")
    );
    assert_eq!(
        sqlstate(
            &carol,
            "select has_table_privilege('dbo.dim_doctors', 'select')"
        )
        .await,
        "42P01"
    );
    assert_eq!(
        rows(&carol, "select has_schema_privilege('dbo', 'usage')").await,
        one("t")
    );
    assert_eq!(
        rows(
            &carol,
            "select has_database_privilege('IKHOSPITAL_DW', 'connect')"
        )
        .await,
        one("t")
    );
    // alice sees dim_doctors and the sys schema.
    let alice = server.connect("alice").await;
    assert_eq!(
        rows(
            &alice,
            "select count(*) from information_schema.tables where table_schema = 'dbo'"
        )
        .await,
        one("3")
    );
    assert_eq!(
        rows(
            &alice,
            "select count(*) from pg_namespace where nspname = 'sys'"
        )
        .await,
        one("1")
    );
    assert_eq!(
        rows(
            &carol,
            "select count(*) from pg_namespace where nspname = 'sys'"
        )
        .await,
        one("0")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_search_path_and_three_part_names() {
    let server = TestServer::start().await;
    let alice = server.connect("alice").await;
    assert_eq!(
        rows(&alice, "select count(*) from \"dim_patient\"").await,
        one("40")
    );
    assert_eq!(
        rows(&alice, "select count(\"name\") from DIM_PATIENT").await,
        one("40")
    );
    assert_eq!(
        rows(&alice, "select count(*) from IKHOSPITAL_DW.dbo.dim_patient").await,
        one("40")
    );
    // Quoted identifiers are case-sensitive, as in PostgreSQL.
    assert_eq!(
        sqlstate(&alice, "select * from \"Dim_Patient\"").await,
        "42P01"
    );
    alice.batch_execute("set search_path = sys").await.unwrap();
    assert_eq!(
        sqlstate(&alice, "select count(*) from dim_patient").await,
        "42P01"
    );
    let audit = rows(&alice, "select count(*) > 0 from audit_log").await;
    assert_eq!(audit, one("t"));
    alice.batch_execute("set search_path = dbo").await.unwrap();
    assert_eq!(rows(&alice, "select current_schema()").await, one("dbo"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_every_statement_without_leaking() {
    let server = TestServer::start().await;
    let bob = server.connect("bob").await;
    rows(
        &bob,
        "select name, country from dim_patient where id_patient = 5",
    )
    .await;
    assert_eq!(sqlstate(&bob, "select * from sys.audit_log").await, "42P01");
    let _ = bob.simple_query("drop table dim_patient").await;
    let alice = server.connect("alice").await;
    let records = rows(
        &alice,
        "select \"user\", kind, array_to_string(tables, ','), array_to_string(masks, ','), rows, outcome, sqlstate \
         from sys.audit_log where \"user\" = 'bob' order by query_id",
    )
    .await;
    assert_eq!(
        records[0],
        vec![
            Some("bob".into()),
            Some("select".into()),
            Some("dbo.dim_patient".into()),
            Some("dbo.dim_patient.name".into()),
            Some("1".into()),
            Some("ok".into()),
            Some("00000".into()),
        ]
    );
    assert!(
        records
            .iter()
            .any(|r| r[1].as_deref() == Some("refused") && r[6].as_deref() == Some("25006")),
        "{records:?}"
    );
    // Columns actually read, Delta versions.
    let detail = rows(
        &alice,
        "select array_to_string(columns, ','), array_to_string(versions, ',') from sys.audit_log where \"user\" = 'bob' and kind = 'select' and outcome = 'ok' limit 1",
    )
    .await;
    let columns = detail[0][0].clone().unwrap();
    assert!(
        columns.contains("dbo.dim_patient.country") && columns.contains("dbo.dim_patient.name"),
        "{columns}"
    );
    assert_eq!(detail[0][1].as_deref(), Some("dbo.dim_patient@0"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_reload_applies_within_seconds_and_broken_edits_are_rejected() {
    let server = TestServer::start().await;
    let bob = server.connect("bob").await;
    assert_eq!(
        rows(&bob, "select name from dim_patient where id_patient = 1").await,
        one("****")
    );
    // Remove bob's mask: applies to bob's next statement, same session.
    let file = server.grants().join("users.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let unmasked = original.replace("    roles: [readers, masked]", "    roles: [readers]");
    std::fs::write(&file, &unmasked).unwrap();
    let started = Instant::now();
    loop {
        if rows(&bob, "select name from dim_patient where id_patient = 1").await
            == one("Test Patient 1")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "reload not applied after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken edit is rejected: the previous policy keeps serving.
    std::fs::write(
        &file,
        format!("{unmasked}\n  - name: broken\n    rolez: []\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        rows(&bob, "select name from dim_patient where id_patient = 1").await,
        one("Test Patient 1")
    );
    let carol = server.connect("carol").await;
    assert_eq!(
        rows(&carol, "select count(*) from dim_patient").await,
        one("20")
    );
    // Removing a user: no new logins, and the open session ends at its next statement.
    let without_carol = unmasked.replace(
        "  - name: carol\n    scram:",
        "  - name: carol_gone\n    scram:",
    );
    std::fs::write(&file, &without_carol).unwrap();
    let started = Instant::now();
    loop {
        if server.try_connect("carol", PASSWORD).await.is_err() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "removed user can still log in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = carol.simple_query("select 1").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("28000"), "{err}");
    server.stop().await;
}

/// The audit trail's `result_cache` of `user`'s statements with exactly this text, in order.
async fn cache_outcomes(alice: &tokio_postgres::Client, user: &str, text: &str) -> Vec<String> {
    alice
        .query(
            "select result_cache from sys.audit_log where \"user\" = $1 and statement = $2 order by query_id",
            &[&user, &text],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_cache_never_crosses_users_parameters_or_versions() {
    let server = TestServer::start().await;
    let alice = server.connect("alice").await;
    let bob = server.connect("bob").await;
    let carol = server.connect("carol").await;
    let names = "select name from dim_patient where id_patient = 1";
    for _ in 0..2 {
        assert_eq!(rows(&alice, names).await, one("Test Patient 1"));
    }
    // Same text, another user with a mask: computed for bob, masked.
    for _ in 0..2 {
        assert_eq!(rows(&bob, names).await, one("****"));
    }
    let count = "select count(*) from dim_patient";
    assert_eq!(rows(&alice, count).await, one("40"));
    for _ in 0..2 {
        assert_eq!(rows(&carol, count).await, one("20"));
    }
    assert_eq!(
        cache_outcomes(&alice, "alice", names).await,
        ["miss", "hit"]
    );
    assert_eq!(cache_outcomes(&alice, "bob", names).await, ["miss", "hit"]);
    assert_eq!(
        cache_outcomes(&alice, "carol", count).await,
        ["miss", "hit"]
    );

    // Parameters are part of the key.
    let by_id = alice
        .prepare("select name from dim_patient where id_patient = $1")
        .await
        .unwrap();
    for (id, expected) in [
        (1i32, "Test Patient 1"),
        (2, "Test Patient 2"),
        (1, "Test Patient 1"),
    ] {
        let row = alice.query_one(&by_id, &[&id]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), expected);
    }

    // Volatile functions, system tables and a session that turned the cache off never use it.
    let random = "select count(*), random() from dim_patient";
    let first = rows(&alice, random).await;
    let second = rows(&alice, random).await;
    assert_ne!(first, second, "random() must be evaluated each time");
    assert_eq!(cache_outcomes(&alice, "alice", random).await, ["", ""]);
    // A constant query is cacheable; one reading the clock or the catalog is not.
    for sql in [
        "select 1 + 1",
        "select now()",
        "select count(*) from pg_class",
    ] {
        rows(&alice, sql).await;
        rows(&alice, sql).await;
    }
    assert_eq!(
        cache_outcomes(&alice, "alice", "select 1 + 1").await,
        ["miss", "hit"]
    );
    assert_eq!(
        cache_outcomes(&alice, "alice", "select now()").await,
        ["", ""]
    );
    assert_eq!(
        cache_outcomes(&alice, "alice", "select count(*) from pg_class").await,
        ["", ""]
    );
    alice
        .batch_execute("set lakehouse.result_cache = off")
        .await
        .unwrap();
    rows(&alice, names).await;
    assert_eq!(
        cache_outcomes(&alice, "alice", names).await,
        ["miss", "hit", ""]
    );
    alice
        .batch_execute("reset lakehouse.result_cache")
        .await
        .unwrap();

    // A new Delta version is a new key: the count moves as soon as the catalog sees it.
    let visits = "select count(*) from fact_events";
    assert_eq!(rows(&alice, visits).await, one("200"));
    assert_eq!(rows(&alice, visits).await, one("200"));
    let location = crate::support::fixture::location(&server.lake(), "fact_events");
    lakehouse::lake::write::append(
        &location,
        vec![crate::support::fixture::events(201, 50, 40)],
        &Default::default(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    while rows(&alice, visits).await != one("250") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "new version not visible after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
