//! Optimistic concurrency: a row's strong entity tag (derived from its version) and the
//! caller's expectations about it — RFC 9110's `If-Match` / `If-None-Match` comparisons, which
//! the services apply before a write and the API layer before a 304. No HTTP types: the API
//! layer reads the headers and hands the services their values.

use chrono::{DateTime, Utc};

/// The strong ETag of a row: changes whenever its version does, quotes included.
pub fn etag_of(version: i64, updated_at: DateTime<Utc>) -> String {
    format!("\"{version}-{:x}\"", updated_at.timestamp_micros())
}

/// The precondition headers of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

impl Preconditions {
    pub fn if_match(header: Option<String>) -> Self {
        Self {
            if_match: header,
            if_none_match: None,
        }
    }

    /// Whether a write may proceed against the current representation (`None`: it does not
    /// exist). `If-Match` uses the strong comparison; `If-None-Match: *` means "create only".
    pub fn allow(&self, current: Option<&str>) -> bool {
        let match_ok = match (&self.if_match, current) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(header), Some(etag)) => list_contains(header, etag, false),
        };
        let none_match_ok = match (&self.if_none_match, current) {
            (None, _) | (Some(_), None) => true,
            (Some(header), Some(etag)) => !list_contains(header, etag, true),
        };
        match_ok && none_match_ok
    }
}

/// `If-None-Match` on a GET: true when the client's copy is current (answer 304).
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|header| list_contains(header, etag, true))
}

/// Whether a header's list (`*` or `"a", W/"b"`) contains `etag`. The weak comparison ignores
/// `W/` prefixes; the strong one never matches a weak tag.
fn list_contains(header: &str, etag: &str, weak: bool) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        if candidate == "*" {
            return true;
        }
        match candidate.strip_prefix("W/") {
            Some(stripped) => weak && stripped == etag,
            None => candidate == etag,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_quoted_and_change_with_the_version() {
        let now = Utc::now();
        let a = etag_of(1, now);
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_ne!(a, etag_of(2, now));
    }

    #[test]
    fn if_match_is_strong() {
        let p = Preconditions::if_match(Some("\"1-a\"".into()));
        assert!(p.allow(Some("\"1-a\"")));
        assert!(!p.allow(Some("\"2-a\"")));
        assert!(!p.allow(None));
        assert!(!Preconditions::if_match(Some("W/\"1-a\"".into())).allow(Some("\"1-a\"")));
        assert!(Preconditions::if_match(Some("\"x\", \"1-a\"".into())).allow(Some("\"1-a\"")));
        assert!(Preconditions::if_match(Some("*".into())).allow(Some("\"1-a\"")));
        assert!(Preconditions::default().allow(None));
    }

    #[test]
    fn if_none_match_star_means_create_only() {
        let p = Preconditions {
            if_match: None,
            if_none_match: Some("*".into()),
        };
        assert!(p.allow(None));
        assert!(!p.allow(Some("\"1-a\"")));
    }

    #[test]
    fn not_modified_uses_the_weak_comparison() {
        assert!(not_modified(Some("\"1-a\""), "\"1-a\""));
        assert!(not_modified(Some("W/\"1-a\""), "\"1-a\""));
        assert!(not_modified(Some("*"), "\"1-a\""));
        assert!(!not_modified(Some("\"2-a\""), "\"1-a\""));
        assert!(!not_modified(None, "\"1-a\""));
    }
}
