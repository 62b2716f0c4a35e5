//! Checks that every mask and row filter plans against its table, with every function a session
//! has, so that `lakehouse check` and a reload catch a broken policy before any user does.

use datafusion::execution::{FunctionRegistry, SessionStateBuilder};

use super::enforce::{mask_sql, policy_state, policy_subplan};
use crate::catalog::registry::{CatalogState, TableStatus};
use crate::config::{Diagnostic, Diagnostics};
use crate::policy::{ColumnAccess, Policy, TableAccess};

/// Plans each mask and row filter of `policy` alone against its table (tables not in the lake
/// yet are skipped; they are checked when they appear). Returns the problems found.
pub async fn check_expressions(
    policy: &Policy,
    catalog: &std::sync::Arc<CatalogState>,
) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    let base = super::base_state();
    let state = SessionStateBuilder::new_from_existing(base).build();
    let state = policy_state(&state, catalog);
    let mut state = state;
    // `current_user` and friends must resolve as they do in a session.
    for name in ["current_user", "session_user", "current_role"] {
        let udf = datafusion::logical_expr::ScalarUDF::new_from_impl(CheckUser(name.to_string()));
        let _ = state.register_udf(std::sync::Arc::new(udf));
    }
    // Each expression alone: (its table, the access it makes, where it is written, what it is).
    let mut plans = Vec::new();
    for mask in policy.masks() {
        let Some(entry) = catalog.table(&mask.schema, &mask.table) else {
            continue;
        };
        let TableStatus::Ready(ready) = &entry.status else {
            continue;
        };
        let Some(field) = ready
            .schema
            .fields()
            .iter()
            .find(|f| f.name().to_lowercase() == mask.column)
        else {
            continue;
        };
        if let Err(message) = mask_sql(
            &mask.kind,
            &format!("\"{}\"", field.name()),
            field.data_type(),
        ) {
            diagnostics.push(Diagnostic::at(mask.origin.clone(), message));
            continue;
        }
        let columns = ready
            .schema
            .fields()
            .iter()
            .map(|f| {
                if f.name().to_lowercase() == mask.column {
                    ColumnAccess::Masked(mask.kind.clone(), mask.origin.clone())
                } else {
                    ColumnAccess::Allowed
                }
            })
            .collect();
        let access = TableAccess {
            columns,
            row_filters: Vec::new(),
        };
        plans.push((entry, access, mask.origin.clone(), "mask"));
    }
    for filter in policy.row_filters() {
        let Some(entry) = catalog.table(&filter.schema, &filter.table) else {
            continue;
        };
        let TableStatus::Ready(ready) = &entry.status else {
            continue;
        };
        let access = TableAccess {
            columns: vec![ColumnAccess::Allowed; ready.schema.fields().len()],
            row_filters: vec![(filter.filter.clone(), filter.origin.clone())],
        };
        plans.push((entry, access, filter.origin.clone(), "row filter"));
    }
    for (entry, access, origin, what) in plans {
        let query_id = super::error::detached_query_id();
        if let Err(err) = policy_subplan(&state, entry, &access, query_id).await {
            diagnostics.push(Diagnostic::at(
                origin,
                format!(
                    "{what} does not plan against \"{}.{}\": {}",
                    entry.schema,
                    entry.name,
                    detail(&err)
                ),
            ));
        }
    }
    diagnostics
}

fn detail(err: &super::QueryError) -> String {
    err.detail.clone().unwrap_or_else(|| err.message.clone())
}

/// `current_user` while checking: any text value plans the same.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckUser(String);

impl datafusion::logical_expr::ScalarUDFImpl for CheckUser {
    fn name(&self) -> &str {
        &self.0
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        static SIGNATURE: std::sync::OnceLock<datafusion::logical_expr::Signature> =
            std::sync::OnceLock::new();
        SIGNATURE.get_or_init(|| {
            datafusion::logical_expr::Signature::nullary(
                datafusion::logical_expr::Volatility::Stable,
            )
        })
    }
    fn return_type(
        &self,
        _arg_types: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
        Ok(datafusion::arrow::datatypes::DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        Ok(datafusion::logical_expr::ColumnarValue::Scalar(
            datafusion::common::ScalarValue::Utf8(Some(String::new())),
        ))
    }
}
