//! `COPY ... TO STDOUT`: its syntax, its options and PostgreSQL's three output formats.
//!
//! COPY TO STDOUT sends a query's rows to the client, not to a server file: it is a read, and
//! the fastest way out for polars (connectorx, ADBC), psycopg's `cursor.copy()`, asyncpg's
//! `copy_from_query` and psql's `\copy`. The statement runs the inner query through exactly the
//! same classify, plan, enforce and audit path as a SELECT; this module only parses the
//! statement (sqlparser does not know PostgreSQL's generic option list, `FORCE_QUOTE *` or
//! `HEADER on`), validates the options as PostgreSQL does, and writes rows as `text`, `csv` or
//! `binary` COPY data. Files, programs and `COPY ... FROM` stay refused by `sql::classify`.

use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, Statement,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{IsOptional, Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::sql::error::{QueryError, code};

/// The binary COPY signature, flags and header extension length.
pub const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A COPY output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Tab-separated text with backslash escapes, `\N` for NULL.
    Text,
    /// Comma-separated values with quoting.
    Csv,
    /// PostgreSQL's binary COPY format (the `*send` representation of each value).
    Binary,
}

impl CopyFormat {
    /// The overall format code of CopyOutResponse (0 text, 1 binary).
    pub fn code(self) -> i8 {
        match self {
            CopyFormat::Binary => 1,
            _ => 0,
        }
    }
}

/// The options of a `COPY ... TO STDOUT`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Output format.
    pub format: CopyFormat,
    /// Field delimiter (text: tab, csv: comma).
    pub delimiter: u8,
    /// How NULL is written (text: `\N`, csv: an empty unquoted field).
    pub null: String,
    /// A first line with the column names.
    pub header: bool,
    /// CSV quote character.
    pub quote: u8,
    /// CSV escape character (defaults to the quote).
    pub escape: u8,
    /// CSV columns always quoted (`*` is every column).
    force_quote: ForceQuote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ForceQuote {
    None,
    All,
    Columns(Vec<String>),
}

/// How the rows of a planned `COPY ... TO STDOUT` are written.
#[derive(Debug, Clone)]
pub struct CopyRows {
    /// Format and options.
    pub options: CopyOptions,
    /// The copied columns.
    pub fields: Vec<crate::pg::types::FieldInfo>,
    /// Per column: always quoted (CSV `FORCE_QUOTE`).
    pub force_quote: Vec<bool>,
}

/// A `COPY ... TO STDOUT` classified: the query to run and how to write its rows.
#[derive(Debug, Clone)]
pub struct CopyOut {
    /// The query whose rows are copied (`COPY table` is `SELECT columns FROM table`).
    pub query: Box<Statement>,
    /// Output options.
    pub options: CopyOptions,
}

impl CopyOptions {
    /// Which output columns are always quoted, given their names (PostgreSQL refuses a
    /// FORCE_QUOTE column the COPY does not output).
    pub fn force_quoted(&self, names: &[String]) -> Result<Vec<bool>, QueryError> {
        match &self.force_quote {
            ForceQuote::None => Ok(vec![false; names.len()]),
            ForceQuote::All => Ok(vec![true; names.len()]),
            ForceQuote::Columns(columns) => {
                let mut flags = vec![false; names.len()];
                for column in columns {
                    let idx = names.iter().position(|n| n == column).ok_or_else(|| {
                        QueryError::new(
                            code::INVALID_COLUMN_REFERENCE,
                            format!("FORCE_QUOTE column \"{column}\" not referenced by COPY"),
                        )
                    })?;
                    flags[idx] = true;
                }
                Ok(flags)
            }
        }
    }
}

/// Parses the rest of a COPY statement (the `COPY` keyword consumed) as PostgreSQL's grammar
/// does: the modern option list `( name [value], ... )` with any value PostgreSQL accepts
/// (`HEADER on`, `FORMAT 'csv'`, `FORCE_QUOTE *`), and the pre-9.0 `WITH CSV HEADER ...` form.
pub fn parse(parser: &mut Parser) -> Result<Statement, ParserError> {
    let source = if parser.consume_token(&Token::LParen) {
        let query = parser.parse_query()?;
        parser.expect_token(&Token::RParen)?;
        CopySource::Query(query)
    } else {
        let table_name = parser.parse_object_name(false)?;
        let columns = parser.parse_parenthesized_column_list(IsOptional::Optional, false)?;
        CopySource::Table {
            table_name,
            columns,
        }
    };
    let to = match parser.parse_one_of_keywords(&[Keyword::FROM, Keyword::TO]) {
        Some(Keyword::TO) => true,
        Some(_) => false,
        None => return parser.expected("FROM or TO", parser.peek_token()),
    };
    let target = if parser.parse_keyword(Keyword::STDIN) {
        CopyTarget::Stdin
    } else if parser.parse_keyword(Keyword::STDOUT) {
        CopyTarget::Stdout
    } else if parser.parse_keyword(Keyword::PROGRAM) {
        CopyTarget::Program {
            command: parser.parse_literal_string()?,
        }
    } else {
        CopyTarget::File {
            filename: parser.parse_literal_string()?,
        }
    };
    let with = parser.parse_keyword(Keyword::WITH);
    let mut options = Vec::new();
    let mut legacy_options = Vec::new();
    if parser.consume_token(&Token::LParen) {
        loop {
            options.push(generic_option(parser)?);
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
    } else {
        while let Some(option) = legacy_option(parser)? {
            legacy_options.push(option);
        }
        if with && legacy_options.is_empty() {
            return parser.expected("a COPY option", parser.peek_token());
        }
    }
    Ok(Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        values: Vec::new(),
    })
}

/// The value of a generic option, as PostgreSQL's `copy_generic_opt_arg` allows.
enum OptionValue {
    None,
    Text(String),
    Star,
    Columns(Vec<Ident>),
}

fn generic_option(parser: &mut Parser) -> Result<CopyOption, ParserError> {
    let name = match parser.next_token().token {
        Token::Word(word) => word.value.to_lowercase(),
        _ => {
            parser.prev_token();
            return parser.expected("a COPY option name", parser.peek_token());
        }
    };
    let value = match parser.peek_token().token {
        Token::Comma | Token::RParen => OptionValue::None,
        Token::Mul => {
            parser.next_token();
            OptionValue::Star
        }
        Token::LParen => OptionValue::Columns(
            parser.parse_parenthesized_column_list(IsOptional::Mandatory, false)?,
        ),
        Token::Word(word) => {
            parser.next_token();
            OptionValue::Text(word.value)
        }
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => {
            parser.next_token();
            OptionValue::Text(s)
        }
        Token::Number(n, _) => {
            parser.next_token();
            OptionValue::Text(n)
        }
        _ => return parser.expected("a COPY option value", parser.peek_token()),
    };
    let text = |value: OptionValue| -> Result<String, ParserError> {
        match value {
            OptionValue::Text(s) => Ok(s),
            _ => Err(ParserError::ParserError(format!(
                "{name} requires a parameter"
            ))),
        }
    };
    let boolean = |value: OptionValue| -> Result<bool, ParserError> {
        match value {
            OptionValue::None => Ok(true),
            OptionValue::Text(s) => parse_bool(&s).ok_or_else(|| {
                ParserError::ParserError(format!("{name} requires a Boolean value"))
            }),
            _ => Err(ParserError::ParserError(format!(
                "{name} requires a Boolean value"
            ))),
        }
    };
    let columns = |value: OptionValue, star: bool| -> Result<Vec<Ident>, ParserError> {
        match value {
            OptionValue::Columns(c) => Ok(c),
            OptionValue::Star if star => Ok(vec![Ident::new("*")]),
            _ => Err(ParserError::ParserError(format!(
                "argument to option \"{name}\" must be a list of column names"
            ))),
        }
    };
    let one_char = |value: OptionValue| -> Result<char, ParserError> {
        let s = text(value)?;
        single_byte(&name, &s)
    };
    Ok(match name.as_str() {
        "format" => CopyOption::Format(Ident::new(text(value)?)),
        "freeze" => CopyOption::Freeze(boolean(value)?),
        "delimiter" => CopyOption::Delimiter(one_char(value)?),
        "null" => CopyOption::Null(text(value)?),
        "header" => match &value {
            OptionValue::Text(s) if s.eq_ignore_ascii_case("match") => {
                return Err(ParserError::ParserError(
                    "cannot use \"match\" with HEADER in COPY TO".to_string(),
                ));
            }
            _ => CopyOption::Header(boolean(value)?),
        },
        "quote" => CopyOption::Quote(one_char(value)?),
        "escape" => CopyOption::Escape(one_char(value)?),
        "force_quote" => CopyOption::ForceQuote(columns(value, true)?),
        "force_not_null" => CopyOption::ForceNotNull(columns(value, true)?),
        "force_null" => CopyOption::ForceNull(columns(value, true)?),
        "encoding" => CopyOption::Encoding(text(value)?),
        other => {
            return Err(ParserError::ParserError(format!(
                "option \"{other}\" not recognized"
            )));
        }
    })
}

/// One option of the pre-9.0 syntax, or `None` where the options end.
fn legacy_option(parser: &mut Parser) -> Result<Option<CopyLegacyOption>, ParserError> {
    let char_after_as = |parser: &mut Parser, name: &str| -> Result<char, ParserError> {
        let _ = parser.parse_keyword(Keyword::AS);
        let s = parser.parse_literal_string()?;
        single_byte(name, &s)
    };
    Ok(Some(
        match parser.parse_one_of_keywords(&[
            Keyword::BINARY,
            Keyword::CSV,
            Keyword::HEADER,
            Keyword::DELIMITER,
            Keyword::NULL,
            Keyword::QUOTE,
            Keyword::ESCAPE,
            Keyword::FORCE,
        ]) {
            Some(Keyword::BINARY) => CopyLegacyOption::Binary,
            Some(Keyword::CSV) => CopyLegacyOption::Csv(Vec::new()),
            Some(Keyword::HEADER) => CopyLegacyOption::Csv(vec![CopyLegacyCsvOption::Header]),
            Some(Keyword::DELIMITER) => {
                CopyLegacyOption::Delimiter(char_after_as(parser, "delimiter")?)
            }
            Some(Keyword::NULL) => {
                let _ = parser.parse_keyword(Keyword::AS);
                CopyLegacyOption::Null(parser.parse_literal_string()?)
            }
            Some(Keyword::QUOTE) => CopyLegacyOption::Csv(vec![CopyLegacyCsvOption::Quote(
                char_after_as(parser, "quote")?,
            )]),
            Some(Keyword::ESCAPE) => CopyLegacyOption::Csv(vec![CopyLegacyCsvOption::Escape(
                char_after_as(parser, "escape")?,
            )]),
            Some(Keyword::FORCE) => {
                if parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
                    CopyLegacyOption::Csv(vec![CopyLegacyCsvOption::ForceNotNull(legacy_columns(
                        parser,
                    )?)])
                } else if parser.parse_keyword(Keyword::QUOTE) {
                    let columns = if parser.consume_token(&Token::Mul) {
                        vec![Ident::new("*")]
                    } else {
                        legacy_columns(parser)?
                    };
                    CopyLegacyOption::Csv(vec![CopyLegacyCsvOption::ForceQuote(columns)])
                } else {
                    return parser.expected("QUOTE or NOT NULL", parser.peek_token());
                }
            }
            _ => return Ok(None),
        },
    ))
}

fn legacy_columns(parser: &mut Parser) -> Result<Vec<Ident>, ParserError> {
    let mut columns = vec![parser.parse_identifier()?];
    while parser.consume_token(&Token::Comma) {
        columns.push(parser.parse_identifier()?);
    }
    Ok(columns)
}

fn single_byte(name: &str, s: &str) -> Result<char, ParserError> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => Ok(c),
        _ => Err(ParserError::ParserError(format!(
            "COPY {name} must be a single one-byte character"
        ))),
    }
}

/// PostgreSQL's boolean option spellings.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "true" | "on" | "1" | "yes" | "t" | "y" => Some(true),
        "false" | "off" | "0" | "no" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Whether a COPY statement writes to the client (the only COPY this server runs).
pub fn is_to_stdout(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Copy {
            to: true,
            target: CopyTarget::Stdout,
            ..
        }
    )
}

/// Classifies a `COPY ... TO STDOUT`: the query it runs and its validated options.
pub fn classify(statement: Statement) -> Result<CopyOut, QueryError> {
    let Statement::Copy {
        source,
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Err(QueryError::unsupported("not a COPY statement"));
    };
    let options = validate(options, legacy_options)?;
    let query = match source {
        CopySource::Query(query) => Statement::Query(query),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut statements =
                crate::sql::shape::parse(&format!("SELECT {list} FROM {table_name}"))?;
            statements
                .pop()
                .ok_or_else(|| QueryError::syntax("COPY names no table"))?
        }
    };
    Ok(CopyOut {
        query: Box::new(query),
        options,
    })
}

fn redundant() -> QueryError {
    QueryError::syntax("conflicting or redundant options")
}

fn validate(
    options: Vec<CopyOption>,
    legacy: Vec<CopyLegacyOption>,
) -> Result<CopyOptions, QueryError> {
    let mut format = None;
    let mut delimiter = None;
    let mut null = None;
    let mut header = None;
    let mut quote = None;
    let mut escape = None;
    let mut force_quote = None;
    /// Each option once, as PostgreSQL requires.
    fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), QueryError> {
        if slot.is_some() {
            return Err(redundant());
        }
        *slot = Some(value);
        Ok(())
    }
    let columns_of = |columns: Vec<Ident>| -> ForceQuote {
        if columns.len() == 1 && columns[0].quote_style.is_none() && columns[0].value == "*" {
            ForceQuote::All
        } else {
            ForceQuote::Columns(columns.into_iter().map(|c| normalized(&c)).collect())
        }
    };
    let from_only =
        |name: &str| QueryError::unsupported(format!("COPY {name} cannot be used with COPY TO"));
    for option in options {
        match option {
            CopyOption::Format(name) => {
                let value = match name.value.to_lowercase().as_str() {
                    "text" => CopyFormat::Text,
                    "csv" => CopyFormat::Csv,
                    "binary" => CopyFormat::Binary,
                    other => {
                        return Err(QueryError::new(
                            code::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ));
                    }
                };
                set(&mut format, value)?;
            }
            CopyOption::Freeze(_) => return Err(from_only("FREEZE")),
            CopyOption::Delimiter(c) => set(&mut delimiter, c)?,
            CopyOption::Null(s) => set(&mut null, s)?,
            CopyOption::Header(on) => set(&mut header, on)?,
            CopyOption::Quote(c) => set(&mut quote, c)?,
            CopyOption::Escape(c) => set(&mut escape, c)?,
            CopyOption::ForceQuote(columns) => set(&mut force_quote, columns_of(columns))?,
            CopyOption::ForceNotNull(_) => return Err(from_only("FORCE_NOT_NULL")),
            CopyOption::ForceNull(_) => return Err(from_only("FORCE_NULL")),
            CopyOption::Encoding(name) => {
                let utf8 = name.to_uppercase().replace(['-', '_'], "");
                if utf8 != "UTF8" && utf8 != "UNICODE" {
                    return Err(QueryError::unsupported(format!(
                        "COPY ENCODING \"{name}\" is not supported: every value is UTF8"
                    )));
                }
            }
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Binary => set(&mut format, CopyFormat::Binary)?,
            CopyLegacyOption::Delimiter(c) => set(&mut delimiter, c)?,
            CopyLegacyOption::Null(s) => set(&mut null, s)?,
            CopyLegacyOption::Csv(csv) => {
                if format != Some(CopyFormat::Csv) {
                    // `CSV`, and options that only make sense with it, mean CSV.
                    set(&mut format, CopyFormat::Csv)?;
                }
                for option in csv {
                    match option {
                        CopyLegacyCsvOption::Header => set(&mut header, true)?,
                        CopyLegacyCsvOption::Quote(c) => set(&mut quote, c)?,
                        CopyLegacyCsvOption::Escape(c) => set(&mut escape, c)?,
                        CopyLegacyCsvOption::ForceQuote(columns) => {
                            set(&mut force_quote, columns_of(columns))?
                        }
                        CopyLegacyCsvOption::ForceNotNull(_) => {
                            return Err(from_only("FORCE_NOT_NULL"));
                        }
                    }
                }
            }
            other => {
                return Err(QueryError::syntax(format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    let format = format.unwrap_or(CopyFormat::Text);
    let csv = format == CopyFormat::Csv;
    if format == CopyFormat::Binary {
        for (name, given) in [
            ("DELIMITER", delimiter.is_some()),
            ("NULL", null.is_some()),
            ("HEADER", header.is_some()),
        ] {
            if given {
                return Err(QueryError::syntax(format!(
                    "cannot specify {name} in BINARY mode"
                )));
            }
        }
    }
    if !csv {
        for (name, given) in [
            ("quote", quote.is_some()),
            ("escape", escape.is_some()),
            ("force quote", force_quote.is_some()),
        ] {
            if given {
                return Err(QueryError::unsupported(format!(
                    "COPY {name} available only in CSV mode"
                )));
            }
        }
    }
    // The parser admits one-byte (ASCII) characters only.
    let byte = |c: Option<char>, default: u8| c.map(|c| c as u8).unwrap_or(default);
    let delimiter = byte(delimiter, if csv { b',' } else { b'\t' });
    let quote = byte(quote, b'"');
    let escape = byte(escape, quote);
    let null = null.unwrap_or_else(|| {
        if csv {
            String::new()
        } else {
            "\\N".to_string()
        }
    });
    if delimiter == b'\n' || delimiter == b'\r' {
        return Err(QueryError::new(
            code::INVALID_PARAMETER_VALUE,
            "COPY delimiter cannot be newline or carriage return",
        ));
    }
    if null.contains('\n') || null.contains('\r') {
        return Err(QueryError::new(
            code::INVALID_PARAMETER_VALUE,
            "COPY null representation cannot use newline or carriage return",
        ));
    }
    if format == CopyFormat::Text && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter)
    {
        return Err(QueryError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("COPY delimiter cannot be \"{}\"", delimiter as char),
        ));
    }
    if format != CopyFormat::Binary && null.as_bytes().contains(&delimiter) {
        return Err(QueryError::new(
            code::INVALID_PARAMETER_VALUE,
            "COPY delimiter must not appear in the NULL specification",
        ));
    }
    if csv {
        if delimiter == quote {
            return Err(QueryError::new(
                code::INVALID_PARAMETER_VALUE,
                "COPY delimiter and quote must be different",
            ));
        }
        if null.as_bytes().contains(&quote) {
            return Err(QueryError::new(
                code::INVALID_PARAMETER_VALUE,
                "CSV quote character must not appear in the NULL specification",
            ));
        }
    }
    Ok(CopyOptions {
        format,
        delimiter,
        null,
        header: header.unwrap_or(false),
        quote,
        escape,
        force_quote: force_quote.unwrap_or(ForceQuote::None),
    })
}

/// An identifier as PostgreSQL folds it: unquoted names are lower case.
fn normalized(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Appends one value in COPY's text format (PostgreSQL's `CopyAttributeOutText`).
pub fn text_value(value: &str, delimiter: u8, out: &mut Vec<u8>) {
    for &b in value.as_bytes() {
        match b {
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\x0b' => out.extend_from_slice(b"\\v"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            c if c == delimiter => {
                out.push(b'\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Appends one value in COPY's CSV format (PostgreSQL's `CopyAttributeOutCSV`): quoted when
/// forced, when it equals the NULL string, when it is `\.` alone on a line, or when it holds
/// the delimiter, the quote or a line break.
pub fn csv_value(
    value: &str,
    options: &CopyOptions,
    force: bool,
    single_column: bool,
    out: &mut Vec<u8>,
) {
    let bytes = value.as_bytes();
    let quoted = force
        || value == options.null
        || (single_column && value == "\\.")
        || bytes
            .iter()
            .any(|&b| b == options.delimiter || b == options.quote || b == b'\n' || b == b'\r');
    if !quoted {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(options.quote);
    for &b in bytes {
        if b == options.quote || b == options.escape {
            out.push(options.escape);
        }
        out.push(b);
    }
    out.push(options.quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::shape;

    fn options(sql: &str) -> Result<CopyOptions, QueryError> {
        let mut statements = shape::parse(sql)?;
        classify(statements.remove(0)).map(|c| c.options)
    }

    #[test]
    fn generic_and_legacy_options_parse_as_postgresql_does() {
        let csv = options("COPY t TO STDOUT (FORMAT 'csv', HEADER on, FORCE_QUOTE *)").unwrap();
        assert_eq!(csv.format, CopyFormat::Csv);
        assert!(csv.header);
        assert_eq!(
            csv.force_quoted(&["a".into(), "b".into()]).unwrap(),
            [true, true]
        );
        let legacy = options("copy t to stdout with csv header force quote a").unwrap();
        assert_eq!(legacy.format, CopyFormat::Csv);
        assert!(legacy.header);
        assert_eq!(
            legacy.force_quoted(&["a".into(), "b".into()]).unwrap(),
            [true, false]
        );
        let text = options("COPY (SELECT 1) TO STDOUT").unwrap();
        assert_eq!(
            (text.format, text.delimiter, text.null.as_str()),
            (CopyFormat::Text, b'\t', "\\N")
        );
        let binary = options("COPY (select 1) TO STDOUT WITH (FORMAT binary)").unwrap();
        assert_eq!(binary.format, CopyFormat::Binary);
        let asyncpg = options(
            "COPY (SELECT 1) TO STDOUT (FORMAT csv, HEADER True, DELIMITER '|', NULL 'x', ENCODING 'utf-8')",
        )
        .unwrap();
        assert_eq!((asyncpg.delimiter, asyncpg.null.as_str()), (b'|', "x"));
    }

    #[test]
    fn invalid_options_are_refused_with_postgresql_messages() {
        for (sql, code) in [
            ("COPY t TO STDOUT (FORMAT xml)", "22023"),
            ("COPY t TO STDOUT (FORMAT binary, HEADER)", "42601"),
            ("COPY t TO STDOUT (QUOTE '\"')", "0A000"),
            ("COPY t TO STDOUT (FORMAT csv, DELIMITER '\"')", "22023"),
            ("COPY t TO STDOUT (DELIMITER 'a')", "22023"),
            ("COPY t TO STDOUT (FORMAT csv, FORMAT text)", "42601"),
            ("COPY t TO STDOUT (FREEZE)", "0A000"),
            ("COPY t TO STDOUT (ENCODING 'LATIN1')", "0A000"),
            ("COPY t TO STDOUT (BOGUS 1)", "42601"),
            ("COPY t TO STDOUT (DELIMITER 'ab')", "42601"),
            ("COPY t TO STDOUT (HEADER match)", "42601"),
        ] {
            let err = options(sql).expect_err(sql);
            assert_eq!(err.code, code, "{sql}: {}", err.message);
        }
        let err = options("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (z))")
            .unwrap()
            .force_quoted(&["a".into()])
            .unwrap_err();
        assert_eq!(err.code, "42P10");
    }

    #[test]
    fn text_and_csv_values_are_escaped_as_postgresql_does() {
        let mut out = Vec::new();
        text_value("a\tb\\c\nd|e", b'|', &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd\\|e");
        let csv = options("COPY t TO STDOUT (FORMAT csv)").unwrap();
        let render = |v: &str, force: bool, single: bool| {
            let mut out = Vec::new();
            csv_value(v, &csv, force, single, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(render("plain", false, false), "plain");
        assert_eq!(render("", false, false), "\"\"");
        assert_eq!(render("a,b", false, false), "\"a,b\"");
        assert_eq!(render("say \"hi\"", false, false), "\"say \"\"hi\"\"\"");
        assert_eq!(render("x", true, false), "\"x\"");
        assert_eq!(render("\\.", false, true), "\"\\.\"");
        assert_eq!(render("line\nbreak", false, false), "\"line\nbreak\"");
    }
}
