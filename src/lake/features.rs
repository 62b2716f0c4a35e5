//! The Delta reader profile: per table feature, whether lakehouse serves tables that carry it,
//! and why. One list, read by the open check ([`refused`]), `sys.delta_features` and the
//! README's table, so what the server does and what it says it does cannot drift apart.
//!
//! A reader feature is served only where reading it is implemented and tested
//! (`tests/it/delta_interop.rs` writes each from the protocol specification), or where the
//! protocol asks nothing of a reader. Anything else, including every feature this list does not
//! name, is refused: a wrong answer about patients is worse than none.

use std::fmt;

/// Whether a feature constrains readers (and writers) or writers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Listed in `readerFeatures`: a reader must understand it.
    ReaderWriter,
    /// Listed in `writerFeatures` only: readers need do nothing.
    Writer,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::ReaderWriter => "reader-writer",
            Kind::Writer => "writer",
        })
    }
}

/// What lakehouse does with a table that needs the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The table is served.
    Served,
    /// The table is refused (listed as broken, queries fail with the reason).
    Refused,
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reading::Served => "served",
            Reading::Refused => "refused",
        })
    }
}

/// One row of the profile.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// The feature's name in the Delta log (`readerFeatures` / `writerFeatures`).
    pub name: &'static str,
    /// Reader-writer or writer-only.
    pub kind: Kind,
    /// Served or refused.
    pub reading: Reading,
    /// Why, in one sentence.
    pub why: &'static str,
}

const fn served_rw(name: &'static str, why: &'static str) -> Feature {
    Feature {
        name,
        kind: Kind::ReaderWriter,
        reading: Reading::Served,
        why,
    }
}

const fn refused_rw(name: &'static str, why: &'static str) -> Feature {
    Feature {
        name,
        kind: Kind::ReaderWriter,
        reading: Reading::Refused,
        why,
    }
}

const fn writer(name: &'static str) -> Feature {
    Feature {
        name,
        kind: Kind::Writer,
        reading: Reading::Served,
        why: "constrains writers only; lakehouse never writes tables it does not own",
    }
}

/// Why a reader feature missing from [`PROFILE`] is refused.
pub const UNKNOWN: &str = "unknown to this version of lakehouse";

/// Every table feature of the Delta protocol (as of deltalake 1.1 / delta-kernel 0.28), in the
/// order of the README's table.
pub const PROFILE: &[Feature] = &[
    served_rw(
        "columnMapping",
        "name and id modes: SQL sees logical names, files are read by physical name and field id",
    ),
    served_rw(
        "deletionVectors",
        "inline and on-disk vectors, in any mix of files with and without one, applied at the scan",
    ),
    served_rw(
        "timestampNtz",
        "served as PostgreSQL `timestamp` (without time zone), values unchanged",
    ),
    served_rw(
        "v2Checkpoint",
        "UUID-named checkpoints in JSON or Parquet, with sidecar files",
    ),
    served_rw(
        "vacuumProtocolCheck",
        "asks nothing of a reader: only a writer that vacuums must check the protocol first",
    ),
    refused_rw(
        "typeWidening",
        "a file may hold a narrower type than the schema; reading it needs per-file casts not implemented yet",
    ),
    refused_rw(
        "typeWidening-preview",
        "a file may hold a narrower type than the schema; reading it needs per-file casts not implemented yet",
    ),
    refused_rw(
        "catalogManaged",
        "the catalog publishes commits; the log in storage may be behind it, so answers could be stale",
    ),
    refused_rw(
        "catalogOwned-preview",
        "the catalog publishes commits; the log in storage may be behind it, so answers could be stale",
    ),
    refused_rw(
        "variantType",
        "variant values have no PostgreSQL rendering in lakehouse yet",
    ),
    refused_rw(
        "variantType-preview",
        "variant values have no PostgreSQL rendering in lakehouse yet",
    ),
    refused_rw(
        "variantShredding",
        "shredded variant columns are not reassembled by the reader",
    ),
    refused_rw(
        "variantShredding-preview",
        "shredded variant columns are not reassembled by the reader",
    ),
    refused_rw(
        "timestampNanos",
        "nanosecond timestamps are not enabled in this build",
    ),
    refused_rw(
        "geospatial",
        "geometry and geography values have no PostgreSQL rendering in lakehouse yet",
    ),
    refused_rw(
        "adaptiveMetadata-preview",
        "a preview feature with no reader support in deltalake",
    ),
    writer("appendOnly"),
    writer("invariants"),
    writer("checkConstraints"),
    writer("changeDataFeed"),
    writer("generatedColumns"),
    writer("allowColumnDefaults"),
    writer("identityColumns"),
    writer("rowTracking"),
    writer("domainMetadata"),
    writer("inCommitTimestamp"),
    writer("icebergCompatV1"),
    writer("icebergCompatV2"),
    writer("icebergCompatV3"),
    writer("clustering"),
    writer("materializePartitionColumns"),
    writer("checkpointProtection"),
];

/// The profile's entry for a feature named in a table's `readerFeatures`.
fn reader_entry(name: &str) -> Option<&'static Feature> {
    PROFILE
        .iter()
        .find(|f| f.name == name && f.kind == Kind::ReaderWriter)
}

/// `name (why)` for a reader feature, as refusals print it.
pub fn describe(name: &str) -> String {
    let why = reader_entry(name).map_or(UNKNOWN, |f| f.why);
    format!("{name} ({why})")
}

/// The reader features a protocol action lists (`readerFeatures`, only in reader version 3),
/// sorted; `protocol` is the action as JSON, as the Delta log and deltalake's `Protocol`
/// serialize it.
pub fn listed(protocol: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = protocol
        .get("readerFeatures")
        .and_then(|v| v.as_array())
        .map(|features| {
            features
                .iter()
                .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The reader features a table's protocol action requires that lakehouse refuses, each with
/// why; empty when the table is served. `protocol` is the action as JSON (`minReaderVersion`,
/// `readerFeatures`), as the Delta log and deltalake's `Protocol` serialize it.
pub fn refused(protocol: &serde_json::Value) -> Vec<(String, &'static str)> {
    let version = protocol
        .get("minReaderVersion")
        .and_then(|v| v.as_i64())
        .unwrap_or(i64::MAX);
    let required: Vec<String> = match version {
        1 => Vec::new(),
        // Reader version 2 is column mapping, before table features.
        2 => vec!["columnMapping".to_string()],
        3 => listed(protocol),
        other => {
            return vec![(
                format!("minReaderVersion {other}"),
                "a reader protocol version newer than 3",
            )];
        }
    };
    let mut refused: Vec<(String, &'static str)> = required
        .into_iter()
        .filter_map(|name| match reader_entry(&name) {
            Some(f) if f.reading == Reading::Served => None,
            Some(f) => Some((name, f.why)),
            None => Some((name, UNKNOWN)),
        })
        .collect();
    refused.sort();
    refused.dedup();
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn served_features_pass_and_the_rest_are_named() {
        let p = json!({"minReaderVersion": 3, "readerFeatures": [
            "deletionVectors", "columnMapping", "v2Checkpoint", "vacuumProtocolCheck", "timestampNtz"
        ]});
        assert!(refused(&p).is_empty());
        let p = json!({"minReaderVersion": 3, "readerFeatures": ["deletionVectors", "typeWidening", "zzzNew"]});
        let names: Vec<String> = refused(&p).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["typeWidening", "zzzNew"]);
        assert_eq!(refused(&p)[1].1, UNKNOWN);
    }

    #[test]
    fn legacy_and_future_reader_versions() {
        assert!(refused(&json!({"minReaderVersion": 1})).is_empty());
        assert!(refused(&json!({"minReaderVersion": 2})).is_empty());
        assert_eq!(refused(&json!({"minReaderVersion": 4})).len(), 1);
        assert_eq!(refused(&json!({})).len(), 1, "no version: refused");
    }

    #[test]
    fn a_writer_only_feature_named_as_a_reader_feature_is_unknown() {
        let p = json!({"minReaderVersion": 3, "readerFeatures": ["appendOnly"]});
        assert_eq!(refused(&p)[0].1, UNKNOWN);
    }

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<_> = PROFILE.iter().map(|f| f.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
