//! `lakehouse generate`: the ikhospital source data, following data-model.md's rules,
//! deterministic for a seed.
//!
//! The rows come from [`Generator`], a pure, chunked producer that never depends on where the
//! rows go. [`mysql`] and [`postgres`] bulk-load them into real databases (multi-row INSERTs and
//! COPY FROM STDIN); the demo's in-memory source (`source::embedded`) turns the same rows into
//! Arrow batches.

pub mod mysql;
pub mod names;
pub mod postgres;
pub mod rules;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use self::rules::{Patient, Visit, VisitPatient};
use super::{Error, Result};

/// The MySQL source DDL (`sql/sources/mysql/ikhospital.sql`).
pub const MYSQL_DDL: &str = include_str!("../../../sql/sources/mysql/ikhospital.sql");
/// The PostgreSQL source DDL (`sql/sources/postgres/ikhospital.sql`).
pub const POSTGRES_DDL: &str = include_str!("../../../sql/sources/postgres/ikhospital.sql");
/// The 100 openFDA drug-label records of the original (`sql/sources/postgres/medicine.csv`).
pub const MEDICINE_CSV: &str = include_str!("../../../sql/sources/postgres/medicine.csv");
/// The 30 doctors of the original (`sql/sources/mysql/doctors.csv`).
pub const DOCTORS_CSV: &str = include_str!("../../../sql/sources/mysql/doctors.csv");

/// Default number of patients (the original's size).
pub const DEFAULT_PATIENTS: u64 = 1_500;
/// Default number of visits (the original's size).
pub const DEFAULT_EVENTS: u64 = 6_000;
/// Rows per generated chunk: a bulk INSERT or COPY message, or an Arrow batch.
pub const CHUNK_ROWS: usize = 8_192;

/// What `lakehouse generate` does.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// MySQL server URL; its path names the database (`ikhospital` when absent).
    pub mysql_url: Option<String>,
    /// PostgreSQL server URL; its path names the database (`ikhospital` when absent).
    pub postgres_url: Option<String>,
    /// New patients.
    pub patients: u64,
    /// New visits.
    pub events: u64,
    /// Seed of the random generator.
    pub seed: u64,
    /// Add to what is there instead of starting afresh.
    pub append: bool,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            mysql_url: None,
            postgres_url: None,
            patients: DEFAULT_PATIENTS,
            events: DEFAULT_EVENTS,
            seed: 1,
            append: false,
            progress: true,
        }
    }
}

/// What `generate` wrote.
#[derive(Debug, Clone, Default)]
pub struct GenerateReport {
    /// Patients inserted.
    pub patients: u64,
    /// Visits inserted.
    pub events: u64,
    /// Medicines inserted (0 when they were there already).
    pub medicines: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Creates the source databases if missing and fills them.
pub async fn generate(options: &GenerateOptions) -> Result<GenerateReport> {
    if options.mysql_url.is_none() && options.postgres_url.is_none() {
        return Err(Error::Invalid(
            "nothing to generate: give --mysql URL and/or --postgres URL".to_string(),
        ));
    }
    let started = Instant::now();
    let mut report = GenerateReport::default();
    let progress = Progress::new(options.progress, options.patients + options.events);
    if let Some(url) = &options.postgres_url {
        report.medicines = postgres::generate(url, options.append).await?;
    }
    if let Some(url) = &options.mysql_url {
        let (patients, events) = mysql::generate(url, options, &progress).await?;
        report.patients = patients;
        report.events = events;
    }
    progress.finish();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A progress bar on stderr when it is a terminal, nothing otherwise.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// A bar of `total` rows, shown only when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool, total: u64) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress(Some(bar))
    }

    /// Names the current step.
    pub fn step(&self, message: &'static str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Counts `n` more rows done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Mixes a seed with a purpose and a position so that each stream of rows has its own
/// generator: adding visits later never replays the visits of an earlier run.
fn derive_seed(seed: u64, purpose: u64, offset: u64) -> u64 {
    // splitmix64 finaliser over the three inputs.
    let mut z = seed
        .wrapping_add(purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(offset.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Produces patients and visits in chunks, deterministically for a seed and a starting point.
pub struct Generator {
    patient_rng: ChaCha8Rng,
    visit_rng: ChaCha8Rng,
    next_patient: i32,
    patients_left: u64,
    visits_left: u64,
    first_day: NaiveDate,
    n_days: u64,
    /// Every patient visits are drawn from: those already in the source, then the new ones.
    pub known_patients: Vec<VisitPatient>,
}

impl Generator {
    /// A generator of `patients` new patients (numbered after `existing`'s highest id) and
    /// `events` new visits over existing and new patients, with service dates up to the day
    /// before `today`.
    pub fn new(
        seed: u64,
        existing: Vec<VisitPatient>,
        existing_visits: u64,
        patients: u64,
        events: u64,
        today: NaiveDate,
    ) -> Generator {
        let max_id = existing.iter().map(|p| p.id_patient).max().unwrap_or(0);
        let n_existing = u64::try_from(existing.len()).unwrap_or(0);
        Generator {
            patient_rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, 1, n_existing)),
            visit_rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, 2, existing_visits)),
            next_patient: max_id.saturating_add(1),
            patients_left: patients,
            visits_left: events,
            first_day: rules::first_service_day(),
            n_days: rules::service_days(today),
            known_patients: existing,
        }
    }

    /// The next chunk of new patients; empty when all are made. Patients come before visits so
    /// that visits can be drawn from them.
    pub fn next_patients(&mut self) -> Vec<Patient> {
        let n = self.patients_left.min(CHUNK_ROWS as u64);
        self.patients_left -= n;
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            let patient = rules::patient(&mut self.patient_rng, self.next_patient);
            self.next_patient = self.next_patient.saturating_add(1);
            self.known_patients.push(VisitPatient {
                id_patient: patient.id_patient,
                name: patient.name.clone(),
                sex: patient.sex.to_string(),
                age: patient.age,
            });
            out.push(patient);
        }
        out
    }

    /// The next chunk of visits; empty when all are made (or when there is no patient).
    pub fn next_visits(&mut self) -> Vec<Visit> {
        let n = self.visits_left.min(CHUNK_ROWS as u64);
        self.visits_left -= n;
        (0..n)
            .filter_map(|_| {
                rules::visit(
                    &mut self.visit_rng,
                    &self.known_patients,
                    self.first_day,
                    self.n_days,
                )
            })
            .collect()
    }
}

/// Today's date, local time: visits end the day before.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// One doctor of `doctors.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Doctor {
    /// ID_DOCTOR.
    pub id_doctor: i32,
    /// Specialty.
    pub area: String,
    /// Name.
    pub name: String,
    /// ID_SHIFT.
    pub id_shift: i32,
}

/// The 30 doctors.
pub fn doctors() -> Vec<Doctor> {
    parse_csv(DOCTORS_CSV)
        .into_iter()
        .skip(1)
        .filter_map(|row| match row.as_slice() {
            [_, id, area, name, shift] => Some(Doctor {
                id_doctor: id.as_deref()?.parse().ok()?,
                area: area.clone()?,
                name: name.clone()?,
                id_shift: shift.as_deref()?.parse().ok()?,
            }),
            _ => None,
        })
        .collect()
}

/// The 100 medicines: the eight text columns of `pharmacy.medicine` after `id` (`None` for an
/// empty field).
pub fn medicines() -> Vec<Vec<Option<String>>> {
    parse_csv(MEDICINE_CSV)
        .into_iter()
        .skip(1)
        .filter(|row| row.len() == 8)
        .map(|row| row.into_iter().skip(1).collect())
        .collect()
}

/// A small RFC 4180 reader for the two embedded files: quoted fields may hold commas, quotes
/// (doubled) and newlines; an empty unquoted field is `None`.
pub fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row: Vec<Option<String>> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                quoted = true;
            }
            ',' => {
                row.push(finish_field(&mut field, &mut quoted));
            }
            '\r' => {}
            '\n' => {
                row.push(finish_field(&mut field, &mut quoted));
                rows.push(std::mem::take(&mut row));
            }
            other => field.push(other),
        }
    }
    if !field.is_empty() || quoted || !row.is_empty() {
        row.push(finish_field(&mut field, &mut quoted));
        rows.push(row);
    }
    rows
}

fn finish_field(field: &mut String, quoted: &mut bool) -> Option<String> {
    let value = std::mem::take(field);
    let was_quoted = std::mem::replace(quoted, false);
    (was_quoted || !value.is_empty()).then_some(value)
}

/// Splits a DDL file into statements: `--` comments removed, `;` ends a statement. Enough for
/// our own files, which hold no string literal with `;` or `--`.
pub fn split_statements(ddl: &str) -> Vec<String> {
    let without_comments: String = ddl
        .lines()
        .map(|line| match line.find("--") {
            Some(idx) => &line[..idx],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A database name taken from a URL path; only plain identifiers, since it is spliced into DDL.
pub fn database_name(from_url: Option<&str>) -> Result<String> {
    let name = from_url
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty())
        .unwrap_or("ikhospital");
    let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(name.to_string())
    } else {
        Err(Error::Invalid(format!(
            "invalid database name \"{name}\": use letters, digits and _"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_parse() {
        let doctors = doctors();
        assert_eq!(doctors.len(), 30);
        for doctor in &doctors {
            assert_eq!(doctor.area, rules::area_of(doctor.id_doctor));
            assert_eq!(doctor.id_shift, rules::shift_of(doctor.id_doctor));
        }
        let medicines = medicines();
        assert_eq!(medicines.len(), 100);
        assert_eq!(medicines[0][0].as_deref(), Some("SILICEA"));
        assert_eq!(
            medicines[0][2].as_deref(),
            Some("Rxhomeo Private Limited d.b.a. Rxhomeo, Inc")
        );
        assert!(medicines.iter().all(|m| m.len() == 7));
    }

    #[test]
    fn csv_quotes_and_newlines() {
        let rows = parse_csv("a,\"b,\"\"c\"\"\nd\",,\"\"\n1,2,3,4");
        assert_eq!(
            rows[0],
            vec![
                Some("a".to_string()),
                Some("b,\"c\"\nd".to_string()),
                None,
                Some(String::new())
            ]
        );
        assert_eq!(rows[1].len(), 4);
    }

    #[test]
    fn ddl_splits_into_statements() {
        let mysql = split_statements(MYSQL_DDL);
        assert_eq!(mysql.len(), 4, "{mysql:?}");
        assert!(
            mysql
                .iter()
                .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS"))
        );
        assert_eq!(split_statements(POSTGRES_DDL).len(), 2);
    }

    #[test]
    fn database_names_are_checked() {
        assert_eq!(database_name(None).unwrap(), "ikhospital");
        assert_eq!(database_name(Some("/ikh_t_1")).unwrap(), "ikh_t_1");
        assert!(database_name(Some("x`; drop")).is_err());
    }

    #[test]
    fn generator_is_deterministic_and_appends_new_ids() {
        let day = NaiveDate::from_ymd_opt(2024, 1, 10).unwrap();
        let run = |existing: Vec<VisitPatient>| {
            let mut generator = Generator::new(9, existing, 0, 20_000, 30_000, day);
            let patients: Vec<_> = std::iter::from_fn(|| {
                Some(generator.next_patients()).filter(|chunk| !chunk.is_empty())
            })
            .flatten()
            .collect();
            let visits: Vec<_> = std::iter::from_fn(|| {
                Some(generator.next_visits()).filter(|chunk| !chunk.is_empty())
            })
            .flatten()
            .collect();
            (patients, visits, generator.known_patients)
        };
        let (p1, v1, known) = run(Vec::new());
        let (p2, v2, _) = run(Vec::new());
        assert_eq!(p1, p2);
        assert_eq!(v1, v2);
        assert_eq!(p1.len(), 20_000);
        assert_eq!(v1.len(), 30_000);
        assert_eq!(p1.last().unwrap().id_patient, 20_000);
        let (p3, _, _) = run(known);
        assert_eq!(p3[0].id_patient, 20_001);
        let countries: std::collections::BTreeSet<_> = p1.iter().map(|p| p.country).collect();
        assert_eq!(countries.len(), 8);
    }
}
