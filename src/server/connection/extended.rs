//! The extended query protocol: Parse, Bind, Describe, Execute (with row limits and
//! suspended portals), Close.

use super::*;
use crate::pg::codec::encode::Format;
use crate::sql::error::code;
use crate::sql::{QueryError, QuerySession};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{BindComplete, CloseComplete, ParseComplete};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// One extended-protocol message.
pub(super) async fn extended(
    conn: &mut Conn,
    live: &mut LiveSession,
    state: &mut State,
    message: PgWireFrontendMessage,
) -> Result<(), Stop> {
    match message {
        PgWireFrontendMessage::Parse(parse) => {
            let name = parse.name.clone().unwrap_or_default();
            if !name.is_empty() && state.statements.contains_key(&name) {
                return Err(client_error(QueryError::new(
                    code::DUPLICATE_PREPARED_STATEMENT,
                    format!("prepared statement \"{name}\" already exists"),
                )));
            }
            // Parse and plan count toward statement_timeout and can be canceled.
            let guard = Guard::start(live);
            let prepared = guard
                .run(async {
                    let mut statements = live.query.parse(&parse.query).await?;
                    match statements.len() {
                        0 => Ok(live.query.prepare_empty()),
                        1 => {
                            let statement = statements.remove(0);
                            live.query
                                .prepare(&parse.query, statement, &parse.type_oids)
                                .await
                        }
                        _ => Err(QueryError::syntax(
                            "cannot insert multiple commands into a prepared statement",
                        )),
                    }
                })
                .await
                .map_err(|err| {
                    live.query.record_refused(&parse.query, &err);
                    client_error(err)
                })?;
            state.statements.insert(name, prepared);
            conn.send(PgWireBackendMessage::ParseComplete(ParseComplete::new()));
        }
        PgWireFrontendMessage::Bind(bind) => {
            let statement_name = bind.statement_name.clone().unwrap_or_default();
            let portal_name = bind.portal_name.clone().unwrap_or_default();
            let prepared = state
                .statements
                .get(&statement_name)
                .cloned()
                .ok_or_else(|| {
                    client_error(QueryError::new(
                        code::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{statement_name}\" does not exist"),
                    ))
                })?;
            if !portal_name.is_empty() && state.portals.contains_key(&portal_name) {
                return Err(client_error(QueryError::new(
                    code::DUPLICATE_CURSOR,
                    format!("portal \"{portal_name}\" already exists"),
                )));
            }
            let n_params = prepared.param_types.len();
            if bind.parameters.len() != n_params {
                return Err(client_error(QueryError::new(
                    code::PROTOCOL_VIOLATION,
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires {n_params}",
                        bind.parameters.len()
                    ),
                )));
            }
            let param_formats: Vec<i16> = match bind.parameter_format_codes.len() {
                0 => vec![0; n_params],
                1 => vec![bind.parameter_format_codes[0]; n_params],
                n if n == n_params => bind.parameter_format_codes.clone(),
                n => {
                    return Err(client_error(QueryError::new(
                        code::PROTOCOL_VIOLATION,
                        format!("bind message has {n} parameter formats but {n_params} parameters"),
                    )));
                }
            };
            let mut params = Vec::with_capacity(n_params);
            let zone = crate::sql::zone::zone(&live.query.settings().time_zone());
            for (idx, value) in bind.parameters.iter().enumerate() {
                params.push(
                    crate::pg::codec::params::decode(
                        value.as_ref(),
                        prepared.param_types[idx],
                        param_formats[idx],
                        zone.as_ref(),
                    )
                    .map_err(client_error)?,
                );
            }
            let n_fields = prepared.fields.as_ref().map(|f| f.len()).unwrap_or(0);
            let formats = Format::from_codes(&bind.result_column_format_codes, n_fields)
                .map_err(|m| client_error(QueryError::new(code::PROTOCOL_VIOLATION, m)))?;
            if let Some(old) = state.portals.remove(&portal_name) {
                finish_abandoned(live, old);
            }
            state.portals.insert(
                portal_name,
                Portal {
                    prepared,
                    params,
                    formats,
                    state: PortalState::NotStarted,
                },
            );
            conn.send(PgWireBackendMessage::BindComplete(BindComplete::new()));
        }
        PgWireFrontendMessage::Describe(describe) => {
            let name = describe.name.clone().unwrap_or_default();
            if describe.target_type == b'S' {
                let prepared = state.statements.get(&name).ok_or_else(|| {
                    client_error(QueryError::new(
                        code::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{name}\" does not exist"),
                    ))
                })?;
                conn.send(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(prepared.param_types.clone()),
                ));
                match &prepared.fields {
                    Some(fields) => {
                        let formats = vec![Format::Text; fields.len()];
                        conn.send(row_description(fields, &formats));
                    }
                    None => conn.send(PgWireBackendMessage::NoData(NoData::new())),
                }
            } else {
                let portal = state.portals.get(&name).ok_or_else(|| {
                    client_error(QueryError::new(
                        code::INVALID_CURSOR_NAME,
                        format!("portal \"{name}\" does not exist"),
                    ))
                })?;
                match &portal.prepared.fields {
                    Some(fields) => conn.send(row_description(fields, &portal.formats)),
                    None => conn.send(PgWireBackendMessage::NoData(NoData::new())),
                }
            }
        }
        PgWireFrontendMessage::Execute(execute) => {
            let name = execute.name.clone().unwrap_or_default();
            let max_rows = usize::try_from(execute.max_rows.max(0)).unwrap_or(0);
            let mut portal = state.portals.remove(&name).ok_or_else(|| {
                client_error(QueryError::new(
                    code::INVALID_CURSOR_NAME,
                    format!("portal \"{name}\" does not exist"),
                ))
            })?;
            let result = execute_portal(conn, live, &mut portal, max_rows).await;
            state.portals.insert(name, portal);
            result?;
        }
        PgWireFrontendMessage::Close(close) => {
            let name = close.name.clone().unwrap_or_default();
            if close.target_type == b'S' {
                state.statements.remove(&name);
            } else if let Some(portal) = state.portals.remove(&name) {
                finish_abandoned(live, portal);
            }
            conn.send(PgWireBackendMessage::CloseComplete(CloseComplete::new()));
        }
        _ => {}
    }
    Ok(())
}

pub(super) async fn execute_portal(
    conn: &mut Conn,
    live: &mut LiveSession,
    portal: &mut Portal,
    max_rows: usize,
) -> Result<(), Stop> {
    let state = std::mem::replace(&mut portal.state, PortalState::Done);
    let sent = match state {
        PortalState::Done => {
            conn.send(complete("SELECT 0"));
            return Ok(());
        }
        PortalState::Rows(rows) => {
            let guard = Guard::start(live);
            stream_rows(conn, live, rows, max_rows, &guard).await?
        }
        PortalState::NotStarted => {
            if QuerySession::is_empty(&portal.prepared) {
                conn.send(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ));
                return Ok(());
            }
            let params = std::mem::take(&mut portal.params);
            let guard = Guard::start(live);
            let outcome = guard
                .run(live.query.execute(&mut portal.prepared, params))
                .await
                .map_err(client_error)?;
            send_outcome(conn, live, outcome, &portal.formats, max_rows, &guard).await?
        }
    };
    match sent {
        Sent::Done => Ok(()),
        Sent::Suspended(rows) => {
            portal.state = PortalState::Rows(rows);
            Ok(())
        }
        // The error is already sent: skip to Sync like any other error in the batch.
        Sent::Failed => Err(Stop::Reported),
    }
}
