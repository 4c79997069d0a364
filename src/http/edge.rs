//! The outermost middleware: everything that happens to every request and response once.
//!
//! In: the request id (the caller's if sane, else a fresh UUID), the client IP (socket, or
//! `X-Forwarded-For` with `TRUST_PROXY`), the request id for every event logged meanwhile, admission
//! (draining or more than `MAX_IN_FLIGHT` in flight → 503; a request-target over 8 KiB → 414; an
//! `Accept` without JSON → 406). Out: every error — from a handler or from poem itself (unknown
//! route, 405, bad parameter, ...) — rendered as problem+json; `X-Request-Id`, `RateLimit-*` and
//! security headers; gzip for large bodies; one access-log event and the request metrics.
//! Tracing: the server span (W3C `traceparent`/`tracestate` in, `traceparent` of the server span
//! out on every response, errors included; see `telemetry::trace`).

use std::{
    borrow::Cow,
    net::IpAddr,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use poem::{
    Endpoint, IntoResponse, Middleware, PathPattern, Request, Response,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    web::{Compress, CompressionAlgo},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::{
    problem::{FieldError, Problem},
    routes::RouteTable,
    server::OverflowConnection,
    version::{is_auth_path, version_of},
};
use crate::{
    cache::ratelimit::Decision,
    metrics,
    security::jwt::Claims,
    state::AppState,
    telemetry::{
        REQUEST_ID,
        trace::{RequestFacts, ServerSpan, TRACE},
    },
};
use tracing::Instrument;

// Header names parsed once, at compile time, not on every response.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");
const X_FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");
const STRICT_TRANSPORT_SECURITY: HeaderName = HeaderName::from_static("strict-transport-security");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

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
/// Bodies smaller than this are not worth compressing.
const COMPRESS_MIN_BYTES: usize = 1024;

/// Per-request facts shared by the middlewares and extractors (`req.data::<Arc<RequestContext>>`).
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub client_ip: IpAddr,
    /// The bearer token, decoded at most once per request.
    bearer: OnceLock<Bearer>,
    /// The rate limit the response's `RateLimit-*` headers describe.
    rate_limit: Mutex<Option<Decision>>,
}

/// What the `Authorization` header held.
#[derive(Debug, Clone)]
pub enum Bearer {
    Absent,
    Invalid,
    Valid(Claims),
}

impl RequestContext {
    /// Decodes the bearer token once; later calls reuse the result.
    pub fn bearer(&self, headers: &HeaderMap, state: &AppState) -> &Bearer {
        self.bearer.get_or_init(|| {
            let Some(value) = headers.get(header::AUTHORIZATION) else {
                return Bearer::Absent;
            };
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            match token.map(|t| state.jwt.verify(t)) {
                Some(Ok(claims)) => Bearer::Valid(claims),
                _ => Bearer::Invalid,
            }
        })
    }

    /// The authenticated user, if a valid token was presented and decoded.
    pub fn user_id(&self) -> Option<Uuid> {
        match self.bearer.get() {
            Some(Bearer::Valid(claims)) => Some(claims.sub),
            _ => None,
        }
    }

    pub fn set_rate_limit(&self, decision: Decision) {
        if let Ok(mut slot) = self.rate_limit.lock() {
            *slot = Some(decision);
        }
    }

    fn rate_limit(&self) -> Option<Decision> {
        self.rate_limit.lock().ok().and_then(|slot| *slot)
    }
}

pub struct Edge {
    pub state: AppState,
    pub allowed: Arc<RouteTable>,
    /// Headers added to every response (errors included) under a path prefix.
    pub path_headers: Arc<PathHeaders>,
}

/// `(path prefix, headers)`: e.g. v1 posts' deprecation headers (`api::deprecation`).
pub type PathHeaders = Vec<(&'static str, Vec<(HeaderName, HeaderValue)>)>;

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EdgeEndpoint {
            inner,
            in_flight: Arc::new(Semaphore::new(self.state.settings.max_in_flight)),
            state: self.state.clone(),
            allowed: self.allowed.clone(),
            path_headers: self.path_headers.clone(),
        }
    }
}

pub struct EdgeEndpoint<E> {
    inner: E,
    state: AppState,
    in_flight: Arc<Semaphore>,
    allowed: Arc<RouteTable>,
    path_headers: Arc<PathHeaders>,
}

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let ctx = Arc::new(RequestContext {
            request_id: request_id_of(req.headers()).into(),
            client_ip: client_ip_of(&req, self.state.settings.trust_proxy),
            bearer: OnceLock::new(),
            rate_limit: Mutex::new(None),
        });
        req.set_data(ctx.clone());
        req.set_data(self.state.clone());
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let user_agent = header_text(req.headers(), "user-agent");
        let telemetry = header_text(req.headers(), "x-telemetry");
        let accept_encoding = header_text(req.headers(), "accept-encoding");
        let request_id = ctx.request_id.clone();
        let server_span = ServerSpan::start(RequestFacts {
            traceparent: header_str(req.headers(), "traceparent"),
            tracestate: header_str(req.headers(), "tracestate"),
            method: method.as_str(),
            path: &path,
            client_address: ctx.client_ip,
            user_agent: user_agent.as_deref(),
            request_id: &request_id,
        });
        let trace_ids = server_span.ids;

        // Every event logged while the request is served carries its id and trace ids
        // (task-locals: cheaper than entering a tracing span at each of the request future's
        // polls). The server span itself is entered only when spans are exported (else it is
        // `Span::none()`, and instrumenting with it costs nothing).
        let serve = async {
            let _permit = match self.admit(&req) {
                Ok(permit) => permit,
                Err(problem) => return Err(problem.into()),
            };
            self.inner.call(req).await.map(IntoResponse::into_response)
        }
        .instrument(server_span.span.clone());
        let result = REQUEST_ID
            .scope(request_id.clone(), TRACE.scope(trace_ids, serve))
            .await;

        let mut response = match result {
            Ok(response) => response,
            Err(err) => {
                let problem = self.problem_of(err, &method, &path);
                if problem.status.is_server_error() {
                    // Logged once, here, with its cause; the client sees only the code.
                    let cause = problem.cause.as_deref().unwrap_or(&problem.detail);
                    REQUEST_ID.sync_scope(request_id.clone(), || {
                        TRACE.sync_scope(trace_ids, || {
                            tracing::error!(
                                error.code = problem.code,
                                error.cause = cause,
                                "request failed"
                            )
                        })
                    });
                }
                if let Some(decision) = problem.rate_limit {
                    ctx.set_rate_limit(decision);
                }
                let mut response = problem.render(&ctx.request_id, &path);
                if let Some(pattern) = problem.route.clone() {
                    response.set_data(PathPattern(pattern.into()));
                }
                response
            }
        };

        let pattern = response.data::<PathPattern>().map(|p| p.0.clone());
        let template = match &pattern {
            // poem's pattern identifies the route; the spec's template names it.
            Some(pattern) if !pattern.is_empty() => self.allowed.template_for_route(pattern, &path),
            _ => self.allowed.template_for(&path),
        };
        let route: Cow<'static, str> = match (template, pattern) {
            (Some(template), _) => Cow::Borrowed(template),
            // Docs, spec and metrics have fixed paths; anything else matched no route.
            // (A version's own prefix, `/v1`, is where an unknown path under it ends up.)
            (None, Some(p))
                if !p.is_empty()
                    && !p.contains('*')
                    && !p.contains(':')
                    && version_of(&p).is_none() =>
            {
                Cow::Owned(p.to_string())
            }
            (None, _) => Cow::Borrowed("unmatched"),
        };
        self.decorate(&mut response, &ctx, &path);
        let mut response = compress_if_large(response, accept_encoding.as_deref()).await;
        if let Ok(value) = HeaderValue::from_bytes(&trace_ids.traceparent_bytes()) {
            response.headers_mut().insert(TRACEPARENT, value);
        }

        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        server_span.finish(
            method.as_str(),
            (route != "unmatched").then_some(&*route),
            status,
        );
        metrics::record_request(&method, route.clone(), status, elapsed);
        REQUEST_ID.sync_scope(request_id, || {
            TRACE.sync_scope(trace_ids, || {
                access_log(AccessLog {
                    method: method.as_str(),
                    route: &route,
                    path: &path,
                    status,
                    duration: elapsed,
                    client_ip: ctx.client_ip,
                    user_agent: user_agent.as_deref(),
                    telemetry: telemetry.as_deref().or(user_agent.as_deref()),
                    user_id: ctx.user_id(),
                })
            })
        });
        Ok(response)
    }
}

impl<E> EdgeEndpoint<E> {
    /// Refuses what the service must not start on; returns the in-flight permit to hold.
    fn admit(&self, req: &Request) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Problem> {
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
            && self.allowed.allows(path, method.as_str())
        {
            return Err(Problem::new(
                StatusCode::LENGTH_REQUIRED,
                "LENGTH_REQUIRED",
                format!(
                    "A {method} needs a `Content-Length` (or a chunked body), even when empty."
                ),
            )
            // Whatever body followed cannot be told from the next request.
            .closing());
        }
        if !exempt && self.state.lifecycle.is_draining() {
            return Err(Problem::unavailable(
                "The service is shutting down; retry on another instance.",
                Duration::from_secs(1),
            ));
        }
        let permit = if exempt {
            None
        } else {
            match self.in_flight.clone().try_acquire_owned() {
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

    /// Every `poem::Error` becomes a `Problem`: ours pass through, poem's are translated.
    fn problem_of(&self, err: poem::Error, method: &Method, path: &str) -> Problem {
        let route = err.data::<PathPattern>().map(|p| p.0.to_string());
        let mut problem = if let Some(problem) = err.downcast_ref::<Problem>() {
            problem.clone()
        } else if let Some(e) = err.downcast_ref::<ParseParamError>()
            && e.name == "cursor"
        {
            Problem::from(crate::error::AppError::InvalidCursor)
        } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
            let name = self.param_name(path, e.name);
            Problem::bad_request("INVALID_PARAMETER", format!("Invalid parameter `{name}`."))
                .with_errors(vec![FieldError::new(name, clean_reason(&e.reason))])
        } else if let Some(e) = err.downcast_ref::<ParsePathError>() {
            let name = self.param_name(path, e.name);
            Problem::bad_request(
                "INVALID_PARAMETER",
                format!("Invalid path parameter `{name}`."),
            )
            .with_errors(vec![FieldError::new(name, clean_reason(&e.reason))])
        } else if err.is::<ContentTypeError>() {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Unsupported or missing `Content-Type`.",
            )
        } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
            Problem::bad_request(
                "INVALID_JSON",
                format!("The request body is invalid: {}.", e.reason),
            )
        } else if err.is::<AuthorizationError>() {
            Problem::from(crate::error::AppError::Unauthenticated)
        } else {
            match err.status() {
                StatusCode::NOT_FOUND => Problem::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("No route for {method} {path}."),
                ),
                StatusCode::METHOD_NOT_ALLOWED => {
                    let mut problem = Problem::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "METHOD_NOT_ALLOWED",
                        format!("{method} is not allowed on {path}."),
                    );
                    problem.allow = self.allowed.for_path(path);
                    problem
                }
                StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "The request body is too large.",
                ),
                status if status.is_client_error() => {
                    Problem::new(status, "BAD_REQUEST", err.to_string())
                }
                status => {
                    let mut problem =
                        Problem::new(status, "INTERNAL_ERROR", "An unexpected error occurred.");
                    problem.cause = Some(err.to_string());
                    problem
                }
            }
        };
        if problem.route.is_none() {
            problem.route = route;
        }
        problem
    }

    /// poem-openapi reports path parameters as `param0`, `param1`...: use the spec's names.
    fn param_name(&self, path: &str, reported: &str) -> String {
        reported
            .strip_prefix("param")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|index| self.allowed.param_name(path, index))
            .unwrap_or(reported)
            .to_string()
    }

    fn decorate(&self, response: &mut Response, ctx: &RequestContext, path: &str) {
        let production = self.state.settings.is_production();
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
            super::rate_limit::write_headers(headers, &decision);
        }
        for (prefix, extra) in self.path_headers.iter() {
            if path.starts_with(prefix) {
                for (name, value) in extra {
                    headers.insert(name.clone(), value.clone());
                }
            }
        }
    }
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

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect())
}

/// The caller's id if it is at most 128 characters of `[A-Za-z0-9._-]`, else a fresh UUID.
fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

/// The socket's peer, or with `TRUST_PROXY` the left-most address of `X-Forwarded-For` (the
/// client as the first trusted proxy saw it).
fn client_ip_of(req: &Request, trust_proxy: bool) -> IpAddr {
    if trust_proxy
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_canonical())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
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

/// poem's reasons quote Rust types and validator syntax; say what the value must be.
fn clean_reason(reason: &str) -> String {
    let bound = |prefix: &str| {
        reason
            .split_once(prefix)
            .and_then(|(_, rest)| rest.split([',', ')']).next())
            .map(str::trim)
            .map(str::to_string)
    };
    if let Some(min) = bound("minimum(") {
        return format!("must be at least {min}");
    }
    if let Some(max) = bound("maximum(") {
        return format!("must be at most {max}");
    }
    if reason.contains("uuid") {
        return "must be a UUID".into();
    }
    if reason.contains("failed to parse") || reason.contains("expected") {
        return reason
            .rsplit(": ")
            .next()
            .unwrap_or(reason)
            .chars()
            .take(200)
            .collect();
    }
    reason.chars().take(200).collect()
}

/// gzip when the client accepts it and the body is large enough to gain from it.
async fn compress_if_large(mut response: Response, accept_encoding: Option<&str>) -> Response {
    let accepts_gzip = accept_encoding.is_some_and(|v| {
        v.split(',').any(|c| {
            let mut parts = c.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.replace(' ', "") == "q=0")
        })
    });
    let compressible = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.contains("json")
                || ct.starts_with("text/")
                || ct.contains("yaml")
                || ct.contains("javascript")
        });
    if !accepts_gzip || !compressible || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let Ok(bytes) = response.take_body().into_bytes().await else {
        return response;
    };
    if bytes.len() < COMPRESS_MIN_BYTES {
        response.set_body(bytes);
        return response;
    }
    response.set_body(bytes);
    Compress::new(response, CompressionAlgo::GZIP).into_response()
}

/// The fields of the one access-log event per request.
struct AccessLog<'a> {
    method: &'a str,
    route: &'a str,
    path: &'a str,
    status: u16,
    duration: Duration,
    client_ip: IpAddr,
    user_agent: Option<&'a str>,
    telemetry: Option<&'a str>,
    user_id: Option<Uuid>,
}

fn access_log(entry: AccessLog<'_>) {
    let duration_ms = entry.duration.as_secs_f64() * 1000.0;
    let user_id = entry.user_id.map(|id| id.to_string());
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "herald::access",
                $level,
                // OpenTelemetry semantic-convention names (the README's log schema).
                http.request.method = entry.method,
                http.route = entry.route,
                url.path = entry.path,
                http.response.status_code = entry.status,
                duration_ms = duration_ms,
                client.address = %entry.client_ip,
                user_agent.original = entry.user_agent,
                telemetry = entry.telemetry,
                user_id = user_id.as_deref(),
                "request completed"
            )
        };
    }
    match entry.status {
        500.. => emit!(tracing::Level::ERROR),
        400..=499 => emit!(tracing::Level::WARN),
        _ => emit!(tracing::Level::INFO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn sane_request_ids_are_kept_and_others_replaced() {
        assert_eq!(
            request_id_of(&headers(&[("x-request-id", "abc-1.2_3")])),
            "abc-1.2_3"
        );
        for bad in ["has space", "semi;colon", &"x".repeat(129), ""] {
            let id = request_id_of(&headers(&[("x-request-id", bad)]));
            assert_ne!(id, bad);
            assert!(Uuid::parse_str(&id).is_ok());
        }
        assert!(Uuid::parse_str(&request_id_of(&HeaderMap::new())).is_ok());
    }

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
    fn parameter_reasons_say_what_the_value_must_be() {
        assert_eq!(
            clean_reason("verification failed. minimum(1, exclusive: false)"),
            "must be at least 1"
        );
        assert_eq!(
            clean_reason("verification failed. maximum(100, exclusive: false)"),
            "must be at most 100"
        );
        assert_eq!(
            clean_reason("failed to parse \"string_uuid\": invalid length: found 3"),
            "must be a UUID"
        );
    }

    #[test]
    fn exemptions() {
        assert!(is_exempt("/health/ready"));
        assert!(is_exempt("/metrics"));
        assert!(is_exempt("/docs"));
        assert!(!is_exempt("/v1/posts"));
    }
}
