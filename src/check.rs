//! Validation of everything a DBA edits: `lakehouse.yaml`, `catalog/`, `grants/` and `sql/`.
//!
//! `lakehouse check` runs [`run`]; the server runs the same [`load_policy`] at start and on every
//! reload, so a file that passes `check` is exactly a file the server accepts.

use std::path::Path;

use crate::catalog::registry::{CatalogState, Registry, TableStatus};
use crate::catalog::spec::CatalogDef;
use crate::config::{Config, Diagnostic, Diagnostics};
use crate::policy::Policy;

/// What a successful check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Problems that do not stop the server (a table not in the lake yet, say).
    pub warnings: Vec<String>,
    /// One line per table: whether `serve` will serve it, and if not why (a Delta reader
    /// feature outside the profile of [`crate::lake::features`], say).
    pub tables: Vec<String>,
    /// One line for the terminal.
    pub summary: String,
}

/// Loads the configuration file, or built-in defaults with paths relative to the current
/// directory when the default file is absent.
pub fn load_config(path: &Path, lake_override: Option<&str>) -> Result<Config, Diagnostics> {
    let config = if path.exists() {
        Config::load(path)?
    } else if path == Path::new("lakehouse.yaml") {
        Config::defaults(&std::env::current_dir().unwrap_or_default())
    } else {
        return Err(Diagnostic::file(path, "configuration file not found").into());
    };
    Ok(match lake_override {
        Some(root) => config.with_lake_root(root),
        None => config,
    })
}

/// Loads `grants/` and validates it against the catalog as it is now. Returns the policy and
/// warnings, or every error with its `file:line:col`.
pub async fn load_policy(
    config: &Config,
    catalog: &std::sync::Arc<CatalogState>,
) -> Result<(Policy, Vec<String>), Diagnostics> {
    let policy = Policy::load(&config.grants_dir)?;
    let (errors, warnings) = policy.validate_objects(catalog.as_ref());
    if !errors.is_empty() {
        return Err(errors);
    }
    let expression_errors = crate::sql::policy_check::check_expressions(&policy, catalog).await;
    if !expression_errors.is_empty() {
        return Err(expression_errors);
    }
    Ok((policy, warnings))
}

/// `lakehouse check`.
pub async fn run(
    config_path: &Path,
    lake_override: Option<&str>,
) -> Result<CheckReport, Diagnostics> {
    let config = load_config(config_path, lake_override)?;
    // The silver and gold models of sql/ (the ingest module owns their rules).
    let model_warnings = crate::ingest::models::check(&config.sql_dir)?;
    let def = CatalogDef::load(&config)?;
    let registry = Registry::open(def, crate::sql::base_state()).await;
    let catalog = registry.snapshot();
    let mut warnings = model_warnings;
    let mut tables = Vec::new();
    for entry in catalog.tables.values() {
        let name = format!("{}.{}", entry.schema, entry.name);
        match &entry.status {
            TableStatus::Ready(ready) => tables.push(match ready.version {
                Some(version) if ready.reader_features.is_empty() => format!(
                    "{name}: served (Delta version {version}, {} file(s))",
                    ready.n_files
                ),
                Some(version) => format!(
                    "{name}: served (Delta version {version}, {} file(s), reader features: {})",
                    ready.n_files,
                    ready.reader_features.join(", ")
                ),
                None => format!("{name}: served (Parquet, {} file(s))", ready.n_files),
            }),
            TableStatus::Broken(reason) => {
                tables.push(format!("{name}: refused: {reason}"));
                warnings.push(format!("table \"{name}\" is not readable: {reason}"));
            }
        }
    }
    check_started_parts(&config)?;
    let (policy, policy_warnings) = load_policy(&config, &catalog).await?;
    warnings.extend(policy_warnings);
    let n_users = policy.users().count();
    Ok(CheckReport {
        warnings,
        tables,
        summary: format!(
            "ok: {} table(s) in {} schema(s), {} user(s), {} role(s), {} mask(s), {} row filter(s)",
            catalog.tables.len(),
            catalog.schemas.len(),
            n_users,
            policy.role_names().count(),
            policy.masks().len(),
            policy.row_filters().len()
        ),
    })
}

/// What `serve`, `stream` and `ingest` check only when they start a part: the stream's sources,
/// the ingest's source URLs, the TLS certificate and key. Each error points at its section of
/// `lakehouse.yaml` (`file:line:col`).
fn check_started_parts(config: &Config) -> Result<(), Diagnostics> {
    use crate::config::yaml::{Document, YamlPath};
    let doc = config
        .file
        .as_ref()
        .and_then(|file| Document::<crate::config::ConfigSpec>::load(file).ok());
    let at = |path: YamlPath, message: String| match (&doc, &config.file) {
        (Some(doc), _) => Diagnostic::at(doc.locate(&path), message),
        (None, Some(file)) => Diagnostic::file(file, message),
        (None, None) => Diagnostic::file("lakehouse.yaml", message),
    };
    let mut errors = Diagnostics::default();
    if let Some(stream) = &config.stream
        && let Err(err) = crate::stream::validate(stream)
    {
        errors.push(at(YamlPath::root().key("stream"), err.to_string()));
    }
    if let Some(ingest) = &config.ingest
        && let Err(err) = crate::ingest::run::sources_from_spec(ingest)
    {
        errors.push(at(
            YamlPath::root().key("ingest").key("sources"),
            err.to_string(),
        ));
    }
    if config.server.tls_mode != crate::config::TlsMode::Disable
        && let (Some(cert), Some(key)) = (&config.server.tls_cert, &config.server.tls_key)
        && let Err(err) = crate::server::tls::from_files(cert, key)
    {
        errors.push(at(
            YamlPath::root().key("server").key("tls"),
            format!("{err}; the server would not start"),
        ));
    }
    errors.into_result(())
}
