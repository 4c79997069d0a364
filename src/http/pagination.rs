//! Cursor pagination: `?limit=` (1..=100, default 10) and an opaque `?cursor=` that encodes the
//! last key seen (keyset pagination: no OFFSET, stable under concurrent inserts), plus the
//! `{ data, nextLink }` page shape.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::AppError;

pub const DEFAULT_LIMIT: u32 = 10;

pub fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

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

/// `split_page`, with the next page's link under `path`.
pub fn finish_page<T>(
    rows: Vec<T>,
    limit: u32,
    kind: &str,
    path: &str,
    params: &[(&'static str, String)],
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let (rows, next) = split_page(rows, limit, kind, params, key);
    (rows, next.map(|query| next_link(path, &query)))
}

/// `path?name=value&...` for the next page (values are URL-safe by construction, but escaped
/// anyway).
pub fn next_link(path: &str, params: &[(&str, String)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", escape(value)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Declares a page type `{ data: [T], nextLink }` for the spec.
macro_rules! page_type {
    ($(#[$meta:meta])* $name:ident, $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, poem_openapi::Object, serde::Serialize)]
        #[oai(rename_all = "camelCase")]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            pub data: Vec<$item>,
            /// The next page's path and query, or `null` on the last page.
            #[oai(nullable)]
            pub next_link: Option<String>,
        }
    };
}
pub(crate) use page_type;

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

    #[test]
    fn next_links_are_paths_with_queries() {
        assert_eq!(
            next_link(
                "/v1/posts",
                &[("limit", "1".into()), ("cursor", "a_b-c".into())]
            ),
            "/v1/posts?limit=1&cursor=a_b-c"
        );
        assert_eq!(next_link("/x", &[("q", "a b".into())]), "/x?q=a%20b");
    }
}
