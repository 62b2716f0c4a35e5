//! Test servers over temporary lakes, and clients to talk to them.

pub mod any_cert;
pub mod delta_protocol;
pub mod fixture;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lakehouse::app::App;
use lakehouse::config::{Config, ConfigSpec, Document};
use tokio_util::sync::CancellationToken;

/// Password of every user the tests create (SCRAM verifier and argon2 hash are made from it).
pub const PASSWORD: &str = "correct horse battery staple";

/// A running server over a temporary lake, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The metrics endpoint, when the setup's configuration has `metrics.listen`.
    pub metrics_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub app_tls_cert: Option<PathBuf>,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// How to build a test server.
pub struct Setup {
    /// Extra lakehouse.yaml text under `server:` (indented by 2).
    pub server_yaml: String,
    /// grants/*.yaml content: (file name, text). `{scram}` and `{hash}` are replaced by the
    /// verifier and hash of [`PASSWORD`].
    pub grants: Vec<(String, String)>,
    /// Writes the lake's tables.
    pub tables: Vec<fixture::Table>,
    /// catalog/*.yaml content: (file name, text); none means the default discovery of gold.
    pub catalog: Vec<(String, String)>,
    /// The server's directory, when the test has already written tables into its `lake/`
    /// (hand-written Delta logs); a new temporary directory otherwise.
    pub dir: Option<tempfile::TempDir>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            server_yaml: "  tls:\n    mode: prefer\n".to_string(),
            grants: vec![("users.yaml".to_string(), default_grants())],
            tables: fixture::hospital(),
            catalog: Vec::new(),
            dir: None,
        }
    }
}

impl Setup {
    /// The default setup with another `server:` section body (`yaml`, indented by two).
    pub fn server(yaml: &str) -> Setup {
        Setup {
            server_yaml: yaml.to_string(),
            ..Setup::default()
        }
    }

    /// The default setup with TLS required, as the clients' tests run.
    pub fn tls_required() -> Setup {
        Setup::server("  tls:\n    mode: require\n")
    }
}

/// An admin `alice` (everything), a reader `bob` (masked names, no sys) and `carol` (Portugal
/// rows of patients only).
pub fn default_grants() -> String {
    // Shared with the fuzz targets' server (`fuzz/src/lib.rs`).
    include_str!("grants.yaml").to_string()
}

fn credentials() -> (String, String) {
    use std::sync::OnceLock;
    static CREDS: OnceLock<(String, String)> = OnceLock::new();
    CREDS
        .get_or_init(|| {
            (
                lakehouse::auth::ScramVerifier::generate(PASSWORD, 4096).to_string(),
                lakehouse::auth::hash_password(PASSWORD),
            )
        })
        .clone()
}

impl TestServer {
    /// A server with the default hospital fixture and grants.
    pub async fn start() -> TestServer {
        Self::start_with(Setup::default()).await
    }

    /// A server from a setup.
    pub async fn start_with(mut setup: Setup) -> TestServer {
        let (dir, config_path) = prepare(&mut setup).await;
        let config = load(&config_path);
        let app = App::build(config).await.unwrap();
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let cert = app.tls.as_ref().and_then(|t| t.cert_path.clone());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            app.run(token).await.unwrap();
        });
        TestServer {
            addr,
            metrics_addr,
            dir,
            app_tls_cert: cert,
            shutdown,
            handle: Some(handle),
        }
    }
}

/// Writes a setup's lake, grants and lakehouse.yaml into a new temporary directory.
pub async fn prepare(setup: &mut Setup) -> (tempfile::TempDir, PathBuf) {
    let dir = match setup.dir.take() {
        Some(dir) => dir,
        None => tempfile::tempdir().unwrap(),
    };
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    for table in &setup.tables {
        table.write(&lake).await;
    }
    let grants = dir.path().join("grants");
    std::fs::create_dir_all(&grants).unwrap();
    let (scram, hash) = credentials();
    for (name, text) in &setup.grants {
        std::fs::write(
            grants.join(name),
            text.replace("{scram}", &scram).replace("{hash}", &hash),
        )
        .unwrap();
    }
    if !setup.catalog.is_empty() {
        let catalog = dir.path().join("catalog");
        std::fs::create_dir_all(&catalog).unwrap();
        for (name, text) in &setup.catalog {
            std::fs::write(catalog.join(name), text).unwrap();
        }
    }
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:0\n  refresh_interval: 200ms\n{}\nlake:\n  root: lake\n",
        setup.server_yaml
    );
    let config_path = dir.path().join("lakehouse.yaml");
    std::fs::write(&config_path, &yaml).unwrap();
    (dir, config_path)
}

impl TestServer {
    /// The lake root.
    pub fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// The grants directory.
    pub fn grants(&self) -> PathBuf {
        self.dir.path().join("grants")
    }

    /// A libpq-style connection string (for psql, psycopg).
    pub fn url(&self, user: &str, sslmode: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=IKHOSPITAL_DW user={user} password='{PASSWORD}' sslmode={sslmode}",
            self.addr.port()
        )
    }

    /// A tokio-postgres client over plaintext (the server must allow it).
    pub async fn connect(&self, user: &str) -> tokio_postgres::Client {
        self.try_connect(user, PASSWORD).await.unwrap()
    }

    /// A tokio-postgres connection attempt.
    pub async fn try_connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect_to(self.addr, user, password).await
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `lakehouse serve` as a child process (to measure its memory and CPU, or signal it).
pub struct ChildServer {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    /// Holds the temporary lake and configuration for the child's lifetime.
    _dir: tempfile::TempDir,
}

/// Runs `lakehouse <command> --config <config>` with its log on a pipe, and waits (30 s at
/// most) for the first log line `found` makes something of; the log keeps being drained so the
/// child never blocks on a full pipe.
pub async fn spawn_until<T>(
    command: &str,
    config: &std::path::Path,
    mut found: impl FnMut(&str) -> Option<T>,
) -> (tokio::process::Child, T) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .arg(command)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let value = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(value) = found(&line) {
                return value;
            }
        }
        panic!("lakehouse {command} exited before it was ready");
    })
    .await
    .unwrap_or_else(|_| panic!("lakehouse {command} was not ready within 30 s"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, value)
}

impl ChildServer {
    /// Starts the built binary on a setup and waits until it listens.
    pub async fn spawn(mut setup: Setup) -> ChildServer {
        let (dir, config_path) = prepare(&mut setup).await;
        let (child, addr) = spawn_until("serve", &config_path, |line| {
            let rest = line.split("listen=").nth(1)?;
            rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
        })
        .await;
        ChildServer {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Resident memory of the child, in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: u64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap();
        kb * 1024
    }

    /// CPU time of the child (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
    }

    /// A libpq connection string.
    pub fn url(&self, user: &str, sslmode: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=IKHOSPITAL_DW user={user} password='{PASSWORD}' sslmode={sslmode}",
            self.addr.port()
        )
    }

    /// A tokio-postgres client.
    pub async fn connect(&self, user: &str) -> tokio_postgres::Client {
        connect_to(self.addr, user, PASSWORD).await.unwrap()
    }
}

/// A plaintext tokio-postgres connection attempt to a server at `addr` (usable from tasks
/// that cannot borrow a [`TestServer`]).
pub async fn connect_to(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let config = lakehouse::bench::client_config(addr, user, password);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Loads a config file, panicking with the diagnostics.
pub fn load(path: &Path) -> Config {
    let doc = Document::<ConfigSpec>::load(path).unwrap_or_else(|d| panic!("{d}"));
    Config::from_spec(&doc, Some(path.to_path_buf()), path.parent().unwrap())
        .unwrap_or_else(|d| panic!("{d}"))
}

/// Rows of a simple query as text.
pub async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .map(lakehouse::bench::engine::text_rows)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The SQLSTATE of a failing simple query.
pub async fn sqlstate(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => panic!("{sql} should have failed"),
        Err(err) => err
            .as_db_error()
            .map(|e| e.code().code().to_string())
            .unwrap_or_else(|| panic!("{sql}: not a database error: {err}")),
    }
}

/// Runs a client program off the runtime that serves it; its stdout, failing the test (with
/// what to install) when the program fails.
pub async fn client_output(mut cmd: std::process::Command, what: &str, install: &str) -> String {
    let description = format!("{cmd:?}");
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): install {install}"));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "{description} failed (needs {install}):\n{stderr}\n{stdout}"
    );
    stdout
}

/// Runs a client script of `tests/clients` against `server` as `user` (host, port, user and
/// password appended as its last arguments): the facts it printed, one per line, first field
/// (the fact's name) first, the rest as printed. The last line of a name wins.
pub async fn client_facts(
    mut cmd: std::process::Command,
    server: &TestServer,
    user: &str,
    what: &str,
    install: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    cmd.arg("127.0.0.1")
        .arg(server.addr.port().to_string())
        .arg(user)
        .arg(PASSWORD);
    let stdout = client_output(cmd, &format!("{what} as {user}"), install).await;
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t').map(str::to_string);
            let key = fields.next()?;
            let values: Vec<String> = fields.collect();
            // One fact per COPY format.
            let key = match (key.as_str(), values.first()) {
                ("copy", Some(format)) => format!("copy {format}"),
                _ => key,
            };
            Some((key, values))
        })
        .collect()
}

/// Fails the test unless a child process succeeded, showing `what` it was and what it printed.
pub fn succeeded(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
}
