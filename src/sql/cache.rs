//! The result cache: answers of read-only queries over Delta tables, kept in memory and handed
//! back without planning or reading the lake again.
//!
//! Dashboards repeat the same handful of aggregates for every viewer and every refresh; the
//! tables under them change a few times a day (or every few seconds for the stream's gold).
//! So the key is everything the answer depends on, and nothing a client could forge:
//!
//! - the user and the policy generation: an answer is never shared across users, and a policy
//!   edit retires every answer computed under the old policy;
//! - the search path;
//! - every table read, with its Delta version and location: a new version is a new key, so an
//!   answer can never be older than the snapshot a fresh plan would read;
//! - the enforced logical plan with its parameters bound (row filters and masks included), in
//!   full: keys are compared as strings, never by hash alone.
//!
//! Only plans whose every scan is a versioned lake table, and whose every function is
//! immutable, qualify (see [`super::session`]): no `now()`, no `random()`, no catalog or audit
//! tables. Entries are bounded in bytes (one answer at most an eighth of the budget); the least
//! recently used go first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

/// A cached answer.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    /// The batches, in order.
    pub batches: Arc<Vec<RecordBatch>>,
    /// `schema.table.column` read when it was computed (for the audit trail of a hit).
    pub columns: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    answer: CachedAnswer,
    bytes: usize,
    used: u64,
    policy_generation: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    bytes: usize,
    tick: u64,
}

/// The server's result cache. A capacity of 0 disables it.
#[derive(Debug)]
pub struct ResultCache {
    capacity: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from the cache.
    pub hits: u64,
    /// Cacheable statements that had to run.
    pub misses: u64,
    /// Answers held.
    pub entries: usize,
    /// Bytes held.
    pub bytes: usize,
}

impl ResultCache {
    /// A cache holding at most `capacity` bytes of answers.
    pub fn new(capacity: u64) -> ResultCache {
        ResultCache {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether the cache can hold anything.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The largest answer worth keeping: an eighth of the budget, so one huge export cannot
    /// flush every dashboard's answers.
    pub fn max_answer_bytes(&self) -> usize {
        self.capacity / 8
    }

    /// The answer stored under `key`, counting a hit or a miss.
    pub fn get(&self, key: &str) -> Option<CachedAnswer> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        match inner.entries.get_mut(key) {
            Some(entry) => {
                entry.used = tick;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.answer.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores a complete answer computed under `policy_generation`. Answers of older policies
    /// are dropped on the way (they can never be hit again); the least recently used go when
    /// the budget is full.
    pub fn insert(&self, key: String, policy_generation: u64, answer: CachedAnswer) {
        let bytes = key.len()
            + answer
                .batches
                .iter()
                .map(RecordBatch::get_array_memory_size)
                .sum::<usize>();
        if bytes > self.max_answer_bytes() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner
            .entries
            .values()
            .any(|e| e.policy_generation != policy_generation)
        {
            inner
                .entries
                .retain(|_, e| e.policy_generation == policy_generation);
            inner.bytes = inner.entries.values().map(|e| e.bytes).sum();
        }
        inner.tick += 1;
        let used = inner.tick;
        if let Some(old) = inner.entries.insert(
            key,
            Entry {
                answer,
                bytes,
                used,
                policy_generation,
            },
        ) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > self.capacity {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.bytes;
            }
        }
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: inner.entries.len(),
            bytes: inner.bytes,
        }
    }
}

/// Collects the batches of a running cacheable query; gives up (and frees them) once the
/// answer outgrows what the cache would keep.
#[derive(Debug)]
pub struct Filler {
    cache: Arc<ResultCache>,
    key: String,
    policy_generation: u64,
    batches: Vec<RecordBatch>,
    bytes: usize,
    given_up: bool,
}

impl Filler {
    /// A filler for the answer of `key`.
    pub fn new(cache: Arc<ResultCache>, key: String, policy_generation: u64) -> Filler {
        Filler {
            cache,
            key,
            policy_generation,
            batches: Vec::new(),
            bytes: 0,
            given_up: false,
        }
    }

    /// Keeps a copy of the next batch (batches share their buffers: no data is copied).
    pub fn push(&mut self, batch: &RecordBatch) {
        if self.given_up {
            return;
        }
        self.bytes += batch.get_array_memory_size();
        if self.bytes > self.cache.max_answer_bytes() {
            self.given_up = true;
            self.batches = Vec::new();
            return;
        }
        self.batches.push(batch.clone());
    }

    /// The query ran to its end: store the answer.
    pub fn finish(self, columns: Vec<String>) {
        if self.given_up {
            return;
        }
        self.cache.insert(
            self.key,
            self.policy_generation,
            CachedAnswer {
                batches: Arc::new(self.batches),
                columns,
            },
        );
    }
}

/// Whether an enforced, parameter-bound plan's answer depends only on the lake tables named in
/// `versions`: every scan reads one of them (through its policy), and every function is
/// immutable. Tables read only by a policy's row filter, catalog and audit tables, `now()`,
/// `random()` and session functions all keep the answer out of the cache.
pub fn cacheable(
    plan: &datafusion::logical_expr::LogicalPlan,
    versions: &std::collections::BTreeMap<String, u64>,
) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let known = datafusion::datasource::source_as_provider(&scan.source)
                .ok()
                .and_then(|provider| {
                    super::enforce::PolicyTable::from_provider(provider.as_ref())
                        .map(|t| format!("{}.{}", t.entry.schema, t.entry.name))
                })
                .is_some_and(|name| versions.contains_key(&name));
            if !known {
                ok = false;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        let _ = node.apply_expressions(|expr| {
            expr.apply(|e| {
                let pure = match e {
                    Expr::ScalarFunction(f) => {
                        f.func.signature().volatility == Volatility::Immutable
                    }
                    Expr::AggregateFunction(f) => {
                        f.func.signature().volatility == Volatility::Immutable
                    }
                    Expr::WindowFunction(f) => {
                        f.fun.signature().volatility == Volatility::Immutable
                    }
                    Expr::ScalarVariable(..)
                    | Expr::Placeholder(_)
                    | Expr::HigherOrderFunction(_) => false,
                    _ => true,
                };
                if pure {
                    Ok(TreeNodeRecursion::Continue)
                } else {
                    ok = false;
                    Ok(TreeNodeRecursion::Stop)
                }
            })
        });
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
    }

    fn answer(n: i64) -> CachedAnswer {
        CachedAnswer {
            batches: Arc::new(vec![batch(n)]),
            columns: vec!["dbo.t.n".to_string()],
        }
    }

    #[test]
    fn hits_only_the_exact_key() {
        let cache = ResultCache::new(1 << 20);
        cache.insert("a".into(), 1, answer(3));
        assert!(cache.get("a").is_some());
        assert!(cache.get("a ").is_none());
        assert!(cache.get("b").is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 1));
    }

    #[test]
    fn a_new_policy_retires_every_older_answer() {
        let cache = ResultCache::new(1 << 20);
        cache.insert("a".into(), 1, answer(3));
        cache.insert("b".into(), 2, answer(3));
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some());
    }

    #[test]
    fn stays_within_its_budget_dropping_the_least_recently_used() {
        let one = batch(1000).get_array_memory_size() + 1;
        let cache = ResultCache::new((one * 8) as u64);
        cache.insert("a".into(), 1, answer(1000));
        cache.insert("b".into(), 1, answer(1000));
        assert!(cache.get("a").is_some());
        for key in ["c", "d", "e", "f", "g", "h", "i"] {
            cache.insert(key.into(), 1, answer(1000));
        }
        assert!(cache.stats().bytes <= one * 8);
        assert_eq!(cache.stats().entries, 8);
        assert!(cache.get("i").is_some());
        assert!(cache.get("a").is_some());
        assert!(cache.get("b").is_none(), "least recently used goes first");
    }

    #[test]
    fn refuses_answers_larger_than_an_eighth_and_a_disabled_cache_holds_nothing() {
        let cache = ResultCache::new(8 * 1024);
        cache.insert("big".into(), 1, answer(10_000));
        assert!(cache.get("big").is_none());
        let mut filler = Filler::new(Arc::new(ResultCache::new(8 * 1024)), "k".into(), 1);
        filler.push(&batch(10_000));
        assert!(filler.given_up);
        let off = ResultCache::new(0);
        assert!(!off.enabled());
        off.insert("a".into(), 1, answer(1));
        assert!(off.get("a").is_none());
    }
}
