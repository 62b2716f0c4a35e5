//! Helpers of the ingest tests: a throw-away pair of source databases (MariaDB and PostgreSQL,
//! uniquely named and dropped afterwards, so tests run in parallel and beside a real
//! `ikhospital`), a lake in a temporary directory, and queries over both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;
use lakehouse::config::Config;
use lakehouse::ingest::{IngestOptions, IngestReport};
use lakehouse::lake::StorageLocation;
use lakehouse::lake::table::TableHandle;
use mysql_async::prelude::Queryable;
use rand::Rng;

/// MariaDB of every project machine.
pub const MYSQL: &str = "mysql://root@127.0.0.1:3306";
/// PostgreSQL of every project machine.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// A pair of source databases named `ikh_t_<random>` plus a lake directory; dropped with it.
pub struct Sources {
    /// Database name, the same in both servers.
    pub name: String,
    /// Temporary directory holding `lakehouse.yaml` and `lake/`.
    pub dir: tempfile::TempDir,
}

impl Sources {
    /// New, empty: nothing is created in the servers until `generate`.
    pub async fn new() -> Sources {
        require_services().await;
        let suffix: u64 = rand::rng().random();
        Sources {
            name: format!("ikh_t_{:x}", suffix & 0xFFFF_FFFF_FFFF),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// URL of the MySQL database.
    pub fn mysql_url(&self) -> String {
        format!("{MYSQL}/{}", self.name)
    }

    /// URL of the PostgreSQL database.
    pub fn postgres_url(&self) -> String {
        format!("{POSTGRES}/{}", self.name)
    }

    /// Generates data into both databases.
    pub async fn generate(&self, patients: u64, events: u64, seed: u64, append: bool) {
        let options = lakehouse::ingest::generate::GenerateOptions {
            mysql_url: Some(self.mysql_url()),
            postgres_url: Some(self.postgres_url()),
            patients,
            events,
            seed,
            append,
            progress: false,
        };
        lakehouse::ingest::generate::generate(&options)
            .await
            .unwrap();
    }

    /// The lake root.
    pub fn lake_dir(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// Writes `lakehouse.yaml` for these sources (with `extra_tables` under the mysql source's
    /// `tables:`) and returns its path.
    pub fn write_config(&self, mysql_url: &str, extra_tables: &str) -> PathBuf {
        let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let text = format!(
            "lake:\n  root: {lake}\npaths:\n  sql: {sql}\ningest:\n  retries: 1\n  parallelism: 4\n  sources:\n    - name: mysql\n      kind: mysql\n      url: {mysql_url}\n      database: {db}\n      tables:\n{extra}\n    - name: postgres\n      kind: postgres\n      url: {pg}\n      database: {db}\n",
            lake = self.lake_dir().display(),
            sql = sql.display(),
            db = self.name,
            pg = self.postgres_url(),
            extra = if extra_tables.is_empty() {
                "        {}".to_string()
            } else {
                extra_tables.to_string()
            },
        );
        let text = text.replace("      tables:\n        {}", "      tables: {}");
        let path = self.dir.path().join("lakehouse.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The configuration of [`Sources::write_config`].
    pub fn config(&self) -> Config {
        let path = self.write_config(&self.mysql_url(), "");
        Config::load(&path).unwrap()
    }

    /// One ingest run through the library, all layers; panics on failures.
    pub async fn ingest(&self) -> IngestReport {
        let report = lakehouse::ingest::run_once(&self.config(), &test_options())
            .await
            .unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        report
    }

    /// Rows of `sql` over the lake table at `path` (registered as `t`), values as text.
    pub async fn lake(&self, path: &str, sql: &str) -> Vec<Vec<String>> {
        lake_query(&self.lake_dir(), path, sql).await
    }

    /// Rows of `sql` in the MySQL database, values as text (`NULL` for NULL).
    pub async fn mysql(&self, sql: &str) -> Vec<Vec<String>> {
        let mut conn = mysql_conn(&self.mysql_url()).await;
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
        let out = rows
            .into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => "NULL".to_string(),
                        mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => other.as_sql(true),
                    })
                    .collect()
            })
            .collect();
        conn.disconnect().await.unwrap();
        out
    }

    /// Runs statements in the MySQL database.
    pub async fn mysql_exec(&self, sql: &str) {
        let mut conn = mysql_conn(&self.mysql_url()).await;
        conn.query_drop(sql).await.unwrap();
        conn.disconnect().await.unwrap();
    }

    /// Runs statements in the PostgreSQL database.
    pub async fn postgres_exec(&self, sql: &str) {
        let client = postgres_client(&self.postgres_url()).await;
        client.batch_execute(sql).await.unwrap();
    }

    /// One integer from MySQL.
    pub async fn mysql_count(&self, sql: &str) -> i64 {
        self.mysql(sql).await[0][0].parse().unwrap()
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = mysql_async::Conn::from_url(MYSQL).await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                        .await;
                    let _ = conn.disconnect().await;
                }
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&format!("{POSTGRES}/postgres"), tokio_postgres::NoTls)
                        .await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// Options for tests: short backoff so that failure tests stay quick.
pub fn test_options() -> IngestOptions {
    IngestOptions {
        retries: 1,
        backoff: std::time::Duration::from_millis(100),
        batch_rows: 4_096,
        ..IngestOptions::default()
    }
}

/// Fails with a clear message when MariaDB or PostgreSQL is not there: these tests never pass
/// without them.
pub async fn require_services() {
    if let Err(err) = mysql_async::Conn::from_url(MYSQL).await {
        panic!(
            "MariaDB at 127.0.0.1:3306 (user root, no password) is not reachable: {err}; the ingest tests need it"
        );
    }
    if let Err(err) =
        tokio_postgres::connect(&format!("{POSTGRES}/postgres"), tokio_postgres::NoTls).await
    {
        panic!(
            "PostgreSQL at 127.0.0.1:5432 (user postgres, trust) is not reachable: {err}; the ingest tests need it"
        );
    }
}

async fn mysql_conn(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to MariaDB: {err}"))
}

async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to PostgreSQL: {err}"));
    tokio::spawn(connection);
    client
}

/// Rows of `sql` over the Delta table `lake_dir/path`, registered as `t`.
pub async fn lake_query(lake_dir: &Path, path: &str, sql: &str) -> Vec<Vec<String>> {
    let root = StorageLocation::parse(&lake_dir.display().to_string(), Default::default()).unwrap();
    let handle = TableHandle::open(&root.join(path).unwrap())
        .await
        .unwrap_or_else(|err| panic!("lake table {path}: {err}"));
    let ctx = SessionContext::new();
    ctx.register_table("t", handle.provider().await.unwrap())
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(row) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, row).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

/// The Arrow schema of a lake table.
pub async fn lake_schema(lake_dir: &Path, path: &str) -> Arc<datafusion::arrow::datatypes::Schema> {
    let root = StorageLocation::parse(&lake_dir.display().to_string(), Default::default()).unwrap();
    TableHandle::open(&root.join(path).unwrap())
        .await
        .unwrap()
        .schema()
        .unwrap()
}
