//! The generator as a source: the ikhospital tables produced in memory, chunk by chunk, with
//! the same columns and types as their MySQL and PostgreSQL originals. The demo ingests from it
//! through the same bronze/silver/gold code as from real databases.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Int32Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::{BatchStream, ColumnInfo, ReadScope, Source, TableInfo, Watermark, Wire};
use crate::ingest::generate::{self, Generator};
use crate::ingest::{Error, Result};

/// Which original database an embedded source stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedDatabase {
    /// `events`, `doctors`, `patient`, `shift`.
    Mysql,
    /// `pharmacy.medicine`.
    Postgres,
}

/// Generated ikhospital tables served from memory.
pub struct EmbeddedSource {
    name: String,
    database: EmbeddedDatabase,
    patients: u64,
    events: u64,
    seed: u64,
    today: NaiveDate,
}

impl EmbeddedSource {
    /// The tables `lakehouse generate` would put in `database`, with `patients` patients and
    /// `events` visits from `seed`, visits ending the day before `today`.
    pub fn new(
        name: &str,
        database: EmbeddedDatabase,
        patients: u64,
        events: u64,
        seed: u64,
        today: NaiveDate,
    ) -> EmbeddedSource {
        EmbeddedSource {
            name: name.to_string(),
            database,
            patients,
            events,
            seed,
            today,
        }
    }

    /// When every generated patient row was last updated: the start of `today`.
    fn updated_at_micros(&self) -> i64 {
        self.today
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .unwrap_or(0)
    }
}

fn column(name: &str, source_type: &str, data_type: DataType, nullable: bool) -> ColumnInfo {
    ColumnInfo {
        name: name.to_string(),
        source_type: source_type.to_string(),
        data_type,
        nullable,
        wire: Wire::Arrow,
    }
}

fn table(
    schema: &str,
    name: &str,
    comment: &str,
    columns: Vec<ColumnInfo>,
    key: &str,
    auto_increment: bool,
) -> TableInfo {
    TableInfo {
        schema: schema.to_string(),
        name: name.to_string(),
        lake_name: name.to_string(),
        columns,
        primary_key: vec![key.to_string()],
        auto_increment: auto_increment.then(|| key.to_string()),
        comment: comment.to_string(),
    }
}

/// The tables of the MySQL DDL (`sql/sources/mysql/ikhospital.sql`) as discovery reports them.
pub fn mysql_tables() -> Vec<TableInfo> {
    let int = |name: &str, nullable: bool| column(name, "int(11)", DataType::Int32, nullable);
    let text =
        |name: &str, size: u32| column(name, &format!("varchar({size})"), DataType::Utf8, true);
    vec![
        table(
            "ikhospital",
            "doctors",
            "",
            vec![
                int("ID", false),
                int("ID_DOCTOR", false),
                text("AREA", 100),
                text("NAME", 100),
                int("ID_SHIFT", true),
            ],
            "ID",
            true,
        ),
        table(
            "ikhospital",
            "events",
            "append-only: one row per visit",
            vec![
                int("ID", false),
                int("ID_PATIENT", false),
                text("PATIENT", 100),
                text("SEX", 2),
                int("AGE", true),
                int("ID_DOCTOR", true),
                int("ID_SMOKE", true),
                text("SYMPTOMS", 20),
                column("DATE_OF_SERVICE", "date", DataType::Date32, true),
            ],
            "ID",
            true,
        ),
        table(
            "ikhospital",
            "patient",
            "",
            vec![
                int("ID", false),
                int("ID_PATIENT", false),
                text("NAME", 100),
                text("SEX", 100),
                int("AGE", true),
                text("ADDRESS", 100),
                text("COUNTRY", 100),
                text("NUMBER", 50),
                text("EMAIL", 100),
                column(
                    "UPDATED_AT",
                    "timestamp(6)",
                    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(super::types::UTC))),
                    false,
                ),
            ],
            "ID",
            true,
        ),
        table(
            "ikhospital",
            "shift",
            "",
            vec![
                int("ID", false),
                int("ID_SHIFT", false),
                text("SHIFT_NAME", 20),
            ],
            "ID",
            true,
        ),
    ]
}

/// The table of the PostgreSQL DDL.
pub fn postgres_tables() -> Vec<TableInfo> {
    let mut columns = vec![column("id", "int4", DataType::Int32, false)];
    for name in [
        "brand_name",
        "generic_name",
        "manufacturer_name",
        "product_ndc",
        "product_type",
        "route",
        "substance_name",
    ] {
        columns.push(column(name, "text", DataType::Utf8, true));
    }
    vec![table("pharmacy", "medicine", "", columns, "id", true)]
}

/// Keeps the rows whose watermark (an integer column) is above `after`.
fn after_id(scope: &ReadScope) -> Result<i64> {
    match scope {
        ReadScope::All => Ok(i64::MIN),
        ReadScope::After { after: None, .. } => Ok(i64::MIN),
        ReadScope::After {
            column,
            after: Some(Watermark::Int(v)),
        } if column.eq_ignore_ascii_case("id") => Ok(*v),
        ReadScope::After { column, .. } => Err(Error::Invalid(format!(
            "the embedded source reads incrementally by ID only, not by \"{column}\""
        ))),
    }
}

fn batch(table: &TableInfo, arrays: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(table.arrow_schema(), arrays)?)
}

#[async_trait]
impl Source for EmbeddedSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<TableInfo>> {
        Ok(match self.database {
            EmbeddedDatabase::Mysql => mysql_tables(),
            EmbeddedDatabase::Postgres => postgres_tables(),
        })
    }

    async fn read(
        &self,
        table: &TableInfo,
        scope: &ReadScope,
        _batch_rows: usize,
    ) -> Result<BatchStream> {
        // The patient rows' UPDATED_AT never moves, so a watermark on it means "nothing new".
        if let ReadScope::After {
            column,
            after: Some(Watermark::Timestamp(_)),
        } = scope
            && column.eq_ignore_ascii_case("updated_at")
        {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let after = match scope {
            ReadScope::After { column, .. } if column.eq_ignore_ascii_case("updated_at") => {
                i64::MIN
            }
            other => after_id(other)?,
        };
        let batches: Vec<Result<RecordBatch>> = match table.name.as_str() {
            "doctors" => {
                let doctors = generate::doctors();
                let ids: Vec<i32> = doctors.iter().map(|d| d.id_doctor).collect();
                let rows: Vec<usize> = (0..doctors.len())
                    .filter(|&i| i64::from(ids[i]) > after)
                    .collect();
                let int = |f: &dyn Fn(usize) -> i32| -> ArrayRef {
                    Arc::new(
                        rows.iter()
                            .map(|&i| Some(f(i)))
                            .collect::<datafusion::arrow::array::Int32Array>(),
                    )
                };
                let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
                    Arc::new(
                        rows.iter()
                            .map(|&i| Some(f(i)))
                            .collect::<datafusion::arrow::array::StringArray>(),
                    )
                };
                vec![batch(
                    table,
                    vec![
                        int(&|i| doctors[i].id_doctor),
                        int(&|i| doctors[i].id_doctor),
                        text(&|i| doctors[i].area.clone()),
                        text(&|i| doctors[i].name.clone()),
                        int(&|i| doctors[i].id_shift),
                    ],
                )]
            }
            "shift" => {
                let rows: Vec<usize> = (0..3).filter(|&i| (i as i64) + 1 > after).collect();
                let ids: ArrayRef = Arc::new(
                    rows.iter()
                        .map(|&i| Some(i as i32 + 1))
                        .collect::<datafusion::arrow::array::Int32Array>(),
                );
                let names: ArrayRef = Arc::new(
                    rows.iter()
                        .map(|&i| Some(crate::ingest::generate::rules::SHIFTS[i]))
                        .collect::<datafusion::arrow::array::StringArray>(),
                );
                vec![batch(table, vec![ids.clone(), ids, names])]
            }
            "medicine" => {
                let medicines = generate::medicines();
                let mut arrays: Vec<ArrayRef> = Vec::new();
                let rows: Vec<usize> = (0..medicines.len())
                    .filter(|&i| (i as i64) + 1 > after)
                    .collect();
                arrays.push(Arc::new(
                    rows.iter()
                        .map(|&i| Some(i as i32 + 1))
                        .collect::<datafusion::arrow::array::Int32Array>(),
                ));
                for col in 0..7 {
                    arrays.push(Arc::new(
                        rows.iter()
                            .map(|&i| medicines[i].get(col).cloned().flatten())
                            .collect::<datafusion::arrow::array::StringArray>(),
                    ));
                }
                vec![batch(table, arrays)]
            }
            "patient" | "events" => {
                return self.read_generated(table, after);
            }
            other => {
                return Err(Error::Invalid(format!(
                    "the embedded source has no table \"{other}\""
                )));
            }
        };
        Ok(Box::pin(futures::stream::iter(batches)))
    }

    async fn count(&self, table: &TableInfo) -> Result<u64> {
        Ok(match table.name.as_str() {
            "doctors" => 30,
            "shift" => 3,
            "medicine" => 100,
            "patient" => self.patients,
            "events" => self.events,
            _ => 0,
        })
    }
}

impl EmbeddedSource {
    /// Patients or visits, generated chunk by chunk while the stream is read.
    fn read_generated(&self, table: &TableInfo, after: i64) -> Result<BatchStream> {
        let mut generator = Generator::new(
            self.seed,
            Vec::new(),
            0,
            self.patients,
            self.events,
            self.today,
        );
        let table = table.clone();
        let updated_at = self.updated_at_micros();
        let is_events = table.name == "events";
        if is_events {
            // Visits are drawn from all patients: make them first (cheap, and not kept as rows).
            while !generator.next_patients().is_empty() {}
        }
        let state = (generator, 0i64, table, false);
        let stream = futures::stream::unfold(
            state,
            move |(mut generator, mut next_id, table, done)| async move {
                if done {
                    return None;
                }
                let result = if is_events {
                    let visits = generator.next_visits();
                    if visits.is_empty() {
                        return None;
                    }
                    let mut id = Int32Builder::new();
                    let mut id_patient = Int32Builder::new();
                    let mut patient = StringBuilder::new();
                    let mut sex = StringBuilder::new();
                    let mut age = Int32Builder::new();
                    let mut id_doctor = Int32Builder::new();
                    let mut id_smoke = Int32Builder::new();
                    let mut symptoms = StringBuilder::new();
                    let mut date = Date32Builder::new();
                    for visit in &visits {
                        next_id += 1;
                        if next_id <= after {
                            continue;
                        }
                        let Some(p) = generator.known_patients.get(visit.patient_idx) else {
                            continue;
                        };
                        id.append_value(i32::try_from(next_id).unwrap_or(i32::MAX));
                        id_patient.append_value(p.id_patient);
                        patient.append_value(&p.name);
                        sex.append_value(&p.sex);
                        age.append_value(p.age);
                        id_doctor.append_value(visit.id_doctor);
                        id_smoke.append_option(visit.id_smoke);
                        symptoms.append_option(visit.symptoms);
                        date.append_value(days(visit.date_of_service));
                    }
                    batch(
                        &table,
                        vec![
                            Arc::new(id.finish()),
                            Arc::new(id_patient.finish()),
                            Arc::new(patient.finish()),
                            Arc::new(sex.finish()),
                            Arc::new(age.finish()),
                            Arc::new(id_doctor.finish()),
                            Arc::new(id_smoke.finish()),
                            Arc::new(symptoms.finish()),
                            Arc::new(date.finish()),
                        ],
                    )
                } else {
                    let patients = generator.next_patients();
                    if patients.is_empty() {
                        return None;
                    }
                    let mut id = Int32Builder::new();
                    let mut id_patient = Int32Builder::new();
                    let mut name = StringBuilder::new();
                    let mut sex = StringBuilder::new();
                    let mut age = Int32Builder::new();
                    let mut address = StringBuilder::new();
                    let mut country = StringBuilder::new();
                    let mut number = StringBuilder::new();
                    let mut email = StringBuilder::new();
                    let mut updated = TimestampMicrosecondBuilder::new();
                    for p in &patients {
                        next_id += 1;
                        if next_id <= after {
                            continue;
                        }
                        id.append_value(i32::try_from(next_id).unwrap_or(i32::MAX));
                        id_patient.append_value(p.id_patient);
                        name.append_value(&p.name);
                        sex.append_value(p.sex);
                        age.append_value(p.age);
                        address.append_value(&p.address);
                        country.append_value(p.country);
                        number.append_value(&p.number);
                        email.append_value(&p.email);
                        updated.append_value(updated_at);
                    }
                    batch(
                        &table,
                        vec![
                            Arc::new(id.finish()),
                            Arc::new(id_patient.finish()),
                            Arc::new(name.finish()),
                            Arc::new(sex.finish()),
                            Arc::new(age.finish()),
                            Arc::new(address.finish()),
                            Arc::new(country.finish()),
                            Arc::new(number.finish()),
                            Arc::new(email.finish()),
                            Arc::new(updated.finish().with_timezone(super::types::UTC)),
                        ],
                    )
                };
                let failed = result.is_err();
                Some((result, (generator, next_id, table, failed)))
            },
        );
        Ok(Box::pin(stream))
    }
}

fn days(date: NaiveDate) -> i32 {
    use chrono::Datelike as _;
    date.num_days_from_ce() - 719_163
}
