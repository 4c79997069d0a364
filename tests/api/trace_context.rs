//! Traces across services: W3C `traceparent` in and out, and OTLP export checked by a real
//! receiver — an HTTP server in this test that accepts `POST /v1/traces` and decodes the
//! protobuf body with the OTLP definitions (`opentelemetry-proto`).

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, any_value::Value as Any},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{RedisPrefix, TestApp, TestDatabase, process::HeraldProcess, redis_url};

/// What the receiver got: every span with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

struct OtlpReceiver {
    addr: SocketAddr,
    spans: Received,
}

impl OtlpReceiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans: Received = Arc::default();
        let store = spans.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| receive(req, store.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (up to 15 s) until a span satisfies `found`; returns everything received so far.
    async fn wait_for(&self, what: &str, found: impl Fn(&Span) -> bool) -> Vec<(String, Span)> {
        let started = Instant::now();
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if spans.iter().any(|(_, span)| found(span)) {
                return spans;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no exported span {what}; received: {:#?}",
                spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    req: Request<hyper::body::Incoming>,
    store: Received,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let wanted = req.method() == hyper::Method::POST
        && req.uri().path() == "/v1/traces"
        && req
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !wanted {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let Ok(request) = body
        .ok()
        .and_then(|body| ExportTraceServiceRequest::decode(body).ok())
        .ok_or(())
    else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return Ok(response);
    };
    let mut spans = store.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| text(kv.value.as_ref()))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push((service.clone(), span));
            }
        }
    }
    let mut response = Response::new(Full::new(Bytes::from(
        ExportTraceServiceResponse::default().encode_to_vec(),
    )));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}

fn text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?;
    Some(match value.value.as_ref()? {
        Any::StringValue(s) => json!(s),
        Any::IntValue(i) => json!(i),
        Any::BoolValue(b) => json!(b),
        Any::DoubleValue(d) => json!(d),
        _ => Value::Null,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(trace id, span id, flags)` of a `traceparent` value.
fn parts(traceparent: &str) -> (String, String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00", "{traceparent}");
    assert_eq!(fields[1].len(), 32, "{traceparent}");
    assert_eq!(fields[2].len(), 16, "{traceparent}");
    assert!(
        fields[1..].iter().all(|f| f
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
        "{traceparent}"
    );
    assert_ne!(fields[1], "0".repeat(32));
    assert_ne!(fields[2], "0".repeat(16));
    (fields[1].into(), fields[2].into(), fields[3].into())
}

fn traceparent_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("traceparent")
        .unwrap_or_else(|| panic!("no traceparent on a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread")]
async fn a_traced_request_is_exported_as_a_server_span_with_child_spans_and_logged_with_its_trace_id()
 {
    let receiver = OtlpReceiver::start().await;
    let db = TestDatabase::create().await;
    let prefix = RedisPrefix::new();
    let endpoint = receiver.endpoint();
    let mut herald = HeraldProcess::serve(&[
        ("DATABASE_URL", &db.url),
        ("AUTO_MIGRATE", "false"),
        ("REDIS_URL", &redis_url()),
        ("REDIS_KEY_PREFIX", &prefix.0),
        ("REDIS_TIMEOUT", "500ms"),
        ("LOG_LEVEL", "info"),
        ("SHUTDOWN_DRAIN_DELAY", "0s"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "herald-under-test"),
        // Export every 100 ms rather than every 5 s: the test waits less.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let client = crate::support::http_client()
        .user_agent("tracing-test/1.0")
        .build()
        .unwrap();
    let credentials = json!({"email": "traced@example.com", "username": "traced", "password": "Traced-Passw0rd!"});
    let registered = client
        .post(herald.url("/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    // The traced request: a login (a database query and an argon2 verification inside).
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let login = client
        .post(herald.url("/v1/auth/login"))
        .header("traceparent", &traceparent)
        .header("tracestate", "vendor=opaque")
        .json(&json!({"email": "traced@example.com", "password": "Traced-Passw0rd!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let (trace_id, server_span_id, flags) = parts(&traceparent_of(&login));
    assert_eq!(
        trace_id, TRACE_ID,
        "the response continues the caller's trace"
    );
    assert_ne!(
        server_span_id, PARENT_ID,
        "the response names our span, not the caller's"
    );
    assert_eq!(flags, "01");
    let token = login.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    // A route with a parameter: the span is named by its template.
    let post: Value = client
        .post(herald.url("/v1/posts"))
        .bearer_auth(&token)
        .json(&json!({"title": "Traced post", "content": "Body of a traced post."}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let post_id = post["id"].as_str().unwrap();
    let second_trace = "0af7651916cd43dd8448eb211c80319c";
    let read = client
        .get(herald.url(&format!("/v1/posts/{post_id}")))
        .bearer_auth(&token)
        .header(
            "traceparent",
            format!("00-{second_trace}-b7ad6b7169203331-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let (read_trace, read_span_id, _) = parts(&traceparent_of(&read));
    assert_eq!(read_trace, second_trace);
    // An error produced by the edge (no route) carries one too.
    let missing = client.get(herald.url("/v1/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    parts(&traceparent_of(&missing));

    let spans = receiver
        .wait_for("for the login", |s| hex(&s.span_id) == server_span_id)
        .await;
    let spans = if spans.iter().any(|(_, s)| hex(&s.span_id) == read_span_id) {
        spans
    } else {
        receiver
            .wait_for("for the post read", |s| hex(&s.span_id) == read_span_id)
            .await
    };
    let (service, server) = spans
        .iter()
        .find(|(_, s)| hex(&s.span_id) == server_span_id)
        .unwrap();
    assert_eq!(
        service, "herald-under-test",
        "OTEL_SERVICE_NAME names the service"
    );
    assert_eq!(hex(&server.trace_id), TRACE_ID);
    assert_eq!(
        hex(&server.parent_span_id),
        PARENT_ID,
        "the caller's span is the parent"
    );
    assert_eq!(server.trace_state, "vendor=opaque", "tracestate continues");
    assert_eq!(server.name, "POST /v1/auth/login");
    assert_eq!(server.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("http.request.method", json!("POST")),
        ("http.route", json!("/v1/auth/login")),
        ("url.path", json!("/v1/auth/login")),
        ("http.response.status_code", json!(200)),
        ("client.address", json!("127.0.0.1")),
        ("user_agent.original", json!("tracing-test/1.0")),
    ] {
        assert_eq!(attribute(server, key), Some(value), "{key} on {server:#?}");
    }
    let children: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.parent_span_id == server.span_id)
        .collect();
    let child_names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
    let db = children
        .iter()
        .find(|s| s.name == "SELECT users")
        .unwrap_or_else(|| panic!("no database span under the server span: {child_names:?}"));
    assert_eq!(attribute(db, "db.system.name"), Some(json!("postgresql")));
    assert_eq!(hex(&db.trace_id), TRACE_ID);
    assert_eq!(db.kind, SpanKind::Client as i32);
    assert!(
        child_names.contains(&"argon2.verify"),
        "no argon2 span under the server span: {child_names:?}"
    );
    assert!(
        children
            .iter()
            .any(|s| attribute(s, "db.system.name") == Some(json!("redis"))),
        "no Redis span (the login rate limit) under the server span: {child_names:?}"
    );
    assert!(
        db.start_time_unix_nano >= server.start_time_unix_nano
            && db.end_time_unix_nano <= server.end_time_unix_nano,
        "the child lies within its parent"
    );

    let (_, read_span) = spans
        .iter()
        .find(|(_, s)| hex(&s.span_id) == read_span_id)
        .unwrap();
    assert_eq!(read_span.name, "GET /v1/posts/{id}");
    assert_eq!(
        attribute(read_span, "http.route"),
        Some(json!("/v1/posts/{id}"))
    );
    assert_eq!(
        attribute(read_span, "url.path"),
        Some(json!(format!("/v1/posts/{post_id}")))
    );

    // The logs carry the same trace: the access-log line and the auth event of the login.
    herald.signal("TERM");
    assert_eq!(herald.wait_for_exit(Duration::from_secs(15)), Some(0));
    let events: Vec<Value> = herald
        .log_lines()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let access = events
        .iter()
        .find(|e| e["target"] == "herald::access" && e["url.path"] == "/v1/auth/login")
        .expect("the login's access-log line");
    assert_eq!(access["trace_id"], TRACE_ID, "{access}");
    assert_eq!(access["span_id"], server_span_id.as_str(), "{access}");
    assert_eq!(access["http.route"], "/v1/auth/login");
    let auth = events
        .iter()
        .find(|e| e["event"] == "auth.login")
        .expect("the auth.login event");
    assert_eq!(auth["trace_id"], TRACE_ID, "{auth}");
    drop(prefix);
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_still_batched_are_flushed_at_graceful_shutdown() {
    let receiver = OtlpReceiver::start().await;
    let db = TestDatabase::create().await;
    let endpoint = receiver.endpoint();
    let mut herald = HeraldProcess::serve(&[
        ("DATABASE_URL", &db.url),
        ("AUTO_MIGRATE", "false"),
        ("SHUTDOWN_DRAIN_DELAY", "0s"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        // The batch would wait a minute: only the shutdown flush can deliver it in time.
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    ]);
    let response = crate::support::http_client()
        .build()
        .unwrap()
        .get(herald.url("/health/live"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    let (_, span_id, _) = parts(&traceparent_of(&response));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.spans.lock().unwrap().is_empty(),
        "nothing exported before the batch is due"
    );
    herald.signal("TERM");
    assert_eq!(herald.wait_for_exit(Duration::from_secs(15)), Some(0));
    let spans = receiver
        .wait_for("after shutdown", |s| hex(&s.span_id) == span_id)
        .await;
    let (service, span) = spans
        .iter()
        .find(|(_, s)| hex(&s.span_id) == span_id)
        .unwrap();
    assert_eq!(service, "herald", "the default service name");
    assert_eq!(span.name, "GET /health/live");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_exporter_every_response_still_carries_a_traceparent() {
    let app = TestApp::spawn().await;
    // Continues a valid parent: same trace, a span of its own, the caller's sampled flag.
    let response = app
        .get("/health/live")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    let (trace, span, flags) = parts(&traceparent_of(&response));
    assert_eq!(trace, TRACE_ID);
    assert_ne!(span, PARENT_ID);
    assert_eq!(flags, "01");

    // No parent, or a malformed one: a new trace, each time another.
    let fresh = parts(&traceparent_of(&app.get("/v1/posts").send().await.unwrap()));
    let mut seen = vec![fresh.0.clone()];
    for malformed in [
        format!("00-{TRACE_ID}-{PARENT_ID}"),
        format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
        format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
        format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
        "garbage".to_string(),
    ] {
        let response = app
            .get("/v1/posts")
            .header("traceparent", &malformed)
            .send()
            .await
            .unwrap();
        let (trace, _, _) = parts(&traceparent_of(&response));
        assert_ne!(trace, TRACE_ID, "{malformed} was continued");
        assert!(!seen.contains(&trace), "trace ids repeat");
        seen.push(trace);
    }

    // Errors from the edge carry it too: unknown route, wrong method, a problem response.
    let not_found = app.get("/v1/nowhere").send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    parts(&traceparent_of(&not_found));
    let not_allowed = app
        .delete("/v1/posts")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_allowed.status(), 405);
    let (trace, _, flags) = parts(&traceparent_of(&not_allowed));
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE_ID, "00"));
    let unauthenticated = app.post("/v1/posts").json(&json!({})).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    parts(&traceparent_of(&unauthenticated));
}
