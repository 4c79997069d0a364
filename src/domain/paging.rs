//! Keyset paging, the same for every list: an opaque cursor that encodes the last key seen (no
//! OFFSET; stable under concurrent inserts) and is bound to its list, and where a page ends.
//! What a page looks like on the wire, and its link, is the API layer's (`http::pagination`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::AppError;

/// `kind` tags the cursor with the list it belongs to, so one list's cursor is refused by
/// another.
pub fn encode_cursor(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

/// The key inside a cursor issued by `encode_cursor(kind, _)`.
pub fn decode_cursor(kind: &str, cursor: &str) -> Result<String, AppError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim_end_matches('='))
        .map_err(|_| AppError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| AppError::InvalidCursor)?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_string)
        .ok_or(AppError::InvalidCursor)
}

/// The UUID key inside an optional cursor of the list `kind` (lists keyed by a UUIDv7 id).
pub fn decode_uuid_cursor(
    kind: &str,
    cursor: Option<&str>,
) -> Result<Option<uuid::Uuid>, AppError> {
    cursor
        .map(|c| {
            decode_cursor(kind, c)?
                .parse::<uuid::Uuid>()
                .map_err(|_| AppError::InvalidCursor)
        })
        .transpose()
}

/// A page's query string, as `(name, value)` pairs.
pub type Query = Vec<(&'static str, String)>;

/// Splits the `limit + 1` rows a keyset query fetched into the page and, when there is a next
/// page, its query: `limit`, the list's other parameters (`params`), and the cursor after the
/// last row. Every list pages through this one function.
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: u32,
    kind: &str,
    params: &[(&'static str, String)],
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<Query>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(|last| {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(params.iter().cloned());
        query.push(("cursor", encode_cursor(kind, &key(last))));
        query
    });
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_list() {
        let cursor = encode_cursor("post", "0193a1c2-7d4e-7c3a-9f1e-2b8c4d5e6f70");
        assert_eq!(
            decode_cursor("post", &cursor).unwrap(),
            "0193a1c2-7d4e-7c3a-9f1e-2b8c4d5e6f70"
        );
        assert!(decode_cursor("user", &cursor).is_err());
        assert!(decode_cursor("post", "!!!").is_err());
        assert!(decode_cursor("post", "").is_err());
    }
}
