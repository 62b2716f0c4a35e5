//! Shared harness of lakehouse's fuzz targets (see `fuzz/README.md`).
//!
//! One [`World`] per fuzz process: a tokio runtime, a temporary lake with the hospital fixture
//! (patient names carry the marker [`leak::MARKER`], so that a masked value cannot appear in an
//! answer by chance), grants for `alice` (everything), `bob` (the masked reader, `PBI_Reader` in
//! the demo), `carol` (row filter) and `dave` (cleartext password over loopback), and the
//! engine built by `App::build`.
//!
//! Any panic, in whichever thread (network runtime, statement runtime, blocking pool), aborts
//! the process after printing its message, thread and backtrace: tokio and lakehouse would
//! otherwise turn it into a closed connection or an `XX000` error, and libFuzzer would see
//! nothing.

pub mod extended;
pub mod known;
pub mod leak;
pub mod server;
pub mod sqlgen;
pub mod startup;
pub mod statements;
pub mod wire;

/// A fuzz target over one of this crate's modules: its `init` once, then `run` per input.
#[macro_export]
macro_rules! target {
    ($module:ident) => {
        libfuzzer_sys::fuzz_target!(
            init: {
                $crate::$module::init();
            },
            |data: &[u8]| {
                $crate::$module::run(data);
            }
        );
    };
}

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use lakehouse::server::tls::Tls;
use lakehouse::sql::Engine;

/// Password of every fixture user.
pub const PASSWORD: &str = "correct horse battery staple";
/// The database every client names.
pub const DATABASE: &str = "IKHOSPITAL_DW";

/// Everything a fuzz process builds once.
pub struct World {
    /// Drives the servers and the sessions (statements run on lakehouse's own runtime).
    pub rt: tokio::runtime::Runtime,
    /// The engine of the built app.
    pub engine: Arc<Engine>,
    /// The app's TLS material (self-signed), for the servers the targets start.
    pub tls: Option<Tls>,
    /// The temporary lake, grants and configuration; removed at exit.
    pub dir: tempfile::TempDir,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// The process's world, built on first use.
pub fn world() -> &'static World {
    WORLD.get_or_init(|| {
        install_panic_hook();
        init_logging();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fuzz-net")
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let (engine, tls) = rt.block_on(async {
            fixture::write_lake(&dir.path().join("lake")).await;
            write_grants(&dir.path().join("grants"));
            let config_path = dir.path().join("lakehouse.yaml");
            std::fs::write(&config_path, CONFIG).expect("write lakehouse.yaml");
            let config = lakehouse::config::Config::load(&config_path)
                .unwrap_or_else(|d| panic!("fuzz configuration is invalid: {d}"));
            let app = lakehouse::app::App::build(config)
                .await
                .unwrap_or_else(|e| panic!("App::build failed: {e:#}"));
            (app.engine.clone(), app.tls.clone())
        });
        World {
            rt,
            engine,
            tls,
            dir,
        }
    })
}

/// The server configuration: loopback, TLS offered, a statement timeout and small memory
/// budgets (libFuzzer's RSS limit is what the run scripts pass, 4 GB), no result cache (an
/// answer must not depend on the inputs run before), no catalog refresh during the run.
const CONFIG: &str = "\
server:
  listen: 127.0.0.1:0
  refresh_interval: 1h
  statement_timeout: 2s
  result_cache: 0
  max_memory: 1GiB
  query_memory_limit: 256MiB
  max_concurrent_queries: 4
  tls:
    mode: prefer
lake:
  root: lake
audit:
  memory_records: 1000
";

fn write_grants(dir: &Path) {
    std::fs::create_dir_all(dir).expect("grants directory");
    let scram = lakehouse::auth::ScramVerifier::generate(PASSWORD, 4096).to_string();
    // dave logs in with a cleartext password: an argon2id hash with the smallest parameters,
    // so that a login costs microseconds, not the 20 MB and tens of milliseconds of the
    // shipped parameters (the server verifies with the parameters in the hash).
    let cheap_hash = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(8, 1, 1, None).expect("argon2 params");
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"lakehouse-fuzz-salt").expect("salt");
        argon
            .hash_password(PASSWORD.as_bytes(), &salt)
            .expect("argon2 hash")
            .to_string()
    };
    // The integration tests' policy: the same users, roles, masks and row filters.
    let grants = include_str!("../../tests/it/support/grants.yaml")
        .replace("{scram}", &scram)
        .replace("{hash}", &cheap_hash);
    std::fs::write(dir.join("users.yaml"), grants).expect("write grants");
}

/// Aborts on any panic, printing the thread and a backtrace first.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>").to_string();
        eprintln!("\n==== lakehouse-fuzz: panic in thread '{name}': {info}");
        eprintln!("{}", std::backtrace::Backtrace::force_capture());
        // libfuzzer-sys' own hook (it aborts too); kept for its RUST_LIBFUZZER_DEBUG_PATH.
        previous(info);
        std::process::abort();
    }));
}

/// `RUST_LOG=lakehouse=debug` shows the server's log (internal errors have their details
/// there); silent otherwise.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}

/// Counters printed every few thousand executions (`-print_final_stats` shows libFuzzer's).
#[derive(Debug, Default)]
pub struct Stats {
    /// Inputs run.
    pub runs: AtomicU64,
    /// Statements or messages answered without error.
    pub ok: AtomicU64,
    /// Errors answered (any SQLSTATE).
    pub errors: AtomicU64,
    /// `XX000` answers (internal errors: worth a look, not a crash).
    pub internal: AtomicU64,
    /// Inputs cut short by the harness's own time limit.
    pub timeouts: AtomicU64,
    /// Real logins checked.
    pub logins: AtomicU64,
}

impl Stats {
    /// All zero.
    pub const fn new() -> Stats {
        Stats {
            runs: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            internal: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            logins: AtomicU64::new(0),
        }
    }

    /// Counts one run; every `every` runs prints the counters.
    pub fn tick(&self, target: &str, every: u64) {
        let n = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        if n % every == 0 {
            eprintln!(
                "lakehouse-fuzz {target}: runs={n} ok={} errors={} internal(XX000)={} harness_timeouts={} real_logins={}",
                self.ok.load(Ordering::Relaxed),
                self.errors.load(Ordering::Relaxed),
                self.internal.load(Ordering::Relaxed),
                self.timeouts.load(Ordering::Relaxed),
                self.logins.load(Ordering::Relaxed),
            );
        }
    }
}

/// The integration tests' tables, compiled here too so that the fuzzed server serves what the
/// tested one does.
#[allow(dead_code)]
#[path = "../../tests/it/support/fixture.rs"]
mod tables;

/// The fixture: the tables the tests use, with patient names that cannot be typed by chance.
pub mod fixture {
    use std::path::Path;

    use super::tables::{Table, doctors, events, patients_named};

    /// Number of patients.
    pub const N_PATIENTS: i32 = 40;

    /// The masked value of patient `i`: the name column of dim_patient.
    pub fn patient_name(i: i32) -> String {
        format!("{} Patient {i}", super::leak::MARKER_CASED)
    }

    /// Writes dim_patient (40), fact_events (200 in two commits) and dim_doctors (30).
    pub async fn write_lake(lake: &Path) {
        std::fs::create_dir_all(lake).expect("lake directory");
        let tables = [
            Table {
                name: "dim_patient".into(),
                batches: vec![patients_named(N_PATIENTS, patient_name)],
            },
            Table {
                name: "fact_events".into(),
                batches: vec![events(1, 100, N_PATIENTS), events(101, 100, N_PATIENTS)],
            },
            Table {
                name: "dim_doctors".into(),
                batches: vec![doctors()],
            },
        ];
        for table in &tables {
            table.write(lake).await;
        }
    }
}
