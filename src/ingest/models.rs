//! The SQL models: `sql/silver/<table>.sql` and `sql/gold/<table>.sql`.
//!
//! A silver model is a SELECT over `source`: the bronze rows not merged yet, one per business
//! key, with lower snake_case column names and without the ingestion columns. Its header names
//! the bronze table and the key:
//!
//! ```sql
//! -- source: mysql/events
//! -- key: id
//! SELECT * EXCLUDE (patient, sex) FROM source
//! ```
//!
//! Writing `*` keeps columns a source adds later (schema evolution needs no edit). A bronze table
//! without a model lands in silver as it is (`SELECT * FROM source`, keyed by its primary key).
//!
//! A gold model is a SELECT over `silver.<table>` and `gold.<table>`; the table is named after
//! the file and materialised after the gold tables it reads.
//!
//! The files of this repository are compiled in as the built-in models, used when the configured
//! `sql/` directory has no `silver/` or `gold/` folder (the demo runs anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::config::{Diagnostic, Diagnostics, Location};

/// Built-in silver models: (file name, text).
pub const BUILTIN_SILVER: &[(&str, &str)] = &[
    ("doctors.sql", include_str!("../../sql/silver/doctors.sql")),
    ("events.sql", include_str!("../../sql/silver/events.sql")),
    (
        "medicine.sql",
        include_str!("../../sql/silver/medicine.sql"),
    ),
    ("patient.sql", include_str!("../../sql/silver/patient.sql")),
    ("shift.sql", include_str!("../../sql/silver/shift.sql")),
];

/// Built-in gold models: (file name, text).
pub const BUILTIN_GOLD: &[(&str, &str)] = &[
    ("dim_date.sql", include_str!("../../sql/gold/dim_date.sql")),
    (
        "dim_doctors.sql",
        include_str!("../../sql/gold/dim_doctors.sql"),
    ),
    (
        "dim_medicine.sql",
        include_str!("../../sql/gold/dim_medicine.sql"),
    ),
    (
        "dim_patient.sql",
        include_str!("../../sql/gold/dim_patient.sql"),
    ),
    (
        "fact_events.sql",
        include_str!("../../sql/gold/fact_events.sql"),
    ),
];

/// A silver model.
#[derive(Debug, Clone, PartialEq)]
pub struct SilverModel {
    /// Silver table name (the file name without `.sql`).
    pub name: String,
    /// Bronze table it reads: (source, table), from `-- source: mysql/events`.
    pub source: (String, String),
    /// Business key (snake_case), from `-- key: a, b`; empty means the source's primary key.
    pub key: Vec<String>,
    /// The SELECT.
    pub sql: String,
    /// Where it came from.
    pub file: PathBuf,
}

/// A gold model.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldModel {
    /// Gold table name (the file name without `.sql`).
    pub name: String,
    /// The SELECT.
    pub sql: String,
    /// Tables it reads: (`silver` or `gold`, name).
    pub inputs: Vec<(String, String)>,
    /// Where it came from.
    pub file: PathBuf,
}

/// All models, gold in dependency order.
#[derive(Debug, Clone, Default)]
pub struct Models {
    /// Silver models.
    pub silver: Vec<SilverModel>,
    /// Gold models, each after the gold models it reads.
    pub gold: Vec<GoldModel>,
}

impl Models {
    /// The models compiled into the binary.
    pub fn builtin() -> Result<Models, Diagnostics> {
        let texts = |layer: &str, files: &[(&str, &str)]| -> Vec<(PathBuf, String)> {
            files
                .iter()
                .map(|(file, text)| {
                    let path = PathBuf::from(format!("<builtin>/sql/{layer}/{file}"));
                    (path, (*text).to_string())
                })
                .collect()
        };
        let (silver, gold) = (texts("silver", BUILTIN_SILVER), texts("gold", BUILTIN_GOLD));
        Models::from_texts(silver, gold)
    }

    /// The models of `sql_dir`; a missing `silver/` or `gold/` folder falls back to the
    /// built-in models of that layer.
    pub fn load(sql_dir: &Path) -> Result<Models, Diagnostics> {
        let builtin = Models::builtin()?;
        let silver_dir = sql_dir.join("silver");
        let gold_dir = sql_dir.join("gold");
        let silver_texts = if silver_dir.is_dir() {
            Some(read_sql_files(&silver_dir)?)
        } else {
            None
        };
        let gold_texts = if gold_dir.is_dir() {
            Some(read_sql_files(&gold_dir)?)
        } else {
            None
        };
        let models = Models::from_texts(
            silver_texts.clone().unwrap_or_default(),
            gold_texts.clone().unwrap_or_default(),
        )?;
        Ok(Models {
            silver: if silver_texts.is_some() {
                models.silver
            } else {
                builtin.silver
            },
            gold: if gold_texts.is_some() {
                models.gold
            } else {
                builtin.gold
            },
        })
    }

    /// Parses and orders models given as (file, text).
    pub fn from_texts(
        silver: Vec<(PathBuf, String)>,
        gold: Vec<(PathBuf, String)>,
    ) -> Result<Models, Diagnostics> {
        let mut diagnostics = Diagnostics::default();
        let mut models = Models::default();
        let mut sources_seen = BTreeMap::new();
        for (file, text) in silver {
            match parse_silver(&file, &text) {
                Ok(model) => {
                    if let Some(other) =
                        sources_seen.insert(model.source.clone(), model.name.clone())
                    {
                        diagnostics.push(Diagnostic::file(
                            &file,
                            format!(
                                "bronze table \"{}/{}\" already feeds silver model \"{other}\"",
                                model.source.0, model.source.1
                            ),
                        ));
                    }
                    models.silver.push(model);
                }
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
        let mut gold_models = Vec::new();
        for (file, text) in gold {
            match parse_gold(&file, &text) {
                Ok(model) => gold_models.push(model),
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
        match order_gold(gold_models) {
            Ok(ordered) => models.gold = ordered,
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
        diagnostics.into_result(models)
    }

    /// The silver model fed by bronze table `source/table`.
    pub fn silver_for(&self, source: &str, table: &str) -> Option<&SilverModel> {
        self.silver
            .iter()
            .find(|m| m.source.0 == source && m.source.1 == table)
    }
}

fn read_sql_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, Diagnostics> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Diagnostic::file(dir, format!("cannot read the directory: {err}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut diagnostics = Diagnostics::default();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => out.push((file, text)),
            Err(err) => diagnostics.push(Diagnostic::file(
                &file,
                format!("cannot read the file: {err}"),
            )),
        }
    }
    diagnostics.into_result(out)
}

fn table_name_of(file: &Path) -> Result<String, Diagnostic> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if crate::catalog::spec::is_identifier(&stem) && stem == stem.to_lowercase() {
        Ok(stem)
    } else {
        Err(Diagnostic::file(
            file,
            format!("model file name \"{stem}\" is not a lowercase table name"),
        ))
    }
}

fn at(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic::at(
        Location {
            file: file.to_path_buf(),
            line,
            col,
        },
        message,
    )
}

/// `-- name: value` lines of the leading comment block, with their line numbers.
fn header(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let Some(comment) = trimmed.strip_prefix("--") else {
            if trimmed.is_empty() {
                continue;
            }
            break;
        };
        if let Some((name, value)) = comment.split_once(':') {
            let name = name.trim().to_lowercase();
            if name == "source" || name == "key" {
                out.push((idx + 1, name, value.trim().to_string()));
            }
        }
    }
    out
}

/// Parses `text` as exactly one SELECT; errors carry the position sqlparser reports.
fn parse_query(file: &Path, text: &str) -> Result<DfStatement, Diagnostic> {
    let statements = DFParser::parse_sql_with_dialect(text, &GenericDialect {}).map_err(|err| {
        let message = err.to_string();
        let (line, col) = position_of(&message).unwrap_or((1, 1));
        at(file, line, col, format!("syntax error: {message}"))
    })?;
    let mut statements: Vec<DfStatement> = statements.into_iter().collect();
    if statements.len() != 1 {
        return Err(Diagnostic::file(
            file,
            format!(
                "a model is exactly one SELECT, found {} statements",
                statements.len()
            ),
        ));
    }
    let statement = statements.remove(0);
    match &statement {
        DfStatement::Statement(inner)
            if matches!(
                inner.as_ref(),
                datafusion::sql::sqlparser::ast::Statement::Query(_)
            ) =>
        {
            Ok(statement)
        }
        _ => Err(Diagnostic::file(file, "a model must be a SELECT")),
    }
}

/// `Line: 3, Column: 5` in a sqlparser message.
fn position_of(message: &str) -> Option<(usize, usize)> {
    let number = |text: &str| -> Option<usize> {
        text.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let after_line = message.split("Line: ").nth(1)?;
    let after_col = after_line.split("Column: ").nth(1)?;
    Some((number(after_line)?, number(after_col)?))
}

/// Tables a statement reads (CTE names excluded), as (schema, table) lowercased.
fn references(statement: &DfStatement) -> Vec<(Option<String>, String)> {
    let (refs, _ctes) = match datafusion::sql::resolve::resolve_table_references(statement, true) {
        Ok(found) => found,
        Err(_) => return Vec::new(),
    };
    refs.into_iter()
        .map(|r| (r.schema().map(str::to_lowercase), r.table().to_lowercase()))
        .collect()
}

fn parse_silver(file: &Path, text: &str) -> Result<SilverModel, Diagnostic> {
    let name = table_name_of(file)?;
    let mut source = None;
    let mut key = Vec::new();
    for (line, field, value) in header(text) {
        match field.as_str() {
            "source" => match value.split_once('/') {
                Some((s, t)) if !s.is_empty() && !t.is_empty() => {
                    source = Some((s.trim().to_string(), t.trim().to_lowercase()))
                }
                _ => {
                    return Err(at(
                        file,
                        line,
                        1,
                        format!(
                            "invalid source \"{value}\": expected <source>/<table> such as mysql/events"
                        ),
                    ));
                }
            },
            _ => {
                key = value
                    .split(',')
                    .map(|k| k.trim().to_lowercase())
                    .filter(|k| !k.is_empty())
                    .collect()
            }
        }
    }
    let Some(source) = source else {
        return Err(at(
            file,
            1,
            1,
            "missing \"-- source: <source>/<table>\" header line",
        ));
    };
    let statement = parse_query(file, text)?;
    for (schema, table) in references(&statement) {
        if schema.is_some() || table != "source" {
            return Err(Diagnostic::file(
                file,
                format!("a silver model reads only \"source\", not \"{table}\""),
            ));
        }
    }
    Ok(SilverModel {
        name,
        source,
        key,
        sql: text.to_string(),
        file: file.to_path_buf(),
    })
}

fn parse_gold(file: &Path, text: &str) -> Result<GoldModel, Diagnostic> {
    let name = table_name_of(file)?;
    let statement = parse_query(file, text)?;
    let mut inputs = Vec::new();
    for (schema, table) in references(&statement) {
        match schema.as_deref() {
            Some("silver") | Some("gold") => {
                inputs.push((schema.unwrap_or_default(), table));
            }
            _ => {
                return Err(Diagnostic::file(
                    file,
                    format!(
                        "table \"{table}\" must be qualified as silver.{table} or gold.{table}"
                    ),
                ));
            }
        }
    }
    inputs.sort();
    inputs.dedup();
    Ok(GoldModel {
        name,
        sql: text.to_string(),
        inputs,
        file: file.to_path_buf(),
    })
}

/// Orders gold models so that each comes after the gold tables it reads; refuses cycles and
/// references to gold tables no model makes.
fn order_gold(models: Vec<GoldModel>) -> Result<Vec<GoldModel>, Diagnostic> {
    let names: BTreeSet<String> = models.iter().map(|m| m.name.clone()).collect();
    for model in &models {
        for (layer, table) in &model.inputs {
            if layer == "gold" && !names.contains(table) {
                return Err(Diagnostic::file(
                    &model.file,
                    format!("no gold model makes \"gold.{table}\""),
                ));
            }
        }
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::new();
    let mut pending = models;
    while !pending.is_empty() {
        let (ready, rest): (Vec<GoldModel>, Vec<GoldModel>) = pending.into_iter().partition(|m| {
            m.inputs
                .iter()
                .all(|(layer, t)| layer != "gold" || done.contains(t))
        });
        if ready.is_empty() {
            let cycle: Vec<String> = rest.iter().map(|m| m.name.clone()).collect();
            return Err(Diagnostic::file(
                &rest[0].file,
                format!(
                    "gold models read each other in a cycle: {}",
                    cycle.join(", ")
                ),
            ));
        }
        for model in ready {
            done.insert(model.name.clone());
            ordered.push(model);
        }
        pending = rest;
    }
    Ok(ordered)
}

/// `lakehouse check` of `sql/silver` and `sql/gold`: every file parses, has its header, and the
/// gold models form no cycle. Returns warnings (none yet) or every problem with its
/// `file:line:col`.
pub fn check(sql_dir: &Path) -> Result<Vec<String>, Diagnostics> {
    Models::load(sql_dir).map(|_| Vec::new())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn builtin_models_parse_in_order() {
        let models = Models::builtin().unwrap();
        assert_eq!(models.silver.len(), 5);
        assert_eq!(models.gold.len(), 5);
        let events = models.silver_for("mysql", "events").unwrap();
        assert_eq!(events.key, vec!["id"]);
        let position = |name: &str| models.gold.iter().position(|m| m.name == name).unwrap();
        assert!(position("fact_events") < position("dim_date"));
    }

    #[test]
    fn errors_are_located() {
        let err = Models::from_texts(
            vec![(
                PathBuf::from("sql/silver/x.sql"),
                "-- source: mysql/x\n-- key: id\nSELECT * FROM source WHERE\n".to_string(),
            )],
            vec![],
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("sql/silver/x.sql:"), "{err}");
        let err = Models::from_texts(
            vec![(PathBuf::from("sql/silver/y.sql"), "SELECT 1".to_string())],
            vec![],
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing \"-- source"), "{err}");
        let err = Models::from_texts(
            vec![],
            vec![
                (PathBuf::from("a.sql"), "SELECT * FROM gold.b".to_string()),
                (PathBuf::from("b.sql"), "SELECT * FROM gold.a".to_string()),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        let err = Models::from_texts(
            vec![],
            vec![(PathBuf::from("c.sql"), "SELECT * FROM events".to_string())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("must be qualified"), "{err}");
    }

    #[test]
    fn positions_are_read_from_messages() {
        assert_eq!(
            position_of(
                "sql parser error: Expected: an expression, found: EOF at Line: 3, Column: 27"
            ),
            Some((3, 27))
        );
    }
}
