//! The simple query protocol: every statement of a query string in order, text results.

use super::*;
use crate::pg::codec::encode::Format;
use crate::sql::QueryError;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::EmptyQueryResponse;

/// The simple query protocol: every statement of the string in order, text results; the first
/// error stops the rest.
pub(super) async fn simple_query(
    conn: &mut Conn,
    live: &mut LiveSession,
    sql: &str,
) -> Result<(), Stop> {
    let parsed = {
        let guard = Guard::start(live);
        guard.run(live.query.parse(sql)).await
    };
    let statements = match parsed {
        Ok(s) => s,
        Err(err) => {
            live.query.record_refused(sql, &err);
            conn.error(&err);
            live.query.on_error();
            return Ok(());
        }
    };
    if statements.is_empty() {
        conn.send(PgWireBackendMessage::EmptyQueryResponse(
            EmptyQueryResponse::new(),
        ));
        return Ok(());
    }
    for (text, statement) in crate::sql::shape::with_texts(sql, statements) {
        // One statement timeout from planning to the last row, as PostgreSQL times each
        // statement of a query string.
        let guard = Guard::start(live);
        // Execution audits its own outcome; a statement that never got that far (refused,
        // unknown table, timed out while planning) is audited here, as the extended protocol's
        // Parse does.
        let mut planned = false;
        let result = guard
            .run(async {
                let mut prepared = live.query.prepare(&text, statement, &[]).await?;
                planned = true;
                let outcome = live.query.execute(&mut prepared, Vec::new()).await?;
                Ok::<_, QueryError>((prepared, outcome))
            })
            .await;
        let (prepared, outcome) = match result {
            Ok(ok) => ok,
            Err(err) => {
                if !planned {
                    live.query.record_refused(&text, &err);
                }
                if err.fatal {
                    return Err(Stop::Client(err));
                }
                conn.error(&err);
                live.query.on_error();
                return Ok(());
            }
        };
        let formats = vec![Format::Text; prepared.fields.as_ref().map(|f| f.len()).unwrap_or(0)];
        if let Some(fields) = &prepared.fields {
            conn.send(row_description(fields, &formats));
        }
        match send_outcome(conn, live, outcome, &formats, 0, &guard).await? {
            Sent::Done => {}
            Sent::Failed => return Ok(()),
            Sent::Suspended(_) => {}
        }
    }
    Ok(())
}
