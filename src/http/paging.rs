//! Paged listings: how many items one page holds and where the next page starts. Every
//! listing pages by id, so a page stays correct while new messages arrive.

use super::call::Call;
use super::response::Reply;

/// Page size when `?limit=` is not given, and the most one page may hold.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// `?limit=`: default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`] (larger asks are capped), at
/// least 1.
pub fn page_limit(call: &Call) -> Result<u32, Reply> {
    match call.query_num::<u64>("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(Reply::error(
            400,
            "bad_request",
            &format!("query parameter `limit` must be between 1 and {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n.min(u64::from(MAX_LIMIT)) as u32),
    }
}

/// The cursor for the next page: the last item's id when the page is full, else `None` (a
/// page shorter than the limit is the last one).
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> i64) -> Option<i64> {
    (items.len() == limit as usize)
        .then(|| items.last().map(id))
        .flatten()
}
