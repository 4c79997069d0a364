//! Rate limits (global per IP, failed logins per IP and email, writes per user), their headers,
//! sharing through Redis between instances, `TRUST_PROXY`, and overload protection.

use std::time::Duration;

use herald::auth::rbac::Role;
use serde_json::json;

use crate::support::{Options, PASSWORD, TestApp, assert_problem};

fn limits(response: &reqwest::Response) -> (u64, u64, u64) {
    let header = |name: &str| {
        response.headers()[name]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    (
        header("ratelimit-limit"),
        header("ratelimit-remaining"),
        header("ratelimit-reset"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_response_carries_rate_limit_headers_and_health_none() {
    let app = TestApp::spawn().await;
    let response = app.get("/v1/posts").send().await.unwrap();
    let (limit, remaining, reset) = limits(&response);
    assert_eq!(limit, 1000, "development default");
    assert_eq!(remaining, 999);
    assert!(reset > 0 && reset <= 900);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"global\";q=1000;w=900"
    );
    assert_eq!(
        response.headers()["ratelimit"].to_str().unwrap(),
        format!("\"global\";r=999;t={reset}")
    );
    let response = app.get("/v1/nothing").send().await.unwrap();
    assert!(
        response.headers().contains_key("ratelimit-limit"),
        "errors under /v1 too"
    );
    for path in [
        "/health",
        "/health/live",
        "/metrics",
        "/docs",
        "/openapi.json",
    ] {
        let response = app.get(path).send().await.unwrap();
        assert!(
            !response.headers().contains_key("ratelimit-limit"),
            "{path} is exempt"
        );
    }
}

async fn the_global_limit_holds_at_its_boundary(options: Options) {
    let app = TestApp::with(options.env("RATE_LIMIT_GLOBAL", "5/1m")).await;
    for i in 1..=5 {
        let response = app.get("/v1/posts").send().await.unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(limits(&response).1, 5 - i);
    }
    let response = app.get("/v1/posts").send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limits(&response).1, 0);
    assert_problem(response, 429, "RATE_LIMITED").await;
    // Health and docs are never limited.
    for path in [
        "/health",
        "/health/ready",
        "/docs",
        "/openapi.json",
        "/metrics",
    ] {
        assert_eq!(app.get(path).send().await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_global_limit_holds_at_its_boundary_in_process() {
    the_global_limit_holds_at_its_boundary(Options::default()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_global_limit_holds_at_its_boundary_in_redis() {
    the_global_limit_holds_at_its_boundary(Options::redis()).await;
}

async fn the_sixth_failed_login_is_refused_before_the_password_check(options: Options) {
    let app = TestApp::with(options).await;
    let user = app.user(Role::User).await;
    let login = |password: &'static str| {
        app.post("/v1/auth/login")
            .json(&json!({"email": user.email, "password": password}))
            .send()
    };
    // Successful logins do not count.
    assert_eq!(login(PASSWORD).await.unwrap().status(), 200);
    for attempt in 1..=5 {
        let before = app.state.passwords.verifications();
        assert_problem(
            login("wrong-password").await.unwrap(),
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
        assert_eq!(
            app.state.passwords.verifications(),
            before + 1,
            "attempt {attempt} checked the password"
        );
    }
    let before = app.state.passwords.verifications();
    let response = login(PASSWORD).await.unwrap();
    assert_eq!(
        app.state.passwords.verifications(),
        before,
        "the 6th is refused without a check"
    );
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"login\";q=5;w=900"
    );
    assert_eq!(limits(&response), (5, 0, limits(&response).2));
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 429, "RATE_LIMITED").await;
    // Another email from the same IP is its own bucket.
    let other = app.user(Role::User).await;
    let response = app
        .post("/v1/auth/login")
        .json(&json!({"email": other.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sixth_failed_login_is_429_in_process() {
    the_sixth_failed_login_is_refused_before_the_password_check(Options::default()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sixth_failed_login_is_429_in_redis() {
    the_sixth_failed_login_is_refused_before_the_password_check(Options::redis()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_31st_write_in_a_minute_is_429() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let create = |token: String| {
        app.post("/v1/posts")
            .bearer_auth(token)
            .json(&json!({"title": "Write limited", "content": "One of thirty writes."}))
            .send()
    };
    for i in 1..=30 {
        let response = create(user.token.clone()).await.unwrap();
        assert_eq!(response.status(), 201, "write {i}");
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"writes\";q=30;w=60"
        );
        assert_eq!(limits(&response).1, 30 - i);
    }
    let response = create(user.token.clone()).await.unwrap();
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"writes\";q=30;w=60"
    );
    assert_problem(response, 429, "RATE_LIMITED").await;
    // Reads are not writes; other users have their own budget.
    assert_eq!(
        app.get("/v1/posts")
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(create(other.token.clone()).await.unwrap().status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_spent_on_one_instance_holds_on_another() {
    let a = TestApp::with(Options::redis().env("RATE_LIMIT_GLOBAL", "6/1m")).await;
    let b = TestApp::with(Options {
        redis: true,
        redis_prefix: Some(a.redis_prefix.clone()),
        database_url: Some(a.database_url.clone()),
        env: vec![("RATE_LIMIT_GLOBAL".into(), "6/1m".into())],
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(a.get("/v1/posts").send().await.unwrap().status(), 200);
        assert_eq!(b.get("/v1/posts").send().await.unwrap().status(), 200);
    }
    assert_problem(
        a.get("/v1/posts").send().await.unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
    assert_problem(
        b.get("/v1/posts").send().await.unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    for (trust, expect_separate) in [("true", true), ("false", false)] {
        let app = TestApp::with(
            Options::default()
                .env("RATE_LIMIT_GLOBAL", "2/1m")
                .env("TRUST_PROXY", trust),
        )
        .await;
        let from = |ip: &'static str| app.get("/v1/posts").header("x-forwarded-for", ip).send();
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 200);
        assert_eq!(from("203.0.113.1, 10.0.0.1").await.unwrap().status(), 200);
        let third = from("203.0.113.2").await.unwrap().status();
        assert_eq!(third == 200, expect_separate, "TRUST_PROXY={trust}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn more_requests_in_flight_than_the_ceiling_get_503_not_a_queue() {
    let app = TestApp::with(Options::default().env("MAX_IN_FLIGHT", "2")).await;
    let user = app.user(Role::User).await;
    // Two uploads that trickle in hold both slots.
    let mut slow = Vec::new();
    let (tx, rx) = tokio::sync::watch::channel(false);
    for _ in 0..2 {
        let mut rx = rx.clone();
        let body = async_stream_body(async move {
            let _ = rx.wait_for(|done| *done).await;
        });
        slow.push(tokio::spawn(
            app.post("/v1/posts")
                .bearer_auth(&user.token)
                .header("content-type", "application/json")
                .body(body)
                .send(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = app.get("/v1/posts").send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503, "SERVICE_UNAVAILABLE").await;
    assert_eq!(
        app.get("/health/live").send().await.unwrap().status(),
        200,
        "health is exempt"
    );
    tx.send(true).unwrap();
    for upload in slow {
        assert_eq!(upload.await.unwrap().unwrap().status(), 201);
    }
    assert_eq!(
        app.get("/v1/posts").send().await.unwrap().status(),
        200,
        "slots are free again"
    );
}

/// A JSON body whose last bytes arrive only once `release` resolves.
pub fn async_stream_body(
    release: impl std::future::Future<Output = ()> + Send + 'static,
) -> reqwest::Body {
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(br#"{"title": "Slow upload", "#.to_vec())
    });
    let rest = futures::stream::once(async move {
        release.await;
        Ok::<_, std::io::Error>(br#""content": "Arrived at last."}"#.to_vec())
    });
    reqwest::Body::wrap_stream(futures::StreamExt::chain(first, rest))
}
