//! `/v1/airports/*`: every row of the Airports table — PUT create/replace, merge-patch upsert,
//! field mutability, conditional requests, delete, list order, admin-only writes.

use herald::security::rbac::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, assert_problem, error_fields};

async fn put(app: &TestApp, admin: &TestUser, code: &str, body: Value) -> reqwest::Response {
    app.put(&format!("/v1/airports/{code}"))
        .bearer_auth(&admin.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, admin: &TestUser, code: &str, body: &str) -> reqwest::Response {
    app.patch(&format!("/v1/airports/{code}"))
        .bearer_auth(&admin.token)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn put_creates_then_replaces_and_omitted_optionals_become_null() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let response = put(
        &app,
        &admin,
        "LAX",
        json!({"runways": 4, "takeoffsPerHour": 60}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/v1/airports/LAX");
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["airportCode"], "LAX");
    assert_eq!(
        (
            created["runways"].as_i64(),
            created["takeoffsPerHour"].as_i64()
        ),
        (Some(4), Some(60))
    );
    assert_eq!(created["etag"], etag);

    let response = put(
        &app,
        &admin,
        "LAX",
        json!({"airportCode": "LAX", "runways": 5}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["runways"], 5);
    assert!(
        replaced["takeoffsPerHour"].is_null(),
        "omitted optional field became null"
    );
    assert_eq!(replaced["createdAt"], created["createdAt"]);
    assert_ne!(replaced["etag"], created["etag"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_enforces_field_mutability() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let problem = assert_problem(
        put(&app, &admin, "SFO", json!({"takeoffsPerHour": 3})).await,
        400,
        "MISSING_FIELD",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["runways"]);
    for field in ["createdAt", "updatedAt", "etag"] {
        let mut body = json!({"runways": 2});
        body[field] = json!("x");
        let problem =
            assert_problem(put(&app, &admin, "SFO", body).await, 400, "READ_ONLY_FIELD").await;
        assert_eq!(error_fields(&problem), vec![field]);
    }
    let problem = assert_problem(
        put(
            &app,
            &admin,
            "SFO",
            json!({"airportCode": "JFK", "runways": 2}),
        )
        .await,
        400,
        "READ_ONLY_FIELD",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["airportCode"]);
    assert_problem(
        put(&app, &admin, "SFO", json!({"runways": 0})).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_problem(
        put(
            &app,
            &admin,
            "SFO",
            json!({"runways": 2, "takeoffsPerHour": -1}),
        )
        .await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_problem(
        put(&app, &admin, "SFO", json!({"runways": 2, "gates": 9})).await,
        400,
        "UNKNOWN_FIELD",
    )
    .await;
    // None of that created anything.
    assert_problem(
        app.get("/v1/airports/SFO").send().await.unwrap(),
        404,
        "AIRPORT_NOT_FOUND",
    )
    .await;
    let response = app
        .put("/v1/airports/SFO")
        .bearer_auth(&admin.token)
        .header("content-type", "text/plain")
        .body(r#"{"runways": 2}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preconditions_make_put_create_only_or_version_bound() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let create_only = |code: &'static str| {
        app.put(&format!("/v1/airports/{code}"))
            .bearer_auth(&admin.token)
            .header("if-none-match", "*")
            .json(&json!({"runways": 1}))
            .send()
    };
    assert_eq!(create_only("ORD").await.unwrap().status(), 201);
    assert_problem(
        create_only("ORD").await.unwrap(),
        412,
        "PRECONDITION_FAILED",
    )
    .await;

    let current: Value = app
        .get("/v1/airports/ORD")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let etag = current["etag"].as_str().unwrap();
    let with_if_match = |etag: String| {
        app.put("/v1/airports/ORD")
            .bearer_auth(&admin.token)
            .header("if-match", etag)
            .json(&json!({"runways": 7}))
            .send()
    };
    assert_eq!(with_if_match(etag.to_string()).await.unwrap().status(), 200);
    assert_problem(
        with_if_match(etag.to_string()).await.unwrap(),
        412,
        "PRECONDITION_FAILED",
    )
    .await;
    // If-Match on an airport that does not exist fails too.
    let response = app
        .put("/v1/airports/DEN")
        .bearer_auth(&admin.token)
        .header("if-match", etag)
        .json(&json!({"runways": 7}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 412, "PRECONDITION_FAILED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_upserts_with_merge_patch_semantics() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let problem = assert_problem(
        patch(&app, &admin, "ATL", r#"{"takeoffsPerHour": 5}"#).await,
        400,
        "MISSING_FIELD",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["runways"]);

    let response = patch(
        &app,
        &admin,
        "ATL",
        r#"{"runways": 5, "takeoffsPerHour": 90}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/v1/airports/ATL");

    let response = patch(&app, &admin, "ATL", r#"{"runways": 6}"#).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["runways"].as_i64(), body["takeoffsPerHour"].as_i64()),
        (Some(6), Some(90)),
        "absent field kept"
    );

    let body: Value = patch(&app, &admin, "ATL", r#"{"takeoffsPerHour": null}"#)
        .await
        .json()
        .await
        .unwrap();
    assert!(body["takeoffsPerHour"].is_null(), "null removes it");
    assert_eq!(body["runways"], 6);

    let problem = assert_problem(
        patch(&app, &admin, "ATL", r#"{"runways": null}"#).await,
        400,
        "VALIDATION_FAILED",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["runways"]);
    assert_problem(
        patch(
            &app,
            &admin,
            "ATL",
            r#"{"createdAt": "2020-01-01T00:00:00Z"}"#,
        )
        .await,
        400,
        "READ_ONLY_FIELD",
    )
    .await;
    assert_problem(
        patch(&app, &admin, "ATL", r#"{"airportCode": "ATX"}"#).await,
        400,
        "READ_ONLY_FIELD",
    )
    .await;
    assert_eq!(
        patch(&app, &admin, "ATL", r#"{"airportCode": "ATL"}"#)
            .await
            .status(),
        200
    );

    let response = app
        .patch("/v1/airports/ATL")
        .bearer_auth(&admin.token)
        .header("if-match", "\"1-0\"")
        .body(r#"{"runways": 9}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 412, "PRECONDITION_FAILED").await;
    let response = app
        .client
        .patch(app.url("/v1/airports/ATL"))
        .bearer_auth(&admin.token)
        .json(&json!({"runways": 9}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_list_and_delete() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    for code in ["SFO", "ATL", "LAX", "BOS"] {
        assert_eq!(
            put(&app, &admin, code, json!({"runways": 2}))
                .await
                .status(),
            201
        );
    }
    let mut codes = Vec::new();
    let mut next = Some("/v1/airports?limit=3".to_string());
    while let Some(link) = next {
        let page: Value = app.get(&link).send().await.unwrap().json().await.unwrap();
        codes.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["airportCode"].as_str().unwrap().to_string()),
        );
        next = page["nextLink"].as_str().map(String::from);
    }
    assert_eq!(codes, vec!["ATL", "BOS", "LAX", "SFO"]);

    let response = app.get("/v1/airports/LAX").send().await.unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let response = app
        .get("/v1/airports/LAX")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    for code in ["lax", "LAXX", "LA", "L4X"] {
        assert_problem(
            app.get(&format!("/v1/airports/{code}"))
                .send()
                .await
                .unwrap(),
            400,
            "INVALID_PARAMETER",
        )
        .await;
    }
    assert_problem(
        app.get("/v1/airports/JFK").send().await.unwrap(),
        404,
        "AIRPORT_NOT_FOUND",
    )
    .await;

    let stale = app
        .delete("/v1/airports/LAX")
        .bearer_auth(&admin.token)
        .header("if-match", "\"9-9\"")
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412, "PRECONDITION_FAILED").await;
    let response = app
        .delete("/v1/airports/LAX")
        .bearer_auth(&admin.token)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deleted: Value = response.json().await.unwrap();
    assert_eq!(deleted["airportCode"], "LAX");
    let again = app
        .delete("/v1/airports/LAX")
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_write_airports() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let moderator = app.user(Role::Moderator).await;
    for who in [&user, &moderator] {
        assert_problem(
            put(&app, who, "MIA", json!({"runways": 1})).await,
            403,
            "FORBIDDEN",
        )
        .await;
        assert_problem(
            patch(&app, who, "MIA", r#"{"runways": 1}"#).await,
            403,
            "FORBIDDEN",
        )
        .await;
        let response = app
            .delete("/v1/airports/MIA")
            .bearer_auth(&who.token)
            .send()
            .await
            .unwrap();
        assert_problem(response, 403, "FORBIDDEN").await;
    }
    let response = app
        .put("/v1/airports/MIA")
        .json(&json!({"runways": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "UNAUTHENTICATED").await;
}
