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
//!
//! Rooms: `context` (per-request facts), `admission` (refusals before a handler runs),
//! `poem_errors` (poem's own errors as problems), `response_headers`, `compression`,
//! `access_log`. This file strings them together, in order, once per request.

mod access_log;
mod admission;
mod compression;
mod context;
mod poem_errors;
mod response_headers;

use std::{borrow::Cow, sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Middleware, PathPattern, Request, Response,
    http::{HeaderName, HeaderValue},
};
use tokio::sync::Semaphore;
use tracing::Instrument;

pub use self::context::{Bearer, RequestContext};
use self::{
    access_log::{AccessLog, access_log},
    context::{header_str, header_text},
};
use super::{routes::RouteTable, version::version_of};
use crate::{
    metrics,
    state::AppState,
    telemetry::{
        REQUEST_ID,
        trace::{RequestFacts, ServerSpan, TRACE},
    },
};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

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
        let ctx = Arc::new(RequestContext::new(&req, self.state.settings.trust_proxy));
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
            let admitted = admission::admit(&req, &self.state, &self.in_flight, &self.allowed);
            let _permit = match admitted {
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
                let problem = poem_errors::problem_of(err, &method, &path, &self.allowed);
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
        response_headers::decorate(
            &mut response,
            &ctx,
            &path,
            self.state.settings.is_production(),
            &self.path_headers,
        );
        let mut response =
            compression::compress_if_large(response, accept_encoding.as_deref()).await;
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

/// A header map from pairs, for the rooms' unit tests.
#[cfg(test)]
fn test_headers(pairs: &[(&'static str, &str)]) -> poem::http::HeaderMap {
    let mut map = poem::http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}
