//! Loads the medicines into PostgreSQL with COPY FROM STDIN.

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::{Client, Config, NoTls};

use super::{database_name, split_statements};
use crate::ingest::{Error, Result};

/// Creates the database, schema and table if missing and loads the 100 medicines (afresh, or
/// with `append` only when the table is empty). Returns the medicines inserted.
pub async fn generate(url: &str, append: bool) -> Result<u64> {
    let (config, database) = parse_url(url)?;
    {
        let admin = connect(config.clone().dbname("postgres").to_owned()).await?;
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
            .await?
            .is_some();
        if !exists {
            // The name was checked to be a plain identifier; quoting keeps its case.
            admin
                .batch_execute(&format!("CREATE DATABASE \"{database}\""))
                .await?;
        }
    }
    let client = connect(config.clone().dbname(&database).to_owned()).await?;
    for statement in split_statements(super::POSTGRES_DDL) {
        client.batch_execute(&statement).await?;
    }
    if !append {
        client
            .batch_execute("TRUNCATE pharmacy.medicine RESTART IDENTITY")
            .await?;
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM pharmacy.medicine", &[])
        .await?
        .get(0);
    if count > 0 {
        return Ok(0);
    }
    let medicines = super::medicines();
    let mut text = String::new();
    for row in &medicines {
        let fields: Vec<String> = row
            .iter()
            .map(|f| f.as_deref().map_or_else(|| "\\N".to_string(), copy_text))
            .collect();
        text.push_str(&fields.join("\t"));
        text.push('\n');
    }
    let sink = client
        .copy_in(
            "COPY pharmacy.medicine (brand_name, generic_name, manufacturer_name, product_ndc, product_type, route, substance_name) FROM STDIN",
        )
        .await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(text)).await?;
    let n = sink.finish().await?;
    Ok(n)
}

/// Parses a PostgreSQL URL; returns it and the database it names (`ikhospital` by default).
pub fn parse_url(url: &str) -> Result<(Config, String)> {
    let config: Config = url
        .parse()
        .map_err(|err| Error::Invalid(format!("invalid PostgreSQL URL: {err}")))?;
    let database = database_name(config.get_dbname())?;
    Ok((config, database))
}

/// Connects and drives the connection in the background.
pub async fn connect(config: Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Escapes a value for COPY's text format.
pub fn copy_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}
