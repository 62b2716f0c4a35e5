//! Loads generated rows into MySQL/MariaDB with multi-row INSERTs on one connection.
//!
//! One connection on purpose: rows then commit in ID order, so an incremental ingest running at
//! the same time never sees a later ID before an earlier one (the auto-increment watermark
//! would skip it).

use std::fmt::Write as _;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::rules::{Patient, Visit, VisitPatient};
use super::{GenerateOptions, Generator, Progress, database_name, split_statements};
use crate::ingest::{Error, Result};

/// ID_PATIENT, NAME, SEX, AGE of an existing patient.
type PatientRow = (i32, Option<String>, Option<String>, Option<i32>);

/// Creates the database and tables if missing, then adds the rows. Returns (patients, visits)
/// inserted.
pub async fn generate(
    url: &str,
    options: &GenerateOptions,
    progress: &Progress,
) -> Result<(u64, u64)> {
    let (mut conn, database) = connect_server(url).await?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .await?;
    conn.query_drop(format!("USE `{database}`")).await?;
    for statement in split_statements(super::MYSQL_DDL) {
        conn.query_drop(statement).await?;
    }
    if !options.append {
        for table in ["events", "doctors", "patient", "shift"] {
            conn.query_drop(format!("TRUNCATE TABLE {table}")).await?;
        }
    }
    insert_fixed_rows(&mut conn).await?;

    let existing: Vec<VisitPatient> = if options.append {
        let rows: Vec<PatientRow> = conn
            .query("SELECT ID_PATIENT, NAME, SEX, AGE FROM patient ORDER BY ID")
            .await?;
        rows.into_iter()
            .map(|(id_patient, name, sex, age)| VisitPatient {
                id_patient,
                name: name.unwrap_or_default(),
                sex: sex.unwrap_or_default(),
                age: age.unwrap_or(0),
            })
            .collect()
    } else {
        Vec::new()
    };
    let existing_visits: u64 = if options.append {
        conn.query_first("SELECT COUNT(*) FROM events")
            .await?
            .unwrap_or(0)
    } else {
        0
    };
    let mut generator = Generator::new(
        options.seed,
        existing,
        existing_visits,
        options.patients,
        options.events,
        super::today(),
    );

    let mut n_patients = 0u64;
    progress.step("patients");
    loop {
        let chunk = generator.next_patients();
        if chunk.is_empty() {
            break;
        }
        conn.query_drop(patients_insert(&chunk)).await?;
        n_patients += chunk.len() as u64;
        progress.inc(chunk.len() as u64);
    }
    let mut n_visits = 0u64;
    progress.step("visits");
    loop {
        let chunk = generator.next_visits();
        if chunk.is_empty() {
            break;
        }
        conn.query_drop(visits_insert(&chunk, &generator.known_patients))
            .await?;
        n_visits += chunk.len() as u64;
        progress.inc(chunk.len() as u64);
    }
    conn.disconnect().await?;
    Ok((n_patients, n_visits))
}

/// Connects to the server of `url` without selecting a database; returns the database the URL
/// names (`ikhospital` by default).
pub async fn connect_server(url: &str) -> Result<(Conn, String)> {
    let opts =
        Opts::from_url(url).map_err(|err| Error::Invalid(format!("invalid MySQL URL: {err}")))?;
    let database = database_name(opts.db_name())?;
    let conn = Conn::new(OptsBuilder::from_opts(opts).db_name(None::<String>)).await?;
    Ok((conn, database))
}

async fn insert_fixed_rows(conn: &mut Conn) -> Result<()> {
    let n_doctors: u64 = conn
        .query_first("SELECT COUNT(*) FROM doctors")
        .await?
        .unwrap_or(0);
    if n_doctors == 0 {
        let mut sql =
            String::from("INSERT INTO doctors (ID, ID_DOCTOR, AREA, NAME, ID_SHIFT) VALUES ");
        for (idx, doctor) in super::doctors().iter().enumerate() {
            if idx > 0 {
                sql.push(',');
            }
            let _ = write!(
                sql,
                "({},{},{},{},{})",
                doctor.id_doctor,
                doctor.id_doctor,
                quote(&doctor.area),
                quote(&doctor.name),
                doctor.id_shift
            );
        }
        conn.query_drop(sql).await?;
    }
    let n_shifts: u64 = conn
        .query_first("SELECT COUNT(*) FROM shift")
        .await?
        .unwrap_or(0);
    if n_shifts == 0 {
        conn.query_drop(
            "INSERT INTO shift (ID, ID_SHIFT, SHIFT_NAME) VALUES (1,1,'Morning'),(2,2,'Evening'),(3,3,'Dawn')",
        )
        .await?;
    }
    Ok(())
}

fn patients_insert(chunk: &[Patient]) -> String {
    let mut sql = String::with_capacity(chunk.len() * 200);
    sql.push_str(
        "INSERT INTO patient (ID_PATIENT, NAME, SEX, AGE, ADDRESS, COUNTRY, NUMBER, EMAIL) VALUES ",
    );
    for (idx, p) in chunk.iter().enumerate() {
        if idx > 0 {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "({},{},{},{},{},{},{},{})",
            p.id_patient,
            quote(&p.name),
            quote(p.sex),
            p.age,
            quote(&p.address),
            quote(p.country),
            quote(&p.number),
            quote(&p.email)
        );
    }
    sql
}

fn visits_insert(chunk: &[Visit], patients: &[VisitPatient]) -> String {
    let mut sql = String::with_capacity(chunk.len() * 90);
    sql.push_str(
        "INSERT INTO events (ID_PATIENT, PATIENT, SEX, AGE, ID_DOCTOR, ID_SMOKE, SYMPTOMS, DATE_OF_SERVICE) VALUES ",
    );
    let mut first = true;
    for visit in chunk {
        let Some(patient) = patients.get(visit.patient_idx) else {
            continue;
        };
        if !first {
            sql.push(',');
        }
        first = false;
        let _ = write!(
            sql,
            "({},{},{},{},{},{},{},'{}')",
            patient.id_patient,
            quote(&patient.name),
            quote(&patient.sex),
            patient.age,
            visit.id_doctor,
            visit
                .id_smoke
                .map_or_else(|| "NULL".to_string(), |s| s.to_string()),
            visit.symptoms.map_or_else(|| "NULL".to_string(), quote),
            visit.date_of_service.format("%Y-%m-%d")
        );
    }
    sql
}

/// A MySQL string literal (default sql_mode: backslash escapes are on).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\x1a' => out.push_str("\\Z"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_mysql_needs() {
        assert_eq!(quote("O'Brien\\x\nline"), "'O\\'Brien\\\\x\\nline'");
    }
}
