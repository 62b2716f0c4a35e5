//! The benchmark's report: every figure of every engine, its ratio to PostgreSQL, DuckDB and
//! the DataFusion floor from the same run, the targets of issue 8, as JSON and markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::data::TableInfo;
use super::engine::EngineKind;

/// Whether a larger or a smaller figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Times.
    Lower,
    /// Throughputs.
    Higher,
}

/// One measured figure of one engine.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `dashboard`, `import`, `concurrency`, `small`, `pgbench`.
    pub workload: String,
    /// What within the workload: a visual, a table, a client count, a query.
    pub item: String,
    /// The figure's name and unit (`hot_p50_ms`, `rows_per_s`, `qps`).
    pub metric: String,
    /// The engine.
    pub engine: EngineKind,
    /// The figure (a median over the runs where there are runs).
    pub value: f64,
    /// Which way is better.
    pub better: Better,
    /// Result rows, where a result was read.
    pub rows: Option<u64>,
    /// Supporting figures (cold run, percentiles, MB/s, effective clients).
    pub details: BTreeMap<String, f64>,
    /// `value` ÷ PostgreSQL's value for the same item and metric.
    pub vs_postgres: Option<f64>,
    /// `value` ÷ DuckDB's value.
    pub vs_duckdb: Option<f64>,
    /// `value` ÷ bare DataFusion's value.
    pub vs_datafusion: Option<f64>,
}

impl Figure {
    /// A figure without ratios (filled by [`Report::fill_ratios`]).
    pub fn new(
        workload: &str,
        item: &str,
        metric: &str,
        engine: EngineKind,
        value: f64,
        better: Better,
    ) -> Figure {
        Figure {
            workload: workload.to_string(),
            item: item.to_string(),
            metric: metric.to_string(),
            engine,
            value,
            better,
            rows: None,
            details: BTreeMap::new(),
            vs_postgres: None,
            vs_duckdb: None,
            vs_datafusion: None,
        }
    }

    /// Adds a supporting figure.
    pub fn detail(mut self, name: &str, value: f64) -> Figure {
        self.details.insert(name.to_string(), value);
        self
    }

    /// Sets the result rows.
    pub fn rows(mut self, rows: u64) -> Figure {
        self.rows = Some(rows);
        self
    }
}

/// One target of the issue, checked on this run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// What is required.
    pub target: String,
    /// What this run measured.
    pub measured: String,
    /// Whether it is met (None when the figures are missing).
    pub met: Option<bool>,
}

/// Everything one `lakehouse bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `--scale` (1 = 100k patients, 10M visits).
    pub scale: f64,
    /// Patients generated.
    pub patients: u64,
    /// Visits generated.
    pub events: u64,
    /// Runs per figure (medians over these).
    pub runs: usize,
    /// Seconds per concurrency level and per small-query loop.
    pub seconds: f64,
    /// `release` or `debug`: debug figures are not the product's.
    pub build: String,
    /// CPU cores of the machine.
    pub cores: usize,
    /// When the run started (UTC).
    pub started_at: String,
    /// Versions of the engines compared.
    pub versions: BTreeMap<String, String>,
    /// The gold tables and their rows.
    pub tables: Vec<TableInfo>,
    /// Seconds building gold in this run (0 when the directory was reused).
    pub gold_build_seconds: f64,
    /// Seconds loading PostgreSQL in this run (0 when reused).
    pub postgres_load_seconds: f64,
    /// Every figure.
    pub figures: Vec<Figure>,
    /// Every dashboard visual gave the same answer on all engines.
    pub answers_agree: bool,
    /// Row count of each visual's answer by engine.
    pub answer_rows: BTreeMap<String, BTreeMap<String, u64>>,
    /// Peak resident memory of the lakehouse server (VmHWM), bytes.
    pub server_peak_rss_bytes: Option<u64>,
    /// The targets against this run.
    pub targets: Vec<TargetCheck>,
    /// What the reader must know (clamped clients, skipped tools).
    pub notes: Vec<String>,
}

impl Report {
    /// The figure of `engine` for a workload, item and metric.
    pub fn figure(
        &self,
        workload: &str,
        item: &str,
        metric: &str,
        engine: EngineKind,
    ) -> Option<&Figure> {
        self.figures.iter().find(|f| {
            f.workload == workload && f.item == item && f.metric == metric && f.engine == engine
        })
    }

    /// Fills every figure's ratios to the other engines' same figure.
    pub fn fill_ratios(&mut self) {
        let snapshot = self.figures.clone();
        let find = |f: &Figure, engine: EngineKind| {
            snapshot
                .iter()
                .find(|o| {
                    o.workload == f.workload
                        && o.item == f.item
                        && o.metric == f.metric
                        && o.engine == engine
                })
                .map(|o| o.value)
        };
        for figure in &mut self.figures {
            let ratio = |other: Option<f64>| match other {
                Some(o) if o > 0.0 => Some(figure.value / o),
                _ => None,
            };
            figure.vs_postgres = ratio(find(figure, EngineKind::Postgres));
            figure.vs_duckdb = ratio(find(figure, EngineKind::Duckdb));
            figure.vs_datafusion = ratio(find(figure, EngineKind::Datafusion));
        }
    }

    /// Checks the targets on the lakehouse figures.
    pub fn check_targets(&mut self) {
        let mut checks = Vec::new();
        let lh = |w: &str, i: &str, m: &str| self.figure(w, i, m, EngineKind::Lakehouse);
        // The dashboard targets are checked with the result cache (what a dashboard's viewers
        // get after the first one) and without it (every answer computed).
        for (engine, label) in [
            (EngineKind::Lakehouse, ""),
            (EngineKind::LakehouseUncached, " (result cache off)"),
        ] {
            let dash = self.figure("dashboard", "all_visuals", "hot_p50_ms", engine);
            checks.push(check(
                &format!("dashboard p50 at least 5x faster than PostgreSQL{label}"),
                dash.and_then(|f| f.vs_postgres).map(|r| 1.0 / r),
                |x| x >= 5.0,
                |x| format!("{x:.2}x faster"),
            ));
            checks.push(check(
                &format!("dashboard p50 within 1.5x of DuckDB in process{label}"),
                dash.and_then(|f| f.vs_duckdb),
                |x| x <= 1.5,
                |x| format!("{x:.2}x DuckDB's time"),
            ));
            checks.push(check(
                &format!(
                    "wire and policy overhead at most 20% over bare DataFusion (dashboard p50){label}"
                ),
                dash.and_then(|f| f.vs_datafusion),
                |x| x <= 1.2,
                |x| format!("{:+.0}% over DataFusion", (x - 1.0) * 100.0),
            ));
        }
        checks.push(check(
            "select 1 at least half of PostgreSQL's queries/s",
            lh("small", "select_1", "qps").and_then(|f| f.vs_postgres),
            |x| x >= 0.5,
            |x| format!("{x:.2}x PostgreSQL's qps"),
        ));
        checks.push(check(
            "import at least PostgreSQL's rows/s (all gold tables)",
            lh("import", "all_tables", "rows_per_s").and_then(|f| f.vs_postgres),
            |x| x >= 1.0,
            |x| format!("{x:.2}x PostgreSQL's rows/s"),
        ));
        self.targets = checks;
    }

    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# lakehouse bench\n");
        let _ = writeln!(
            out,
            "Scale {} ({} patients, {} visits), {} runs per figure (medians), {} s per load level, \
             {} build, {} cores, started {}.\n",
            self.scale,
            self.patients,
            self.events,
            self.runs,
            self.seconds,
            self.build,
            self.cores,
            self.started_at
        );
        for (name, version) in &self.versions {
            let _ = writeln!(out, "- {name}: {version}");
        }
        let rss = self
            .server_peak_rss_bytes
            .map_or("unknown".to_string(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            });
        let _ = writeln!(out, "- lakehouse server peak RSS (VmHWM): {rss}");
        let rows: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("{} {}", t.name, t.rows))
            .collect();
        let _ = writeln!(out, "- gold rows: {}", rows.join(", "));
        let _ = writeln!(
            out,
            "- gold built in {:.1} s, PostgreSQL loaded and indexed in {:.1} s (0 when reused)",
            self.gold_build_seconds, self.postgres_load_seconds
        );
        let _ = writeln!(
            out,
            "- dashboard answers identical on all engines: {}\n",
            if self.answers_agree { "yes" } else { "NO" }
        );
        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(out, "| target | measured | met |\n|---|---|---|");
        for t in &self.targets {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "n/a",
            };
            let _ = writeln!(out, "| {} | {} | {met} |", t.target, t.measured);
        }
        let _ = writeln!(
            out,
            "\nRatios are this engine's figure ÷ the other engine's: for times (ms) below 1 is \
             faster, for throughputs (qps, rows/s) above 1 is faster.\n"
        );
        let mut workloads: Vec<&str> = Vec::new();
        for f in &self.figures {
            if !workloads.contains(&f.workload.as_str()) {
                workloads.push(&f.workload);
            }
        }
        let ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        for workload in workloads {
            let _ = writeln!(out, "## {workload}\n");
            let _ = writeln!(
                out,
                "| item | metric | engine | value | ÷ postgres | ÷ duckdb | ÷ datafusion | details |\n\
                 |---|---|---|---:|---:|---:|---:|---|"
            );
            for f in self.figures.iter().filter(|f| f.workload == workload) {
                let mut details: Vec<String> = f
                    .details
                    .iter()
                    .map(|(k, v)| format!("{k} {}", number(*v)))
                    .collect();
                if let Some(rows) = f.rows {
                    details.insert(0, format!("rows {rows}"));
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    f.item,
                    f.metric,
                    f.engine.name(),
                    number(f.value),
                    ratio(f.vs_postgres),
                    ratio(f.vs_duckdb),
                    ratio(f.vs_datafusion),
                    details.join(", ")
                );
            }
            let _ = writeln!(out);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "## Notes\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

fn check(
    target: &str,
    measured: Option<f64>,
    met: impl Fn(f64) -> bool,
    describe: impl Fn(f64) -> String,
) -> TargetCheck {
    TargetCheck {
        target: target.to_string(),
        measured: measured.map_or_else(|| "not measured".to_string(), &describe),
        met: measured.map(met),
    }
}

/// A figure printed with sensible precision.
fn number(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1000.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The nearest-rank percentile `p` (0-100) of `values` (0 when empty).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
