//! Our server under test, as a child `lakehouse serve` on `127.0.0.1:0` over the benchmark's
//! lake with the shipped grants, so that its memory is its own (VmHWM of the child) and the
//! harness's own work never competes inside the same process.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncBufReadExt;

/// The shipped grants (the demo users with their demo passwords: loopback only).
const GRANTS: &[(&str, &str)] = &[
    ("users.yaml", include_str!("../../grants/users.yaml")),
    ("roles.yaml", include_str!("../../grants/roles.yaml")),
    ("policies.yaml", include_str!("../../grants/policies.yaml")),
];

/// The shipped catalog: every gold table as `dbo`.
const CATALOG: &str = include_str!("../../catalog/ikhospital_dw.yaml");

/// The user dashboards connect as, and its shipped demo password.
pub const USER: &str = "PBI_Reader";
/// `PBI_Reader`'s demo password.
pub const PASSWORD: &str = "pbi-reader-demo";

/// A running `lakehouse serve`.
pub struct ChildServer {
    child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    pid: u32,
}

impl ChildServer {
    /// Writes a configuration under `dir` for `lake` and starts `exe serve` with it; returns
    /// once the server listens.
    pub async fn start(exe: &Path, dir: &Path, lake: &Path) -> anyhow::Result<ChildServer> {
        Self::start_with(exe, dir, lake, "server", "").await
    }

    /// Like [`ChildServer::start`], with its configuration in `dir/<name>` and `extra` lines
    /// (indented by two) under `server:`.
    pub async fn start_with(
        exe: &Path,
        dir: &Path,
        lake: &Path,
        name: &str,
        extra: &str,
    ) -> anyhow::Result<ChildServer> {
        let config_dir = dir.join(name);
        write(
            &config_dir.join("catalog").join("ikhospital_dw.yaml"),
            CATALOG,
        )?;
        for (name, text) in GRANTS {
            write(&config_dir.join("grants").join(name), text)?;
        }
        // max_connections leaves room for 128 benchmark clients plus the harness's own.
        let yaml = format!(
            "server:\n  listen: 127.0.0.1:0\n  max_connections: 200\n  refresh_interval: 5s\n{extra}  \
             tls:\n    mode: prefer\n    self_signed_dir: tls\nlake:\n  root: {}\npaths:\n  \
             catalog: catalog\n  grants: grants\n",
            serde_json::to_string(&lake.to_string_lossy())?
        );
        let config_path = config_dir.join("lakehouse.yaml");
        write(&config_path, &yaml)?;
        let mut child = tokio::process::Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            // The server's shipped log level (info), whatever the caller's environment says.
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stderr = child.stderr.take().context("no stderr of the server")?;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listen=").nth(1)
                    && let Some(addr) = rest.split_whitespace().next()
                    && let Ok(addr) = addr.parse::<SocketAddr>()
                {
                    return anyhow::Ok(Some(addr));
                }
                seen.push(line);
            }
            Ok(None)
        })
        .await;
        let addr = match found {
            Ok(Ok(Some(addr))) => addr,
            Ok(Ok(None)) => bail!("the server exited before listening:\n{}", seen.join("\n")),
            Ok(Err(err)) => return Err(err),
            Err(_) => bail!("the server did not listen within 120 s"),
        };
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ChildServer { child, addr, pid })
    }

    /// A client configuration for `PBI_Reader` (plaintext: loopback, SCRAM still applies).
    pub fn client_config(&self) -> tokio_postgres::Config {
        super::client_config(self.addr, USER, PASSWORD)
    }

    /// Peak resident memory of the server so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        status_kb(self.pid, "VmHWM:").map(|kb| kb * 1024)
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A `/proc/<pid>/status` field in kB.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
