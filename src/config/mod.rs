//! Runtime settings: `lakehouse.yaml` and the YAML loader every other file format uses.
//!
//! Two stages, as in ripgrep: serde structs named `*Spec` mirror the file exactly (unknown keys
//! are errors), then [`Config::from_spec`] turns them into ready-to-use values with paths
//! resolved against the directory of the YAML file and defaults filled in. Command-line flags
//! are applied last by the binary ([`Config::with_listen`], [`Config::with_lake_root`]).
//!
//! This module imports no other module of the crate: everything else depends on it.

pub mod ingest;
pub mod stream;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use yaml::{Diagnostic, Diagnostics, Document, EnvString, Location, YamlPath};

/// The default address of `lakehouse serve`; 5432 is usually a local PostgreSQL's.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5433";
/// Default of `server.max_startup_connections`.
pub const DEFAULT_MAX_STARTUP_CONNECTIONS: usize = 32;

/// The database every client connects to.
pub const DATABASE_NAME: &str = "IKHOSPITAL_DW";

/// `lakehouse.yaml` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigSpec {
    /// The pgwire server.
    pub server: ServerSpec,
    /// Where the bronze/silver/gold tables live.
    pub lake: LakeSpec,
    /// Directories of the other configuration files.
    pub paths: PathsSpec,
    /// The per-statement audit trail.
    pub audit: AuditSpec,
    /// Logging.
    pub log: LogSpec,
    /// Prometheus metrics endpoint.
    pub metrics: Option<MetricsSpec>,
    /// Batch ingest from the source databases.
    pub ingest: Option<ingest::IngestSpec>,
    /// Pharmacy device event stream.
    pub stream: Option<stream::StreamSpec>,
    /// Scheduled Delta maintenance inside `serve`.
    pub maintenance: Option<MaintenanceSpec>,
}

/// `maintenance:` of `lakehouse.yaml`: `serve` compacts, checkpoints and vacuums the tables
/// under bronze/, silver/ and gold/ on this schedule (as `lakehouse optimize` then `lakehouse
/// vacuum`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    /// How often.
    pub every: DurationSpec,
    /// Size of the files compaction writes (default 128 MiB).
    #[serde(default)]
    pub target_size: Option<ByteSize>,
    /// Whether to VACUUM after compacting (default true), with each table's own retention.
    #[serde(default)]
    pub vacuum: Option<bool>,
}

/// `server:` of `lakehouse.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSpec {
    /// Address to listen on, `host:port`.
    pub listen: Option<String>,
    /// Connections beyond this are refused with SQLSTATE 53300.
    pub max_connections: Option<usize>,
    /// Queries executing at once; further ones wait for a slot.
    pub max_concurrent_queries: Option<usize>,
    /// Default `statement_timeout` of every session (`0` disables it).
    pub statement_timeout: Option<DurationSpec>,
    /// Memory one query may use before it spills or fails with 53200.
    pub query_memory_limit: Option<ByteSize>,
    /// Memory the whole process may use: past 75% of it the query holding the most is
    /// cancelled (53200). Default: 80% of the machine's (or the container's) memory.
    pub max_memory: Option<ByteSize>,
    /// Connections that have not yet authenticated, at once; when all are taken, the one that
    /// has waited longest is closed to make room.
    pub max_startup_connections: Option<usize>,
    /// Bytes of query answers kept for repeated queries (`0` disables the result cache).
    pub result_cache: Option<ByteSize>,
    /// How often Delta tables are checked for new versions.
    pub refresh_interval: Option<DurationSpec>,
    /// How long a client may take from its first byte to the end of authentication.
    pub authentication_timeout: Option<DurationSpec>,
    /// TLS settings.
    pub tls: TlsSpec,
}

/// `server.tls:` of `lakehouse.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSpec {
    /// `require` (default), `prefer` or `disable`.
    pub mode: Option<TlsMode>,
    /// PEM certificate chain; without it a self-signed certificate is made at start.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Where a self-signed certificate is kept so that clients can trust it once.
    pub self_signed_dir: Option<PathBuf>,
}

/// Whether clients must, may or may not use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext connections are refused (SQLSTATE 28000) after the startup message.
    Require,
    /// TLS is offered; a client that does not ask for it may continue in plaintext.
    Prefer,
    /// TLS is refused (`N` to SSLRequest).
    Disable,
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Require => "require",
            TlsMode::Prefer => "prefer",
            TlsMode::Disable => "disable",
        })
    }
}

/// `lake:` of `lakehouse.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSpec {
    /// Local directory (relative to the YAML file) or URL (`abfss://`, `az://`, `s3://`, ...).
    pub root: Option<EnvString>,
    /// How to authenticate to the lake's storage.
    pub credential: Option<CredentialSpec>,
}

/// `paths:` of `lakehouse.yaml`; relative to the YAML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsSpec {
    /// `catalog/*.yaml`.
    pub catalog: Option<PathBuf>,
    /// `grants/*.yaml`.
    pub grants: Option<PathBuf>,
    /// `sql/` (source DDL, silver and gold models).
    pub sql: Option<PathBuf>,
}

/// `audit:` of `lakehouse.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSpec {
    /// JSON-lines file, one record per statement (relative to the YAML file).
    pub path: Option<PathBuf>,
    /// Records kept in memory for `sys.audit_log`.
    pub memory_records: Option<usize>,
}

/// `log:` of `lakehouse.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSpec {
    /// `text` (default) or `json`.
    pub format: Option<LogFormat>,
    /// A tracing filter such as `info` or `lakehouse=debug,info`; `RUST_LOG` wins.
    pub level: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `metrics:` of `lakehouse.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// Address of the Prometheus `/metrics` endpoint.
    pub listen: String,
}

/// How to reach a storage location; the YAML form of a Synapse DATABASE SCOPED CREDENTIAL.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum CredentialSpec {
    /// Local paths, or public storage.
    None,
    /// ADLS Gen2 / Blob storage account key.
    AzureAccountKey {
        /// Storage account; taken from the URL when omitted.
        #[serde(default)]
        account: Option<EnvString>,
        /// The key (use `${ENV}`).
        key: EnvString,
        /// Extra object_store options (`azure_storage_use_emulator`, endpoint, ...).
        #[serde(default)]
        options: BTreeMap<String, EnvString>,
    },
    /// A shared access signature (the query string, with or without the leading `?`).
    AzureSas {
        /// Storage account; taken from the URL when omitted.
        #[serde(default)]
        account: Option<EnvString>,
        /// The SAS token (use `${ENV}`).
        token: EnvString,
        /// Extra object_store options.
        #[serde(default)]
        options: BTreeMap<String, EnvString>,
    },
    /// An Entra ID application with a client secret.
    AzureServicePrincipal {
        /// Directory (tenant) id.
        tenant_id: EnvString,
        /// Application (client) id.
        client_id: EnvString,
        /// Client secret (use `${ENV}`).
        client_secret: EnvString,
        /// Extra object_store options.
        #[serde(default)]
        options: BTreeMap<String, EnvString>,
    },
    /// The VM's or App Service's managed identity (IMDS).
    AzureManagedIdentity {
        /// Client id of a user-assigned identity; the system identity when omitted.
        #[serde(default)]
        client_id: Option<EnvString>,
        /// Extra object_store options (`azure_msi_endpoint`, ...).
        #[serde(default)]
        options: BTreeMap<String, EnvString>,
    },
    /// Kubernetes workload identity federation.
    AzureWorkloadIdentity {
        /// Directory (tenant) id; `AZURE_TENANT_ID` by default.
        #[serde(default)]
        tenant_id: Option<EnvString>,
        /// Application (client) id; `AZURE_CLIENT_ID` by default.
        #[serde(default)]
        client_id: Option<EnvString>,
        /// Projected token file; `AZURE_FEDERATED_TOKEN_FILE` by default.
        #[serde(default)]
        token_file: Option<EnvString>,
        /// Extra object_store options.
        #[serde(default)]
        options: BTreeMap<String, EnvString>,
    },
    /// S3 access keys.
    S3Keys {
        /// Access key id.
        access_key_id: EnvString,
        /// Secret access key (use `${ENV}`).
        secret_access_key: EnvString,
        /// Optional session token.
        #[serde(default)]
        session_token: Option<EnvString>,
        /// Region.
        #[serde(default)]
        region: Option<EnvString>,
        /// Endpoint of an S3-compatible store.
        #[serde(default)]
        endpoint: Option<EnvString>,
        /// Extra object_store options.
        #[serde(default)]
        options: BTreeMap<String, EnvString>,
    },
}

impl fmt::Debug for CredentialSpec {
    // Credentials hold secrets; only the kind is ever printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialSpec({})", self.kind())
    }
}

impl CredentialSpec {
    /// The `kind:` as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialSpec::None => "none",
            CredentialSpec::AzureAccountKey { .. } => "azure_account_key",
            CredentialSpec::AzureSas { .. } => "azure_sas",
            CredentialSpec::AzureServicePrincipal { .. } => "azure_service_principal",
            CredentialSpec::AzureManagedIdentity { .. } => "azure_managed_identity",
            CredentialSpec::AzureWorkloadIdentity { .. } => "azure_workload_identity",
            CredentialSpec::S3Keys { .. } => "s3_keys",
        }
    }

    /// The object_store / deltalake storage options this credential stands for.
    pub fn storage_options(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: &EnvString| {
            out.insert(k.to_string(), v.as_str().to_string());
        };
        let extra = match self {
            CredentialSpec::None => return out,
            CredentialSpec::AzureAccountKey {
                account,
                key,
                options,
            } => {
                if let Some(account) = account {
                    put("azure_storage_account_name", account);
                }
                put("azure_storage_account_key", key);
                options
            }
            CredentialSpec::AzureSas {
                account,
                token,
                options,
            } => {
                if let Some(account) = account {
                    put("azure_storage_account_name", account);
                }
                let token = EnvString::new(token.as_str().trim_start_matches('?'));
                put("azure_storage_sas_token", &token);
                options
            }
            CredentialSpec::AzureServicePrincipal {
                tenant_id,
                client_id,
                client_secret,
                options,
            } => {
                put("azure_tenant_id", tenant_id);
                put("azure_client_id", client_id);
                put("azure_client_secret", client_secret);
                options
            }
            CredentialSpec::AzureManagedIdentity { client_id, options } => {
                if let Some(client_id) = client_id {
                    put("azure_client_id", client_id);
                }
                options
            }
            CredentialSpec::AzureWorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                options,
            } => {
                if let Some(v) = tenant_id {
                    put("azure_tenant_id", v);
                }
                if let Some(v) = client_id {
                    put("azure_client_id", v);
                }
                if let Some(v) = token_file {
                    put("azure_federated_token_file", v);
                }
                options
            }
            CredentialSpec::S3Keys {
                access_key_id,
                secret_access_key,
                session_token,
                region,
                endpoint,
                options,
            } => {
                put("aws_access_key_id", access_key_id);
                put("aws_secret_access_key", secret_access_key);
                if let Some(v) = session_token {
                    put("aws_session_token", v);
                }
                if let Some(v) = region {
                    put("aws_region", v);
                }
                if let Some(v) = endpoint {
                    put("aws_endpoint", v);
                }
                options
            }
        };
        for (key, value) in extra {
            out.insert(key.clone(), value.as_str().to_string());
        }
        out
    }
}

/// A duration written as `250ms`, `5s`, `10m`, `2h`, `1d` or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl FromStr for DurationSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text).map(DurationSpec)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(secs) => Ok(DurationSpec(Duration::from_secs(secs))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `250ms`, `5s`, `1.5s`, `10m`, `2h`, `1d`, `0` or `30` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 5s, 10m, 1h"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "us" | "microsecond" | "microseconds" => 0.000_001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use ms, s, m, h or d"
            ));
        }
    };
    let secs = number * scale;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A size written as `512MiB`, `2GiB`, `1GB`, `64kB` or a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => parse_byte_size(&text)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `512MiB`, `2GiB`, `1GB`, `64kB`, `100` (bytes).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. 512MiB or 2GiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("invalid size unit {other:?} in {text:?}")),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 0.0 {
        return Err(format!("invalid size {text:?}"));
    }
    Ok(bytes as u64)
}

/// Validated settings of the whole program.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file these settings came from; `None` for built-in defaults.
    pub file: Option<PathBuf>,
    /// Directory relative paths were resolved against.
    pub base_dir: PathBuf,
    /// pgwire server settings.
    pub server: ServerConfig,
    /// Lake root and its credential.
    pub lake: LakeConfig,
    /// `catalog/` directory.
    pub catalog_dir: PathBuf,
    /// `grants/` directory.
    pub grants_dir: PathBuf,
    /// `sql/` directory.
    pub sql_dir: PathBuf,
    /// Audit settings.
    pub audit: AuditConfig,
    /// Logging settings.
    pub log: LogSpec,
    /// Metrics endpoint, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Batch ingest settings, if configured.
    pub ingest: Option<ingest::IngestSpec>,
    /// Stream settings, if configured.
    pub stream: Option<stream::StreamSpec>,
    /// Scheduled maintenance, if configured.
    pub maintenance: Option<MaintenanceSpec>,
}

/// Validated `server:` settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// See [`ServerSpec::max_connections`].
    pub max_connections: usize,
    /// See [`ServerSpec::max_concurrent_queries`].
    pub max_concurrent_queries: usize,
    /// `None` = no timeout.
    pub statement_timeout: Option<Duration>,
    /// Bytes one query may hold in DataFusion's memory pool.
    pub query_memory_limit: u64,
    /// Bytes the process may hold (`None`: the default for the machine).
    pub max_memory: Option<u64>,
    /// See [`ServerSpec::max_startup_connections`].
    pub max_startup_connections: usize,
    /// Bytes of the result cache (0 = off).
    pub result_cache: u64,
    /// Delta refresh interval.
    pub refresh_interval: Duration,
    /// Authentication timeout.
    pub authentication_timeout: Duration,
    /// TLS mode.
    pub tls_mode: TlsMode,
    /// Certificate chain file, if configured.
    pub tls_cert: Option<PathBuf>,
    /// Private key file, if configured.
    pub tls_key: Option<PathBuf>,
    /// Where a generated self-signed certificate is stored (and reused).
    pub self_signed_dir: Option<PathBuf>,
}

/// Validated `lake:` settings.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// Local absolute path or URL, without a trailing slash.
    pub root: String,
    /// Storage credential of the lake root.
    pub credential: CredentialSpec,
}

/// Validated `audit:` settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// JSON-lines file, if any.
    pub path: Option<PathBuf>,
    /// Records kept in memory for `sys.audit_log`.
    pub memory_records: usize,
}

impl Config {
    /// Loads `file`; errors carry `file:line:col`.
    pub fn load(file: &Path) -> Result<Config, Diagnostics> {
        let doc = Document::<ConfigSpec>::load(file)?;
        let base_dir = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        Config::from_spec(&doc, Some(file.to_path_buf()), &base_dir)
    }

    /// Built-in defaults, with paths relative to `base_dir`.
    pub fn defaults(base_dir: &Path) -> Config {
        let doc = Document {
            value: ConfigSpec::default(),
            file: PathBuf::from("<defaults>"),
            index: Default::default(),
        };
        // Defaults always validate; fall back to a minimal literal if that ever changes.
        match Config::from_spec(&doc, None, base_dir) {
            Ok(config) => config,
            Err(diagnostics) => unreachable_defaults(diagnostics, base_dir),
        }
    }

    /// Validates a parsed spec.
    pub fn from_spec(
        doc: &Document<ConfigSpec>,
        file: Option<PathBuf>,
        base_dir: &Path,
    ) -> Result<Config, Diagnostics> {
        let spec = &doc.value;
        let mut diagnostics = Diagnostics::default();
        let base_dir = absolute(base_dir);
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            }
        };

        let listen_text = spec.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                diagnostics.push(doc.error_at(
                    &YamlPath::root().key("server").key("listen"),
                    format!("invalid listen address {listen_text:?}: expected host:port such as 127.0.0.1:5433"),
                ));
                fallback_addr()
            }
        };
        let max_connections = spec.server.max_connections.unwrap_or(100);
        if max_connections == 0 {
            diagnostics.push(doc.error_at(
                &YamlPath::root().key("server").key("max_connections"),
                "max_connections must be at least 1",
            ));
        }
        if spec.server.max_startup_connections == Some(0) {
            diagnostics.push(
                doc.error_at(
                    &YamlPath::root()
                        .key("server")
                        .key("max_startup_connections"),
                    "max_startup_connections must be at least 1",
                ),
            );
        }
        if let Some(max_memory) = spec.server.max_memory
            && max_memory.0 < 256 << 20
        {
            diagnostics.push(doc.error_at(
                &YamlPath::root().key("server").key("max_memory"),
                "max_memory must be at least 256MB (the server itself needs about 150MB)",
            ));
        }
        let tls_mode = spec.server.tls.mode.unwrap_or(TlsMode::Require);
        if spec.server.tls.cert.is_some() != spec.server.tls.key.is_some() {
            diagnostics.push(doc.error_at(
                &YamlPath::root().key("server").key("tls"),
                "tls.cert and tls.key must be given together",
            ));
        }
        let statement_timeout = spec
            .server
            .statement_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero());
        let refresh_interval = spec
            .server
            .refresh_interval
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(5));
        if refresh_interval < Duration::from_millis(100) {
            diagnostics.push(doc.error_at(
                &YamlPath::root().key("server").key("refresh_interval"),
                "refresh_interval must be at least 100ms",
            ));
        }
        // A zero period would stop the maintenance task at its first tick (tokio refuses it).
        if let Some(maintenance) = &spec.maintenance
            && maintenance.every.0 < Duration::from_secs(1)
        {
            diagnostics.push(doc.error_at(
                &YamlPath::root().key("maintenance").key("every"),
                "maintenance.every must be at least 1s",
            ));
        }

        let root = match &spec.lake.root {
            Some(root) => normalize_root(root.as_str(), &base_dir),
            None => normalize_root("lake", &base_dir),
        };
        let metrics_listen = match &spec.metrics {
            Some(metrics) => match metrics.listen.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    diagnostics.push(doc.error_at(
                        &YamlPath::root().key("metrics").key("listen"),
                        format!("invalid listen address {:?}", metrics.listen),
                    ));
                    None
                }
            },
            None => None,
        };

        let config = Config {
            file,
            base_dir: base_dir.clone(),
            server: ServerConfig {
                listen,
                max_connections: max_connections.max(1),
                max_concurrent_queries: spec.server.max_concurrent_queries.unwrap_or(16).max(1),
                statement_timeout,
                query_memory_limit: spec
                    .server
                    .query_memory_limit
                    .map(|b| b.0)
                    .unwrap_or(2 * 1024 * 1024 * 1024),
                max_memory: spec.server.max_memory.map(|b| b.0),
                max_startup_connections: spec
                    .server
                    .max_startup_connections
                    .unwrap_or(DEFAULT_MAX_STARTUP_CONNECTIONS)
                    .max(1),
                result_cache: spec
                    .server
                    .result_cache
                    .map(|b| b.0)
                    .unwrap_or(256 * 1024 * 1024),
                refresh_interval,
                authentication_timeout: spec
                    .server
                    .authentication_timeout
                    .map(|d| d.0)
                    .unwrap_or(Duration::from_secs(10)),
                tls_mode,
                tls_cert: spec.server.tls.cert.as_deref().map(resolve),
                tls_key: spec.server.tls.key.as_deref().map(resolve),
                self_signed_dir: spec.server.tls.self_signed_dir.as_deref().map(resolve),
            },
            lake: LakeConfig {
                root,
                credential: spec.lake.credential.clone().unwrap_or(CredentialSpec::None),
            },
            catalog_dir: resolve(
                spec.paths
                    .catalog
                    .as_deref()
                    .unwrap_or(Path::new("catalog")),
            ),
            grants_dir: resolve(spec.paths.grants.as_deref().unwrap_or(Path::new("grants"))),
            sql_dir: resolve(spec.paths.sql.as_deref().unwrap_or(Path::new("sql"))),
            audit: AuditConfig {
                path: spec.audit.path.as_deref().map(resolve),
                memory_records: spec.audit.memory_records.unwrap_or(10_000),
            },
            log: spec.log.clone(),
            metrics_listen,
            ingest: spec.ingest.clone(),
            stream: spec.stream.clone(),
            maintenance: spec.maintenance.clone(),
        };
        diagnostics.into_result(config)
    }

    /// Overrides the listen address (`--listen`).
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.server.listen = listen;
        self
    }

    /// Overrides the lake root (`--lake`); relative paths are taken from the current directory.
    pub fn with_lake_root(mut self, root: &str) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        self.lake.root = normalize_root(root, &cwd);
        self
    }
}

fn fallback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5433))
}

#[cold]
fn unreachable_defaults(diagnostics: Diagnostics, base_dir: &Path) -> Config {
    tracing::error!(%diagnostics, "built-in defaults did not validate");
    Config {
        file: None,
        base_dir: base_dir.to_path_buf(),
        server: ServerConfig {
            listen: fallback_addr(),
            max_connections: 100,
            max_concurrent_queries: 16,
            statement_timeout: None,
            query_memory_limit: 2 * 1024 * 1024 * 1024,
            max_memory: None,
            max_startup_connections: DEFAULT_MAX_STARTUP_CONNECTIONS,
            result_cache: 256 * 1024 * 1024,
            refresh_interval: Duration::from_secs(5),
            authentication_timeout: Duration::from_secs(10),
            tls_mode: TlsMode::Require,
            tls_cert: None,
            tls_key: None,
            self_signed_dir: None,
        },
        lake: LakeConfig {
            root: normalize_root("lake", base_dir),
            credential: CredentialSpec::None,
        },
        catalog_dir: base_dir.join("catalog"),
        grants_dir: base_dir.join("grants"),
        sql_dir: base_dir.join("sql"),
        audit: AuditConfig {
            path: None,
            memory_records: 10_000,
        },
        log: LogSpec::default(),
        metrics_listen: None,
        ingest: None,
        stream: None,
        maintenance: None,
    }
}

/// Makes `path` absolute against the current directory, without touching the file system.
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let joined = std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    normalize_path(&joined)
}

/// Removes `.` and resolves `..` lexically.
fn normalize_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A lake root as a URL-ish string: URLs stay as they are, local paths become absolute.
pub fn normalize_root(root: &str, base_dir: &Path) -> String {
    let root = root.trim();
    let is_url = root.contains("://");
    let out = if is_url {
        root.to_string()
    } else {
        let path = Path::new(root);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base_dir.join(path)
        };
        normalize_path(&path).display().to_string()
    };
    let trimmed = out.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Resolves the configuration file to use: `--config`, else `./lakehouse.yaml` if present.
pub fn find_config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let default = PathBuf::from("lakehouse.yaml");
    default.exists().then_some(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_byte_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_byte_size("1GB").unwrap(), 1_000_000_000);
        assert!(parse_byte_size("1 furlong").is_err());
    }

    #[test]
    fn unknown_server_key_is_located() {
        let text = "server:\n  listen: 127.0.0.1:5433\n  max_conections: 3\n";
        let err = Document::<ConfigSpec>::parse(Path::new("lakehouse.yaml"), text).unwrap_err();
        assert_eq!(
            err.location.as_ref().map(|l| (l.line, l.col)),
            Some((3, 3)),
            "{err}"
        );
    }

    #[test]
    fn bad_listen_is_located() {
        let text = "server:\n  listen: nowhere\n";
        let doc = Document::<ConfigSpec>::parse(Path::new("l.yaml"), text).unwrap();
        let err = Config::from_spec(&doc, None, Path::new("/x")).unwrap_err();
        assert!(
            err.to_string().starts_with("l.yaml:2:11: invalid listen"),
            "{err}"
        );
    }

    #[test]
    fn maintenance_period_of_zero_is_located() {
        let text = "maintenance:\n  every: 0s\n";
        let doc = Document::<ConfigSpec>::parse(Path::new("l.yaml"), text).unwrap();
        let err = Config::from_spec(&doc, None, Path::new("/x")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("l.yaml:2:10: maintenance.every must be at least 1s"),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let text = "lake:\n  root: ../lake\npaths:\n  grants: g\n";
        let doc = Document::<ConfigSpec>::parse(Path::new("/etc/lh/lakehouse.yaml"), text).unwrap();
        let config = Config::from_spec(&doc, None, Path::new("/etc/lh")).unwrap();
        assert_eq!(config.lake.root, "/etc/lake");
        assert_eq!(config.grants_dir, PathBuf::from("/etc/lh/g"));
        assert_eq!(config.catalog_dir, PathBuf::from("/etc/lh/catalog"));
    }

    #[test]
    fn credential_options_are_mapped() {
        let text = "kind: azure_sas\ntoken: '?sv=1&sig=x'\n";
        let cred: CredentialSpec = serde_norway::from_str(text).unwrap();
        assert_eq!(
            cred.storage_options()
                .get("azure_storage_sas_token")
                .unwrap(),
            "sv=1&sig=x"
        );
        assert_eq!(format!("{cred:?}"), "CredentialSpec(azure_sas)");
    }
}
