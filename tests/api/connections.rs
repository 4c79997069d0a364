//! Connections as an attacker and a busy day use them, over raw sockets: slow headers, slow
//! bodies, idle keep-alive connections, the connection ceiling, and the status rows the HTTP
//! stack answers itself (411, 501, 505).
//!
//! Timeouts are tested with short settings (1–2 s). Each test waits for the event (the server
//! closing the socket) and checks it happened after the timeout and not much later; the
//! printed lifetimes are observations, speed belongs to `scripts/bench`.

use std::time::{Duration, Instant};

use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use herald::security::rbac::Role;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{Options, TestApp};

/// Generous upper slack for "closed soon after its timeout" on a loaded CI machine.
const SLACK: Duration = Duration::from_secs(5);

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection; returns everything read.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {within:?}; read so far: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Sends raw bytes on a fresh connection and returns the whole answer (the server closes).
async fn raw(app: &TestApp, request: &[u8]) -> String {
    let mut stream = connect(app).await;
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream, Duration::from_secs(10)).await
}

/// Status code and JSON body of a raw HTTP/1.1 answer.
fn parse(answer: &str) -> (u16, Value, String) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::Null),
        head.to_ascii_lowercase(),
    )
}

fn with_timeouts() -> Options {
    Options::default()
        .env("HTTP_HEADER_TIMEOUT", "1s")
        .env("HTTP_BODY_TIMEOUT", "1s")
        .env("HTTP_IDLE_TIMEOUT", "2s")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_slow_header_connections_are_closed_after_the_header_timeout() {
    let app = TestApp::with(with_timeouts()).await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /v1/posts HTTP/1.1\r\nHost: herald\r\nX-Half: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Meanwhile the service answers everyone else.
    assert_eq!(
        app.get("/health/live").send().await.unwrap().status(),
        200,
        "served while 1000 slow clients hold connections"
    );
    let lifetimes = futures::future::join_all(slow.into_iter().map(|mut stream| async move {
        let answer = read_to_close(&mut stream, Duration::from_secs(1) + SLACK * 2).await;
        assert!(answer.is_empty(), "no answer to half a request: {answer}");
        started.elapsed()
    }))
    .await;
    let longest = lifetimes.iter().max().unwrap();
    let shortest = lifetimes.iter().min().unwrap();
    println!("slow-header connections lived {shortest:?} .. {longest:?} (timeout 1s)");
    assert!(*shortest >= Duration::from_secs(1), "{shortest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_trickles_in_gets_408_after_the_body_timeout_and_the_connection_closes() {
    let app = TestApp::with(with_timeouts().env("HTTP_HEADER_TIMEOUT", "5s")).await;
    let user = app.user(Role::User).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    let head = format!(
        "POST /v1/posts HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\": ",
        user.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(1) + SLACK).await;
    let lived = started.elapsed();
    let (status, body, headers) = parse(&answer);
    println!("slow-body connection answered and closed after {lived:?} (timeout 1s)");
    assert_eq!(status, 408, "{answer}");
    assert_eq!(body["code"], "REQUEST_TIMEOUT");
    assert!(headers.contains("connection: close"), "{headers}");
    assert!(lived >= Duration::from_secs(1), "{lived:?}");
    // Nothing was created from half a body.
    let page: Value = app
        .get("/v1/posts?status=all")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_closes_after_the_idle_timeout_and_a_busy_one_does_not() {
    let app = TestApp::with(with_timeouts().env("HTTP_HEADER_TIMEOUT", "5s")).await;
    let request = b"GET /health/live HTTP/1.1\r\nHost: herald\r\n\r\n";

    let mut busy = connect(&app).await;
    let mut idle = connect(&app).await;
    idle.write_all(request).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();

    // The busy connection asks every 500 ms for 4 s: twice the idle timeout, never idle.
    let keep_busy = async {
        for _ in 0..8 {
            busy.write_all(request).await.unwrap();
            let n = busy.read(&mut buf).await.unwrap();
            assert!(
                String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
                "a connection in use stays open"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let idle_closed = async {
        let answer = read_to_close(&mut idle, Duration::from_secs(2) + SLACK).await;
        assert!(answer.is_empty());
        idle_since.elapsed()
    };
    let ((), lived) = tokio::join!(keep_busy, idle_closed);
    println!("idle keep-alive connection closed after {lived:?} (timeout 2s)");
    assert!(
        lived >= Duration::from_secs(2),
        "never before the timeout: {lived:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_longer_than_the_idle_timeout_is_not_cut() {
    let app = TestApp::with(with_timeouts()).await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Locked for a while", true).await;
    let id = post["id"].as_str().unwrap().to_string();

    // Hold the post's row lock, so the PATCH waits in the database, with no traffic on its
    // connection, for longer than the idle (2 s) and header (1 s) timeouts.
    let mut blocker = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    sql_query("BEGIN").execute(&mut blocker).await.unwrap();
    sql_query(format!("SELECT id FROM posts WHERE id = '{id}' FOR UPDATE"))
        .execute(&mut blocker)
        .await
        .unwrap();
    let patch = tokio::spawn(
        app.patch(&format!("/v1/posts/{id}"))
            .bearer_auth(&user.token)
            .body(r#"{"title": "Patched after the wait"}"#)
            .send(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!patch.is_finished(), "still waiting for the lock");
    sql_query("COMMIT").execute(&mut blocker).await.unwrap();
    let response = patch.await.unwrap().expect("the slow request was answered");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn at_max_connections_new_ones_get_503_while_health_still_answers() {
    let app = TestApp::with(
        Options::default()
            .env("MAX_CONNECTIONS", "20")
            .env("HTTP_IDLE_TIMEOUT", "60s"),
    )
    .await;
    let request = b"GET /health/live HTTP/1.1\r\nHost: herald\r\n\r\n";
    // 20 kept-alive connections, each with one request answered: the server is at its limit.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(&app).await;
        stream.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let (status, body, headers) = parse(
        &raw(
            &app,
            b"GET /v1/posts HTTP/1.1\r\nHost: herald\r\nAccept: application/json\r\n\r\n",
        )
        .await,
    );
    assert_eq!(status, 503);
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    assert!(headers.contains("retry-after"), "{headers}");
    assert!(headers.contains("connection: close"), "{headers}");
    let (status, _, _) = parse(&raw(&app, request).await);
    assert_eq!(status, 200, "liveness answers at the limit");

    // Beyond the overflow allowance (8 here) connections are closed unanswered.
    let mut overflow = Vec::new();
    for _ in 0..8 {
        overflow.push(connect(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = connect(&app).await;
    let _ = refused.write_all(request).await;
    assert_eq!(
        read_to_close(&mut refused, Duration::from_secs(5)).await,
        "",
        "refused without an answer"
    );
    drop(overflow);

    // Closing the held connections makes room again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = parse(
            &raw(
                &app,
                b"GET /v1/posts HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n",
            )
            .await,
        );
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "room again once connections closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_without_content_length_is_411_and_a_chunked_one_is_accepted() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let body = r#"{"title": "No length given", "content": "Sent without Content-Length."}"#;
    let answer = raw(
        &app,
        format!(
            "POST /v1/posts HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nConnection: close\r\n\r\n{body}",
            user.token
        )
        .as_bytes(),
    )
    .await;
    let (status, problem, headers) = parse(&answer);
    println!(
        "POST without Content-Length: {}",
        answer.lines().next().unwrap_or("")
    );
    assert_eq!(status, 411, "{answer}");
    assert_eq!(problem["code"], "LENGTH_REQUIRED");
    assert!(headers.contains("x-error-code: length_required"));
    assert!(headers.contains("application/problem+json"));

    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let answer = raw(
        &app,
        format!(
            "POST /v1/posts HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{chunked}",
            user.token
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(parse(&answer).0, 201, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_implemented_nowhere_is_501_and_a_known_one_on_the_wrong_path_405() {
    let app = TestApp::spawn().await;
    for request in [
        "FOO /v1/posts HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n",
        "CONNECT herald:443 HTTP/1.1\r\nHost: herald:443\r\nConnection: close\r\n\r\n",
        "PURGE /v1/posts HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(&app, request.as_bytes()).await;
        let (status, problem, headers) = parse(&answer);
        println!(
            "{}: {}",
            request.lines().next().unwrap_or(""),
            answer.lines().next().unwrap_or("")
        );
        assert_eq!(status, 501, "{answer}");
        assert_eq!(problem["code"], "NOT_IMPLEMENTED");
        assert!(headers.contains("x-request-id"));
    }
    // Standard methods a path does not support (TRACE is implemented nowhere, but known).
    for request in [
        &b"PUT /v1/posts HTTP/1.1\r\nHost: herald\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
        &b"TRACE /v1/posts HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n"[..],
        &b"QUERY /v1/posts HTTP/1.1\r\nHost: herald\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
    ] {
        let answer = raw(&app, request).await;
        let (status, problem, headers) = parse(&answer);
        assert_eq!(status, 405, "{answer}");
        assert_eq!(problem["code"], "METHOD_NOT_ALLOWED");
        assert!(headers.contains("allow: get, head, post"), "{headers}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsupported_http_version_is_505_as_a_problem() {
    let app = TestApp::spawn().await;
    for version in ["HTTP/3.0", "HTTP/2.0", "HTTP/1.2"] {
        let answer = raw(
            &app,
            format!("GET /v1/posts {version}\r\nHost: herald\r\n\r\n").as_bytes(),
        )
        .await;
        let (status, problem, headers) = parse(&answer);
        println!(
            "GET with {version}: {}",
            answer.lines().next().unwrap_or("")
        );
        assert_eq!(status, 505, "{answer}");
        assert_eq!(problem["code"], "HTTP_VERSION_NOT_SUPPORTED");
        assert_eq!(problem["status"], 505);
        assert!(headers.contains("content-type: application/problem+json"));
        assert!(headers.contains("x-request-id"));
    }
    // HTTP/1.0 is still served.
    let answer = raw(&app, b"GET /health/live HTTP/1.0\r\n\r\n").await;
    assert_eq!(parse(&answer).0, 200, "{answer}");
}
