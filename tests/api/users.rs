//! `/v1/users/*`: the caller, the admin list, IDOR, merge-patch role rules, deactivation.

use herald::security::rbac::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp, assert_problem, error_fields};

#[tokio::test(flavor = "multi_thread")]
async fn me_returns_the_caller_with_an_etag_and_honours_if_none_match() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let response = app
        .get("/v1/users/me")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["id"], user.id.to_string());
    assert_eq!(me["etag"], etag);
    assert!(me.get("passwordHash").is_none() && me.get("password").is_none());
    assert!(me["firstName"].is_null());

    let response = app
        .get("/v1/users/me")
        .bearer_auth(&user.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    assert!(response.bytes().await.unwrap().is_empty());

    assert_problem(
        app.get("/v1/users/me").send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_list_users_newest_first_with_cursor_pages() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let mut created = vec![admin.id];
    for _ in 0..4 {
        created.push(app.user(Role::User).await.id);
    }
    let moderator = app.user(Role::Moderator).await;
    created.push(moderator.id);
    created.reverse();

    let mut seen = Vec::new();
    let mut next = Some("/v1/users?limit=2".to_string());
    while let Some(link) = next {
        let page: Value = app
            .get(&link)
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for user in page["data"].as_array().unwrap() {
            seen.push(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap());
        }
        next = page["nextLink"].as_str().map(String::from);
        if let Some(link) = &next {
            assert!(link.starts_with("/v1/users?limit=2&cursor="), "{link}");
        }
    }
    assert_eq!(seen, created);

    for token in [&moderator.token] {
        assert_problem(
            app.get("/v1/users")
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
            403,
            "FORBIDDEN",
        )
        .await;
    }
    assert_problem(
        app.get("/v1/users").send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_problem(
        app.get("/v1/users?cursor=bm9wZQ")
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_CURSOR",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_reads_only_themself_and_admins_read_anyone() {
    let app = TestApp::spawn().await;
    let alice = app.user(Role::User).await;
    let bob = app.user(Role::User).await;
    let admin = app.user(Role::Admin).await;
    let path = format!("/v1/users/{}", bob.id);

    assert_eq!(
        app.get(&path)
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.get(&path)
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // IDOR: another user's id is refused, whether it exists or not.
    assert_problem(
        app.get(&path)
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    let missing = format!("/v1/users/{}", uuid::Uuid::now_v7());
    assert_problem(
        app.get(&missing)
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_problem(
        app.get(&missing)
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap(),
        404,
        "USER_NOT_FOUND",
    )
    .await;
    let problem = assert_problem(
        app.get("/v1/users/not-a-uuid")
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_PARAMETER",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn users_change_their_names_but_only_admins_change_roles() {
    let app = TestApp::spawn().await;
    let alice = app.user(Role::User).await;
    let bob = app.user(Role::User).await;
    let admin = app.user(Role::Admin).await;
    let alice_path = format!("/v1/users/{}", alice.id);

    let response = app
        .patch(&alice_path)
        .bearer_auth(&alice.token)
        .body(r#"{"firstName": "Alice", "lastName": "Liddell"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["firstName"].as_str(), body["lastName"].as_str()),
        (Some("Alice"), Some("Liddell"))
    );
    assert_eq!(body["etag"], etag);

    // null clears; absent keeps.
    let body: Value = app
        .patch(&alice_path)
        .bearer_auth(&alice.token)
        .body(r#"{"lastName": null}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["firstName"], "Alice");
    assert!(body["lastName"].is_null());

    for (token, patch) in [
        (&alice.token, json!({"role": "ADMIN"})),
        (&alice.token, json!({"isActive": false})),
        (&bob.token, json!({"firstName": "Mallory"})),
    ] {
        let response = app
            .patch(&alice_path)
            .bearer_auth(token)
            .body(patch.to_string())
            .send()
            .await
            .unwrap();
        assert_problem(response, 403, "FORBIDDEN").await;
    }
    let response = app
        .patch(&alice_path)
        .bearer_auth(&admin.token)
        .body(r#"{"role": "MODERATOR", "firstName": "Al"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["role"].as_str(), body["firstName"].as_str()),
        (Some("MODERATOR"), Some("Al"))
    );

    // Stale If-Match.
    let response = app
        .patch(&alice_path)
        .bearer_auth(&alice.token)
        .header("if-match", &etag)
        .body(r#"{"firstName": "Again"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 412, "PRECONDITION_FAILED").await;

    // Read-only and unknown fields, wrong media type.
    for (patch, code) in [
        (r#"{"email": "x@example.com"}"#, "READ_ONLY_FIELD"),
        (r#"{"nick": "x"}"#, "UNKNOWN_FIELD"),
    ] {
        let response = app
            .patch(&alice_path)
            .bearer_auth(&alice.token)
            .body(patch)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, code).await;
    }
    let response = app
        .client
        .patch(app.url(&alice_path))
        .bearer_auth(&alice.token)
        .json(&json!({"firstName": "X"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_cannot_demote_or_deactivate_themself() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let path = format!("/v1/users/{}", admin.id);
    for patch in [r#"{"role": "USER"}"#, r#"{"isActive": false}"#] {
        let response = app
            .patch(&path)
            .bearer_auth(&admin.token)
            .body(patch)
            .send()
            .await
            .unwrap();
        assert_problem(response, 409, "CONFLICT").await;
    }
    let me: Value = app
        .get("/v1/users/me")
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["role"].as_str(), me["isActive"].as_bool()),
        (Some("ADMIN"), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivation_revokes_refresh_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::User).await;
    let session: Value = app
        .post("/v1/auth/login")
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = app
        .patch(&format!("/v1/users/{}", user.id))
        .bearer_auth(&admin.token)
        .body(r#"{"isActive": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["isActive"], false);
    let response = app
        .post("/v1/auth/refresh")
        .json(&json!({"refreshToken": session["refreshToken"]}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "INVALID_REFRESH_TOKEN").await;
}
