//! Pages on the wire: `?limit=` (1..=100, default 10), the `{ data, nextLink }` page shape, and
//! the next page's link under the path of the version read. The paging itself (cursors, where
//! a page ends) is `domain::paging`, the same for every list.

use crate::domain::paging::split_page;

pub const DEFAULT_LIMIT: u32 = 10;

pub fn default_limit() -> u32 {
    DEFAULT_LIMIT
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
