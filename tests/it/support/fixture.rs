//! Small Delta tables written through `lake::write`, with obviously fake patients; doctors'
//! areas and shifts are the generator's (`ingest::generate::rules`).
//!
//! The fuzz crate compiles this file too (`fuzz/src/lib.rs`), so the fuzzed server and the
//! tested one serve the same tables.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Date32Array, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use lakehouse::ingest::generate::rules::{AREAS, SHIFTS};
use lakehouse::lake::StorageLocation;
use lakehouse::lake::write::{WriteOptions, append};

/// A table to write under `gold/ikhospital/<name>`.
pub struct Table {
    pub name: String,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// Writes the table (one commit per batch).
    pub async fn write(&self, lake: &Path) {
        let location = location(lake, &self.name);
        for batch in &self.batches {
            append(&location, vec![batch.clone()], &WriteOptions::default())
                .await
                .unwrap();
        }
    }
}

/// The location of a gold table.
pub fn location(lake: &Path, name: &str) -> StorageLocation {
    StorageLocation::parse(
        &lake
            .join("gold/ikhospital")
            .join(name)
            .display()
            .to_string(),
        Default::default(),
    )
    .unwrap()
}

pub const COUNTRIES: [&str; 4] = ["Portugal", "Germany", "Portugal", "Brazil"];

/// Patients 1..=n: `Test Patient <i>`, countries cycling through [`COUNTRIES`].
pub fn patients(n: i32) -> RecordBatch {
    patients_named(n, |i| format!("Test Patient {i}"))
}

/// Patients 1..=n named by `name` (the fuzz targets' names carry their leak marker).
pub fn patients_named(n: i32, name: impl Fn(i32) -> String) -> RecordBatch {
    let ids: Vec<i32> = (1..=n).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_patient", DataType::Int32, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("sex", DataType::Utf8, true),
        Field::new("age", DataType::Int32, true),
        Field::new("address", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("number", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids.clone())),
        Arc::new(StringArray::from_iter_values(ids.iter().map(|i| name(*i)))),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| if i % 2 == 0 { "F" } else { "M" }),
        )),
        Arc::new(Int32Array::from_iter_values(
            ids.iter().map(|i| (i * 7) % 100),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("{i} Fake Street\nTestville")),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| COUNTRIES[(*i as usize) % 4]),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("+000 555 {i:04}")),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("patient{i}@example.invalid")),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Visits ids `first..first+n`, patient `(id % n_patients) + 1`.
pub fn events(first: i64, n: i64, n_patients: i32) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("id_patient", DataType::Int32, false),
        Field::new("age", DataType::Int32, true),
        Field::new("id_doctor", DataType::Int32, true),
        Field::new("id_smoke", DataType::Int32, true),
        Field::new("symptoms", DataType::Utf8, true),
        Field::new("date_of_service", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(Int32Array::from_iter_values(
            ids.iter().map(|i| (i % i64::from(n_patients)) as i32 + 1),
        )),
        Arc::new(Int32Array::from_iter_values(
            ids.iter().map(|i| (i % 90) as i32),
        )),
        Arc::new(Int32Array::from_iter_values(
            ids.iter().map(|i| (i % 30) as i32 + 1),
        )),
        Arc::new(Int32Array::from_iter(
            ids.iter()
                .map(|i| (i % 4 != 0).then_some((i % 3) as i32 + 1)),
        )),
        Arc::new(StringArray::from_iter(
            ids.iter().map(|i| (i % 5 != 0).then_some("Cough")),
        )),
        Arc::new(Date32Array::from_iter_values(
            ids.iter().map(|i| 18_262 + (i % 1000) as i32),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Doctors 1..=30.
pub fn doctors() -> RecordBatch {
    let ids: Vec<i32> = (1..=30).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_doctor", DataType::Int32, false),
        Field::new("area", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("shift", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids.clone())),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| AREAS[((i - 1) / 3) as usize]),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("Dr. Test {i}")),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| SHIFTS[((i - 1) % 3) as usize]),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// dim_patient (40 patients), fact_events (200 visits in 2 commits), dim_doctors.
pub fn hospital() -> Vec<Table> {
    vec![
        Table {
            name: "dim_patient".into(),
            batches: vec![patients(40)],
        },
        Table {
            name: "fact_events".into(),
            batches: vec![events(1, 100, 40), events(101, 100, 40)],
        },
        Table {
            name: "dim_doctors".into(),
            batches: vec![doctors()],
        },
    ]
}
