//! `lakehouse optimize` and `lakehouse vacuum` on a served lake: small files compacted under a
//! query that holds its snapshot and beside a concurrent writer, nothing lost or duplicated,
//! and VACUUM never removing what a version within the retention needs.

use std::process::Command;

use crate::support::fixture::{Table, patients};
use crate::support::{Setup, TestServer, fixture, rows};

fn lakehouse(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_compacts_under_readers_and_writers_and_vacuum_keeps_what_versions_need() {
    // 30 commits of 40 patients: 30 small files.
    let mut tables = fixture::hospital();
    tables.push(Table {
        name: "many_small".into(),
        batches: (0..30).map(|_| patients(40)).collect(),
    });
    // And a table as another engine writes them (deletion vectors): left alone unless named.
    let dir = tempfile::tempdir().unwrap();
    {
        use crate::support::delta_protocol::{Columns, Table as Foreign, patients, protocol};
        let mut foreign = Foreign::create(
            &dir.path().join("lake"),
            "from_databricks",
            Columns::plain(),
        );
        let files: Vec<_> = (0..3)
            .map(|i| foreign.write_file(&patients(1 + 10 * i, 10), true))
            .collect();
        let mut actions = vec![
            protocol(&["deletionVectors"], &["deletionVectors"]),
            foreign.metadata(&[]),
        ];
        for file in &files {
            actions.push(foreign.add(file, None));
        }
        foreign.commit(actions);
    }
    let server = TestServer::start_with(Setup {
        tables,
        dir: Some(dir),
        ..Setup::default()
    })
    .await;
    let config = server.dir.path().join("lakehouse.yaml");
    let alice = server.connect("alice").await;
    let count = |n: usize| vec![vec![Some(n.to_string())]];
    assert_eq!(
        rows(&alice, "select count(*) from many_small").await,
        count(1200)
    );

    // Dry runs change nothing.
    let (code, out, err) = lakehouse(&["optimize", "--dry-run"], &config);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gold/ikhospital/many_small: 30 file(s), 30 small (dry run)"),
        "{out}"
    );
    assert!(
        out.contains("gold/ikhospital/fact_events: 2 file(s)"),
        "{out}"
    );
    assert!(
        out.contains("gold/ikhospital/from_databricks: written with deletionVectors by another engine: left alone unless named"),
        "{out}"
    );
    let (code, out, err) = lakehouse(
        &["optimize", "--dry-run", "gold/ikhospital/from_databricks"],
        &config,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gold/ikhospital/from_databricks: 3 file(s), 3 small (dry run)"),
        "{out}"
    );

    // A reader holds a snapshot of the 30 files, mid-way through its rows.
    let mut reader = server.connect("alice").await;
    let tx = reader.transaction().await.unwrap();
    let statement = tx
        .prepare("select id_patient from many_small")
        .await
        .unwrap();
    let portal = tx.bind(&statement, &[]).await.unwrap();
    let first = tx.query_portal(&portal, 100).await.unwrap();
    assert_eq!(first.len(), 100);

    // A writer appends while the table is compacted.
    let location = fixture::location(&server.lake(), "many_small");
    let writer = tokio::spawn(async move {
        for _ in 0..5 {
            lakehouse::lake::write::append(&location, vec![patients(40)], &Default::default())
                .await
                .unwrap();
        }
    });
    let (code, out, err) = lakehouse(&["optimize", "gold/ikhospital/many_small"], &config);
    writer.await.unwrap();
    // A conflict with the writer would fail the compaction and change nothing; appends do not
    // conflict with it.
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("gold/ikhospital/many_small: "), "{out}");

    // The reader finishes its snapshot: the compacted files are still there.
    let mut rest = 100;
    loop {
        let more = tx.query_portal(&portal, 500).await.unwrap();
        if more.is_empty() {
            break;
        }
        rest += more.len();
    }
    assert_eq!(rest, 1200, "the pinned snapshot reads all its rows");
    tx.commit().await.unwrap();

    // Nothing lost, nothing doubled; far fewer files.
    let expected = 1200 + 5 * 40;
    let mut files = Vec::new();
    for _ in 0..100 {
        let got = rows(&alice, "select count(*) from many_small").await;
        files = rows(
            &alice,
            "select n_files from sys.lake_tables where table_name = 'many_small'",
        )
        .await;
        if got == count(expected)
            && files[0][0]
                .as_deref()
                .unwrap_or("99")
                .parse::<u32>()
                .unwrap()
                <= 6
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows(&alice, "select count(*) from many_small").await,
        count(expected)
    );
    assert_eq!(
        rows(
            &alice,
            "select count(distinct id_patient), min(id_patient), max(id_patient) from many_small"
        )
        .await,
        vec![vec![Some("40".into()), Some("1".into()), Some("40".into())]]
    );
    let n_files: u32 = files[0][0].as_deref().unwrap().parse().unwrap();
    assert!(n_files <= 6, "{n_files} files after compaction");

    // VACUUM keeps the files versions of the last 7 days need: all of them, here.
    let (code, out, err) = lakehouse(
        &["vacuum", "--dry-run", "gold/ikhospital/many_small"],
        &config,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gold/ikhospital/many_small: 0 file(s) to remove (dry run)"),
        "{out}"
    );
    let (code, out, err) = lakehouse(&["vacuum"], &config);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("gold/ikhospital/many_small: 0 file(s) removed"),
        "{out}"
    );
    // A retention shorter than the table's own is refused (by deltalake), and one shorter than
    // a statement may run (here 200 ms: the test server has no statement timeout) by us.
    let (code, _, err) = lakehouse(&["vacuum", "--retention", "1s"], &config);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("minimum retention for vacuum"), "{err}");
    let (code, _, err) = lakehouse(&["vacuum", "--retention", "100ms"], &config);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shorter than the longest statement"), "{err}");
    // Every version still reads.
    assert_eq!(
        rows(&alice, "select count(*) from many_small").await,
        count(expected)
    );
    server.stop().await;
}

/// `maintenance:` in `serve`: the small files are compacted on the schedule while queries keep
/// their exact answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_compacts_on_its_schedule() {
    let mut tables = fixture::hospital();
    tables.push(Table {
        name: "many_small".into(),
        batches: (0..20).map(|_| patients(40)).collect(),
    });
    let server = TestServer::start_with(Setup {
        server_yaml: "  tls:\n    mode: prefer\nmaintenance:\n  every: 1s\n".to_string(),
        tables,
        ..Setup::default()
    })
    .await;
    let alice = server.connect("alice").await;
    let mut n_files = 20;
    for _ in 0..150 {
        assert_eq!(
            rows(&alice, "select count(*) from many_small").await,
            vec![vec![Some("800".to_string())]]
        );
        n_files = rows(
            &alice,
            "select n_files from sys.lake_tables where table_name = 'many_small'",
        )
        .await[0][0]
            .as_deref()
            .unwrap()
            .parse::<u32>()
            .unwrap();
        if n_files == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(n_files, 1, "compacted by the schedule");
    server.stop().await;
}
