//! DuckDB in process, driven from here: a Python process (`duckdb_driver.py`) runs DuckDB over
//! the exported Parquet files and answers JSON commands on its stdin. It times DuckDB's calls
//! itself, so the pipe never counts. The Rust `duckdb` crate would compile DuckDB's C++ for a
//! long time; the Python package is a wheel.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::engine::{Load, Runs};

/// The driver script.
const DRIVER: &str = include_str!("duckdb_driver.py");

/// A running DuckDB driver.
pub struct DuckDb {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// DuckDB's version.
    pub version: String,
    /// Whether pyarrow is there (full reads then return Arrow tables).
    pub arrow: bool,
}

impl DuckDb {
    /// Starts `python` with the driver and creates a view `schema.table` over each Parquet file.
    pub async fn start(python: &str, views: &[(String, &Path)]) -> anyhow::Result<DuckDb> {
        let mut child = tokio::process::Command::new(python)
            .arg("-u")
            .arg("-c")
            .arg(DRIVER)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {python} for DuckDB"))?;
        let stdin = child
            .stdin
            .take()
            .context("no stdin for the DuckDB driver")?;
        let stdout = child
            .stdout
            .take()
            .context("no stdout for the DuckDB driver")?;
        let mut duck = DuckDb {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            version: String::new(),
            arrow: false,
        };
        let views: serde_json::Map<String, Value> = views
            .iter()
            .map(|(name, path)| (name.clone(), json!(path.to_string_lossy())))
            .collect();
        let answer = duck
            .call(json!({"op": "open", "views": views}))
            .await
            .context("DuckDB (pip install duckdb) could not open the Parquet files")?;
        duck.version = answer["version"].as_str().unwrap_or_default().to_string();
        duck.arrow = answer["arrow"].as_bool().unwrap_or(false);
        Ok(duck)
    }

    async fn call(&mut self, command: Value) -> anyhow::Result<Value> {
        let mut line = serde_json::to_vec(&command)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        // Answers are single JSON objects; anything else on stdout (DuckDB's own output) is
        // skipped.
        let answer = loop {
            let Some(line) = self.stdout.next_line().await? else {
                bail!("the DuckDB driver exited (is the duckdb Python package installed?)");
            };
            if line.starts_with('{') {
                break line;
            }
        };
        let answer: Value = serde_json::from_str(&answer)?;
        if let Some(err) = answer.get("error").and_then(Value::as_str) {
            bail!("duckdb: {err}");
        }
        Ok(answer)
    }

    /// [`super::engine::Target::repeat`] in DuckDB; `arrow` fetches Arrow tables.
    pub async fn repeat(&mut self, sql: &str, runs: usize, arrow: bool) -> anyhow::Result<Runs> {
        let op = if arrow { "import" } else { "query" };
        let answer = self
            .call(json!({"op": op, "sql": sql, "runs": runs}))
            .await?;
        Ok(Runs {
            ms: floats(&answer["ms"]),
            rows: answer["rows"].as_u64().unwrap_or(0),
            bytes: answer["bytes"].as_u64().unwrap_or(0),
        })
    }

    /// The result as PostgreSQL text values.
    pub async fn answer(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
        let answer = self.call(json!({"op": "verify", "sql": sql})).await?;
        Ok(answer["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row.as_array()
                            .map(|values| {
                                values
                                    .iter()
                                    .map(|v| v.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Concurrent clients as threads, each with its own cursor.
    pub async fn concurrent(
        &mut self,
        sqls: &[String],
        clients: usize,
        duration: Duration,
    ) -> anyhow::Result<Load> {
        let answer = self
            .call(json!({"op": "concurrency", "sqls": sqls, "clients": clients, "secs": duration.as_secs_f64()}))
            .await?;
        Ok(load(&answer))
    }

    /// One client, back to back; `ids` bind `$1`.
    pub async fn small(
        &mut self,
        sql: &str,
        ids: &[i32],
        duration: Duration,
        max: usize,
    ) -> anyhow::Result<Load> {
        let params = if ids.is_empty() {
            Value::Null
        } else {
            json!(ids)
        };
        let answer = self
            .call(json!({"op": "small", "sql": sql, "params": params, "secs": duration.as_secs_f64(), "max": max}))
            .await?;
        Ok(load(&answer))
    }

    /// Ends the driver.
    pub async fn close(mut self) -> anyhow::Result<()> {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
        Ok(())
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn load(answer: &Value) -> Load {
    Load {
        latencies_ms: floats(&answer["lat_ms"]),
        elapsed_s: answer["elapsed_s"].as_f64().unwrap_or(0.0),
    }
}
