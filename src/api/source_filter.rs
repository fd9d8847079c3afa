//! `?source=` on the listings: a source's name (`[a-z0-9_-]{1,32}`, as `[[sources]]` names
//! them). A name no longer configured still finds its old messages; anything else is a `400`.

use super::call::Call;
use super::response::Reply;

/// The pattern a source name follows, for the OpenAPI document.
pub const SOURCE_PATTERN: &str = "^[a-z0-9_-]{1,32}$";

pub fn source_filter(call: &Call) -> Result<Option<String>, Reply> {
    let Some(name) = call.query("source") else {
        return Ok(None);
    };
    let valid = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(Reply::error(
            400,
            "bad_request",
            &format!("query parameter `source` {name:?} is not a source name (1 to 32 of a-z, 0-9, _ and -)"),
        ));
    }
    Ok(Some(name.to_string()))
}
