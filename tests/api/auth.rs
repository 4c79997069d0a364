//! `/v1/auth/*`: every row of the Auth table, forged tokens, refresh rotation and reuse.

use std::time::{Duration, Instant};

use herald::{config::DEV_JWT_SECRET, security::rbac::Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Options, PASSWORD, TestApp, assert_problem, error_fields};

async fn register(app: &TestApp, email: &str, username: &str, password: &str) -> reqwest::Response {
    app.post("/v1/auth/register")
        .json(&json!({"email": email, "username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post("/v1/auth/login")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn refresh_with_body(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/v1/auth/refresh")
        .json(&json!({"refreshToken": token}))
        .send()
        .await
        .unwrap()
}

async fn tokens(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn register_creates_a_user_with_location_and_etag() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/v1/auth/register")
        .json(&json!({
            "email": "Alice@Example.com", "username": "alice", "password": "12345678",
            "firstName": "Alice", "lastName": "Liddell"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let user: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/users/{}", user["id"].as_str().unwrap())
    );
    assert_eq!(user["etag"], etag);
    assert_eq!(user["email"], "Alice@Example.com");
    assert_eq!(user["username"], "alice");
    assert_eq!(user["firstName"], "Alice");
    assert_eq!(user["role"], "USER");
    assert_eq!(user["isActive"], true);
    for secret in ["password", "passwordHash", "password_hash"] {
        assert!(user.get(secret).is_none());
    }
    assert!(!user.to_string().contains("12345678"));
}

#[tokio::test(flavor = "multi_thread")]
async fn register_validates_email_username_and_password_bounds() {
    let app = TestApp::spawn().await;
    let cases = [
        ("not-an-email", "valid_name", "12345678", "email"),
        ("a@b", "valid_name", "12345678", "email"),
        ("ok@example.com", "ab", "12345678", "username"),
        ("ok@example.com", "Alice", "12345678", "username"),
        ("ok@example.com", "has-dash", "12345678", "username"),
        ("ok@example.com", &"a".repeat(33), "12345678", "username"),
        ("ok@example.com", "valid_name", "1234567", "password"),
        ("ok@example.com", "valid_name", &"p".repeat(129), "password"),
    ];
    for (email, username, password, field) in cases {
        let problem = assert_problem(
            register(&app, email, username, password).await,
            400,
            "VALIDATION_FAILED",
        )
        .await;
        assert_eq!(
            error_fields(&problem),
            vec![field.to_string()],
            "{email} {username}"
        );
    }
    // The bounds themselves are valid.
    assert_eq!(
        register(&app, "a@example.com", "abc", "12345678")
            .await
            .status(),
        201
    );
    assert_eq!(
        register(&app, "b@example.com", &"b".repeat(32), &"p".repeat(128))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn email_and_username_are_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    assert_eq!(
        register(&app, "bob@example.com", "bob", "12345678")
            .await
            .status(),
        201
    );
    assert_problem(
        register(&app, "BOB@EXAMPLE.COM", "bobby", "12345678").await,
        409,
        "EMAIL_TAKEN",
    )
    .await;
    assert_problem(
        register(&app, "other@example.com", "bob", "12345678").await,
        409,
        "USERNAME_TAKEN",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn register_rejects_unknown_and_server_managed_fields() {
    let app = TestApp::spawn().await;
    let base = json!({"email": "c@example.com", "username": "carol", "password": "12345678"});
    let mut unknown = base.clone();
    unknown["nickname"] = json!("c");
    let problem = assert_problem(
        app.post("/v1/auth/register")
            .json(&unknown)
            .send()
            .await
            .unwrap(),
        400,
        "UNKNOWN_FIELD",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["nickname"]);
    for field in ["role", "id", "isActive", "createdAt"] {
        let mut read_only = base.clone();
        read_only[field] = json!("ADMIN");
        let problem = assert_problem(
            app.post("/v1/auth/register")
                .json(&read_only)
                .send()
                .await
                .unwrap(),
            400,
            "READ_ONLY_FIELD",
        )
        .await;
        assert_eq!(error_fields(&problem), vec![field]);
    }
    // Nothing was created by the refused requests.
    assert_eq!(
        app.post("/v1/auth/register")
            .json(&base)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_returns_tokens_and_a_strict_refresh_cookie() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Moderator).await;
    let response = login(&app, &user.email.to_uppercase(), PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 900);
    assert_eq!(body["user"]["id"], user.id.to_string());
    assert_eq!(body["user"]["email"], user.email);
    assert_eq!(body["user"]["username"], user.username);
    assert_eq!(body["user"]["role"], "MODERATOR");
    let refresh = body["refreshToken"].as_str().unwrap();
    assert!(refresh.len() >= 43, "at least 256 bits");
    assert!(cookie.starts_with(&format!("refreshToken={refresh};")));
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/v1/auth",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "not Secure in development");
    // The access token works.
    let me = app
        .get("/v1/users/me")
        .bearer_auth(body["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_refresh_cookie_is_secure_in_production() {
    let secret = "p".repeat(48);
    let app = TestApp::with(
        Options::default()
            .env("APP_ENV", "production")
            .env("JWT_SECRET", &secret),
    )
    .await;
    let user = app.user(Role::User).await;
    let response = login(&app, &user.email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(response.headers().contains_key("strict-transport-security"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_email_get_the_same_answer_after_the_same_work() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let mut bodies = Vec::new();
    for email in [user.email.clone(), "nobody@example.com".to_string()] {
        let before = app.state.passwords.verifications();
        let response = login(&app, &email, "wrong-password").await;
        let mut body = assert_problem(response, 401, "INVALID_CREDENTIALS").await;
        // An unknown email is verified against a dummy hash: one argon2 run either way, so the
        // answer takes as long as for a wrong password.
        assert_eq!(app.state.passwords.verifications(), before + 1, "{email}");
        body["requestId"] = Value::Null;
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1], "indistinguishable answers");
    // And timing, loosely (the precise comparison is scripts/bench's job).
    let mut times = Vec::new();
    for email in [user.email.clone(), "nobody@example.com".to_string()] {
        let started = Instant::now();
        login(&app, &email, "wrong-password").await;
        times.push(started.elapsed().as_secs_f64());
    }
    assert!(
        times[1] > times[0] / 10.0,
        "unknown email answered suspiciously fast: {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_account_is_refused_only_with_the_right_password() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let user = app.user(Role::User).await;
    let response = app
        .patch(&format!("/v1/users/{}", user.id))
        .bearer_auth(&admin.token)
        .body(r#"{"isActive": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_problem(
        login(&app, &user.email, PASSWORD).await,
        403,
        "ACCOUNT_DISABLED",
    )
    .await;
    assert_problem(
        login(&app, &user.email, "wrong-password").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_a_reused_token_revokes_every_session() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let first = tokens(login(&app, &user.email, PASSWORD).await).await;
    let other_session = tokens(login(&app, &user.email, PASSWORD).await).await;
    let r1 = first["refreshToken"].as_str().unwrap().to_string();

    let second = tokens(refresh_with_body(&app, &r1).await).await;
    let r2 = second["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_ne!(first["accessToken"], second["accessToken"]);
    assert_eq!(second["user"]["id"], user.id.to_string());

    // r1 was rotated away: presenting it again is reuse.
    assert_problem(
        refresh_with_body(&app, &r1).await,
        401,
        "REFRESH_TOKEN_REUSED",
    )
    .await;
    // Its successor and the user's other sessions are revoked.
    assert_problem(
        refresh_with_body(&app, &r2).await,
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    let other = other_session["refreshToken"].as_str().unwrap();
    assert_problem(
        refresh_with_body(&app, other).await,
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    // A new login still works.
    assert_eq!(login(&app, &user.email, PASSWORD).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_works_from_the_cookie_alone_as_a_browser_sends_it() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let session = tokens(login(&app, &user.email, PASSWORD).await).await;
    let token = session["refreshToken"].as_str().unwrap();
    let response = app
        .post("/v1/auth/refresh")
        // As a browser sends a bodiless POST: `Content-Length: 0`, no `Content-Type`.
        .header("content-length", "0")
        .header("cookie", format!("theme=dark; refreshToken={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    let rotated = body["refreshToken"].as_str().unwrap();
    assert_ne!(rotated, token);
    assert!(cookie.starts_with(&format!("refreshToken={rotated};")));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_missing_and_expired_refresh_tokens_are_invalid() {
    let app = TestApp::with(Options::default().env("JWT_REFRESH_EXPIRATION", "1s")).await;
    assert_problem(
        refresh_with_body(&app, "not-a-token").await,
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    assert_problem(
        app.post("/v1/auth/refresh")
            .header("content-length", "0")
            .send()
            .await
            .unwrap(),
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    let user = app.user(Role::User).await;
    let session = tokens(login(&app, &user.email, PASSWORD).await).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_problem(
        refresh_with_body(&app, session["refreshToken"].as_str().unwrap()).await,
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let session = tokens(login(&app, &user.email, PASSWORD).await).await;
    let token = session["refreshToken"].as_str().unwrap();
    let response = app
        .post("/v1/auth/logout")
        .header("content-length", "0")
        .bearer_auth(session["accessToken"].as_str().unwrap())
        .header("cookie", format!("refreshToken={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("refreshToken=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    assert!(response.bytes().await.unwrap().is_empty());
    assert_problem(
        refresh_with_body(&app, token).await,
        401,
        "INVALID_REFRESH_TOKEN",
    )
    .await;

    let response = app
        .post("/v1/auth/logout")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    let www = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.starts_with("Bearer"));
    assert_problem(response, 401, "UNAUTHENTICATED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_and_foreign_tokens_are_rejected() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Admin).await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |exp: u64, iss: &str, aud: &str| {
        json!({
            "sub": user.id, "email": user.email, "username": user.username, "role": "ADMIN",
            "iat": now, "exp": exp, "iss": iss, "aud": aud, "jti": uuid::Uuid::now_v7()
        })
    };
    let sign = |claims: &Value, secret: &str, alg: Algorithm| {
        encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let valid = sign(
        &claims(now + 600, "herald", "herald-api"),
        DEV_JWT_SECRET,
        Algorithm::HS256,
    );
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(now + 600, "herald", "herald-api"))
    );
    let forged = [
        ("alg none", alg_none),
        (
            "wrong key",
            sign(
                &claims(now + 600, "herald", "herald-api"),
                "some-other-secret-of-enough-length",
                Algorithm::HS256,
            ),
        ),
        (
            "expired",
            sign(
                &claims(now - 3600, "herald", "herald-api"),
                DEV_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong audience",
            sign(
                &claims(now + 600, "herald", "another-api"),
                DEV_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &claims(now + 600, "mallory", "herald-api"),
                DEV_JWT_SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "HS512",
            sign(
                &claims(now + 600, "herald", "herald-api"),
                DEV_JWT_SECRET,
                Algorithm::HS512,
            ),
        ),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, token) in forged {
        let response = app
            .get("/v1/users/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{what}"
        );
        assert_problem(response, 401, "UNAUTHENTICATED").await;
    }
    let response = app
        .get("/v1/users/me")
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the same claims, correctly signed, pass"
    );
    // A token sent to an endpoint with optional auth is still checked.
    let response = app
        .get("/v1/posts")
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "UNAUTHENTICATED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_upgrades_a_hash_made_with_older_parameters() {
    use argon2::PasswordHasher as _;
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    // argon2's defaults (19 MiB, 2 passes): how accounts were hashed before.
    let legacy = argon2::Argon2::default()
        .hash_password(b"legacy-password")
        .unwrap()
        .to_string();
    let stored = |app: &TestApp, id: uuid::Uuid| {
        let db = app.state.db.clone();
        async move {
            let mut conn = db.conn().await.unwrap();
            herald::users::repo::find(&mut conn, id)
                .await
                .unwrap()
                .unwrap()
                .password_hash
        }
    };
    {
        let mut conn = app.state.db.conn().await.unwrap();
        herald::users::repo::set_password_hash(&mut conn, user.id, &legacy)
            .await
            .unwrap();
    }
    assert_eq!(
        login(&app, &user.email, "legacy-password").await.status(),
        200
    );
    let started = Instant::now();
    while stored(&app, user.id).await == legacy {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the hash was not upgraded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stored(&app, user.id)
            .await
            .starts_with("$argon2id$v=19$m=7168,t=5,p=1$")
    );
    assert_eq!(
        login(&app, &user.email, "legacy-password").await.status(),
        200,
        "the new hash verifies"
    );
}

/// A token signed like the app's (development secret), with the given expiry.
fn token_expiring_at(user: &crate::support::TestUser, exp: u64) -> String {
    let claims = herald::security::jwt::Claims {
        sub: user.id,
        email: user.email.clone(),
        username: user.username.clone(),
        role: Role::User,
        iat: exp.saturating_sub(900),
        exp,
        iss: "herald".into(),
        aud: "herald-api".into(),
        jti: uuid::Uuid::now_v7(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(herald::config::DEV_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The verified-token cache skips the signature check for a token seen in the last minute; it
/// must still refuse the token once it expires, while it is remembered.
#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_access_token_is_refused_once_it_expires() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    // Expired 3 s ago: still inside the 5 s leeway, so accepted (and remembered) now.
    let now = jsonwebtoken::get_current_timestamp();
    let token = token_expiring_at(&user, now - 3);
    let me = || app.get("/v1/users/me").bearer_auth(&token).send();
    assert_eq!(me().await.unwrap().status(), 200);
    assert_eq!(
        app.state.jwt.remembered(),
        1,
        "remembered after the first use"
    );
    // Wait for the leeway to run out (the clock, not a guess: poll until it has).
    while jsonwebtoken::get_current_timestamp() <= now - 3 + 5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_problem(me().await.unwrap(), 401, "UNAUTHENTICATED").await;
}

/// However many distinct tokens arrive, the cache holds at most its bound.
#[tokio::test(flavor = "multi_thread")]
async fn the_verified_token_cache_is_bounded() {
    let app = TestApp::with(Options::default().env("RATE_LIMIT_ENABLED", "false")).await;
    let user = app.user(Role::User).await;
    let bound = herald::security::jwt::MAX_REMEMBERED_TOKENS;
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    let tokens: Vec<String> = (0..bound + 500)
        .map(|_| token_expiring_at(&user, exp))
        .collect();
    let requests = futures::StreamExt::buffer_unordered(
        futures::stream::iter(tokens.iter().map(|token| {
            let request = app.get("/v1/users/me").bearer_auth(token).send();
            async move { request.await.unwrap().status().as_u16() }
        })),
        32,
    );
    let statuses: Vec<u16> = futures::StreamExt::collect(requests).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cached: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("herald_verified_tokens_cached "))
        .and_then(|v| v.trim().parse().ok())
        .expect("herald_verified_tokens_cached in /metrics");
    println!(
        "{} distinct tokens, {cached} remembered (bound {bound})",
        bound + 500
    );
    assert!(cached <= bound as f64 && cached >= 1.0, "{cached}");
}
