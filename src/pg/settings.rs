//! Session settings (`SET`, `SHOW`, `RESET`) with PostgreSQL's names, defaults and reporting.
//!
//! Only settings that mean something here can change; read-only facts (`server_version`,
//! `integer_datetimes`) refuse changes like PostgreSQL does, DataFusion's own `datafusion.*`
//! options cannot be reached at all (they are server-wide), and settings PostgreSQL tools set
//! out of habit (`jit`, `lc_messages`, ...) are accepted and shown but change nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::sql::error::{QueryError, code};

/// Settings PostgreSQL reports with ParameterStatus at startup and after each change.
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any value.
    Free,
    /// Cannot be changed.
    ReadOnly,
    /// Accepted and stored, without effect.
    Ignored,
    /// Validated by [`Settings::set`].
    Checked,
}

/// (name as PostgreSQL spells it, default, kind)
const KNOWN: &[(&str, &str, Kind)] = &[
    ("application_name", "", Kind::Free),
    ("bytea_output", "hex", Kind::Checked),
    ("client_encoding", "UTF8", Kind::Checked),
    ("client_min_messages", "notice", Kind::Ignored),
    ("DateStyle", "ISO, MDY", Kind::Checked),
    (
        "default_transaction_isolation",
        "read committed",
        Kind::Ignored,
    ),
    ("default_table_access_method", "heap", Kind::Ignored),
    ("default_tablespace", "", Kind::Ignored),
    ("default_transaction_read_only", "on", Kind::ReadOnly),
    ("extra_float_digits", "1", Kind::Checked),
    ("geqo", "on", Kind::Ignored),
    ("idle_in_transaction_session_timeout", "0", Kind::Ignored),
    ("in_hot_standby", "off", Kind::ReadOnly),
    ("integer_datetimes", "on", Kind::ReadOnly),
    ("IntervalStyle", "postgres", Kind::Checked),
    ("is_superuser", "off", Kind::ReadOnly),
    ("jit", "off", Kind::Ignored),
    ("lakehouse.result_cache", "on", Kind::Checked),
    ("lc_collate", "C.UTF-8", Kind::ReadOnly),
    ("lc_ctype", "C.UTF-8", Kind::ReadOnly),
    ("lc_messages", "C.UTF-8", Kind::Ignored),
    ("lc_monetary", "C.UTF-8", Kind::Ignored),
    ("lc_numeric", "C.UTF-8", Kind::Ignored),
    ("lc_time", "C.UTF-8", Kind::Ignored),
    ("lock_timeout", "0", Kind::Ignored),
    ("max_identifier_length", "63", Kind::ReadOnly),
    ("max_index_keys", "32", Kind::ReadOnly),
    ("row_security", "on", Kind::ReadOnly),
    ("search_path", "\"$user\", dbo", Kind::Checked),
    ("server_encoding", "UTF8", Kind::ReadOnly),
    (
        "server_version",
        crate::pg::types::SERVER_VERSION,
        Kind::ReadOnly,
    ),
    (
        "server_version_num",
        crate::pg::types::SERVER_VERSION_NUM,
        Kind::ReadOnly,
    ),
    ("session_authorization", "", Kind::ReadOnly),
    ("standard_conforming_strings", "on", Kind::Checked),
    ("statement_timeout", "0", Kind::Checked),
    ("synchronous_commit", "on", Kind::Ignored),
    ("temp_tablespaces", "", Kind::Ignored),
    ("TimeZone", "UTC", Kind::Checked),
    ("transaction_isolation", "read committed", Kind::ReadOnly),
    ("transaction_read_only", "on", Kind::ReadOnly),
    ("work_mem", "4MB", Kind::Ignored),
];

/// The `options` startup parameter (libpq's `PGOPTIONS`): `-c name=value`, `-cname=value`
/// or `--name=value`, separated by spaces; `\\ ` is a space inside a value, as in PostgreSQL.
fn parse_options(options: &str) -> Result<Vec<(String, String)>, QueryError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let invalid = |what: &str| {
        QueryError::new(
            code::PROTOCOL_VIOLATION,
            format!("invalid command-line argument for server process: {what}"),
        )
        .with_hint("only -c name=value and --name=value are accepted in options")
    };
    let mut out = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let assignment = if word == "-c" {
            words.next().ok_or_else(|| invalid("-c"))?
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_string()
        } else if let Some(rest) = word.strip_prefix("--") {
            rest.to_string()
        } else {
            return Err(invalid(&word));
        };
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| invalid(&assignment))?;
        out.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(out)
}

/// One session's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
}

/// What a successful `SET`/`RESET` changed, for ParameterStatus messages.
pub type Changed = Vec<(String, String)>;

fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    let lower = match lower.as_str() {
        "time zone" | "timezone" => "timezone",
        "names" => "client_encoding",
        "transaction isolation level" => "transaction_isolation",
        other => other,
    }
    .to_string();
    KNOWN
        .iter()
        .find(|(known, ..)| known.to_lowercase() == lower)
        .map(|(known, ..)| *known)
}

fn kind_of(name: &str) -> Option<Kind> {
    KNOWN.iter().find(|(n, ..)| *n == name).map(|(_, _, k)| *k)
}

impl Settings {
    /// Defaults for a session of `user`, with the server's statement timeout.
    pub fn new(user: &str, statement_timeout: Option<Duration>) -> Settings {
        let mut values: BTreeMap<String, String> = KNOWN
            .iter()
            .map(|(name, default, _)| (name.to_string(), default.to_string()))
            .collect();
        values.insert("session_authorization".to_string(), user.to_string());
        if let Some(timeout) = statement_timeout {
            values.insert(
                "statement_timeout".to_string(),
                format!("{}", timeout.as_millis()),
            );
        }
        Settings {
            defaults: values.clone(),
            values,
        }
    }

    /// Applies startup-message parameters (`application_name`, `DateStyle`, ...). Unknown ones
    /// are ignored, as PostgreSQL clients send some only for PostgreSQL's sake.
    pub fn apply_startup(
        &mut self,
        parameters: &BTreeMap<String, String>,
    ) -> Result<(), QueryError> {
        let mut all: Vec<(String, String)> = parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(options) = parameters.get("options") {
            all.extend(parse_options(options)?);
        }
        for (name, value) in &all {
            if matches!(
                name.as_str(),
                "user" | "database" | "options" | "replication"
            ) {
                continue;
            }
            if let Some(canonical) = canonical(name)
                && kind_of(canonical) != Some(Kind::ReadOnly)
            {
                self.set(canonical, value)?;
            } else if name.contains('.') {
                // Custom settings (`-c lakehouse.result_cache=off` in PGOPTIONS).
                self.set(name, value)?;
            }
        }
        // Startup values become the session's reset values.
        self.defaults = self.values.clone();
        Ok(())
    }

    /// `SHOW name`: the value, or 42704.
    pub fn get(&self, name: &str) -> Result<(String, String), QueryError> {
        let lower = name.to_lowercase();
        if let Some(canonical) = canonical(name) {
            let value = self.values.get(canonical).cloned().unwrap_or_default();
            return Ok((canonical.to_lowercase(), value));
        }
        if let Some((k, v)) = self.values.iter().find(|(k, _)| k.to_lowercase() == lower) {
            return Ok((k.clone(), v.clone()));
        }
        Err(QueryError::new(
            code::UNDEFINED_OBJECT,
            format!("unrecognized configuration parameter \"{name}\""),
        ))
    }

    /// All settings, for `SHOW ALL` and `pg_settings`.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The statement timeout, if any.
    pub fn statement_timeout(&self) -> Option<Duration> {
        let raw = self.values.get("statement_timeout")?;
        let millis = parse_milliseconds(raw)?;
        (millis > 0).then(|| Duration::from_millis(millis))
    }

    /// The session time zone's canonical name (`UTC` or an IANA name).
    pub fn time_zone(&self) -> String {
        self.values
            .get("TimeZone")
            .cloned()
            .unwrap_or_else(|| crate::sql::zone::UTC.to_string())
    }

    /// Whether this session's answers may come from (and go to) the result cache.
    pub fn result_cache(&self) -> bool {
        self.values
            .get("lakehouse.result_cache")
            .is_none_or(|v| v == "on")
    }

    /// `search_path` as a list of schema names (`$user` kept).
    pub fn search_path(&self) -> Vec<String> {
        parse_search_path(
            self.values
                .get("search_path")
                .map(String::as_str)
                .unwrap_or(""),
        )
    }

    /// `SET name = value`. Returns what changed among reported settings.
    pub fn set(&mut self, name: &str, value: &str) -> Result<Changed, QueryError> {
        let lower = name.to_lowercase();
        if lower.starts_with("datafusion.") {
            return Err(QueryError::privilege(format!(
                "permission denied to set parameter \"{name}\""
            ))
            .with_detail("DataFusion options are server-wide and set in lakehouse.yaml"));
        }
        let Some(canonical) = canonical(name) else {
            // PostgreSQL accepts any two-part name as a custom placeholder setting.
            if lower.contains('.') && !lower.starts_with('.') && !lower.ends_with('.') {
                self.values.insert(lower, value.to_string());
                return Ok(Vec::new());
            }
            return Err(QueryError::new(
                code::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        };
        let value = self.validate(canonical, value)?;
        Ok(self.store(canonical, value))
    }

    /// `RESET name` / `RESET ALL`.
    pub fn reset(&mut self, name: Option<&str>) -> Result<Changed, QueryError> {
        match name {
            None => {
                let mut changed = Vec::new();
                for (key, default) in self.defaults.clone() {
                    if kind_of(&key) != Some(Kind::ReadOnly) {
                        changed.extend(self.store(&key, default));
                    }
                }
                self.values.retain(|k, _| self.defaults.contains_key(k));
                Ok(changed)
            }
            Some(name) => {
                let Some(canonical) = canonical(name) else {
                    let lower = name.to_lowercase();
                    if self.values.remove(&lower).is_some() {
                        return Ok(Vec::new());
                    }
                    return Err(QueryError::new(
                        code::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    ));
                };
                if kind_of(canonical) == Some(Kind::ReadOnly) {
                    return Err(read_only(canonical));
                }
                let default = self.defaults.get(canonical).cloned().unwrap_or_default();
                Ok(self.store(canonical, default))
            }
        }
    }

    fn store(&mut self, name: &str, value: String) -> Changed {
        let previous = self.values.insert(name.to_string(), value.clone());
        if REPORTED.contains(&name) && previous.as_deref() != Some(value.as_str()) {
            vec![(name.to_string(), value)]
        } else {
            Vec::new()
        }
    }

    fn validate(&self, name: &str, value: &str) -> Result<String, QueryError> {
        let invalid = |hint: &str| {
            QueryError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"{name}\": \"{value}\""),
            )
            .with_hint(hint.to_string())
        };
        let trimmed = value.trim();
        match kind_of(name) {
            Some(Kind::ReadOnly) => {
                // Setting a read-only value to what it already is, is harmless (JDBC does it).
                if self
                    .values
                    .get(name)
                    .is_some_and(|v| v.eq_ignore_ascii_case(trimmed))
                {
                    return Ok(trimmed.to_string());
                }
                Err(read_only(name))
            }
            Some(Kind::Free) | Some(Kind::Ignored) | None => Ok(value.to_string()),
            Some(Kind::Checked) => match name {
                "client_encoding" => {
                    // PostgreSQL compares encoding names with everything but letters and digits
                    // removed (asyncpg sends 'utf-8', Python's name for it).
                    let clean: String = trimmed
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric())
                        .collect::<String>()
                        .to_lowercase();
                    if matches!(clean.as_str(), "utf8" | "unicode") {
                        Ok("UTF8".to_string())
                    } else {
                        Err(invalid("only UTF8 is supported"))
                    }
                }
                "DateStyle" => date_style(trimmed)
                    .ok_or_else(|| invalid("only the ISO output style is supported")),
                "lakehouse.result_cache" => match parse_bool(trimmed) {
                    Some(true) => Ok("on".to_string()),
                    Some(false) => Ok("off".to_string()),
                    None => Err(invalid("on or off")),
                },
                "IntervalStyle" => {
                    if trimmed.eq_ignore_ascii_case("postgres") {
                        Ok("postgres".to_string())
                    } else {
                        Err(invalid("only the postgres interval style is supported"))
                    }
                }
                "TimeZone" => crate::sql::zone::canonical(trimmed).ok_or_else(|| {
                    invalid("use UTC or an IANA time zone name, such as Europe/Lisbon")
                }),
                "standard_conforming_strings" => {
                    if parse_bool(trimmed) == Some(true) {
                        Ok("on".to_string())
                    } else {
                        Err(invalid(
                            "only standard_conforming_strings = on is supported",
                        ))
                    }
                }
                "bytea_output" => {
                    if trimmed.eq_ignore_ascii_case("hex") {
                        Ok("hex".to_string())
                    } else {
                        Err(invalid("only hex is supported"))
                    }
                }
                "extra_float_digits" => match trimmed.parse::<i32>() {
                    Ok(v) if (-15..=3).contains(&v) => Ok(v.to_string()),
                    _ => Err(invalid("an integer between -15 and 3")),
                },
                "statement_timeout" => match parse_milliseconds(trimmed) {
                    Some(ms) => Ok(ms.to_string()),
                    None => Err(invalid("a duration such as 5000, '5s' or '2min'")),
                },
                "search_path" => Ok(parse_search_path(value)
                    .iter()
                    .map(|s| {
                        let plain = s
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                        if plain {
                            s.clone()
                        } else {
                            format!("\"{}\"", s.replace('"', "\"\""))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")),
                _ => Ok(value.to_string()),
            },
        }
    }

    /// The values to send as ParameterStatus at startup.
    pub fn reported(&self) -> Vec<(String, String)> {
        REPORTED
            .iter()
            .map(|name| {
                (
                    name.to_string(),
                    self.values.get(*name).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// A boolean setting as PostgreSQL's `parse_bool` reads it: `on`/`off`, `true`/`false`,
/// `yes`/`no`, `1`/`0`, and any unambiguous prefix of the words.
pub fn parse_bool(value: &str) -> Option<bool> {
    let v = value.trim().to_lowercase();
    if v.is_empty() {
        return None;
    }
    match v.as_str() {
        "1" | "on" => return Some(true),
        "0" | "of" | "off" => return Some(false),
        _ => {}
    }
    if "true".starts_with(&v) || "yes".starts_with(&v) {
        Some(true)
    } else if "false".starts_with(&v) || "no".starts_with(&v) {
        Some(false)
    } else {
        None
    }
}

/// `DateStyle` as PostgreSQL reads it: an output style and a field order, in any order and
/// either optional. Only the ISO output style is served; the order is kept as given.
fn date_style(value: &str) -> Option<String> {
    let mut order = "MDY";
    for word in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        match word.to_uppercase().as_str() {
            "ISO" | "DEFAULT" => {}
            "MDY" | "US" | "NONEUROPEAN" | "NONEURO" => order = "MDY",
            "DMY" | "EUROPEAN" | "EURO" => order = "DMY",
            "YMD" => order = "YMD",
            _ => return None,
        }
    }
    Some(format!("ISO, {order}"))
}

fn read_only(name: &str) -> QueryError {
    QueryError::new(
        code::CANT_CHANGE_RUNTIME_PARAM,
        format!("parameter \"{name}\" cannot be changed"),
    )
}

/// Parses `5000`, `5s`, `250ms`, `2min`, `1h` into milliseconds (PostgreSQL's units).
fn parse_milliseconds(text: &str) -> Option<u64> {
    let text = text.trim().trim_matches('\'').trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit.trim().to_lowercase().as_str() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// Splits a `search_path` value into schema names, lowercasing unquoted ones.
pub fn parse_search_path(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|part| {
            let part = part.trim().trim_matches('\'').trim();
            if part.starts_with('"') && part.ends_with('"') && part.len() >= 2 {
                part[1..part.len() - 1].to_string()
            } else {
                part.to_lowercase()
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_options_set_settings_like_pgoptions() {
        let mut settings = Settings::new("alice", None);
        let mut startup = BTreeMap::new();
        startup.insert(
            "options".to_string(),
            "-c lakehouse.result_cache=off --search-path=gold,dbo -cTimeZone=UTC".to_string(),
        );
        settings.apply_startup(&startup).unwrap();
        assert!(!settings.result_cache());
        assert_eq!(settings.search_path(), ["gold", "dbo"]);
        assert_eq!(
            parse_options(r"-c application_name=a\ b").unwrap(),
            [("application_name".to_string(), "a b".to_string())]
        );
        for bad in ["-x", "-c", "--novalue", "-c lakehouse.result_cache=maybe"] {
            let mut startup = BTreeMap::new();
            startup.insert("options".to_string(), bad.to_string());
            assert!(
                Settings::new("alice", None)
                    .apply_startup(&startup)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_and_reporting() {
        let settings = Settings::new("PBI_Reader", None);
        let reported: BTreeMap<_, _> = settings.reported().into_iter().collect();
        assert_eq!(reported["integer_datetimes"], "on");
        assert_eq!(reported["DateStyle"], "ISO, MDY");
        assert_eq!(reported["is_superuser"], "off");
        assert_eq!(reported["session_authorization"], "PBI_Reader");
        assert!(reported["server_version"].starts_with("15."));
        assert_eq!(settings.search_path(), vec!["$user", "dbo"]);
    }

    #[test]
    fn set_show_reset() {
        let mut s = Settings::new("u", None);
        assert_eq!(
            s.set("application_name", "psql").unwrap(),
            vec![("application_name".to_string(), "psql".to_string())]
        );
        assert_eq!(s.get("APPLICATION_NAME").unwrap().1, "psql");
        s.set("statement_timeout", "2s").unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(
            s.set("datafusion.execution.batch_size", "1")
                .unwrap_err()
                .code,
            "42501"
        );
        assert_eq!(s.set("server_version", "9").unwrap_err().code, "55P02");
        assert_eq!(s.set("no_such_thing", "1").unwrap_err().code, "42704");
        assert!(s.set("myapp.flag", "x").is_ok());
        assert_eq!(
            s.set("client_encoding", "LATIN1").unwrap_err().code,
            "22023"
        );
        for alias in ["utf-8", "'utf-8'", "Unicode", "utf_8", "UTF8"] {
            s.set("client_encoding", alias).unwrap();
            assert_eq!(s.get("client_encoding").unwrap().1, "UTF8", "{alias}");
        }
        for (style, shown) in [
            ("iso, dmy", "ISO, DMY"),
            ("European", "ISO, DMY"),
            ("ISO", "ISO, MDY"),
        ] {
            s.set("DateStyle", style).unwrap();
            assert_eq!(s.get("DateStyle").unwrap().1, shown, "{style}");
        }
        assert_eq!(s.set("DateStyle", "SQL, DMY").unwrap_err().code, "22023");
        for (value, on) in [
            ("tr", true),
            ("Y", true),
            ("off", false),
            ("n", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(value), Some(on), "{value}");
        }
        assert_eq!(parse_bool("o"), None);
        s.set("search_path", "dbo, \"Other\"").unwrap();
        assert_eq!(s.search_path(), vec!["dbo", "Other"]);
        s.reset(None).unwrap();
        assert_eq!(s.get("application_name").unwrap().1, "");
        assert_eq!(s.statement_timeout(), None);
    }

    #[test]
    fn startup_parameters() {
        let mut s = Settings::new("u", Some(Duration::from_secs(30)));
        let params: BTreeMap<String, String> = [
            ("user", "u"),
            ("application_name", "Power BI"),
            ("DateStyle", "ISO"),
            ("extra_float_digits", "2"),
            ("ssl_renegotiation_limit", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        s.apply_startup(&params).unwrap();
        assert_eq!(s.get("application_name").unwrap().1, "Power BI");
        s.set("application_name", "x").unwrap();
        s.reset(Some("application_name")).unwrap();
        assert_eq!(s.get("application_name").unwrap().1, "Power BI");
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(30)));
    }
}
