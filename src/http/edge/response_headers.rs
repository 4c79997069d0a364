//! The headers every response gets, errors included: `X-Request-Id`, security headers,
//! `Cache-Control: no-store` where tokens or health travel, `RateLimit-*`, and the headers the
//! composition adds under a path prefix (e.g. v1 posts' deprecation).

use poem::{
    Response,
    http::{HeaderName, HeaderValue, header},
};

use super::{PathHeaders, RequestContext};
use crate::http::version::is_auth_path;

// Header names parsed once, at compile time, not on every response.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");
const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");
const STRICT_TRANSPORT_SECURITY: HeaderName = HeaderName::from_static("strict-transport-security");

pub(super) fn decorate(
    response: &mut Response,
    ctx: &RequestContext,
    path: &str,
    production: bool,
    path_headers: &PathHeaders,
) {
    let headers = response.headers_mut();
    // Room for the headers below: one allocation instead of several rehashes.
    headers.reserve(12);
    if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert(X_REQUEST_ID, id);
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if production {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if is_auth_path(path) || path.starts_with("/health") {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(decision) = ctx.rate_limit() {
        crate::http::rate_limit::write_headers(headers, &decision);
    }
    for (prefix, extra) in path_headers.iter() {
        if path.starts_with(prefix) {
            for (name, value) in extra {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}
