//! Paged listings: how many items one page holds and where the next page starts. Every
//! listing pages by id, so a page stays correct while new messages arrive.

use super::call::Call;
use super::response::Reply;

/// Page size when `?limit=` is not given, and the most one page may hold.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// `?limit=`: default [`DEFAULT_LIMIT`]; anything outside 1..=[`MAX_LIMIT`] is a `400`, as
/// the OpenAPI document says (a client that asks for more than it can get should know).
pub fn page_limit(call: &Call) -> Result<u32, Reply> {
    match call.query_num::<u64>("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=u64::from(MAX_LIMIT)).contains(&n) => Ok(n as u32),
        Some(n) => Err(Reply::error(
            400,
            "bad_request",
            &format!("query parameter `limit` must be between 1 and {MAX_LIMIT}, not {n}"),
        )),
    }
}

/// The cursor for the next page: the last item's id when the page is full, else `None` (a
/// page shorter than the limit is the last one).
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> i64) -> Option<i64> {
    (items.len() == limit as usize)
        .then(|| items.last().map(id))
        .flatten()
}
