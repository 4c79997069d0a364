//! Rate limits (global per IP, failed logins per IP and email, writes per user), their headers,
//! sharing through Redis between instances, `TRUST_PROXY`, and overload protection.

use std::time::Duration;

use herald::security::rbac::Role;
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
    let (limit, remaining, reset) = limits(&response);
    assert_eq!((limit, remaining), (5, 0));
    assert!(
        (1..=900).contains(&reset),
        "reset {reset} within the 15-minute window"
    );
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

/// Two instances sharing one Redis prefix and database, with the same extra settings.
async fn pair(env: &[(&str, &str)]) -> (TestApp, TestApp) {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let a = TestApp::with(Options {
        redis: true,
        env: env.clone(),
        ..Options::default()
    })
    .await;
    let b = TestApp::with(Options {
        redis: true,
        redis_prefix: Some(a.redis_prefix.clone()),
        database_url: Some(a.database_url.clone()),
        env,
        ..Options::default()
    })
    .await;
    (a, b)
}

/// Counts the statuses of concurrent requests.
async fn statuses(
    requests: impl IntoIterator<Item = reqwest::RequestBuilder>,
) -> std::collections::BTreeMap<u16, usize> {
    let sent = requests.into_iter().map(|r| tokio::spawn(r.send()));
    let mut counts = std::collections::BTreeMap::new();
    for response in futures::future::join_all(sent).await {
        *counts
            .entry(response.unwrap().unwrap().status().as_u16())
            .or_insert(0) += 1;
    }
    counts
}

fn counts(pairs: &[(u16, usize)]) -> std::collections::BTreeMap<u16, usize> {
    pairs.iter().copied().collect()
}

/// 30 wrong passwords for one email at once: exactly 5 reach the password check.
async fn parallel_failed_logins_get_exactly_five_checks(apps: &[&TestApp]) {
    let user = apps[0].user(Role::User).await;
    let before: u64 = apps.iter().map(|a| a.state.passwords.verifications()).sum();
    let logins = (0..30).map(|i| {
        apps[i % apps.len()]
            .post("/v1/auth/login")
            .json(&json!({"email": user.email, "password": "wrong-password"}))
    });
    assert_eq!(statuses(logins).await, counts(&[(401, 5), (429, 25)]));
    let after: u64 = apps.iter().map(|a| a.state.passwords.verifications()).sum();
    assert_eq!(after - before, 5, "password checks");
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_parallel_failed_logins_are_5_checks_in_process() {
    let app = TestApp::spawn().await;
    parallel_failed_logins_get_exactly_five_checks(&[&app]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_parallel_failed_logins_are_5_checks_in_redis() {
    let app = TestApp::with(Options::redis()).await;
    parallel_failed_logins_get_exactly_five_checks(&[&app]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_parallel_failed_logins_are_5_checks_across_two_instances() {
    let (a, b) = pair(&[]).await;
    parallel_failed_logins_get_exactly_five_checks(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_login_gives_its_attempt_back_under_concurrency() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    // Right passwords give their attempt back: 4 rounds of 5 at once (as many as may be in
    // flight, since each counts until its password is checked) never lock the account out...
    for _ in 0..4 {
        let logins = (0..5).map(|_| {
            app.post("/v1/auth/login")
                .json(&json!({"email": user.email, "password": PASSWORD}))
        });
        assert_eq!(statuses(logins).await, counts(&[(200, 5)]));
    }
    // ...and leave all five failures to a guesser.
    let guesses = (0..8).map(|_| {
        app.post("/v1/auth/login")
            .json(&json!({"email": user.email, "password": "wrong-password"}))
    });
    assert_eq!(statuses(guesses).await, counts(&[(401, 5), (429, 3)]));
}

/// 50 writes by one user at once against the 30-a-minute limit.
async fn parallel_writes_get_exactly_thirty(apps: &[&TestApp]) {
    let user = apps[0].user(Role::User).await;
    let writes = (0..50).map(|i| {
        apps[i % apps.len()]
            .post("/v1/posts")
            .bearer_auth(&user.token)
            .json(&json!({"title": "Parallel write", "content": "One of fifty at once."}))
    });
    assert_eq!(statuses(writes).await, counts(&[(201, 30), (429, 20)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_writes_admit_exactly_thirty_in_process() {
    let app = TestApp::spawn().await;
    parallel_writes_get_exactly_thirty(&[&app]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_parallel_writes_admit_exactly_thirty_across_two_instances() {
    let (a, b) = pair(&[]).await;
    parallel_writes_get_exactly_thirty(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_global_limit_is_exact_under_concurrency_in_process() {
    let app = TestApp::with(Options::default().env("RATE_LIMIT_GLOBAL", "40/1m")).await;
    let reads = (0..100).map(|_| app.get("/health/live").header("x", "1"));
    assert_eq!(
        statuses(reads).await,
        counts(&[(200, 100)]),
        "health is exempt"
    );
    let reads = (0..100).map(|_| app.get("/v1/posts"));
    assert_eq!(statuses(reads).await, counts(&[(200, 40), (429, 60)]));
}

/// The shared budget of two instances, spent by bursts on both at once: never more than the
/// limit admitted, and none refused while the budget has room (a burst within the budget passes
/// whole, however the instances batch their counts).
#[tokio::test(flavor = "multi_thread")]
async fn the_global_limit_is_exact_across_two_instances_under_bursts() {
    let (a, b) = pair(&[("RATE_LIMIT_GLOBAL", "300/1m")]).await;
    let burst = |n: usize| {
        (0..n)
            .map(|i| if i % 2 == 0 { &a } else { &b }.get("/v1/posts"))
            .collect::<Vec<_>>()
    };
    assert_eq!(statuses(burst(120)).await, counts(&[(200, 120)]));
    assert_eq!(statuses(burst(179)).await, counts(&[(200, 179)]));
    // One token left in the shared window, and 60 requests want it.
    assert_eq!(statuses(burst(60)).await, counts(&[(200, 1), (429, 59)]));
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
