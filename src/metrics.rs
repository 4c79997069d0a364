//! Prometheus metrics through the `metrics` facade and its Prometheus exporter: request counts
//! by route template, method and status; a latency histogram; cache lookups; rate-limit and
//! overload rejections; pool gauges (refreshed when scraped). Label values are bounded: route
//! templates and fixed names, never raw paths.

use std::{borrow::Cow, sync::OnceLock, time::Duration};

use poem::http::Method;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Webhook receivers answer within `WEBHOOK_TIMEOUT` (15 s): wider buckets than requests.
const DELIVERY_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0];

/// The process-wide recorder (installed once; several apps in one test process share it).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("herald_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("herald_webhook_delivery_duration_seconds".into()),
                    DELIVERY_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Drains recorded histogram samples into their buckets every few seconds until `stop`: the
/// exporter keeps every sample until then (8 bytes a request, unbounded without it).
pub async fn upkeep(stop: impl std::future::Future<Output = ()>) {
    let Some(handle) = handle() else { return };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
        }
    }
}

/// Counts a request. Labels are `&'static` on the hot path (route templates are interned at
/// start-up), so recording allocates nothing.
pub fn record_request(method: &Method, route: Cow<'static, str>, status: u16, elapsed: Duration) {
    let method = method_label(method);
    let status = status_label(status);
    counter!("herald_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("herald_http_request_duration_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_label(status: u16) -> Cow<'static, str> {
    const KNOWN: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (409, "409"),
        (412, "412"),
        (413, "413"),
        (414, "414"),
        (415, "415"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (503, "503"),
    ];
    match KNOWN.iter().find(|(code, _)| *code == status) {
        Some((_, label)) => Cow::Borrowed(label),
        None => Cow::Owned(status.to_string()),
    }
}

pub fn record_cache(kind: &'static str, result: &'static str) {
    counter!("herald_cache_lookups_total", "kind" => kind, "result" => result).increment(1);
}

pub fn record_rate_limited(limit: &'static str) {
    counter!("herald_rate_limited_total", "limit" => limit).increment(1);
}

pub fn record_overload() {
    counter!("herald_overload_rejections_total").increment(1);
}

/// A connection refused at accept: more than `MAX_CONNECTIONS` plus the overflow allowance.
pub fn record_connection_refused() {
    counter!("herald_connections_refused_total").increment(1);
}

/// A connection the server closed: `header_timeout` or `idle_timeout`.
pub fn record_connection_closed(reason: &'static str) {
    counter!("herald_connections_closed_total", "reason" => reason).increment(1);
}

/// The text exposition, with pool gauges refreshed first.
pub fn render(state: &AppState) -> String {
    let (open, idle, max) = state.db.stats();
    gauge!("herald_db_pool_connections", "state" => "open").set(f64::from(open));
    gauge!("herald_db_pool_connections", "state" => "idle").set(f64::from(idle));
    gauge!("herald_db_pool_connections", "state" => "max").set(f64::from(max));
    gauge!("herald_verified_tokens_cached").set(state.jwt.remembered() as f64);
    if let Some(redis) = &state.redis {
        let (open, idle) = redis.stats();
        gauge!("herald_redis_pool_connections", "state" => "open").set(f64::from(open));
        gauge!("herald_redis_pool_connections", "state" => "idle").set(f64::from(idle));
        gauge!("herald_redis_up").set(if redis.is_up() { 1.0 } else { 0.0 });
    }
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
