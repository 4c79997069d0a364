//! `Idempotency-Key` on `POST /v1/posts`: replay byte for byte, 422 for another body, 409 while
//! in progress, per user, surviving a restart, released after an error, purged when expired.

use herald::{housekeeping, security::rbac::Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Options, TestApp, TestUser, assert_problem};

async fn post_with_key(
    app: &TestApp,
    user: &TestUser,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.post("/v1/posts")
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn count_posts(app: &TestApp, user: &TestUser) -> usize {
    let page: Value = app
        .get(&format!(
            "/v1/posts?status=all&limit=100&authorId={}",
            user.id
        ))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["data"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_replays_the_stored_response_byte_for_byte() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let body = json!({"title": "Exactly once", "content": "Retried by a nervous client."});
    let first = post_with_key(&app, &user, "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let (location, etag) = (
        first.headers()["location"].clone(),
        first.headers()["etag"].clone(),
    );
    let first_bytes = first.bytes().await.unwrap();

    let retry = post_with_key(&app, &user, "key-1", &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.headers()["etag"], etag);
    assert_eq!(
        retry.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(retry.bytes().await.unwrap(), first_bytes);
    assert_eq!(count_posts(&app, &user).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_with_another_body_is_422_and_keys_are_per_user() {
    let app = TestApp::spawn().await;
    let alice = app.user(Role::User).await;
    let bob = app.user(Role::User).await;
    let body = json!({"title": "First body", "content": "The original request."});
    assert_eq!(
        post_with_key(&app, &alice, "shared", &body).await.status(),
        201
    );
    let other = json!({"title": "Other body", "content": "A different request."});
    assert_problem(
        post_with_key(&app, &alice, "shared", &other).await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    // Bob's "shared" is his own key.
    let response = post_with_key(&app, &bob, "shared", &other).await;
    assert_eq!(response.status(), 201);
    assert!(!response.headers().contains_key("idempotent-replayed"));
    assert_eq!(count_posts(&app, &alice).await, 1);
    assert_eq!(count_posts(&app, &bob).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_request_releases_its_key() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let invalid = json!({"title": "Bad", "content": "too short title"});
    assert_problem(
        post_with_key(&app, &user, "fix-and-retry", &invalid).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    let fixed = json!({"title": "Better title", "content": "Fixed and retried."});
    let response = post_with_key(&app, &user, "fix-and-retry", &fixed).await;
    assert_eq!(response.status(), 201);
    assert!(!response.headers().contains_key("idempotent-replayed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_still_in_progress_is_409_and_another_body_422() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let body =
        serde_json::to_vec(&json!({"title": "Waiting", "content": "For the first one."})).unwrap();
    // Another instance holds the key for this very request and has not finished.
    let mut fingerprint = Sha256::new();
    fingerprint.update(b"POST /v1/posts\n");
    fingerprint.update(&body);
    let mut conn = app.state.db.conn().await.unwrap();
    let now = chrono::Utc::now();
    let claimed = herald::idempotency::repo::claim(
        &mut conn,
        user.id,
        "busy",
        &fingerprint.finalize(),
        now,
        now + chrono::Duration::seconds(60),
        now + chrono::Duration::hours(24),
    )
    .await
    .unwrap();
    assert!(claimed);
    drop(conn);
    let send = |body: Vec<u8>| {
        app.post("/v1/posts")
            .bearer_auth(&user.token)
            .header("idempotency-key", "busy")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let response = send(body.clone()).await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 409, "IDEMPOTENCY_KEY_IN_PROGRESS").await;
    let other =
        serde_json::to_vec(&json!({"title": "Different", "content": "Another request."})).unwrap();
    assert_problem(send(other).await.unwrap(), 422, "IDEMPOTENCY_KEY_REUSED").await;
    assert_eq!(count_posts(&app, &user).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_posts_with_one_key_create_one_post() {
    let app = TestApp::with(Options::default().env("RATE_LIMIT_WRITES", "1000/1m")).await;
    let user = app.user(Role::User).await;
    let body = json!({"title": "Stampede", "content": "Fifty clients, one key."});
    let requests = (0..50).map(|_| {
        let request = app
            .post("/v1/posts")
            .bearer_auth(&user.token)
            .header("idempotency-key", "stampede")
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let code = response
                .headers()
                .get("x-error-code")
                .map(|v| v.to_str().unwrap().to_string());
            (status, code, response.bytes().await.unwrap())
        }
    });
    let results = futures::future::join_all(requests).await;
    let created: Vec<_> = results.iter().filter(|(s, _, _)| *s == 201).collect();
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|(_, _, bytes)| bytes == &created[0].2),
        "every 201 is the first response"
    );
    for (status, code, _) in &results {
        assert!(
            *status == 201
                || (*status == 409 && code.as_deref() == Some("IDEMPOTENCY_KEY_IN_PROGRESS")),
            "unexpected {status} {code:?}"
        );
    }
    assert_eq!(count_posts(&app, &user).await, 1, "exactly one post");
    let conflicts = results.iter().filter(|(s, _, _)| *s == 409).count();
    eprintln!(
        "50 concurrent requests with one key: {} x 201, {conflicts} x 409",
        created.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_responses_survive_a_restart() {
    let first = TestApp::spawn().await;
    let user = first.user(Role::User).await;
    let body = json!({"title": "Durable", "content": "Stored in PostgreSQL."});
    let original = post_with_key(&first, &user, "durable", &body)
        .await
        .bytes()
        .await
        .unwrap();
    let database = first.database_url.clone();
    // Keep the database (the first app's guard) alive while the second app runs.
    let second = TestApp::with(Options {
        database_url: Some(database),
        ..Options::default()
    })
    .await;
    let replay = post_with_key(&second, &user, "durable", &body).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.bytes().await.unwrap(), original);
    drop(second);
    drop(first);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_keys_are_400_and_expired_records_are_purged() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let body = json!({"title": "Keyed post", "content": "With a bad key."});
    for key in ["k".repeat(256), "has space".to_string()] {
        assert_problem(
            post_with_key(&app, &user, &key, &body).await,
            400,
            "INVALID_PARAMETER",
        )
        .await;
    }
    assert_eq!(
        post_with_key(&app, &user, &"k".repeat(255), &body)
            .await
            .status(),
        201
    );

    let mut conn = app.state.db.conn().await.unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(48);
    herald::idempotency::repo::claim(
        &mut conn,
        user.id,
        "expired",
        b"x",
        long_ago,
        long_ago,
        long_ago + chrono::Duration::hours(24),
    )
    .await
    .unwrap();
    drop(conn);
    let purged = housekeeping::purge_once(&app.state).await.unwrap();
    assert_eq!(purged.idempotency_keys, 1);
    assert_eq!(
        housekeeping::purge_once(&app.state)
            .await
            .unwrap()
            .idempotency_keys,
        0
    );
}
