//! Errors poem raises itself, the conventions every response follows (problem+json,
//! X-Request-Id, security headers), and the size, media type and Accept rules.

use herald::security::rbac::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Options, TestApp, assert_problem, error_fields};

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_are_problems_with_allow() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get("/v1/nothing-here").send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    assert_problem(app.get("/nothing").send().await.unwrap(), 404, "NOT_FOUND").await;

    let response = app.put("/v1/posts").send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD, POST");
    assert_problem(response, 405, "METHOD_NOT_ALLOWED").await;
    let response = app
        .post(&format!("/v1/posts/{}", uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "DELETE, GET, HEAD, PATCH");
    assert_problem(response, 405, "METHOD_NOT_ALLOWED").await;
    let response = app.delete("/v1/users/me").send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_problem(response, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_wrong_media_types_and_bad_parameters_are_problems() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.post("/v1/posts").bearer_auth(&user.token).body(body);
        if body.is_empty() {
            // reqwest sends no `Content-Length` for an empty body (that is 411).
            request = request.header("content-length", "0");
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    assert_problem(
        post("{\"title\": ", Some("application/json"))
            .await
            .unwrap(),
        400,
        "INVALID_JSON",
    )
    .await;
    assert_problem(
        post("", Some("application/json")).await.unwrap(),
        400,
        "INVALID_JSON",
    )
    .await;
    assert_problem(
        post("{}", Some("text/plain")).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_problem(
        post("{}", None).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_problem(
        post("{}", Some("application/merge-patch+json"))
            .await
            .unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    let ok = post(
        r#"{"title": "Charset", "content": "is allowed here"}"#,
        Some("application/json; charset=utf-8"),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 201);

    let problem = assert_problem(
        app.get("/v1/posts/12345").send().await.unwrap(),
        400,
        "INVALID_PARAMETER",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["id"]);
    let problem = assert_problem(
        app.get("/v1/airports/lax").send().await.unwrap(),
        400,
        "INVALID_PARAMETER",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["code"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_of_exactly_the_limit_is_processed_and_one_byte_more_is_413() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let limit = 1024 * 1024;
    let body = |size: usize| {
        let mut text = r#"{"title": "Big body", "content": "padded with whitespace"}"#.to_string();
        text.push_str(&" ".repeat(size - text.len()));
        text
    };
    let exact = app
        .post("/v1/posts")
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(body(limit))
        .send()
        .await
        .unwrap();
    assert_eq!(exact.status(), 201, "1,048,576 bytes are processed");
    let over = app
        .post("/v1/posts")
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(body(limit + 1))
        .send()
        .await
        .unwrap();
    assert_problem(over, 413, "PAYLOAD_TOO_LARGE").await;

    // Without Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..=16).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let streamed = app
        .post("/v1/posts")
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(streamed, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_target_over_8_kib_is_414() {
    let app = TestApp::spawn().await;
    let target = |size: usize| {
        let mut target = "/v1/posts?pad=".to_string();
        target.push_str(&"a".repeat(size - target.len()));
        target
    };
    let ok = app.get(&target(8192)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_problem(
        app.get(&target(8193)).send().await.unwrap(),
        414,
        "URI_TOO_LONG",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_accept_header_without_json_is_406() {
    let app = TestApp::spawn().await;
    for accept in ["text/html", "application/xml", "application/json;q=0"] {
        let response = app
            .get("/v1/posts")
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_problem(response, 406, "NOT_ACCEPTABLE").await;
    }
    for accept in [
        "application/json",
        "*/*",
        "application/problem+json",
        "text/html, application/*;q=0.1",
    ] {
        let response = app
            .get("/v1/posts")
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
    }
    // The docs are HTML and do not care.
    let response = app
        .get("/docs")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id_and_security_headers() {
    let app = TestApp::spawn().await;
    let response = app
        .get("/v1/posts")
        .header("x-request-id", "trace-123.abc_DEF")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123.abc_DEF");
    for bad in ["has spaces", "semi;colon", &"x".repeat(129)] {
        let response = app
            .get("/v1/posts")
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{bad:?} replaced by {id}"
        );
    }
    let response = app
        .get("/v1/nothing")
        .header("x-request-id", "mine")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "mine");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], "mine");
    for path in [
        "/v1/posts",
        "/health",
        "/docs",
        "/openapi.json",
        "/metrics",
        "/nothing",
    ] {
        let response = app.get(path).send().await.unwrap();
        let headers = response.headers();
        assert!(headers.contains_key("x-request-id"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
        assert!(
            !headers.contains_key("strict-transport-security"),
            "no HSTS in development"
        );
    }
    let response = app
        .post("/v1/auth/login")
        .json(&json!({"email": "x@example.com", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread")]
async fn large_bodies_are_gzip_compressed_for_clients_that_accept_it() {
    let app = TestApp::spawn().await;
    let response = app
        .get("/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut text,
    )
    .unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/v1/openapi.json"
    ))
    .unwrap();
    assert!(
        text == committed,
        "the decompressed body is the committed spec"
    );
    assert!(compressed.len() < committed.len() / 3);
    // Small bodies and clients without gzip get plain bytes.
    let response = app
        .get("/health/live")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("content-encoding"));
    let response = app.get("/openapi.json").send().await.unwrap();
    assert!(!response.headers().contains_key("content-encoding"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_allows_configured_origins_with_credentials() {
    let app =
        TestApp::with(Options::default().env("CORS_ORIGINS", "https://app.example.com")).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/posts"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("idempotency-key"),
        "{allowed}"
    );

    let simple = app
        .get("/v1/posts")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = simple.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("etag") && exposed.contains("x-request-id"));

    let foreign = app
        .get("/v1/posts")
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docs_and_the_spec_are_served() {
    let app = TestApp::spawn().await;
    let committed = |name: &str| {
        std::fs::read(format!("{}/openapi/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    // `/openapi.*` stays the released v1 document; each version's is under its prefix.
    for (path, file) in [
        ("/openapi.json", "v1/openapi.json"),
        ("/openapi.yaml", "v1/openapi.yaml"),
        ("/v1/openapi.json", "v1/openapi.json"),
        ("/v1/openapi.yaml", "v1/openapi.yaml"),
        ("/v2/openapi.json", "v2/openapi.json"),
        ("/v2/openapi.yaml", "v2/openapi.yaml"),
    ] {
        let response = app.get(path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let kind = if path.ends_with("json") {
            "application/json"
        } else {
            "application/yaml"
        };
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            committed(file),
            "{path} is byte-identical to openapi/{file}"
        );
    }
    // Swagger UI loads each version's document by URL (with a version switch, v2 first); the
    // reading UIs embed the finished document of the version asked for.
    let docs = app.get("/docs").send().await.unwrap().text().await.unwrap();
    let (v2, v1) = (
        docs.find("/v2/openapi.json").expect("/docs offers v2"),
        docs.find("/v1/openapi.json").expect("/docs offers v1"),
    );
    assert!(v2 < v1, "v2 first");
    assert!(docs.contains("SwaggerUIBundle") && docs.contains("persistAuthorization"));
    for (path, marker) in [
        ("/redoc", "Redoc"),
        ("/scalar", "scalar"),
        ("/redoc?version=v1", "Redoc"),
        ("/scalar?version=v1", "scalar"),
    ] {
        let response = app.get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(marker), "{path}");
        assert!(
            html.contains("\"BearerAuth\""),
            "{path} embeds the finished spec"
        );
    }
}
