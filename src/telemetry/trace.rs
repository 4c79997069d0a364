//! Traces across services: W3C Trace Context in and out, the ids every log event carries, and the
//! public API the background work (jobs, webhook deliveries) uses to continue a request's trace.
//!
//! Two modes, fixed at start-up by `telemetry::init`:
//! - **No exporter** (`OTEL_EXPORTER_OTLP_ENDPOINT` unset, the default): no OpenTelemetry layer is
//!   installed and no span is created per request. The edge parses an incoming `traceparent`,
//!   draws a span id (and a trace id when there is no valid parent) from the thread-local RNG,
//!   and keeps them in the `TRACE` task-local beside the request id, for the log formatter and
//!   the response header. Child spans (`child_span!`) are `Span::none()`: free.
//! - **Exporting**: the edge opens a real server span (a `tracing` span bridged to OpenTelemetry
//!   by `tracing-opentelemetry`) with the incoming context as its parent; child spans for the
//!   database, Redis and argon2 nest under it; ids come from the OpenTelemetry SDK.
//!
//! Either way the response's `traceparent` names the server span, and every log event emitted
//! while a request is served carries `trace_id` and `span_id`.

use std::{
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once by `telemetry::init` when spans are exported; read on every request.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Relaxed);
}

/// Whether spans are exported (an OpenTelemetry layer is installed). When not, the edge creates
/// no spans and `child_span!` returns `Span::none()`.
#[inline]
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

tokio::task_local! {
    /// The trace and server-span ids of the request being served (in both modes): the log
    /// formatter reads them for every event, as it reads `REQUEST_ID`.
    pub static TRACE: TraceIds;
}

/// A span's identity, as W3C Trace Context carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: u128,
    pub span_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceIds {
    /// The `traceparent` header value naming this span.
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    /// The same, as ASCII bytes on the stack (the edge writes it into every response: no
    /// formatting machinery, no intermediate string).
    pub fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[0] = b'0';
        out[1] = b'0';
        hex_into(&mut out[3..35], &self.trace_id.to_be_bytes());
        hex_into(&mut out[36..52], &self.span_id.to_be_bytes());
        hex_into(&mut out[53..55], &[self.flags]);
        out
    }

    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    fn of(context: &SpanContext) -> Option<Self> {
        context.is_valid().then(|| Self {
            trace_id: u128::from_be_bytes(context.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(context.span_id().to_bytes()),
            flags: context.trace_flags().to_u8(),
        })
    }
}

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// A parsed `traceparent`: the caller's trace, its span (our parent) and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
}

/// Parses a `traceparent` value per W3C Trace Context level 1: `00-<32 hex>-<16 hex>-<2 hex>`,
/// lowercase, ids not all zeros; version `ff` is invalid; a later version may append
/// `-<more>` after the four known fields. Anything else is `None` (then a new trace starts).
pub fn parse_traceparent(value: &str) -> Option<Parent> {
    let value = value.trim_matches([' ', '\t']);
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return None;
    }
    let lower_hex = |s: &[u8]| s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let version = &bytes[0..2];
    if !lower_hex(version) || version == b"ff" || bytes[2] != b'-' {
        return None;
    }
    // Version 00 is exactly 55 bytes; a future version may carry more after a dash.
    if version == b"00" && bytes.len() != 55 || bytes.len() > 55 && bytes[55] != b'-' {
        return None;
    }
    if bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let (trace, span, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    if !lower_hex(trace.as_bytes()) || !lower_hex(span.as_bytes()) || !lower_hex(flags.as_bytes()) {
        return None;
    }
    let parent = Parent {
        trace_id: u128::from_str_radix(trace, 16).ok()?,
        span_id: u64::from_str_radix(span, 16).ok()?,
        flags: u8::from_str_radix(flags, 16).ok()?,
    };
    (parent.trace_id != 0 && parent.span_id != 0).then_some(parent)
}

/// Random non-zero ids from the thread-local RNG (cheap: no syscall, no lock).
fn new_trace_id() -> u128 {
    loop {
        let id = rand::random::<u128>();
        if id != 0 {
            return id;
        }
    }
}

fn new_span_id() -> u64 {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return id;
        }
    }
}

/// The ids of a span without an exporter: the parent's trace (or a new one), a new span id; the
/// sampled flag as the caller set it (a new trace is not sampled: nothing records it).
fn local_ids(parent: Option<Parent>) -> TraceIds {
    match parent {
        Some(parent) => TraceIds {
            trace_id: parent.trace_id,
            span_id: new_span_id(),
            flags: parent.flags & 1,
        },
        None => TraceIds {
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            flags: 0,
        },
    }
}

/// The OpenTelemetry context of a remote parent (an empty context — a new trace — without one).
fn remote_context(parent: Option<Parent>, tracestate: Option<&str>) -> Context {
    let Some(parent) = parent else {
        return Context::new();
    };
    // An invalid `tracestate` is dropped, the `traceparent` kept (W3C Trace Context, 3.3.1.1).
    let state = tracestate
        .and_then(|s| TraceState::from_str(s.trim()).ok())
        .unwrap_or_default();
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.span_id.to_be_bytes()),
        TraceFlags::new(parent.flags),
        true,
        state,
    ))
}

/// The server span of one request: its ids, and (when exporting) the `tracing` span that carries
/// them to OpenTelemetry. Made by the edge before the request is served; `finish` names it by
/// its route and records the outcome once the response is known.
pub struct ServerSpan {
    pub ids: TraceIds,
    /// `Span::none()` unless exporting.
    pub span: Span,
}

/// What the edge knows about a request when it starts.
pub struct RequestFacts<'a> {
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub client_address: std::net::IpAddr,
    pub user_agent: Option<&'a str>,
    pub request_id: &'a str,
}

impl ServerSpan {
    pub fn start(facts: RequestFacts<'_>) -> Self {
        let parent = facts.traceparent.and_then(parse_traceparent);
        if !exporting() {
            return Self {
                ids: local_ids(parent),
                span: Span::none(),
            };
        }
        // Named `{method}` until the route is known (semantic conventions: `{method} {route}`,
        // or the method alone when no route matched).
        let span = tracing::info_span!(
            target: "herald::trace",
            parent: None,
            "http.server",
            otel.name = facts.method,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = facts.method,
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            url.path = facts.path,
            url.scheme = "http",
            client.address = %facts.client_address,
            user_agent.original = facts.user_agent,
            request_id = facts.request_id,
        );
        let _ = span.set_parent(remote_context(parent, facts.tracestate));
        // Starting the span now fixes its ids (the SDK draws them, the sampler decides).
        let ids = TraceIds::of(&span.context().span().span_context().clone())
            .unwrap_or_else(|| local_ids(parent));
        Self { ids, span }
    }

    /// Names the span by its route and records the status; a 5xx marks it as an error.
    pub fn finish(&self, method: &str, route: Option<&str>, status: u16) {
        if self.span.is_none() {
            return;
        }
        if let Some(route) = route {
            self.span.record("http.route", route);
            // The span was started (its ids fixed) before the route was known, and
            // `tracing-opentelemetry` renames only spans not yet started: rename it directly.
            self.span
                .context()
                .span()
                .update_name(format!("{method} {route}"));
        }
        self.span
            .record("http.response.status_code", i64::from(status));
        if status >= 500 {
            self.span.record("otel.status_code", "error");
        }
    }
}

/// The ids of the span the caller is in: the current OpenTelemetry span when exporting, else the
/// request's (task-local), else a span made by [`span_continuing`].
pub fn current_ids() -> Option<TraceIds> {
    let span = Span::current();
    if !span.is_none() {
        let context = span.context();
        if let Some(ids) = TraceIds::of(&context.span().span_context().clone()) {
            return Some(ids);
        }
    }
    if let Ok(ids) = TRACE.try_with(|ids| *ids) {
        return Some(ids);
    }
    ids_stored_in(&span)
}

/// The W3C `traceparent` value of the current span or request, if there is one: what a job or a
/// webhook delivery queued by a request stores, so that [`span_continuing`] can later continue
/// the same trace. Works with and without an exporter.
pub fn current_traceparent() -> Option<String> {
    current_ids().map(|ids| ids.traceparent())
}

/// A span that continues the trace of a stored `traceparent` (from [`current_traceparent`]):
/// wrap a job run or a webhook delivery in it (`.instrument(span)`), and everything inside — log
/// events, database and Redis spans, an outgoing `traceparent` built with
/// [`current_traceparent`] — belongs to the trace of the request that caused the work.
/// `None` or a malformed value starts a new trace. `name` is the span's name in the trace
/// (e.g. `webhook.deliver`); the span is an internal span at info level.
pub fn span_continuing(name: &str, traceparent: Option<&str>) -> Span {
    let parent = traceparent.and_then(parse_traceparent);
    let span = tracing::info_span!(
        target: "herald::trace",
        parent: None,
        "continued",
        otel.name = name,
        otel.kind = "internal",
    );
    if exporting() {
        let _ = span.set_parent(remote_context(parent, None));
    } else {
        // No OpenTelemetry layer to draw ids: the span keeps its own, for the log formatter.
        let ids = local_ids(parent);
        span.with_subscriber(|(id, dispatch)| {
            if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() {
                use tracing_subscriber::registry::LookupSpan;
                if let Some(data) = registry.span(id) {
                    data.extensions_mut().insert(ids);
                }
            }
        });
    }
    span
}

/// Runs `work` in the trace of a stored `traceparent`: inside [`span_continuing`] and, when
/// nothing is exported, with its ids in the `TRACE` task-local too, so that log events and an
/// outgoing `traceparent` carry them even when the log level filters the span out.
pub async fn continuing<F: std::future::Future>(
    name: &str,
    traceparent: Option<&str>,
    work: F,
) -> F::Output {
    use tracing::Instrument;
    let span = span_continuing(name, traceparent);
    if exporting() {
        return work.instrument(span).await;
    }
    let ids =
        ids_stored_in(&span).unwrap_or_else(|| local_ids(traceparent.and_then(parse_traceparent)));
    TRACE.scope(ids, work.instrument(span)).await
}

/// The ids [`span_continuing`] stored in `span` or one of its ancestors (no-exporter mode).
fn ids_stored_in(span: &Span) -> Option<TraceIds> {
    span.with_subscriber(|(id, dispatch)| {
        use tracing_subscriber::registry::LookupSpan;
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        registry
            .span(id)?
            .scope()
            .find_map(|span| span.extensions().get::<TraceIds>().copied())
    })
    .flatten()
}

/// The ids a log event carries: the innermost exported span's when exporting, else the request's
/// task-local ones, else those a [`span_continuing`] span stored.
pub(crate) fn ids_for_event<'a, S>(
    current: Option<&tracing_subscriber::registry::SpanRef<'a, S>>,
) -> Option<TraceIds>
where
    S: tracing::Subscriber + tracing_subscriber::registry::LookupSpan<'a>,
{
    if exporting() && current.is_some() {
        let context = Span::current().context();
        if let Some(ids) = TraceIds::of(&context.span().span_context().clone()) {
            return Some(ids);
        }
    }
    if let Ok(ids) = TRACE.try_with(|ids| *ids) {
        return Some(ids);
    }
    current?
        .scope()
        .find_map(|span| span.extensions().get::<TraceIds>().copied())
}

/// A child span of the current one when exporting, else `Span::none()` (nothing paid). Name it
/// with a literal; fields as in `tracing::info_span!`.
#[macro_export]
macro_rules! child_span {
    ($name:literal $(, $($fields:tt)*)?) => {
        if $crate::telemetry::trace::exporting() {
            ::tracing::info_span!(target: "herald::trace", $name $(, $($fields)*)?)
        } else {
            ::tracing::Span::none()
        }
    };
}

/// A database span (`db.system.name = postgresql`), named `{operation} {table}` as the semantic
/// conventions say: `db_span!("SELECT", "posts")`.
#[macro_export]
macro_rules! db_span {
    ($operation:literal, $table:literal) => {
        $crate::child_span!(
            "db.query",
            otel.name = concat!($operation, " ", $table),
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = $operation,
            db.collection.name = $table,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_parses() {
        let parent = parse_traceparent(VALID).unwrap();
        assert_eq!(parent.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(parent.span_id, 0x00f067aa0ba902b7);
        assert_eq!(parent.flags, 1);
        // A future version may append fields.
        assert!(parse_traceparent(&format!("01{}-extra", &VALID[2..])).is_some());
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_format_as_a_traceparent_that_parses_back() {
        let ids = local_ids(parse_traceparent(VALID));
        assert_eq!(ids.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_ne!(ids.span_id, 0x00f067aa0ba902b7);
        let header = ids.traceparent();
        assert_eq!(header.len(), 55);
        let back = parse_traceparent(&header).unwrap();
        assert_eq!(
            (back.trace_id, back.span_id, back.flags),
            (ids.trace_id, ids.span_id, 1)
        );
        let fresh = local_ids(None);
        assert_ne!(fresh.trace_id, ids.trace_id);
        assert_eq!(fresh.flags, 0);
    }

    #[test]
    fn a_request_scope_gives_the_current_traceparent() {
        let ids = local_ids(parse_traceparent(VALID));
        assert_eq!(current_traceparent(), None);
        let inside = TRACE.sync_scope(ids, current_traceparent);
        assert_eq!(inside, Some(ids.traceparent()));
    }

    #[test]
    fn a_continuing_span_carries_the_stored_trace_into_current_traceparent_and_logs() {
        let capture = crate::telemetry::CapturedOutput::default();
        let writer = capture.clone();
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(crate::telemetry::json::JsonLines)
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = span_continuing("webhook.deliver", Some(VALID));
            let inside = span.in_scope(|| {
                tracing::info!("delivering");
                current_traceparent()
            });
            let inside = parse_traceparent(&inside.expect("a traceparent inside")).unwrap();
            assert_eq!(inside.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
            assert_ne!(inside.span_id, 0x00f067aa0ba902b7, "a span of its own");
            assert_eq!(inside.flags, 1, "the sampled flag continues");

            let fresh = span_continuing("job.run", Some("not a traceparent"));
            let other = fresh.in_scope(current_traceparent).unwrap();
            assert_ne!(
                parse_traceparent(&other).unwrap().trace_id,
                inside.trace_id,
                "a malformed value starts a new trace"
            );
            assert_eq!(current_traceparent(), None, "none outside");
        });
        let line: serde_json::Value =
            serde_json::from_str(capture.text().lines().next().unwrap()).unwrap();
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn without_an_exporter_child_spans_cost_nothing() {
        assert!(!exporting());
        assert!(crate::child_span!("cache.get", db.system.name = "redis").is_none());
        assert!(crate::db_span!("SELECT", "posts").is_none());
    }
}
