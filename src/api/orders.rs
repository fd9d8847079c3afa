//! Order endpoints: list (paged, searchable), one by number, and a CSV export for spreadsheets.

use serde_json::json;

use super::call::Call;
use super::csv::CsvExport;
use super::failure::storage_error;
use super::paging::{next_cursor, page_limit};
use super::response::Reply;
use super::source_filter::source_filter;
use super::state::AppState;
use crate::store::OrderQuery;

fn search(call: &Call) -> Option<String> {
    call.query("q")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_string)
}

/// `GET /api/v2/orders`: newest first; `next_before_id` continues the listing.
pub fn list(state: &AppState, call: &mut Call) -> Reply {
    let query = match (
        page_limit(call),
        call.query_num::<i64>("before_id"),
        source_filter(call),
    ) {
        (Ok(limit), Ok(before_id), Ok(source)) => OrderQuery {
            limit,
            before_id,
            q: search(call),
            source,
        },
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    match state.reader.orders(&query) {
        Ok(items) => {
            let next = next_cursor(&items, query.limit, |o| o.id);
            Reply::json(
                200,
                &json!({"items": items, "count": items.len(), "next_before_id": next}),
            )
        }
        Err(e) => storage_error(&e),
    }
}

/// `GET /api/v2/orders/{order_number}`.
pub fn one(state: &AppState, call: &mut Call) -> Reply {
    let number = call.params.first().cloned().unwrap_or_default();
    match state.reader.order(&number) {
        Ok(Some(order)) => Reply::json(200, &order),
        Ok(None) => Reply::error(
            404,
            "not_found",
            &format!("no order with number {number:?}"),
        ),
        Err(e) => storage_error(&e),
    }
}

/// `GET /api/v2/orders.csv`.
pub fn csv_export(state: &AppState, call: &mut Call) -> Reply {
    let source = match source_filter(call) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let export = CsvExport::new(state.reader.clone(), search(call), source);
    Reply::stream(200, "text/csv; charset=utf-8", Box::new(export))
        .with_header("Content-Disposition", "attachment; filename=\"orders.csv\"")
}
