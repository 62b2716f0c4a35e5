//! The audit trail: one record per statement, written as JSON lines to a file and kept in
//! memory for `sys.audit_log`.
//!
//! Records hold the query text (which may contain literal patient data a user typed) but never
//! result rows; they go only to the audit file and to admins through SQL, never to the ordinary
//! log. File writes happen on a dedicated thread so a slow disk never stalls a query.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use parking_lot::Mutex;
use serde::Serialize;

/// One executed (or refused) statement.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct AuditRecord {
    /// When the statement started, RFC 3339 UTC.
    pub time: String,
    /// Unix microseconds of `time`, for ordering.
    #[serde(skip)]
    pub time_micros: i64,
    /// Connection id (the BackendKeyData process id).
    pub session_id: i32,
    /// Statement id, unique in this process.
    pub query_id: u64,
    /// User name.
    pub user: String,
    /// Client address.
    pub client_addr: String,
    /// `application_name` of the session.
    pub application_name: String,
    /// `select`, `explain`, `show`, `set`, `transaction`, `refused`, ...
    pub kind: String,
    /// The statement text.
    pub statement: String,
    /// Tables read, `schema.table`.
    pub tables: Vec<String>,
    /// Columns read, `schema.table.column`.
    pub columns: Vec<String>,
    /// Tables whose row filters were applied.
    pub row_filters: Vec<String>,
    /// Columns that were masked.
    pub masks: Vec<String>,
    /// Delta versions read, `schema.table@version`.
    pub versions: Vec<String>,
    /// Rows returned to the client.
    pub rows: u64,
    /// Wall time in milliseconds.
    pub duration_ms: f64,
    /// `hit` when the answer came from the result cache, `miss` when it was computed and
    /// could be kept, empty when the statement cannot be cached.
    pub result_cache: String,
    /// `ok`, `error` or `canceled`.
    pub outcome: String,
    /// SQLSTATE of the outcome (`00000` when ok).
    pub sqlstate: String,
}

/// The audit sink shared by every session.
pub struct AuditLog {
    memory: Mutex<VecDeque<AuditRecord>>,
    capacity: usize,
    file: Option<Mutex<mpsc::Sender<String>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditLog(capacity={})", self.capacity)
    }
}

impl AuditLog {
    /// An in-memory log keeping the last `capacity` records.
    pub fn in_memory(capacity: usize) -> AuditLog {
        AuditLog {
            memory: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity,
            file: None,
        }
    }

    /// A log that also appends JSON lines to `path` (created with mode 0600 on Unix).
    pub fn with_file(capacity: usize, path: &Path) -> std::io::Result<AuditLog> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        let (sender, receiver) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("audit-writer".to_string())
            .spawn(move || {
                while let Ok(line) = receiver.recv() {
                    let mut buffer = line;
                    // Batch whatever else is queued into one write.
                    while let Ok(more) = receiver.try_recv() {
                        buffer.push_str(&more);
                    }
                    if let Err(err) = file
                        .write_all(buffer.as_bytes())
                        .and_then(|()| file.flush())
                    {
                        tracing::error!(error = %err, "cannot write the audit file");
                    }
                }
            })?;
        let mut log = AuditLog::in_memory(capacity);
        log.file = Some(Mutex::new(sender));
        Ok(log)
    }

    /// Records one statement.
    pub fn record(&self, record: AuditRecord) {
        crate::metrics::global().statement(&record);
        if let Some(file) = &self.file {
            match serde_json::to_string(&record) {
                Ok(mut line) => {
                    line.push('\n');
                    if file.lock().send(line).is_err() {
                        tracing::error!("audit writer stopped; records go to memory only");
                    }
                }
                Err(err) => tracing::error!(error = %err, "cannot serialise an audit record"),
            }
        }
        let mut memory = self.memory.lock();
        if memory.len() >= self.capacity {
            memory.pop_front();
        }
        memory.push_back(record);
    }

    /// The records kept in memory, oldest first.
    pub fn recent(&self) -> Vec<AuditRecord> {
        self.memory.lock().iter().cloned().collect()
    }
}
