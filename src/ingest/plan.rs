//! How each discovered table is loaded: full snapshot or incremental by a watermark, and by
//! which key silver merges it. Pure: configuration plus what discovery found.

use datafusion::arrow::datatypes::DataType;

use super::source::TableInfo;
use super::{Error, Result, snake_case};
use crate::config::ingest::SourceTableSpec;

/// How bronze reads a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMode {
    /// The whole table every run; bronze is replaced, silver deletes missing keys.
    Snapshot,
    /// Rows whose `column` is above the highest value in bronze.
    Incremental {
        /// The watermark column (source name).
        column: String,
    },
}

impl std::fmt::Display for LoadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadMode::Snapshot => f.write_str("snapshot"),
            LoadMode::Incremental { column } => write!(f, "incremental by {column}"),
        }
    }
}

/// A table ready to load.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// What discovery found.
    pub info: TableInfo,
    /// How to read it.
    pub mode: LoadMode,
    /// Business key for silver (snake_case), from the configuration or the primary key.
    pub key: Vec<String>,
}

/// Names of columns that record when a row last changed; such a column is a watermark that
/// catches updates as well as inserts.
const UPDATED_AT_NAMES: &[&str] = &["updated_at", "modified_at", "last_modified"];

/// Decides how to load `info` (`None` when configured to be skipped).
///
/// Rules, first match wins: `skip`; `snapshot: true`; a configured `watermark`;
/// `append_only: true` or a table comment containing `append-only` (the auto-increment key is
/// the watermark); a timestamp column named `UPDATED_AT` (or `modified_at`, `last_modified`);
/// otherwise a full snapshot, which is always correct, only slower.
pub fn plan_table(info: &TableInfo, spec: Option<&SourceTableSpec>) -> Result<Option<TablePlan>> {
    let default_spec = SourceTableSpec::default();
    let spec = spec.unwrap_or(&default_spec);
    if spec.skip {
        return Ok(None);
    }
    let table = &info.name;
    let mode = if spec.snapshot {
        if spec.watermark.is_some() || spec.append_only {
            return Err(Error::Invalid(format!(
                "table \"{table}\": snapshot excludes watermark and append_only"
            )));
        }
        LoadMode::Snapshot
    } else if let Some(column) = &spec.watermark {
        let column = info.column(column).ok_or_else(|| {
            Error::Invalid(format!(
                "table \"{table}\": watermark column \"{column}\" does not exist"
            ))
        })?;
        if !is_watermark_type(&column.data_type) {
            return Err(Error::Invalid(format!(
                "table \"{table}\": watermark column \"{}\" must be an integer, date, timestamp or text column",
                column.name
            )));
        }
        LoadMode::Incremental {
            column: column.name.clone(),
        }
    } else if spec.append_only || info.comment.to_ascii_lowercase().contains("append-only") {
        match &info.auto_increment {
            Some(column) => LoadMode::Incremental {
                column: column.clone(),
            },
            None if spec.append_only => {
                return Err(Error::Invalid(format!(
                    "table \"{table}\": append_only needs an auto-increment key; configure a watermark"
                )));
            }
            None => LoadMode::Snapshot,
        }
    } else if let Some(column) = info.columns.iter().find(|c| {
        UPDATED_AT_NAMES.contains(&c.name.to_ascii_lowercase().as_str())
            && matches!(c.data_type, DataType::Timestamp(_, _))
    }) {
        LoadMode::Incremental {
            column: column.name.clone(),
        }
    } else {
        LoadMode::Snapshot
    };
    let key: Vec<String> = if spec.key.is_empty() {
        info.primary_key.iter().map(|k| snake_case(k)).collect()
    } else {
        for k in &spec.key {
            let exists = info
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(k) || snake_case(&c.name) == *k);
            if !exists {
                return Err(Error::Invalid(format!(
                    "table \"{table}\": key column \"{k}\" does not exist"
                )));
            }
        }
        spec.key.iter().map(|k| snake_case(k)).collect()
    };
    Ok(Some(TablePlan {
        info: info.clone(),
        mode,
        key,
    }))
}

fn is_watermark_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Timestamp(_, _)
            | DataType::Utf8
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ingest::source::{ColumnInfo, Wire};
    use datafusion::arrow::datatypes::TimeUnit;

    fn table(comment: &str, updated_at: bool) -> TableInfo {
        let mut columns = vec![ColumnInfo {
            name: "ID".to_string(),
            source_type: "int".to_string(),
            data_type: DataType::Int32,
            nullable: false,
            wire: Wire::Arrow,
        }];
        if updated_at {
            columns.push(ColumnInfo {
                name: "UPDATED_AT".to_string(),
                source_type: "timestamp(6)".to_string(),
                data_type: DataType::Timestamp(TimeUnit::Microsecond, None),
                nullable: false,
                wire: Wire::Arrow,
            });
        }
        TableInfo {
            schema: "ikhospital".to_string(),
            name: "t".to_string(),
            lake_name: "t".to_string(),
            columns,
            primary_key: vec!["ID".to_string()],
            auto_increment: Some("ID".to_string()),
            comment: comment.to_string(),
        }
    }

    #[test]
    fn modes_are_inferred() {
        let plan = plan_table(&table("", false), None).unwrap().unwrap();
        assert_eq!(plan.mode, LoadMode::Snapshot);
        assert_eq!(plan.key, vec!["id"]);
        let plan = plan_table(&table("Append-only: visits", false), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            plan.mode,
            LoadMode::Incremental {
                column: "ID".into()
            }
        );
        let plan = plan_table(&table("", true), None).unwrap().unwrap();
        assert_eq!(
            plan.mode,
            LoadMode::Incremental {
                column: "UPDATED_AT".into()
            }
        );
    }

    #[test]
    fn configuration_wins() {
        let spec = SourceTableSpec {
            snapshot: true,
            ..Default::default()
        };
        let plan = plan_table(&table("append-only", true), Some(&spec))
            .unwrap()
            .unwrap();
        assert_eq!(plan.mode, LoadMode::Snapshot);
        let spec = SourceTableSpec {
            watermark: Some("id".into()),
            key: vec!["ID".into()],
            ..Default::default()
        };
        let plan = plan_table(&table("", false), Some(&spec)).unwrap().unwrap();
        assert_eq!(
            plan.mode,
            LoadMode::Incremental {
                column: "ID".into()
            }
        );
        let spec = SourceTableSpec {
            watermark: Some("nope".into()),
            ..Default::default()
        };
        assert!(plan_table(&table("", false), Some(&spec)).is_err());
        let spec = SourceTableSpec {
            skip: true,
            ..Default::default()
        };
        assert!(
            plan_table(&table("", false), Some(&spec))
                .unwrap()
                .is_none()
        );
    }
}
