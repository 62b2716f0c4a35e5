//! The composition root: builds everything `lakehouse serve` runs from a [`Config`], binds the
//! listener, and runs until shutdown.
//!
//! Startup fails closed: unreadable TLS material or an invalid policy stops the server. After
//! startup, `grants/` and `catalog/` are watched (and re-read on SIGHUP); a valid change is
//! swapped in atomically, an invalid one is logged and the previous policy keeps serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::catalog::registry::Registry;
use crate::catalog::session::SystemContext;
use crate::catalog::spec::CatalogDef;
use crate::config::{Config, TlsMode};
use crate::policy::PolicyStore;
use crate::server::{Server, ServerSettings, tls};
use crate::sql::{Engine, Limits};

/// A built, bound, not yet running server.
pub struct App {
    config: Config,
    listener: TcpListener,
    local_addr: SocketAddr,
    server: Arc<Server>,
    registry: Arc<Registry>,
    policies: Arc<PolicyStore>,
    metrics: Option<TcpListener>,
    /// TLS facts for the operator.
    pub tls: Option<tls::Tls>,
    /// Shared engine (for embedding and tests).
    pub engine: Arc<Engine>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "App({})", self.local_addr)
    }
}

impl App {
    /// Loads the catalog and the policy, sets up TLS, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let max_memory = config
            .server
            .max_memory
            .unwrap_or_else(crate::sql::memory::default_max_memory);
        crate::sql::memory::configure(max_memory);
        let base_state = crate::sql::base_state();
        let def = CatalogDef::load(&config).map_err(|d| anyhow::anyhow!("{d}"))?;
        let registry = Registry::open(def, base_state.clone()).await;
        let catalog = registry.snapshot();
        let (policy, warnings) = crate::check::load_policy(&config, &catalog)
            .await
            .map_err(|d| anyhow::anyhow!("{d}"))
            .context("grants are invalid; the server does not start with a broken policy")?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        let loopback_only = config.server.listen.ip().is_loopback();
        let demo_users: Vec<&str> = policy
            .users()
            .filter(|u| u.demo)
            .map(|u| u.name.as_str())
            .collect();
        if !demo_users.is_empty() && !loopback_only {
            tracing::warn!(
                users = ?demo_users,
                "demo users keep their shipped passwords and cannot log in while the server listens beyond loopback"
            );
        }
        let policies = Arc::new(PolicyStore::new(policy));
        let audit = match &config.audit.path {
            Some(path) => AuditLog::with_file(config.audit.memory_records, path)
                .with_context(|| format!("cannot open the audit file {}", path.display()))?,
            None => AuditLog::in_memory(config.audit.memory_records),
        };
        // The catalog serves our `sys` and the PostgreSQL catalogs the wire's clients read.
        let mut schemas = crate::pg::catalog::schemas().to_vec();
        schemas.push(&crate::catalog::system::sys::SCHEMA);
        let system = Arc::new(SystemContext::new(
            Arc::new(audit),
            crate::pg::types::SERVER_VERSION,
            schemas,
        ));
        let limits = Limits {
            statement_timeout: config.server.statement_timeout,
            query_memory_limit: config.server.query_memory_limit,
            max_concurrent_queries: config.server.max_concurrent_queries,
            result_cache_bytes: config.server.result_cache,
        };
        let engine = Engine::new(
            registry.clone(),
            policies.clone(),
            system,
            limits,
            base_state,
        );
        let tls = match config.server.tls_mode {
            TlsMode::Disable => None,
            _ => Some(build_tls(&config)?),
        };
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let local_addr = listener.local_addr()?;
        let metrics = match config.metrics_listen {
            Some(listen) => Some(
                crate::metrics::bind(listen)
                    .await
                    .with_context(|| format!("cannot serve metrics on {listen}"))?,
            ),
            None => None,
        };
        let server = Server::new(
            engine.clone(),
            ServerSettings {
                tls_mode: config.server.tls_mode,
                tls: tls.clone(),
                max_connections: config.server.max_connections,
                max_startup_connections: config.server.max_startup_connections,
                authentication_timeout: config.server.authentication_timeout,
                loopback_only,
                shutdown_grace: Duration::from_secs(10),
            },
        );
        Ok(App {
            config,
            listener,
            local_addr,
            server,
            registry,
            policies,
            metrics,
            tls,
            engine,
        })
    }

    /// The address of the metrics endpoint, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live catalog.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if let Some(listener) = self.metrics.take() {
            crate::metrics::serve(
                listener,
                crate::metrics::Sources {
                    registry: Some(self.registry.clone()),
                    engine: Some(self.engine.clone()),
                },
                shutdown.clone(),
            );
        }
        if let Some(tls) = &self.tls {
            tracing::info!(
                fingerprint = %tls.fingerprint,
                self_signed = tls.self_signed,
                cert = ?tls.cert_path,
                "TLS ready"
            );
        }
        tracing::info!(
            listen = %self.local_addr,
            tls = %self.config.server.tls_mode,
            lake = %self.config.lake.root,
            n_tables = self.registry.snapshot().tables.len(),
            "serving IKHOSPITAL_DW"
        );
        // The device stream runs in this process when configured, handing each gold commit to
        // the registry so that queries see it without waiting for the refresh interval.
        let stream = match &self.config.stream {
            Some(_) => Some(
                crate::stream::run(&self.config, Some(self.registry.clone()), shutdown.clone())
                    .await
                    .context("cannot start the device stream")?,
            ),
            None => None,
        };
        let refresher = tokio::spawn(
            self.registry
                .clone()
                .refresh_loop(self.config.server.refresh_interval, shutdown.clone()),
        );
        let reloader = tokio::spawn(reload_loop(
            self.config.clone(),
            self.registry.clone(),
            self.policies.clone(),
            shutdown.clone(),
        ));
        let ingest = self
            .config
            .ingest
            .as_ref()
            .and_then(|spec| spec.every)
            .map(|every| {
                tokio::spawn(ingest_loop(
                    self.config.clone(),
                    every.0,
                    self.registry.clone(),
                    shutdown.clone(),
                ))
            });
        let maintenance = self.config.maintenance.clone().map(|spec| {
            tokio::spawn(maintenance_loop(
                self.config.clone(),
                spec,
                self.registry.clone(),
                shutdown.clone(),
            ))
        });
        self.server.run(self.listener, shutdown.clone()).await;
        shutdown.cancel();
        if let Some(maintenance) = maintenance {
            let _ = maintenance.await;
        }
        if let Some(stream) = stream {
            stream.wait().await;
        }
        let _ = refresher.await;
        let _ = reloader.await;
        if let Some(ingest) = ingest {
            let _ = ingest.await;
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

fn build_tls(config: &Config) -> anyhow::Result<tls::Tls> {
    match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => tls::from_files(cert, key)
            .with_context(|| "TLS setup failed; the server does not fall back to plaintext"),
        _ => {
            let host = config.server.listen.ip().to_string();
            let hostname = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            tls::self_signed(&[host, hostname], config.server.self_signed_dir.as_deref())
                .context("cannot create a self-signed certificate")
        }
    }
}

/// A cheap fingerprint of a directory's YAML files: names, sizes and modification times.
fn dir_stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = crate::config::yaml::yaml_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let modified = meta.and_then(|m| m.modified().ok());
            (path, size, modified)
        })
        .collect();
    out.sort();
    out
}

/// Watches `grants/` and `catalog/` (polling once a second; SIGHUP forces a reload).
async fn reload_loop(
    config: Config,
    registry: Arc<Registry>,
    policies: Arc<PolicyStore>,
    shutdown: CancellationToken,
) {
    let mut grants_stamp = dir_stamp(&config.grants_dir);
    let mut catalog_stamp = dir_stamp(&config.catalog_dir);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let forced = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let forced = std::future::pending::<bool>();
        let force = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => false,
            got = forced => got,
        };
        let new_grants = dir_stamp(&config.grants_dir);
        let new_catalog = dir_stamp(&config.catalog_dir);
        let catalog_changed = force || new_catalog != catalog_stamp;
        let grants_changed = force || new_grants != grants_stamp;
        if !catalog_changed && !grants_changed {
            continue;
        }
        grants_stamp = new_grants;
        catalog_stamp = new_catalog;
        if force {
            tracing::info!("SIGHUP: reloading catalog and grants");
        }
        if catalog_changed {
            match CatalogDef::load(&config) {
                Ok(def) => {
                    let report = registry.reload(def).await;
                    tracing::info!(added = ?report.added, removed = ?report.removed, "catalog reloaded");
                }
                Err(diagnostics) => {
                    crate::metrics::global().policy_reload("rejected");
                    tracing::error!(
                        "catalog change rejected, the previous catalog keeps serving:\n{diagnostics}"
                    );
                }
            }
        }
        let catalog = registry.snapshot();
        match crate::check::load_policy(&config, &catalog).await {
            Ok((policy, warnings)) => {
                for warning in warnings {
                    tracing::warn!("{warning}");
                }
                let generation = policies.replace(policy);
                tracing::info!(generation, "grants reloaded");
                crate::metrics::global().policy_reload("ok");
            }
            Err(diagnostics) => {
                crate::metrics::global().policy_reload("rejected");
                tracing::error!(
                    "grants change rejected, the previous policy keeps serving:\n{diagnostics}"
                );
            }
        }
    }
}

/// `ingest.every` inside `serve`: the same runs as `lakehouse ingest --every`, each followed by
/// a catalog refresh so that new gold versions serve at once rather than at the next tick.
/// A failed run is logged and retried at the next interval; the server keeps serving the last
/// good versions (Delta commits are atomic, so a half-done run is never visible).
async fn ingest_loop(
    config: Config,
    every: Duration,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) {
    let options = crate::ingest::IngestOptions::from_spec(config.ingest.as_ref());
    let result = crate::ingest::run_loop(&config, &options, every, shutdown, |report| {
        match report {
            Ok(report) if report.failures.is_empty() => {
                tracing::info!(
                    tables = report.tables.len(),
                    seconds = report.elapsed.as_secs_f64(),
                    "ingest run done"
                );
            }
            Ok(report) => {
                tracing::error!(failures = ?report.failures, "ingest run failed for some tables");
            }
            Err(err) => tracing::error!("ingest run failed: {err}"),
        }
        let registry = registry.clone();
        tokio::spawn(async move {
            registry.refresh().await;
        });
    })
    .await;
    if let Err(err) = result {
        tracing::error!("scheduled ingest stopped: {err}");
    }
}

/// `maintenance:` inside `serve`: every `every`, compacts and checkpoints every table under
/// bronze/, silver/ and gold/, then vacuums it within its own retention (see
/// `lake::maintain`), then refreshes the catalog. A failure is logged and retried next time;
/// a run in progress finishes before shutdown completes.
async fn maintenance_loop(
    config: Config,
    spec: crate::config::MaintenanceSpec,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) {
    use crate::lake::maintain;
    let target = spec.target_size.map_or(128 << 20, |s| s.0);
    let vacuum = spec.vacuum.unwrap_or(true);
    let mut period = crate::periodic::Periodic::new(spec.every.0, shutdown);
    while period.next().await {
        let root = match crate::catalog::spec::lake_location(&config) {
            Ok(root) => root,
            Err(err) => return tracing::error!(error = %err, "maintenance stopped"),
        };
        let tables = match maintain::tables(&root).await {
            Ok(tables) => tables,
            Err(err) => {
                tracing::warn!(error = %err, "maintenance: cannot list the lake");
                continue;
            }
        };
        for table in tables {
            let Ok(location) = root.join(&table) else {
                continue;
            };
            match maintain::compact(&location, target, false, false).await {
                Ok(report) if report.files_removed > 0 => tracing::info!(
                    %table,
                    removed = report.files_removed,
                    added = report.files_added,
                    "compacted"
                ),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%table, error = %err, "compaction failed; retried next time")
                }
            }
            if vacuum {
                match maintain::vacuum(&location, None, false, false).await {
                    Ok(report) if !report.files.is_empty() => {
                        tracing::info!(%table, removed = report.files.len(), "vacuumed")
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(%table, error = %err, "vacuum failed; retried next time")
                    }
                }
            }
        }
        registry.refresh().await;
    }
}

/// Resolves when the process receives Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
