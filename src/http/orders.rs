//! Order endpoints: list (paged, searchable), one by number, and a CSV export for spreadsheets.

use serde_json::json;

use super::operations::{page_limit, storage_error};
use super::router::Call;
use super::{AppState, Reply};
use crate::orders::csv::CsvExport;
use crate::store::OrderQuery;

fn search(call: &Call) -> Option<String> {
    call.query("q")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_string)
}

pub fn list(state: &AppState, call: &mut Call) -> Reply {
    let query = match (page_limit(call), call.query_num::<i64>("before_id")) {
        (Ok(limit), Ok(before_id)) => OrderQuery {
            limit,
            before_id,
            q: search(call),
        },
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match state.reader.orders(&query) {
        Ok(items) => {
            let next = (items.len() == query.limit as usize)
                .then(|| items.last().map(|o| o.id))
                .flatten();
            Reply::json(
                200,
                &json!({"items": items, "count": items.len(), "next_before_id": next}),
            )
        }
        Err(e) => storage_error(&e),
    }
}

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

pub fn csv(state: &AppState, call: &mut Call) -> Reply {
    let export = CsvExport::new(state.reader.clone(), search(call));
    Reply::stream(200, "text/csv; charset=utf-8", Box::new(export))
        .with_header("Content-Disposition", "attachment; filename=\"orders.csv\"")
}
