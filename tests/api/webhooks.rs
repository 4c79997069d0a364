//! `/v{n}/webhooks`: endpoint CRUD, the secret shown once, signed deliveries (checked with the
//! `standardwebhooks` reference crate) to a real receiver on 127.0.0.1, retries, `Retry-After`,
//! 410, redirects, rotation, test sends, the SSRF guard at save and at delivery, slow receivers
//! and concurrent changes.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use herald::security::rbac::Role;
use poem::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::support::{Options, TestApp, TestUser, assert_problem};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A webhook receiver on 127.0.0.1: answers scripted replies in order, then `fallback`.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script, fallback).await
    }

    /// A receiver on a given address (e.g. one that was down until now).
    async fn start_on(addr: SocketAddr, script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let receiver = Self {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let handle = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handle = handle.clone();
                let fallback = fallback.clone();
                tokio::spawn(async move { handle.serve(stream, fallback).await });
            }
        });
        receiver
    }

    async fn ok() -> Self {
        Self::start(Vec::new(), Reply::status(204)).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn serve(&self, mut stream: TcpStream, fallback: Reply) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut headers = HeaderMap::new();
        for line in head.lines().skip(1).filter(|l| !l.is_empty()) {
            if let Some((name, value)) = line.split_once(':') {
                headers.append(
                    HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        self.received.lock().unwrap().push(Received {
            headers,
            body: buf[head_end..head_end + length].to_vec(),
            at: Instant::now(),
        });
        let reply = self.script.lock().unwrap().pop_front().unwrap_or(fallback);
        tokio::time::sleep(reply.delay).await;
        let mut response = format!(
            "HTTP/1.1 {} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n",
            reply.status
        );
        for (name, value) in &reply.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (or fails after `within`).
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} deliveries, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A test app that delivers quickly: retries after 100 ms, then 200 ms.
async fn app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut options = Options::default()
        .env("WEBHOOK_ALLOW_PRIVATE", "true")
        .env("WEBHOOK_RETRY_SCHEDULE", "100ms,200ms")
        .env("JOBS_POLL_INTERVAL", "50ms");
    for (name, value) in extra {
        options = options.env(name, value);
    }
    TestApp::with(options).await
}

async fn create_webhook(app: &TestApp, admin: &TestUser, body: Value) -> Value {
    let response = app
        .post("/v1/webhooks")
        .bearer_auth(&admin.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn get_json(app: &TestApp, admin: &TestUser, path: &str) -> Value {
    let response = app
        .get(path)
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The delivery log, once it satisfies `done` (or fails after a few seconds).
async fn log_until(
    app: &TestApp,
    admin: &TestUser,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = get_json(
            app,
            admin,
            &format!("/v1/webhooks/{id}/deliveries?limit=100"),
        )
        .await;
        let entries = page["data"].as_array().unwrap().clone();
        if done(&entries) {
            return entries;
        }
        assert!(Instant::now() < deadline, "delivery log: {entries:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn verify(secret: &str, delivery: &Received) {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&delivery.body, &delivery.headers)
        .unwrap_or_else(|e| panic!("signature does not verify with {secret}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_shows_its_secret_once_and_receives_signed_events_in_its_version() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::ok().await;
    let created = create_webhook(
        &app,
        &admin,
        json!({
            "url": receiver.url("/hook"),
            "eventTypes": ["post.created", "post.updated"],
            "description": "Search indexer",
            "apiVersion": "v2"
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["apiVersion"], "v2");
    assert_eq!(created["enabled"], true);

    // The secret is never shown again.
    let response = app
        .get(&format!("/v1/webhooks/{id}"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let shown: Value = response.json().await.unwrap();
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(shown["etag"], etag);
    let listed = get_json(&app, &admin, "/v1/webhooks").await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(listed["data"][0].get("secret").is_none());
    let response = app
        .get(&format!("/v1/webhooks/{id}"))
        .bearer_auth(&admin.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);

    // A post change is delivered, signed, as a v2 event.
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Delivered by webhook", true).await;
    let delivery = receiver.wait_for(1, Duration::from_secs(10)).await[0].clone();
    verify(&secret, &delivery);
    let event = delivery.json();
    assert_eq!(event["type"], "post.created");
    assert_eq!(delivery.header("webhook-id"), event["id"].as_str().unwrap());
    assert_eq!(delivery.header("content-type"), "application/json");
    assert_eq!(event["data"]["post"]["id"], post["id"]);
    assert_eq!(
        event["data"]["post"]["status"], "published",
        "v2 shape: {event}"
    );
    assert!(event["data"]["post"].get("published").is_none(), "{event}");
    let timestamp: i64 = delivery.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    // The same event read through the API, in v2, is the delivered body.
    let read = get_json(
        &app,
        &admin,
        &format!("/v2/events/{}", event["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(read, event);

    let log = log_until(&app, &admin, &id, |e| {
        e.first().is_some_and(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["responseStatus"], 204);
    assert_eq!(log[0]["eventId"], event["id"]);

    // Merge-patch with If-Match; a stale ETag is 412.
    let response = app
        .patch(&format!("/v1/webhooks/{id}"))
        .bearer_auth(&admin.token)
        .header("if-match", &etag)
        .body(r#"{"description": null, "apiVersion": "v1", "eventTypes": ["post.deleted"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert!(patched["description"].is_null());
    assert_eq!(patched["apiVersion"], "v1");
    assert_eq!(patched["eventTypes"], json!(["post.deleted"]));
    let response = app
        .patch(&format!("/v1/webhooks/{id}"))
        .bearer_auth(&admin.token)
        .header("if-match", &etag)
        .body(r#"{"enabled": false}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 412, "PRECONDITION_FAILED").await;

    // Delete: 200 with it, then 204; then 404 on read.
    let path = format!("/v1/webhooks/{id}");
    let response = app
        .delete(&path)
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .delete(&path)
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .get(&path)
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "WEBHOOK_NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v1_endpoint_defaults_to_v1_events_and_unsubscribed_types_are_not_sent() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::ok().await;
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/"), "eventTypes": ["post.updated"]}),
    )
    .await;
    assert_eq!(created["apiVersion"], "v1");
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Only updates count", false).await;
    let response = app
        .patch(&format!("/v1/posts/{}", post["id"].as_str().unwrap()))
        .bearer_auth(&author.token)
        .body(r#"{"published": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "post.created was not subscribed"
    );
    let event = receiver.received()[0].json();
    assert_eq!(event["type"], "post.updated");
    assert_eq!(
        event["data"]["post"]["published"], true,
        "v1 shape: {event}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_attempts_are_retried_and_every_attempt_is_logged() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::start(vec![Reply::status(500)], Reply::status(200)).await;
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/flaky"), "eventTypes": ["post.created"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let author = app.user(Role::User).await;
    app.create_post(&author, "Retried until it lands", true)
        .await;

    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id"),
        "a retry carries the same webhook-id"
    );
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(90), "retried after {gap:?}");
    let secret = created["secret"].as_str().unwrap();
    verify(secret, &received[1]);

    let log = log_until(&app, &admin, id, |e| {
        e.first().is_some_and(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0]["attempt"], 2);
    assert_eq!(log[0]["responseStatus"], 200);
    assert!(log[0]["nextAttemptAt"].is_null());
    assert_eq!(log[1]["attempt"], 1);
    assert_eq!(log[1]["status"], "failed");
    assert_eq!(log[1]["responseStatus"], 500);
    assert!(log[1]["nextAttemptAt"].is_string());
    assert!(log[1]["error"].as_str().unwrap().contains("500"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 2, "nothing after success");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_stop_after_the_schedule() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::start(Vec::new(), Reply::status(502)).await;
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/down"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = app.user(Role::User).await;
    app.create_post(&author, "Never delivered", true).await;
    // Two retries on the schedule: three attempts, then none.
    let log = log_until(&app, &admin, created["id"].as_str().unwrap(), |e| {
        e.len() == 3 && e[0]["status"] == "failed"
    })
    .await;
    assert!(log[0]["nextAttemptAt"].is_null(), "{log:#?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_on_429_is_honoured() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::start(
        vec![Reply::status(429).header("retry-after", "2")],
        Reply::status(204),
    )
    .await;
    create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/busy"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = app.user(Role::User).await;
    app.create_post(&author, "Wait as asked", true).await;
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    let gap = received[1].at - received[0].at;
    // The schedule says 100 ms; the receiver asked for 2 s.
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_disables_the_endpoint_and_redirects_are_not_followed() {
    let app = app_with(&[("WEBHOOK_RETRY_SCHEDULE", "10s")]).await;
    let admin = app.user(Role::Admin).await;
    let gone = Receiver::start(Vec::new(), Reply::status(410)).await;
    let target = Receiver::ok().await;
    let redirecting = Receiver::start(
        Vec::new(),
        Reply::status(307).header("location", target.url("/elsewhere")),
    )
    .await;
    let gone_hook = create_webhook(
        &app,
        &admin,
        json!({"url": gone.url("/gone"), "eventTypes": ["post.created"]}),
    )
    .await;
    let redirect_hook = create_webhook(
        &app,
        &admin,
        json!({"url": redirecting.url("/moved"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = app.user(Role::User).await;
    app.create_post(&author, "Gone and moved", true).await;

    let gone_id = gone_hook["id"].as_str().unwrap();
    let log = log_until(&app, &admin, gone_id, |e| {
        e.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(log[0]["responseStatus"], 410);
    assert!(log[0]["nextAttemptAt"].is_null(), "410 is not retried");
    let endpoint = get_json(&app, &admin, &format!("/v1/webhooks/{gone_id}")).await;
    assert_eq!(endpoint["enabled"], false);

    let log = log_until(&app, &admin, redirect_hook["id"].as_str().unwrap(), |e| {
        e.iter().any(|d| d["status"] == "failed")
    })
    .await;
    let failed = log.iter().find(|d| d["status"] == "failed").unwrap();
    assert_eq!(failed["responseStatus"], 307);
    assert!(failed["nextAttemptAt"].is_string(), "a redirect is retried");
    assert_eq!(redirecting.received().len(), 1);
    assert!(target.received().is_empty(), "the redirect was followed");

    // A disabled endpoint receives no further events.
    app.create_post(&author, "After the endpoint left", true)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gone.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_rotation_both_secrets_sign_and_a_test_send_reaches_one_endpoint() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::ok().await;
    let other = Receiver::ok().await;
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/a"), "eventTypes": ["post.created"]}),
    )
    .await;
    create_webhook(
        &app,
        &admin,
        json!({"url": other.url("/b"), "eventTypes": ["post.created", "webhook.test"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let old_secret = created["secret"].as_str().unwrap();

    let response = app
        .post(&format!("/v1/webhooks/{id}/rotate-secret"))
        .bearer_auth(&admin.token)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let new_secret = response.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);

    let response = app
        .post(&format!("/v1/webhooks/{id}/test"))
        .bearer_auth(&admin.token)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let event_id = response.json::<Value>().await.unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_string();

    let delivery = receiver.wait_for(1, Duration::from_secs(10)).await[0].clone();
    assert_eq!(delivery.header("webhook-id"), event_id);
    let event = delivery.json();
    assert_eq!(event["type"], "webhook.test");
    assert!(event["data"]["post"].is_null());
    let signatures: Vec<&str> = delivery.header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    verify(&new_secret, &delivery);
    verify(old_secret, &delivery);
    // Each signature verifies on its own with exactly one of the secrets.
    for (signature, secret) in signatures.iter().zip([&new_secret[..], old_secret]) {
        let mut alone = delivery.clone();
        alone.headers.insert(
            "webhook-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        verify(secret, &alone);
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        other.received().is_empty(),
        "a test send goes to one endpoint"
    );
    assert_problem(
        app.post(&format!("/v1/webhooks/{}/test", uuid::Uuid::now_v7()))
            .bearer_auth(&admin.token)
            .header("content-length", "0")
            .send()
            .await
            .unwrap(),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn private_targets_are_refused_at_save_when_not_allowed() {
    let app = TestApp::with(Options::default().env("WEBHOOK_ALLOW_PRIVATE", "false")).await;
    let admin = app.user(Role::Admin).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://100.64.0.1/hook",
        "https://192.168.0.10/hook",
    ] {
        let response = app
            .post("/v1/webhooks")
            .bearer_auth(&admin.token)
            .json(&json!({"url": url, "eventTypes": ["post.created"]}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 400, "WEBHOOK_URL_FORBIDDEN").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    // Not a URL at all is a validation failure, not an SSRF refusal.
    let response = app
        .post("/v1/webhooks")
        .bearer_auth(&admin.token)
        .json(&json!({"url": "not a url", "eventTypes": ["post.created"]}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "VALIDATION_FAILED").await;

    // 192.0.2.0/24 is documentation space: refused too.
    let response = app
        .post("/v1/webhooks")
        .bearer_auth(&admin.token)
        .json(&json!({"url": "https://192.0.2.1/", "eventTypes": ["post.created"]}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "WEBHOOK_URL_FORBIDDEN").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_urls_are_refused_in_production() {
    let app = TestApp::with(
        Options::default()
            .env("APP_ENV", "production")
            .env("JWT_SECRET", &"s".repeat(64))
            .env("WEBHOOK_ALLOW_PRIVATE", "false"),
    )
    .await;
    let admin = app.user(Role::Admin).await;
    let response = app
        .post("/v1/webhooks")
        .bearer_auth(&admin.token)
        .json(&json!({"url": "http://example.com/hook", "eventTypes": ["post.created"]}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 400, "WEBHOOK_URL_FORBIDDEN").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("https"),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rules_are_applied_again_at_delivery() {
    // Saved by an instance that allows private targets and runs no jobs...
    let lenient = app_with(&[("JOBS_ENABLED", "false")]).await;
    let admin = lenient.user(Role::Admin).await;
    let receiver = Receiver::ok().await;
    let created = create_webhook(
        &lenient,
        &admin,
        json!({"url": receiver.url("/private"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = lenient.user(Role::User).await;
    lenient
        .create_post(&author, "Refused at delivery", true)
        .await;
    // ...delivered by one that does not: the attempt is refused before any connection.
    let strict = TestApp::with(Options {
        database_url: Some(lenient.database_url.clone()),
        ..Options::default()
            .env("WEBHOOK_ALLOW_PRIVATE", "false")
            .env("WEBHOOK_RETRY_SCHEDULE", "10s")
            .env("JOBS_POLL_INTERVAL", "50ms")
    })
    .await;
    let log = log_until(&strict, &admin, created["id"].as_str().unwrap(), |e| {
        e.iter().any(|d| d["status"] == "failed")
    })
    .await;
    let failed = log.iter().find(|d| d["status"] == "failed").unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("refused"),
        "{failed}"
    );
    assert!(failed["responseStatus"].is_null());
    assert!(
        receiver.received().is_empty(),
        "the private receiver was called"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_receiver_holds_no_database_connection() {
    let app = app_with(&[
        ("DATABASE_POOL_SIZE", "2"),
        ("JOBS_CONCURRENCY", "4"),
        ("WEBHOOK_TIMEOUT", "10s"),
    ])
    .await;
    let admin = app.user(Role::Admin).await;
    let receiver =
        Receiver::start(Vec::new(), Reply::status(204).after(Duration::from_secs(4))).await;
    create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/slow"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = app.user(Role::User).await;
    for n in 0..4 {
        app.create_post(&author, &format!("Slow delivery {n}"), true)
            .await;
    }
    // Four deliveries are now waiting on the receiver, more than the pool has connections.
    receiver.wait_for(4, Duration::from_secs(10)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let response = app
            .get("/v1/webhooks")
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "an API request waited {:?} while deliveries were in flight",
            started.elapsed()
        );
    }
    assert!(
        receiver.received().len() == 4,
        "still in flight while the API answered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_changes_are_each_delivered_and_succeed_once() {
    let app = app_with(&[("RATE_LIMIT_ENABLED", "false")]).await;
    let admin = app.user(Role::Admin).await;
    // Every third request fails once, so retries run alongside first attempts.
    let script = (0..50)
        .map(|i| Reply::status(if i % 3 == 0 { 500 } else { 204 }))
        .collect();
    let receiver = Receiver::start(script, Reply::status(204)).await;
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/many"), "eventTypes": ["post.created"]}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    let author = app.user(Role::User).await;
    let creates = (0..50).map(|n| {
        let app = &app;
        let author = &author;
        async move {
            app.create_post(author, &format!("Concurrent post {n}"), true)
                .await
        }
    });
    let posts = futures::future::join_all(creates).await;
    let post_ids: HashSet<String> = posts
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();

    let id = created["id"].as_str().unwrap();
    let log = log_until(&app, &admin, id, |e| {
        e.iter().filter(|d| d["status"] == "succeeded").count() >= 50
            && e.iter().all(|d| d["status"] != "pending")
    })
    .await;
    let mut succeeded: HashMap<String, usize> = HashMap::new();
    for entry in log.iter().filter(|d| d["status"] == "succeeded") {
        *succeeded
            .entry(entry["eventId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(succeeded.len(), 50);
    assert!(succeeded.values().all(|&n| n == 1), "{succeeded:?}");

    let received = receiver.received();
    let mut delivered_posts = HashSet::new();
    let mut ids = HashSet::new();
    for delivery in &received {
        verify(&secret, delivery);
        ids.insert(delivery.header("webhook-id").to_string());
        delivered_posts.insert(
            delivery.json()["data"]["post"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(ids.len(), 50);
    assert_eq!(delivered_posts, post_ids);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_manage_webhooks() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": "http://127.0.0.1:9/", "eventTypes": ["post.created"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    for role in [Role::User, Role::Moderator] {
        let caller = app.user(role).await;
        let requests = [
            app.post("/v1/webhooks")
                .json(&json!({"url": "http://127.0.0.1:9/", "eventTypes": ["post.created"]})),
            app.get("/v1/webhooks"),
            app.get(&format!("/v1/webhooks/{id}")),
            app.patch(&format!("/v1/webhooks/{id}"))
                .body(r#"{"enabled": false}"#),
            app.delete(&format!("/v1/webhooks/{id}")),
            app.post(&format!("/v1/webhooks/{id}/rotate-secret"))
                .header("content-length", "0"),
            app.post(&format!("/v1/webhooks/{id}/test"))
                .header("content-length", "0"),
            app.get(&format!("/v1/webhooks/{id}/deliveries")),
        ];
        for request in requests {
            let response = request.bearer_auth(&caller.token).send().await.unwrap();
            assert_problem(response, 403, "FORBIDDEN").await;
        }
    }
    // Still there, unchanged.
    let endpoint = get_json(&app, &admin, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(endpoint["enabled"], true);
}

/// Waits until the receiver has `n` distinct `webhook-id`s (deliveries may repeat).
async fn distinct_ids(receiver: &Receiver, n: usize, within: Duration) -> HashSet<String> {
    let deadline = Instant::now() + within;
    loop {
        let ids: HashSet<String> = receiver
            .received()
            .iter()
            .map(|d| d.header("webhook-id").to_string())
            .collect();
        if ids.len() >= n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} distinct events, got {}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_outage_loses_nothing_every_event_arrives_after_it_returns() {
    let app = app_with(&[
        ("RATE_LIMIT_ENABLED", "false"),
        ("WEBHOOK_RETRY_SCHEDULE", "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"),
        ("JOBS_CONCURRENCY", "16"),
    ])
    .await;
    let admin = app.user(Role::Admin).await;
    // The receiver's address, with nothing listening yet: every attempt is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": format!("http://{addr}/outage"), "eventTypes": ["post.created"]}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    let author = app.user(Role::User).await;
    let creates = (0..200).map(|n| {
        let app = &app;
        let author = &author;
        async move {
            app.create_post(author, &format!("Outage post {n}"), true)
                .await
        }
    });
    let posts = futures::future::join_all(creates).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed: Vec<Count> = {
        use diesel_async::RunQueryDsl;
        let mut conn = app.state.db.conn().await.unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'failed'")
            .load(&mut conn)
            .await
            .unwrap()
    };
    assert!(
        failed[0].n > 0,
        "attempts failed while the receiver was down"
    );

    let back = Instant::now();
    let receiver = Receiver::start_on(addr, Vec::new(), Reply::status(204)).await;
    let ids = distinct_ids(&receiver, 200, Duration::from_secs(60)).await;
    eprintln!(
        "outage: all 200 events arrived {:?} after the receiver returned ({} requests for 200 events)",
        back.elapsed(),
        receiver.received().len()
    );
    assert_eq!(
        ids.len(),
        200,
        "dedup by webhook-id gives exactly the 200 events"
    );
    let mut delivered = HashSet::new();
    for delivery in receiver.received() {
        verify(&secret, &delivery);
        delivered.insert(
            delivery.json()["data"]["post"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let expected: HashSet<String> = posts
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_make_each_attempt_once() {
    let first = app_with(&[("RATE_LIMIT_ENABLED", "false")]).await;
    let second = TestApp::with(Options {
        database_url: Some(first.database_url.clone()),
        ..Options::default()
            .env("WEBHOOK_ALLOW_PRIVATE", "true")
            .env("JOBS_POLL_INTERVAL", "50ms")
            .env("RATE_LIMIT_ENABLED", "false")
    })
    .await;
    let admin = first.user(Role::Admin).await;
    let receiver = Receiver::ok().await;
    create_webhook(
        &first,
        &admin,
        json!({"url": receiver.url("/twice"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = first.user(Role::User).await;
    let mut committed = HashMap::new();
    let creates = (0..60).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        let author = &author;
        async move {
            let post = app
                .create_post(author, &format!("Two instances {n}"), true)
                .await;
            (post["id"].as_str().unwrap().to_string(), Instant::now())
        }
    });
    for (post, at) in futures::future::join_all(creates).await {
        committed.insert(post, at);
    }
    receiver.wait_for(60, Duration::from_secs(30)).await;
    // Give a duplicate time to show up, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    assert_eq!(
        received.len(),
        60,
        "each event delivered once, by one instance"
    );
    let ids: HashSet<&str> = received.iter().map(|d| d.header("webhook-id")).collect();
    assert_eq!(ids.len(), 60);
    // Commit (the 201) to receiver, for the closing note.
    let mut latencies: Vec<Duration> = received
        .iter()
        .map(|d| {
            let post = d.json()["data"]["post"]["id"].as_str().unwrap().to_string();
            d.at.saturating_duration_since(committed[&post])
        })
        .collect();
    latencies.sort();
    eprintln!(
        "delivery latency commit→receiver: p50 {:?}, p99 {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_continues_the_trace_of_the_change_that_caused_it() {
    let app = app_with(&[]).await;
    let admin = app.user(Role::Admin).await;
    let receiver = Receiver::ok().await;
    create_webhook(
        &app,
        &admin,
        json!({"url": receiver.url("/traced"), "eventTypes": ["post.created"]}),
    )
    .await;
    let author = app.user(Role::User).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let created = app
        .post("/v1/posts")
        .bearer_auth(&author.token)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .json(&json!({"title": "Traced post", "content": "Its delivery joins the trace."}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let delivery = receiver.wait_for(1, Duration::from_secs(10)).await[0].clone();
    let traceparent = delivery.header("traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent:?}");
    assert_eq!(parts[1], trace_id, "the delivery is in the request's trace");
    assert_eq!(parts[2].len(), 16);
    assert_ne!(parts[2], parent, "a span of its own, not the client's");
}
