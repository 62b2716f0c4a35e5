//! `catalog/*.yaml`: the `IKHOSPITAL_DW` database in Synapse's terms.
//!
//! ```yaml
//! database: IKHOSPITAL_DW
//! credentials:              # DATABASE SCOPED CREDENTIAL
//!   adls:
//!     kind: azure_account_key
//!     key: ${ADLS_KEY}
//! data_sources:             # EXTERNAL DATA SOURCE
//!   archive:
//!     location: abfss://archive@hospital.dfs.core.windows.net/
//!     credential: adls
//! external_tables:          # CREATE EXTERNAL TABLE
//!   - name: dbo.visits_2019
//!     data_source: archive
//!     location: events/2019
//!     format: parquet
//! discover:                 # every Delta table under a prefix becomes a table
//!   - data_source: lake     # built in: the lake root of lakehouse.yaml
//!     prefix: gold/ikhospital/
//!     schema: dbo
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::yaml::yaml_files;
use crate::config::{
    Config, CredentialSpec, Diagnostic, Diagnostics, Document, EnvString, YamlPath,
};
use crate::lake::StorageLocation;

/// Name of the built-in data source that points at the lake root.
pub const LAKE_DATA_SOURCE: &str = "lake";

/// Schema of the built-in system tables (`sys.audit_log`, ...).
pub const SYSTEM_SCHEMA: &str = "sys";

/// Schemas whose names are reserved for the catalogs PostgreSQL clients expect.
pub const RESERVED_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", SYSTEM_SCHEMA];

/// One `catalog/*.yaml` file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogFileSpec {
    /// The database this file describes; must be `IKHOSPITAL_DW` (any case) when given.
    pub database: Option<String>,
    /// Named credentials.
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// Named data sources.
    pub data_sources: BTreeMap<String, DataSourceSpec>,
    /// Tables declared one by one.
    pub external_tables: Vec<ExternalTableSpec>,
    /// Prefixes whose Delta tables are all served.
    pub discover: Vec<DiscoverSpec>,
}

/// An external data source: a location and the credential to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceSpec {
    /// URL or absolute local path (relative paths are taken from the catalog directory).
    pub location: EnvString,
    /// Name of a credential; none for local paths or public storage.
    #[serde(default)]
    pub credential: Option<String>,
}

/// An external table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalTableSpec {
    /// `schema.table`, or `table` for schema `dbo`.
    pub name: String,
    /// Data source name (`lake` for the lake root).
    pub data_source: String,
    /// Folder relative to the data source.
    pub location: String,
    /// `delta` (default) or `parquet`.
    #[serde(default)]
    pub format: TableFormat,
}

/// Storage format of an external table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// A Delta table (versioned; refreshed as new versions appear).
    #[default]
    Delta,
    /// A folder of Parquet files (listed at each refresh).
    Parquet,
}

/// Discovery of Delta tables under a prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverSpec {
    /// Data source name.
    pub data_source: String,
    /// Prefix relative to the data source (`gold/ikhospital/`).
    pub prefix: String,
    /// Schema the tables go to.
    #[serde(default = "default_schema")]
    pub schema: String,
}

fn default_schema() -> String {
    "dbo".to_string()
}

/// A validated table declaration.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Lowercase schema name.
    pub schema: String,
    /// Lowercase table name.
    pub name: String,
    /// Where the data is.
    pub location: StorageLocation,
    /// Storage format.
    pub format: TableFormat,
}

/// A validated discovery rule.
#[derive(Debug, Clone)]
pub struct DiscoveryDef {
    /// Lowercase schema name.
    pub schema: String,
    /// The prefix's location.
    pub location: StorageLocation,
}

/// The whole validated catalog definition.
#[derive(Debug, Clone)]
pub struct CatalogDef {
    /// Served database name, as configured (`IKHOSPITAL_DW`).
    pub database: String,
    /// Tables declared one by one.
    pub tables: Vec<TableDef>,
    /// Discovery rules.
    pub discoveries: Vec<DiscoveryDef>,
}

impl CatalogDef {
    /// Loads every `*.yaml` of the configured catalog directory. A missing directory means the
    /// default: discover `gold/ikhospital/` of the lake into `dbo`.
    pub fn load(config: &Config) -> Result<CatalogDef, Diagnostics> {
        let dir = &config.catalog_dir;
        let files = yaml_files(dir).map_err(Diagnostics::from)?;
        let mut docs = Vec::new();
        let mut diagnostics = Diagnostics::default();
        for file in files {
            match Document::<CatalogFileSpec>::load(&file) {
                Ok(doc) => docs.push(doc),
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
        if !diagnostics.is_empty() {
            return Err(diagnostics);
        }
        if docs.is_empty() {
            return Ok(CatalogDef::default_for(config));
        }
        CatalogDef::from_docs(config, &docs)
    }

    /// The catalog of a lake with no `catalog/` directory: the gold tables of the lake root.
    pub fn default_for(config: &Config) -> CatalogDef {
        let discoveries = lake_location(config)
            .and_then(|root| root.join("gold/ikhospital"))
            .map(|location| {
                vec![DiscoveryDef {
                    schema: "dbo".to_string(),
                    location,
                }]
            })
            .unwrap_or_default();
        CatalogDef {
            database: crate::config::DATABASE_NAME.to_string(),
            tables: Vec::new(),
            discoveries,
        }
    }

    /// Validates parsed files together (names are global across files).
    pub fn from_docs(
        config: &Config,
        docs: &[Document<CatalogFileSpec>],
    ) -> Result<CatalogDef, Diagnostics> {
        let mut diagnostics = Diagnostics::default();
        let mut credentials: BTreeMap<String, (CredentialSpec, usize)> = BTreeMap::new();
        let mut sources: BTreeMap<String, (StorageLocation, usize)> = BTreeMap::new();
        match lake_location(config) {
            Ok(root) => {
                sources.insert(LAKE_DATA_SOURCE.to_string(), (root, usize::MAX));
            }
            Err(err) => diagnostics.push(Diagnostic::file(
                config.file.clone().unwrap_or_default(),
                format!("invalid lake root: {err}"),
            )),
        }

        for (doc_idx, doc) in docs.iter().enumerate() {
            if let Some(database) = &doc.value.database
                && !database.eq_ignore_ascii_case(crate::config::DATABASE_NAME)
            {
                diagnostics.push(doc.error_at(
                    &YamlPath::root().key("database"),
                    format!(
                        "unknown database \"{database}\": this server serves \"{}\"",
                        crate::config::DATABASE_NAME
                    ),
                ));
            }
            for (name, credential) in &doc.value.credentials {
                if credentials
                    .insert(name.clone(), (credential.clone(), doc_idx))
                    .is_some()
                {
                    diagnostics.push(doc.error_at(
                        &YamlPath::root().key("credentials").key(name),
                        format!("credential \"{name}\" is defined twice"),
                    ));
                }
            }
        }
        let catalog_dir = &config.catalog_dir;
        for (doc_idx, doc) in docs.iter().enumerate() {
            for (name, source) in &doc.value.data_sources {
                let path = YamlPath::root().key("data_sources").key(name);
                if sources.contains_key(name) {
                    let message = if name == LAKE_DATA_SOURCE {
                        "data source \"lake\" is built in (the lake root of lakehouse.yaml)"
                            .to_string()
                    } else {
                        format!("data source \"{name}\" is defined twice")
                    };
                    diagnostics.push(doc.error_at(&path, message));
                    continue;
                }
                let options = match &source.credential {
                    None => BTreeMap::new(),
                    Some(credential) => match credentials.get(credential) {
                        Some((spec, _)) => spec.storage_options(),
                        None => {
                            diagnostics.push(doc.error_at(
                                &path.key("credential"),
                                format!("unknown credential \"{credential}\""),
                            ));
                            continue;
                        }
                    },
                };
                let root = crate::config::normalize_root(source.location.as_str(), catalog_dir);
                match StorageLocation::parse(&root, options) {
                    Ok(location) => {
                        sources.insert(name.clone(), (location, doc_idx));
                    }
                    Err(err) => {
                        diagnostics.push(doc.error_at(&path.key("location"), err.to_string()))
                    }
                }
            }
        }

        let mut tables: Vec<TableDef> = Vec::new();
        let mut discoveries = Vec::new();
        let mut seen_tables: BTreeMap<(String, String), ()> = BTreeMap::new();
        for doc in docs {
            for (idx, table) in doc.value.external_tables.iter().enumerate() {
                let path = YamlPath::root().key("external_tables").index(idx);
                let Some((schema, name)) = split_table_name(&table.name) else {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!(
                            "invalid table name \"{}\": expected schema.table or table",
                            table.name
                        ),
                    ));
                    continue;
                };
                if RESERVED_SCHEMAS.contains(&schema.as_str()) {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("schema \"{schema}\" is reserved"),
                    ));
                    continue;
                }
                if seen_tables
                    .insert((schema.clone(), name.clone()), ())
                    .is_some()
                {
                    diagnostics.push(doc.error_at(
                        &path.key("name"),
                        format!("table \"{schema}.{name}\" is defined twice"),
                    ));
                    continue;
                }
                let Some((source, _)) = sources.get(&table.data_source) else {
                    diagnostics.push(doc.error_at(
                        &path.key("data_source"),
                        format!("unknown data source \"{}\"", table.data_source),
                    ));
                    continue;
                };
                match source.join(&table.location) {
                    Ok(location) => tables.push(TableDef {
                        schema,
                        name,
                        location,
                        format: table.format,
                    }),
                    Err(err) => {
                        diagnostics.push(doc.error_at(&path.key("location"), err.to_string()))
                    }
                }
            }
            for (idx, discover) in doc.value.discover.iter().enumerate() {
                let path = YamlPath::root().key("discover").index(idx);
                let schema = discover.schema.to_lowercase();
                if RESERVED_SCHEMAS.contains(&schema.as_str()) || !is_identifier(&schema) {
                    diagnostics.push(doc.error_at(
                        &path.key("schema"),
                        format!("invalid or reserved schema name \"{}\"", discover.schema),
                    ));
                    continue;
                }
                let Some((source, _)) = sources.get(&discover.data_source) else {
                    diagnostics.push(doc.error_at(
                        &path.key("data_source"),
                        format!("unknown data source \"{}\"", discover.data_source),
                    ));
                    continue;
                };
                match source.join(&discover.prefix) {
                    Ok(location) => discoveries.push(DiscoveryDef { schema, location }),
                    Err(err) => {
                        diagnostics.push(doc.error_at(&path.key("prefix"), err.to_string()))
                    }
                }
            }
        }
        diagnostics.into_result(CatalogDef {
            database: crate::config::DATABASE_NAME.to_string(),
            tables,
            discoveries,
        })
    }
}

/// The lake root as a storage location, with the lake's credential.
pub fn lake_location(config: &Config) -> crate::lake::Result<StorageLocation> {
    StorageLocation::parse(&config.lake.root, config.lake.credential.storage_options())
}

/// `schema.table` or `table` (schema `dbo`), lowercased; `None` when malformed.
pub fn split_table_name(name: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = name.split('.').collect();
    let (schema, table) = match parts.as_slice() {
        [table] => ("dbo", *table),
        [schema, table] => (*schema, *table),
        _ => return None,
    };
    let (schema, table) = (schema.to_lowercase(), table.to_lowercase());
    (is_identifier(&schema) && is_identifier(&table)).then_some((schema, table))
}

/// A plain SQL identifier: letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(dir: &Path) -> Config {
        Config::defaults(dir)
    }

    fn parse(text: &str) -> Document<CatalogFileSpec> {
        Document::parse(Path::new("catalog/c.yaml"), text).unwrap()
    }

    #[test]
    fn unknown_data_source_is_located() {
        let doc =
            parse("external_tables:\n  - name: dbo.x\n    data_source: nope\n    location: a/b\n");
        let err = CatalogDef::from_docs(&config(Path::new("/srv")), &[doc]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "catalog/c.yaml:3:18: unknown data source \"nope\""
        );
    }

    #[test]
    fn tables_resolve_against_their_source() {
        let doc = parse(
            "credentials:\n  k:\n    kind: azure_account_key\n    key: abc\n\
             data_sources:\n  arch:\n    location: abfss://c@acct.dfs.core.windows.net/root\n    credential: k\n\
             external_tables:\n  - name: Visits\n    data_source: arch\n    location: ev/2019\n    format: parquet\n\
             discover:\n  - data_source: lake\n    prefix: gold/ikhospital/\n",
        );
        let def = CatalogDef::from_docs(&config(Path::new("/srv")), &[doc]).unwrap();
        assert_eq!(def.tables[0].schema, "dbo");
        assert_eq!(def.tables[0].name, "visits");
        assert_eq!(
            def.tables[0].location.url().as_str(),
            "abfss://c@acct.dfs.core.windows.net/root/ev/2019/"
        );
        assert_eq!(
            def.tables[0]
                .location
                .options()
                .get("azure_storage_account_key")
                .map(String::as_str),
            Some("abc")
        );
        assert_eq!(
            def.discoveries[0].location.url().as_str(),
            "file:///srv/lake/gold/ikhospital/"
        );
    }

    #[test]
    fn wrong_database_and_reserved_schema() {
        let doc = parse(
            "database: other\nexternal_tables:\n  - name: sys.x\n    data_source: lake\n    location: a\n",
        );
        let err = CatalogDef::from_docs(&config(Path::new("/srv")), &[doc]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("c.yaml:1:11: unknown database"), "{text}");
        assert!(
            text.contains("c.yaml:3:11: schema \"sys\" is reserved"),
            "{text}"
        );
    }
}
