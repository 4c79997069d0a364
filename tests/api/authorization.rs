//! The authorization matrix: for every operation of every version's document, the status each
//! kind of caller gets. Rows are written for v1; every v1 row holds for its v2 twin too (the
//! matrix runs once per version). A new operation without a row fails
//! `every_operation_has_a_row_and_every_row_an_operation`.

use herald::security::rbac::Role;
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp, TestUser};

/// Expected status for: anonymous, USER, MODERATOR, ADMIN. The fixture is a published post, an
/// airport and a finished export owned by someone else, the post's event, and another USER
/// account.
const MATRIX: &[(&str, &str, [u16; 4])] = &[
    ("GET", "/health", [200, 200, 200, 200]),
    ("GET", "/health/live", [200, 200, 200, 200]),
    ("GET", "/health/ready", [200, 200, 200, 200]),
    ("POST", "/v1/auth/register", [201, 201, 201, 201]),
    ("POST", "/v1/auth/login", [200, 200, 200, 200]),
    ("POST", "/v1/auth/refresh", [200, 200, 200, 200]),
    ("POST", "/v1/auth/logout", [401, 204, 204, 204]),
    ("GET", "/v1/users/me", [401, 200, 200, 200]),
    ("GET", "/v1/users", [401, 403, 403, 200]),
    ("GET", "/v1/users/{id}", [401, 403, 403, 200]),
    ("PATCH", "/v1/users/{id}", [401, 403, 403, 200]),
    ("GET", "/v1/posts", [200, 200, 200, 200]),
    ("POST", "/v1/posts", [401, 201, 201, 201]),
    ("GET", "/v1/posts/{id}", [200, 200, 200, 200]),
    ("PATCH", "/v1/posts/{id}", [401, 403, 200, 200]),
    ("DELETE", "/v1/posts/{id}", [401, 403, 200, 200]),
    ("GET", "/v1/airports", [200, 200, 200, 200]),
    ("GET", "/v1/airports/{code}", [200, 200, 200, 200]),
    ("PUT", "/v1/airports/{code}", [401, 403, 403, 200]),
    ("PATCH", "/v1/airports/{code}", [401, 403, 403, 200]),
    ("DELETE", "/v1/airports/{code}", [401, 403, 403, 200]),
    ("GET", "/v1/events", [401, 403, 403, 200]),
    ("GET", "/v1/events/{id}", [401, 403, 403, 200]),
    ("POST", "/v1/exports", [401, 202, 202, 202]),
    // The fixture's export belongs to someone else: it does not exist for other users.
    ("GET", "/v1/operations/{id}", [401, 404, 404, 200]),
    ("GET", "/v1/exports/{id}/file", [401, 404, 404, 200]),
    ("DELETE", "/v1/operations/{id}", [401, 204, 204, 200]),
    ("POST", "/v1/webhooks", [401, 403, 403, 201]),
    ("GET", "/v1/webhooks", [401, 403, 403, 200]),
    ("GET", "/v1/webhooks/{id}", [401, 403, 403, 200]),
    ("PATCH", "/v1/webhooks/{id}", [401, 403, 403, 200]),
    (
        "POST",
        "/v1/webhooks/{id}/rotate-secret",
        [401, 403, 403, 200],
    ),
    ("POST", "/v1/webhooks/{id}/test", [401, 403, 403, 202]),
    ("GET", "/v1/webhooks/{id}/deliveries", [401, 403, 403, 200]),
    ("DELETE", "/v1/webhooks/{id}", [401, 403, 403, 200]),
];

/// The API versions the matrix runs for.
const VERSIONS: &[&str] = &["/v1", "/v2"];

/// `template` (written for v1) as the same operation of `version`.
fn in_version(template: &str, version: &str) -> String {
    match template.strip_prefix("/v1") {
        Some(rest) => format!("{version}{rest}"),
        None => template.to_string(),
    }
}

fn spec_operations() -> Vec<(String, String)> {
    use herald::api::spec::{Version, document};
    let mut operations = Vec::new();
    for version in Version::ALL {
        let spec = document(version);
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations.sort();
    operations.dedup();
    operations
}

#[test]
fn every_operation_has_a_row_and_every_row_an_operation() {
    let mut rows: Vec<(String, String)> = VERSIONS
        .iter()
        .flat_map(|version| {
            MATRIX
                .iter()
                .map(|(m, p, _)| (m.to_string(), in_version(p, version)))
        })
        .collect();
    rows.sort();
    rows.dedup();
    let operations = spec_operations();
    let missing: Vec<_> = operations.iter().filter(|op| !rows.contains(op)).collect();
    assert!(
        missing.is_empty(),
        "operations without an authorization row: {missing:?}"
    );
    let stale: Vec<_> = rows
        .iter()
        .filter(|row| !operations.contains(row))
        .collect();
    assert!(
        stale.is_empty(),
        "rows for operations the spec does not have: {stale:?}"
    );
}

/// What one caller's requests act on (fresh per caller, since some requests change it).
struct Fixture {
    post: String,
    event: String,
    export: String,
    airport: String,
    target: TestUser,
    webhook: String,
}

async fn fixture(app: &TestApp, admin: &TestUser, n: usize) -> Fixture {
    let owner = app.user(Role::User).await;
    let post = app
        .create_post(&owner, &format!("Fixture post {n}"), true)
        .await;
    let airport = format!("AA{}", (b'A' + n as u8) as char);
    let response = app
        .put(&format!("/v1/airports/{airport}"))
        .bearer_auth(&admin.token)
        .json(&json!({"runways": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // Nothing listens there; deliveries are not what this test checks.
    let webhook: Value = app
        .post("/v1/webhooks")
        .bearer_auth(&admin.token)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["webhook.test"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Value = app
        .get("/v1/events?type=post.created&limit=1")
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let export: Value = app
        .post("/v1/exports")
        .bearer_auth(&owner.token)
        .json(&json!({"format": "ndjson"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let export = export["id"].as_str().unwrap().to_string();
    for _ in 0..300 {
        let operation: Value = app
            .get(&format!("/v1/operations/{export}"))
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if operation["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Fixture {
        post: post["id"].as_str().unwrap().to_string(),
        event: events["data"][0]["id"].as_str().unwrap().to_string(),
        export,
        airport,
        target: app.user(Role::User).await,
        webhook: webhook["id"].as_str().unwrap().to_string(),
    }
}

async fn request(
    app: &TestApp,
    method: &str,
    template: &str,
    version: &str,
    fixture: &Fixture,
    n: usize,
) -> reqwest::RequestBuilder {
    let user_path = in_version(&format!("/v1/users/{}", fixture.target.id), version);
    let post_path = in_version(&format!("/v1/posts/{}", fixture.post), version);
    let airport_path = in_version(&format!("/v1/airports/{}", fixture.airport), version);
    let event_path = in_version(&format!("/v1/events/{}", fixture.event), version);
    let operation_path = in_version(&format!("/v1/operations/{}", fixture.export), version);
    let file_path = in_version(&format!("/v1/exports/{}/file", fixture.export), version);
    let path = in_version(template, version);
    let webhook_path =
        |rest: &str| in_version(&format!("/v1/webhooks/{}{rest}", fixture.webhook), version);
    match (method, template) {
        ("POST", "/v1/webhooks") => app.post(&path).json(&json!({
            "url": "http://127.0.0.1:9/matrix", "eventTypes": ["post.created"]
        })),
        ("GET", "/v1/webhooks/{id}") => app.get(&webhook_path("")),
        ("PATCH", "/v1/webhooks/{id}") => {
            app.patch(&webhook_path("")).body(r#"{"description": "Changed"}"#)
        }
        ("DELETE", "/v1/webhooks/{id}") => app.delete(&webhook_path("")),
        ("POST", "/v1/webhooks/{id}/rotate-secret") => app
            .post(&webhook_path("/rotate-secret"))
            .header("content-length", "0"),
        ("POST", "/v1/webhooks/{id}/test") => {
            app.post(&webhook_path("/test")).header("content-length", "0")
        }
        ("GET", "/v1/webhooks/{id}/deliveries") => app.get(&webhook_path("/deliveries")),
        ("GET", "/v1/users/{id}") => app.get(&user_path),
        ("PATCH", "/v1/users/{id}") => app.patch(&user_path).body(r#"{"firstName": "Renamed"}"#),
        ("GET", "/v1/posts/{id}") => app.get(&post_path),
        ("PATCH", "/v1/posts/{id}") => app.patch(&post_path).body(r#"{"title": "Changed title"}"#),
        ("DELETE", "/v1/posts/{id}") => app.delete(&post_path),
        ("GET", "/v1/airports/{code}") => app.get(&airport_path),
        ("PUT", "/v1/airports/{code}") => app.put(&airport_path).json(&json!({"runways": 3})),
        ("PATCH", "/v1/airports/{code}") => app.patch(&airport_path).body(r#"{"runways": 4}"#),
        ("DELETE", "/v1/airports/{code}") => app.delete(&airport_path),
        ("GET", "/v1/events/{id}") => app.get(&event_path),
        ("GET", "/v1/operations/{id}") => app.get(&operation_path),
        ("DELETE", "/v1/operations/{id}") => app.delete(&operation_path),
        ("GET", "/v1/exports/{id}/file") => app.get(&file_path),
        ("POST", "/v1/exports") => app.post(&path).json(&json!({"format": "ndjson"})),
        ("POST", "/v1/auth/register") => app.post(&path).json(&json!({
            "email": format!("matrix{n}@example.com"), "username": format!("matrix_{n}"), "password": "12345678"
        })),
        ("POST", "/v1/auth/login") => app.post(&path).json(&json!({"email": fixture.target.email, "password": PASSWORD})),
        ("POST", "/v1/auth/refresh") => {
            let session: Value = app
                .post("/v1/auth/login")
                .json(&json!({"email": fixture.target.email, "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            app.post(&path).json(&json!({"refreshToken": session["refreshToken"]}))
        }
        ("POST", "/v1/posts") => app.post(&path).json(&json!({"title": "Matrix post", "content": "Created by the matrix."})),
        ("GET", _) => app.get(&path),
        ("POST", _) => app.post(&path).header("content-length", "0"),
        _ => panic!("no request for {method} {template}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_gets_the_status_the_matrix_says() {
    let app = TestApp::spawn().await;
    let setup_admin = app.user(Role::Admin).await;
    let callers = [
        None,
        Some(Role::User),
        Some(Role::Moderator),
        Some(Role::Admin),
    ];
    let mut failures = Vec::new();
    for (column, role) in callers.iter().enumerate() {
        let caller = match role {
            Some(role) => Some(app.user(*role).await),
            None => None,
        };
        for (v, version) in VERSIONS.iter().enumerate() {
            let fixture = fixture(&app, &setup_admin, v * 4 + column).await;
            for (row, (method, template, expected)) in MATRIX.iter().enumerate() {
                let n = v * 10_000 + column * 100 + row;
                let mut builder = request(&app, method, template, version, &fixture, n).await;
                if let Some(caller) = &caller {
                    builder = builder.bearer_auth(&caller.token);
                }
                let status = builder.send().await.unwrap().status().as_u16();
                if status != expected[column] {
                    failures.push(format!(
                        "{method} {} as {role:?}: expected {}, got {status}",
                        in_version(template, version),
                        expected[column]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
