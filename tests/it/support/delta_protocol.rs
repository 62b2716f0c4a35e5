//! Delta tables written by hand from the protocol specification (delta-io/delta PROTOCOL.md),
//! the way Databricks, Fabric and Spark write them, with no Delta library involved: what the
//! server is tested against is what the specification says, not what deltalake's own writer
//! happens to produce. Deletion vectors (inline and on-disk), column mapping in name mode with
//! physical names and Parquet field ids, v2 checkpoints (UUID-named, JSON), table features.
//!
//! The tables hold patients `(id_patient int, name string, country string)`: the shape of
//! `dbo.dim_patient`, so the test grants' masks and row filters apply to them. Each writer keeps
//! the rows it left live, from which the tests compute their expected answers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use serde_json::{Value, json};

/// One patient row as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Patient {
    pub id: i32,
    pub name: String,
    pub country: Option<String>,
}

/// Patients `first..first+n`, countries cycling like the default fixture's.
pub fn patients(first: i32, n: i32) -> Vec<Patient> {
    (first..first + n)
        .map(|id| Patient {
            id,
            name: format!("Interop Patient {id}"),
            country: Some(super::fixture::COUNTRIES[(id as usize) % 4].to_string()),
        })
        .collect()
}

/// A column: its logical name (what SQL sees), and with column mapping its physical name in
/// the Parquet files and its id.
#[derive(Debug, Clone)]
pub struct Column {
    pub logical: &'static str,
    pub physical: String,
    pub id: i64,
    pub ty: &'static str,
}

/// Column mapping for a table: `None` writes plain names (no mapping).
#[derive(Debug, Clone)]
pub struct Columns {
    pub mapped: bool,
    pub id_patient: Column,
    pub name: Column,
    pub country: Column,
}

impl Columns {
    /// Plain names, no column mapping.
    pub fn plain() -> Columns {
        let col = |logical, id, ty| Column {
            logical,
            physical: logical.to_string(),
            id,
            ty,
        };
        Columns {
            mapped: false,
            id_patient: col("id_patient", 1, "integer"),
            name: col("name", 2, "string"),
            country: col("country", 3, "string"),
        }
    }

    /// Name-mode column mapping with `col-<uuid>` physical names, as Databricks writes them.
    pub fn mapped() -> Columns {
        let col = |logical, id, ty| Column {
            logical,
            physical: format!("col-{}", uuid::Uuid::new_v4()),
            id,
            ty,
        };
        Columns {
            mapped: true,
            id_patient: col("id_patient", 1, "integer"),
            name: col("name", 2, "string"),
            country: col("country", 3, "string"),
        }
    }

    fn all(&self) -> [&Column; 3] {
        [&self.id_patient, &self.name, &self.country]
    }

    /// The `schemaString` of the metaData action.
    fn schema_string(&self) -> String {
        let fields: Vec<Value> = self
            .all()
            .iter()
            .map(|c| {
                let metadata = if self.mapped {
                    json!({
                        "delta.columnMapping.id": c.id,
                        "delta.columnMapping.physicalName": c.physical,
                    })
                } else {
                    json!({})
                };
                json!({
                    "name": c.logical,
                    "type": c.ty,
                    "nullable": c.logical != "id_patient",
                    "metadata": metadata,
                })
            })
            .collect();
        json!({"type": "struct", "fields": fields}).to_string()
    }
}

/// A data file as written: where, how big, and which rows in which order (row index = the
/// position a deletion vector names).
#[derive(Debug, Clone)]
pub struct DataFile {
    pub path: String,
    pub size: u64,
    pub rows: Vec<Patient>,
    pub stats: String,
}

/// A hand-written Delta table.
pub struct Table {
    pub dir: PathBuf,
    pub columns: Columns,
    next_version: u64,
    /// Each live file, the row indexes its deletion vector deletes, and the vector's descriptor.
    live: Vec<(DataFile, BTreeSet<u64>, Option<Value>)>,
}

/// Epoch milliseconds, for `modificationTime` and `createdTime`.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The protocol action with table features (reader version 3, writer version 7).
pub fn protocol(reader: &[&str], writer: &[&str]) -> Value {
    json!({"protocol": {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": reader,
        "writerFeatures": writer,
    }})
}

impl Table {
    /// A new, empty table directory under `lake/gold/ikhospital/<name>`.
    pub fn create(lake: &Path, name: &str, columns: Columns) -> Table {
        let dir = lake.join("gold/ikhospital").join(name);
        std::fs::create_dir_all(dir.join("_delta_log")).unwrap();
        Table {
            dir,
            columns,
            next_version: 0,
            live: Vec::new(),
        }
    }

    /// The metaData action, with the table configuration given.
    pub fn metadata(&self, configuration: &[(&str, &str)]) -> Value {
        let mut config = serde_json::Map::new();
        for (k, v) in configuration {
            config.insert((*k).to_string(), json!(v));
        }
        if self.columns.mapped {
            config.insert("delta.columnMapping.mode".into(), json!("name"));
            let max = self.columns.all().iter().map(|c| c.id).max().unwrap_or(0);
            config.insert(
                "delta.columnMapping.maxColumnId".into(),
                json!(max.to_string()),
            );
        }
        json!({"metaData": {
            "id": uuid::Uuid::new_v4().to_string(),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": self.columns.schema_string(),
            "partitionColumns": [],
            "configuration": config,
            "createdTime": now_ms(),
        }})
    }

    /// Writes `_delta_log/<version>.json` with these actions (and a commitInfo, as engines do).
    /// Returns the version.
    pub fn commit(&mut self, actions: Vec<Value>) -> u64 {
        let version = self.next_version;
        let mut text = String::new();
        let info = json!({"commitInfo": {
            "timestamp": now_ms(),
            "operation": "WRITE",
            "engineInfo": "lakehouse-tests hand-written (PROTOCOL.md)",
        }});
        for action in std::iter::once(&info).chain(actions.iter()) {
            text.push_str(&action.to_string());
            text.push('\n');
        }
        let path = self.dir.join(format!("_delta_log/{version:020}.json"));
        std::fs::write(path, text).unwrap();
        self.next_version += 1;
        version
    }

    /// Writes one Parquet data file with these rows, in physical column names and (with column
    /// mapping) Parquet field ids. `with_country: false` writes a file from before the country
    /// column existed.
    pub fn write_file(&self, rows: &[Patient], with_country: bool) -> DataFile {
        let field = |c: &Column, ty: DataType, nullable: bool| {
            let f = Field::new(&c.physical, ty, nullable);
            if self.columns.mapped {
                f.with_metadata(
                    [("PARQUET:field_id".to_string(), c.id.to_string())]
                        .into_iter()
                        .collect(),
                )
            } else {
                f
            }
        };
        let mut fields = vec![
            field(&self.columns.id_patient, DataType::Int32, false),
            field(&self.columns.name, DataType::Utf8, true),
        ];
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.id))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.name.as_str()),
            )),
        ];
        if with_country {
            fields.push(field(&self.columns.country, DataType::Utf8, true));
            arrays.push(Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.country.as_deref()),
            )));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        let name = format!("part-00000-{}-c000.snappy.parquet", uuid::Uuid::new_v4());
        let file = std::fs::File::create(self.dir.join(&name)).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = std::fs::metadata(self.dir.join(&name)).unwrap().len();
        let ids = rows.iter().map(|r| r.id);
        let mut min = json!({
            self.columns.id_patient.physical.clone(): ids.clone().min(),
            self.columns.name.physical.clone(): rows.iter().map(|r| &r.name).min(),
        });
        let mut max = json!({
            self.columns.id_patient.physical.clone(): ids.max(),
            self.columns.name.physical.clone(): rows.iter().map(|r| &r.name).max(),
        });
        let mut nulls = json!({
            self.columns.id_patient.physical.clone(): 0,
            self.columns.name.physical.clone(): 0,
        });
        if with_country {
            let countries = rows.iter().filter_map(|r| r.country.as_ref());
            min[&self.columns.country.physical] = json!(countries.clone().min());
            max[&self.columns.country.physical] = json!(countries.max());
            nulls[&self.columns.country.physical] =
                json!(rows.iter().filter(|r| r.country.is_none()).count());
        }
        let stats = json!({
            "numRecords": rows.len(),
            "minValues": min,
            "maxValues": max,
            "nullCount": nulls,
        })
        .to_string();
        let rows = if with_country {
            rows.to_vec()
        } else {
            rows.iter()
                .map(|r| Patient {
                    country: None,
                    ..r.clone()
                })
                .collect()
        };
        DataFile {
            path: name,
            size,
            rows,
            stats,
        }
    }

    /// The add action of a file, optionally with a deletion vector descriptor. Also records
    /// the file's live rows.
    pub fn add(&mut self, file: &DataFile, dv: Option<(Value, BTreeSet<u64>)>) -> Value {
        let mut add = json!({
            "path": file.path,
            "partitionValues": {},
            "size": file.size,
            "modificationTime": now_ms(),
            "dataChange": true,
            "stats": file.stats,
        });
        let descriptor = dv.as_ref().map(|(d, _)| d.clone());
        let deleted = match dv {
            Some((descriptor, deleted)) => {
                add["deletionVector"] = descriptor;
                // After a DELETE the statistics still describe every physical row.
                let mut stats: Value = serde_json::from_str(&file.stats).unwrap();
                stats["tightBounds"] = json!(false);
                add["stats"] = json!(stats.to_string());
                deleted
            }
            None => BTreeSet::new(),
        };
        self.live.retain(|(f, _, _)| f.path != file.path);
        self.live.push((file.clone(), deleted, descriptor));
        json!({"add": add})
    }

    /// The remove action of a file (logical delete; the file stays on disk, as before a VACUUM).
    /// It carries the deletion vector of the add it removes: a file's identity in the log is
    /// its path and its vector.
    pub fn remove(&mut self, file: &DataFile) -> Value {
        let descriptor = self
            .live
            .iter()
            .find(|(f, _, _)| f.path == file.path)
            .and_then(|(_, _, d)| d.clone());
        self.live.retain(|(f, _, _)| f.path != file.path);
        let mut remove = json!({
            "path": file.path,
            "deletionTimestamp": now_ms(),
            "dataChange": true,
            "extendedFileMetadata": true,
            "partitionValues": {},
            "size": file.size,
        });
        if let Some(descriptor) = descriptor {
            remove["deletionVector"] = descriptor;
        }
        json!({"remove": remove})
    }

    /// `ALTER TABLE DROP COLUMN country` then `ADD COLUMN country` under column mapping: the
    /// new column gets a new id and physical name, so files written before read it as NULL.
    /// Returns nothing; commit [`Table::metadata`] afterwards.
    pub fn drop_and_readd_country(&mut self) {
        assert!(self.columns.mapped, "only column mapping can drop a column");
        self.columns.country = Column {
            logical: "country",
            physical: format!("col-{}", uuid::Uuid::new_v4()),
            id: 4,
            ty: "string",
        };
        for (file, _, _) in &mut self.live {
            for row in &mut file.rows {
                row.country = None;
            }
        }
    }

    /// Rows live in the table as it was last written, by id.
    pub fn live_rows(&self) -> Vec<Patient> {
        let mut rows: Vec<Patient> = self
            .live
            .iter()
            .flat_map(|(file, deleted, _)| {
                file.rows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !deleted.contains(&(*i as u64)))
                    .map(|(_, r)| r.clone())
            })
            .collect();
        rows.sort();
        rows
    }

    /// An inline (`storageType: i`) deletion vector deleting these row indexes.
    pub fn inline_dv(deleted: &[u64]) -> (Value, BTreeSet<u64>) {
        let data = serialized_bitmap(deleted);
        let mut padded = data.clone();
        // Z85 encodes 4-byte groups; readers take `sizeInBytes` bytes of the decoded string.
        while !padded.len().is_multiple_of(4) {
            padded.push(0);
        }
        let descriptor = json!({
            "storageType": "i",
            "pathOrInlineDv": z85::encode(&padded),
            "sizeInBytes": data.len(),
            "cardinality": deleted.len(),
        });
        (descriptor, deleted.iter().copied().collect())
    }

    /// An on-disk (`storageType: u`) deletion vector deleting these row indexes, in a new
    /// `deletion_vector_<uuid>.bin` under a two-character prefix directory, as Databricks lays
    /// them out.
    pub fn on_disk_dv(&self, deleted: &[u64]) -> (Value, BTreeSet<u64>) {
        let data = serialized_bitmap(deleted);
        let uuid = uuid::Uuid::new_v4();
        let prefix = "dv";
        std::fs::create_dir_all(self.dir.join(prefix)).unwrap();
        // Format version 1, then per vector: size (u32 BE), data, CRC-32 of data (u32 BE).
        let mut file = vec![1u8];
        file.extend_from_slice(&(data.len() as u32).to_be_bytes());
        file.extend_from_slice(&data);
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&data);
        file.extend_from_slice(&crc.to_be_bytes());
        std::fs::write(
            self.dir
                .join(prefix)
                .join(format!("deletion_vector_{uuid}.bin")),
            file,
        )
        .unwrap();
        let descriptor = json!({
            "storageType": "u",
            "pathOrInlineDv": format!("{prefix}{}", z85::encode(uuid.as_bytes())),
            "offset": 1,
            "sizeInBytes": data.len(),
            "cardinality": deleted.len(),
        });
        (descriptor, deleted.iter().copied().collect())
    }

    /// Writes a v2 checkpoint (UUID-named, JSON) of the table state at `version`: a
    /// checkpointMetadata action, the protocol, the metadata and one add per live file, and
    /// `_last_checkpoint` pointing at it.
    pub fn v2_checkpoint(&self, version: u64, protocol: Value, metadata: Value, adds: Vec<Value>) {
        let name = format!("{version:020}.checkpoint.{}.json", uuid::Uuid::new_v4());
        let mut text = String::new();
        let head = json!({"checkpointMetadata": {"version": version}});
        for action in [head, protocol, metadata].iter().chain(adds.iter()) {
            text.push_str(&action.to_string());
            text.push('\n');
        }
        let path = self.dir.join("_delta_log").join(&name);
        std::fs::write(&path, &text).unwrap();
        let last = json!({
            "version": version,
            "size": 3 + adds.len(),
            "v2Checkpoint": {
                "path": name,
                "sizeInBytes": text.len(),
                "modificationTime": now_ms(),
            },
        });
        std::fs::write(
            self.dir.join("_delta_log/_last_checkpoint"),
            last.to_string(),
        )
        .unwrap();
    }

    /// Writes a v2 checkpoint of the live state at `version` as Databricks writes large ones:
    /// a JSON top-level file (checkpointMetadata, protocol, metaData, one sidecar action) and
    /// the add actions, deletion vectors included, in a Parquet file under
    /// `_delta_log/_sidecars/`.
    pub fn v2_checkpoint_with_sidecar(&self, version: u64, protocol: Value, metadata: Value) {
        use datafusion::arrow::array::{
            BooleanArray, Int64Array, MapBuilder, MapFieldNames, StringBuilder, StructArray,
        };
        use datafusion::arrow::buffer::NullBuffer;
        use datafusion::arrow::datatypes::Fields;

        let n = self.live.len();
        let text =
            |values: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(values)) };
        let mut partition_values = MapBuilder::new(
            Some(MapFieldNames {
                entry: "key_value".into(),
                key: "key".into(),
                value: "value".into(),
            }),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        for _ in 0..n {
            partition_values.append(true).unwrap();
        }
        let partition_values = Arc::new(partition_values.finish()) as ArrayRef;
        let dv = |key: &str| -> Vec<Option<Value>> {
            self.live
                .iter()
                .map(|(_, _, d)| d.as_ref().and_then(|d| d.get(key).cloned()))
                .collect()
        };
        let dv_fields = Fields::from(vec![
            Field::new("storageType", DataType::Utf8, false),
            Field::new("pathOrInlineDv", DataType::Utf8, false),
            Field::new("offset", DataType::Int32, true),
            Field::new("sizeInBytes", DataType::Int32, false),
            Field::new("cardinality", DataType::Int64, false),
        ]);
        let as_text = |v: Vec<Option<Value>>| {
            text(
                v.into_iter()
                    .map(|v| v.and_then(|v| v.as_str().map(str::to_string)))
                    .collect(),
            )
        };
        let as_i32 = |v: Vec<Option<Value>>| -> ArrayRef {
            Arc::new(Int32Array::from(
                v.into_iter()
                    .map(|v| v.and_then(|v| v.as_i64()).map(|v| v as i32))
                    .collect::<Vec<_>>(),
            ))
        };
        let present: Vec<bool> = self.live.iter().map(|(_, _, d)| d.is_some()).collect();
        let deletion_vector = StructArray::try_new(
            dv_fields.clone(),
            vec![
                as_text(dv("storageType")),
                as_text(dv("pathOrInlineDv")),
                as_i32(dv("offset")),
                as_i32(dv("sizeInBytes")),
                Arc::new(Int64Array::from(
                    dv("cardinality")
                        .into_iter()
                        .map(|v| v.and_then(|v| v.as_i64()))
                        .collect::<Vec<_>>(),
                )),
            ],
            Some(NullBuffer::from(present)),
        )
        .unwrap();
        let add_fields = Fields::from(vec![
            Field::new("path", DataType::Utf8, false),
            Field::new(
                "partitionValues",
                partition_values.data_type().clone(),
                false,
            ),
            Field::new("size", DataType::Int64, false),
            Field::new("modificationTime", DataType::Int64, false),
            Field::new("dataChange", DataType::Boolean, false),
            Field::new("stats", DataType::Utf8, true),
            Field::new("deletionVector", DataType::Struct(dv_fields), true),
        ]);
        let add = StructArray::try_new(
            add_fields.clone(),
            vec![
                text(
                    self.live
                        .iter()
                        .map(|(f, _, _)| Some(f.path.clone()))
                        .collect(),
                ),
                partition_values,
                Arc::new(Int64Array::from_iter_values(
                    self.live.iter().map(|(f, _, _)| f.size as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    self.live.iter().map(|_| now_ms()),
                )),
                Arc::new(BooleanArray::from(vec![false; n])),
                text(
                    self.live
                        .iter()
                        .map(|(f, _, _)| Some(f.stats.clone()))
                        .collect(),
                ),
                Arc::new(deletion_vector),
            ],
            None,
        )
        .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "add",
            DataType::Struct(add_fields),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(add)]).unwrap();
        let sidecars = self.dir.join("_delta_log/_sidecars");
        std::fs::create_dir_all(&sidecars).unwrap();
        let sidecar = format!("{}.parquet", uuid::Uuid::new_v4());
        let file = std::fs::File::create(sidecars.join(&sidecar)).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let size = std::fs::metadata(sidecars.join(&sidecar)).unwrap().len();
        let action = json!({"sidecar": {
            "path": sidecar,
            "sizeInBytes": size,
            "modificationTime": now_ms(),
        }});
        self.v2_checkpoint(version, protocol, metadata, vec![action]);
    }

    /// Deletes the JSON commits before `version`, as log cleanup does after a checkpoint: the
    /// table can then only be read through the checkpoint.
    pub fn clean_log_before(&self, version: u64) {
        for v in 0..version {
            std::fs::remove_file(self.dir.join(format!("_delta_log/{v:020}.json"))).unwrap();
        }
    }
}

/// A deletion vector's data: the portable RoaringBitmapArray magic (1681511377, little endian)
/// then the 64-bit roaring bitmap in its portable serialization.
fn serialized_bitmap(deleted: &[u64]) -> Vec<u8> {
    let bitmap: roaring::RoaringTreemap = deleted.iter().copied().collect();
    let mut data = 1681511377u32.to_le_bytes().to_vec();
    bitmap.serialize_into(&mut data).unwrap();
    data
}

/// Writes a one-file table with any columns: `schema_string` is the metaData's schema (logical
/// names), `batch` the file's content (physical names equal logical ones: no column mapping).
pub fn write_plain_table(
    lake: &Path,
    name: &str,
    protocol: Value,
    schema_string: &str,
    batch: &RecordBatch,
) {
    let dir = lake.join("gold/ikhospital").join(name);
    std::fs::create_dir_all(dir.join("_delta_log")).unwrap();
    let file_name = format!("part-00000-{}-c000.snappy.parquet", uuid::Uuid::new_v4());
    let file = std::fs::File::create(dir.join(&file_name)).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    let size = std::fs::metadata(dir.join(&file_name)).unwrap().len();
    let actions = [
        json!({"commitInfo": {"timestamp": now_ms(), "operation": "WRITE"}}),
        protocol,
        json!({"metaData": {
            "id": uuid::Uuid::new_v4().to_string(),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string,
            "partitionColumns": [],
            "configuration": {},
            "createdTime": now_ms(),
        }}),
        json!({"add": {
            "path": file_name, "partitionValues": {}, "size": size,
            "modificationTime": now_ms(), "dataChange": true,
            "stats": json!({"numRecords": batch.num_rows()}).to_string(),
        }}),
    ];
    let text: String = actions.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(dir.join("_delta_log/00000000000000000000.json"), text).unwrap();
}
