//! `grants/*.yaml` as written by DBAs.
//!
//! ```yaml
//! users:
//!   - name: PBI_Reader
//!     scram: "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"   # lakehouse passwd PBI_Reader
//!     password_hash: "$argon2id$v=19$m=19456,t=2,p=1$..."        # for cleartext logins over TLS
//!     roles: [db_datareader, pii_masked]
//!     valid_until: 2027-12-31T00:00:00Z
//! roles:
//!   - name: pii_masked
//!   - name: portugal_analysts
//!     grant:
//!       - table: dbo.dim_patient
//!       - table: dbo.fact_events
//!         columns: [id, id_patient, date_of_service]
//!     deny:
//!       - table: dbo.dim_patient
//!         columns: [email]
//! masks:
//!   - table: dbo.dim_patient
//!     column: name
//!     function: redact        # null | redact | partial | hash | year_only
//!     to: [pii_masked]
//! row_filters:
//!   - table: dbo.dim_patient
//!     filter: country = 'Portugal'
//!     to: [portugal_analysts]
//! ```

use serde::{Deserialize, Deserializer};

/// One `grants/*.yaml` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrantsFileSpec {
    /// Logins.
    pub users: Vec<UserSpec>,
    /// Roles.
    pub roles: Vec<RoleSpec>,
    /// Column masks.
    pub masks: Vec<MaskSpec>,
    /// Row filters.
    pub row_filters: Vec<RowFilterSpec>,
}

/// A user (login).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// User name; matched case-insensitively at login.
    pub name: String,
    /// SCRAM-SHA-256 verifier in PostgreSQL's format.
    #[serde(default)]
    pub scram: Option<String>,
    /// argon2id PHC hash, used for cleartext-password logins (TLS or loopback only).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Roles the user is a member of.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A disabled user cannot log in.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Logins are refused after this instant (RFC 3339).
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
    /// Marks a shipped demo password: refused unless the server listens on loopback only.
    #[serde(default)]
    pub demo: bool,
    /// Privileges granted to the user directly.
    #[serde(default)]
    pub grant: Vec<ObjectSpec>,
    /// Privileges denied to the user directly.
    #[serde(default)]
    pub deny: Vec<ObjectSpec>,
}

fn yes() -> bool {
    true
}

/// A role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// Roles this role is a member of (it inherits their privileges).
    #[serde(default)]
    pub roles: Vec<String>,
    /// SELECT granted.
    #[serde(default)]
    pub grant: Vec<ObjectSpec>,
    /// SELECT denied; a deny wins over any grant.
    #[serde(default)]
    pub deny: Vec<ObjectSpec>,
}

/// The object of a grant or deny: exactly one of `database`, `schema` or `table`, and for a
/// table optionally a column list. Every grant is SELECT: the server is read-only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// `IKHOSPITAL_DW`.
    #[serde(default)]
    pub database: Option<String>,
    /// A schema such as `dbo` or `sys`.
    #[serde(default)]
    pub schema: Option<String>,
    /// `schema.table`, or `table` for `dbo`.
    #[serde(default)]
    pub table: Option<String>,
    /// Columns of `table`; all when omitted.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
}

/// A column mask.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// `schema.table`.
    pub table: String,
    /// Masked column.
    pub column: String,
    /// A built-in mask.
    #[serde(default)]
    pub function: Option<MaskFunction>,
    /// Characters kept at the start for `partial` (default 1).
    #[serde(default)]
    pub keep_first: Option<usize>,
    /// Characters kept at the end for `partial` (default 0).
    #[serde(default)]
    pub keep_last: Option<usize>,
    /// A SQL expression over the row's columns instead of a built-in (may use `current_user`).
    #[serde(default)]
    pub expression: Option<String>,
    /// Users and roles the mask applies to.
    pub to: Vec<String>,
}

/// Built-in masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskFunction {
    /// Always NULL.
    Null,
    /// A fixed placeholder (`****` for text, NULL otherwise).
    Redact,
    /// Keeps `keep_first`/`keep_last` characters of a string, stars the rest.
    Partial,
    /// SHA-256 of the value, hex: stable, so grouping and joining still work on pseudonyms.
    Hash,
    /// Dates and timestamps truncated to 1 January of their year.
    YearOnly,
}

/// A row filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilterSpec {
    /// `schema.table`.
    pub table: String,
    /// SQL boolean over the table's columns; may use `current_user` and subqueries.
    pub filter: String,
    /// Users and roles the filter applies to.
    pub to: Vec<String>,
}

/// An RFC 3339 instant as Unix microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.timestamp_micros())
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp_micros())
                        .unwrap_or(0)
                })
            })
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "invalid instant {text:?}: expected RFC 3339 such as 2027-01-31T00:00:00Z"
                ))
            })?;
        Ok(Timestamp(parsed))
    }
}
