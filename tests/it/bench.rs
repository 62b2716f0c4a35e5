//! `lakehouse bench` at a tiny scale: the harness works end to end (every workload on every
//! engine, the same answers everywhere). CI runs only this; its timings mean nothing.

use std::path::PathBuf;

use lakehouse::bench::engine::EngineKind;
use lakehouse::bench::{BenchOptions, Workload};

/// A database of its own, so the smoke run never replaces a real benchmark's schema `bench`.
async fn smoke_database() -> String {
    let admin =
        lakehouse::bench::engine::connect_url("postgresql://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("the local PostgreSQL (127.0.0.1:5432, trust) must run");
    let exists = admin
        .query_opt(
            "select 1 from pg_database where datname = 'lakehouse_bench_smoke'",
            &[],
        )
        .await
        .unwrap()
        .is_some();
    if !exists {
        // Two test processes may race here; the loser's error is harmless.
        let _ = admin
            .batch_execute("create database lakehouse_bench_smoke")
            .await;
    }
    "postgresql://postgres@127.0.0.1:5432/lakehouse_bench_smoke".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_runs_every_workload_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = BenchOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_lakehouse")));
    options.scale = 0.0005; // 50 patients, 5,000 visits
    options.runs = 1;
    options.dir = dir.path().join("data");
    options.out = dir.path().join("out");
    options.clients = vec![1, 4];
    options.seconds = 0.3;
    options.pg_url = smoke_database().await;
    options.workloads = Workload::ALL.to_vec();

    let report = lakehouse::bench::run(&options).await.unwrap();
    let (json, markdown) = lakehouse::bench::write_report(&report, &options.out).unwrap();

    assert!(report.answers_agree, "answers differ: {:?}", report.notes);
    assert_eq!(report.events, 5_000);
    for (visual, by_engine) in &report.answer_rows {
        assert_eq!(
            by_engine.len(),
            EngineKind::ALL.len(),
            "{visual}: {by_engine:?}"
        );
        let counts: Vec<u64> = by_engine.values().copied().collect();
        assert!(
            counts.iter().all(|&n| n == counts[0] && n > 0),
            "{visual}: {by_engine:?}"
        );
    }
    for workload in ["dashboard", "import", "concurrency", "small"] {
        for engine in EngineKind::ALL {
            let figures: Vec<_> = report
                .figures
                .iter()
                .filter(|f| f.workload == workload && f.engine == engine)
                .collect();
            assert!(
                !figures.is_empty(),
                "no {workload} figure for {}",
                engine.name()
            );
            for f in figures {
                assert!(
                    f.value > 0.0,
                    "{workload} {} {}: {}",
                    f.item,
                    engine.name(),
                    f.value
                );
            }
        }
    }
    // Import reads every row of every table on every engine.
    for table in &report.tables {
        for engine in EngineKind::ALL {
            let figure = report
                .figure("import", &table.name, "rows_per_s", engine)
                .unwrap_or_else(|| panic!("no import of {} on {}", table.name, engine.name()));
            assert_eq!(
                figure.rows,
                Some(table.rows),
                "{} on {}",
                table.name,
                engine.name()
            );
        }
    }
    // Ratios are filled from the same run.
    let lakehouse = report
        .figure(
            "dashboard",
            "all_visuals",
            "hot_p50_ms",
            EngineKind::Lakehouse,
        )
        .unwrap();
    assert!(
        lakehouse.vs_postgres.is_some()
            && lakehouse.vs_duckdb.is_some()
            && lakehouse.vs_datafusion.is_some()
    );
    assert!(report.server_peak_rss_bytes.unwrap_or(0) > 0);
    assert_eq!(report.targets.len(), 8);

    let parsed: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert!(parsed["figures"].as_array().is_some_and(|f| !f.is_empty()));
    let text = std::fs::read_to_string(markdown).unwrap();
    for heading in [
        "## Targets",
        "## dashboard",
        "## import",
        "## concurrency",
        "## small",
    ] {
        assert!(
            text.contains(heading),
            "{heading} missing from the markdown report"
        );
    }

    // A second run at the same scale reuses the data directory.
    options.workloads = vec![Workload::Dashboard];
    let again = lakehouse::bench::run(&options).await.unwrap();
    assert_eq!(again.gold_build_seconds, 0.0);
    assert_eq!(again.postgres_load_seconds, 0.0);
    assert!(again.answers_agree, "{:?}", again.notes);
}
