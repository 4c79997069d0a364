//! Admission: what the service refuses before a handler runs, and the in-flight permit a
//! request holds. Refusals are problems like any other (the edge renders them).

use std::{sync::Arc, time::Duration};

use poem::{
    Request,
    http::{HeaderMap, Method, StatusCode, header},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    http::{problem::Problem, routes::RouteTable, server::OverflowConnection, version::version_of},
    metrics,
    state::AppState,
};

/// Registered methods a path may lack (RFC 9110's but CONNECT, PATCH, and the QUERY draft): a
/// path without one answers 405 with `Allow`. Any other method (`FOO`, `CONNECT`) is
/// implemented nowhere: 501.
fn is_known_method(method: &Method) -> bool {
    matches!(
        method.as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" | "TRACE" | "QUERY"
    )
}

/// Longest request-target (path and query) served; longer is 414.
pub const MAX_URI_BYTES: usize = 8192;

/// Refuses what the service must not start on; returns the in-flight permit to hold.
pub(super) fn admit(
    req: &Request,
    state: &AppState,
    in_flight: &Arc<Semaphore>,
    routes: &RouteTable,
) -> Result<Option<OwnedSemaphorePermit>, Problem> {
    let path = req.uri().path();
    let exempt = is_exempt(path);
    if req.extensions().get::<OverflowConnection>().is_some() && !path.starts_with("/health") {
        metrics::record_overload();
        return Err(Problem::unavailable(
            "Too many open connections; retry shortly.",
            Duration::from_secs(1),
        )
        .closing());
    }
    let method = req.method();
    if !is_known_method(method) {
        return Err(Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            "NOT_IMPLEMENTED",
            format!("The {method} method is not implemented by this server."),
        )
        .closing());
    }
    // (Only where the operation exists: an unknown path or method stays 404 / 405.)
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        && !req.headers().contains_key(header::CONTENT_LENGTH)
        && !req.headers().contains_key(header::TRANSFER_ENCODING)
        && routes.allows(path, method.as_str())
    {
        return Err(Problem::new(
            StatusCode::LENGTH_REQUIRED,
            "LENGTH_REQUIRED",
            format!("A {method} needs a `Content-Length` (or a chunked body), even when empty."),
        )
        // Whatever body followed cannot be told from the next request.
        .closing());
    }
    if !exempt && state.lifecycle.is_draining() {
        return Err(Problem::unavailable(
            "The service is shutting down; retry on another instance.",
            Duration::from_secs(1),
        ));
    }
    let permit = if exempt {
        None
    } else {
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                metrics::record_overload();
                return Err(Problem::unavailable(
                    "The service is overloaded; retry shortly.",
                    Duration::from_secs(1),
                ));
            }
        }
    };
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return Err(Problem::new(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("The request-target is longer than {MAX_URI_BYTES} bytes."),
        ));
    }
    let wants_json = version_of(path).is_some() || path.starts_with("/health");
    if wants_json && !accepts_json(req.headers()) {
        return Err(Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "This API answers `application/json` (and `application/problem+json` for errors) only.",
        ));
    }
    Ok(permit)
}

/// Health, metrics and docs are never refused for load and never rate-limited.
pub fn is_exempt(path: &str) -> bool {
    path.starts_with("/health")
        || path == "/metrics"
        || path.starts_with("/docs")
        || path.starts_with("/redoc")
        || path.starts_with("/scalar")
        || path.starts_with("/openapi.")
}

/// Whether `Accept` admits a JSON answer (absent: yes). Ranges with `q=0` exclude.
pub fn accepts_json(headers: &HeaderMap) -> bool {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return true;
    }
    values.iter().flat_map(|v| v.split(',')).any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let excluded = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !excluded
            && matches!(
                media.as_str(),
                "*/*" | "application/*" | "application/json" | "application/problem+json"
            )
    })
}

#[cfg(test)]
mod tests {
    use super::{super::test_headers as headers, *};

    #[test]
    fn accept_headers() {
        assert!(accepts_json(&HeaderMap::new()));
        for ok in [
            "application/json",
            "*/*",
            "text/html, application/*;q=0.5",
            "application/problem+json",
        ] {
            assert!(accepts_json(&headers(&[("accept", ok)])), "{ok}");
        }
        for bad in [
            "text/html",
            "application/xml",
            "application/json;q=0",
            "image/*",
        ] {
            assert!(!accepts_json(&headers(&[("accept", bad)])), "{bad}");
        }
    }

    #[test]
    fn exemptions() {
        assert!(is_exempt("/health/ready"));
        assert!(is_exempt("/metrics"));
        assert!(is_exempt("/docs"));
        assert!(!is_exempt("/v1/posts"));
    }
}
