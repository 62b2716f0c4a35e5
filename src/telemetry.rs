//! Logging setup. Ordinary logs carry no row values and no query text (that goes to the audit
//! trail only); fields use the fixed vocabulary `session_id`, `user`, `query_id`, `table`,
//! `sqlstate`, `n_rows`, `elapsed_ms`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSpec};

/// Logging for one-shot commands (`check`, `passwd`, `generate`): warnings and errors only,
/// unless `RUST_LOG` says otherwise.
pub fn init_cli() {
    init_with(&LogSpec {
        format: Some(LogFormat::Text),
        level: Some("warn".to_string()),
    });
}

/// Logging for long-running commands (`serve`, `demo`, `ingest --every`, `stream`).
pub fn init_with(spec: &LogSpec) {
    // deltalake and its kernel log every snapshot load at INFO; keep them to warnings unless
    // asked for.
    let default_level = spec.level.clone().unwrap_or_else(|| {
        "info,deltalake=warn,deltalake_core=warn,delta_kernel=warn,buoyant_kernel=warn,buoyant_kernel_engine=warn".to_string()
    });
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&default_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second init (tests, embedded use) keeps the first subscriber.
    let _ = match spec.format.unwrap_or_default() {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
