//! `GET /api/v2/webhooks/rejections`: webhooks refused by their source's token or signature
//! check, newest first (time, source, remote address, reason, size; never a body or a
//! secret). The log keeps the last `ingest.rejections_kept` rows.

use serde_json::json;

use super::call::Call;
use super::failure::storage_error;
use super::paging::{next_cursor, page_limit};
use super::response::Reply;
use super::source_filter::source_filter;
use super::state::AppState;
use crate::store::RejectionQuery;

pub fn list(state: &AppState, call: &mut Call) -> Reply {
    let query = match (
        page_limit(call),
        call.query_num::<i64>("before_id"),
        source_filter(call),
    ) {
        (Ok(limit), Ok(before_id), Ok(source)) => RejectionQuery {
            limit,
            before_id,
            source,
        },
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    match state.reader.rejections(&query) {
        Ok(items) => {
            let next = next_cursor(&items, query.limit, |r| r.id);
            Reply::json(
                200,
                &json!({"items": items, "count": items.len(), "next_before_id": next}),
            )
        }
        Err(e) => storage_error(&e),
    }
}
