//! The SDK against a live Herald: `HERALD_URL` (and optionally `ADMIN_TOKEN`, else the seeded
//! admin@example.com / admin123). `scripts/contract` starts one and runs these with
//! `cargo test -p herald-client -- --include-ignored`.

use herald_client::{
    Client, Conditional, ProblemCode, StatusResults, Tokens, etag,
    patch::{AirportPatchRequest, Field},
    problem,
    types::{self, Problem},
};

fn base_url() -> String {
    std::env::var("HERALD_URL")
        .expect("HERALD_URL: these tests need a live Herald (scripts/contract starts one)")
}

async fn admin_client() -> Client {
    let client = Client::connect(&base_url()).expect("a client");
    let token = match std::env::var("ADMIN_TOKEN") {
        Ok(token) => token,
        Err(_) => {
            client
                .login_user()
                .body_map(|b| b.email("admin@example.com").password("admin123"))
                .send()
                .await
                .expect("admin login")
                .into_inner()
                .access_token
        }
    };
    client.set_token(Some(token));
    client
}

fn expect_problem<T: std::fmt::Debug>(
    result: Result<T, herald_client::Error<Problem>>,
    status: u16,
    code: &str,
) -> Problem {
    let error = result.expect_err("an error response");
    let problem = problem(&error)
        .unwrap_or_else(|| panic!("not a problem response: {error:?}"))
        .clone();
    assert_eq!(
        (problem.status, problem.code.as_str()),
        (status, code),
        "{problem:?}"
    );
    assert!(!problem.request_id.is_empty());
    problem
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn register_login_refresh_and_post_lifecycle_with_etags() {
    let client = Client::connect(&base_url()).expect("a client");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let username = format!("rs_{}", &suffix[..12]);
    let email = format!("{username}@example.com");

    let user = client
        .register_user()
        .body_map(|b| {
            b.email(email.clone())
                .username(username.clone())
                .password("rust-sdk-password")
        })
        .send()
        .await
        .expect("register")
        .into_inner();
    assert_eq!(user.username, username);
    assert_eq!(user.role, types::Role::User);
    let taken = client
        .register_user()
        .body_map(|b| {
            b.email(email.clone())
                .username(format!("{username}x"))
                .password("rust-sdk-password")
        })
        .send()
        .await;
    expect_problem(taken, 409, "EMAIL_TAKEN");

    let session = client
        .login_user()
        .body_map(|b| b.email(email.clone()).password("rust-sdk-password"))
        .send()
        .await
        .expect("login")
        .into_inner();
    assert_eq!(session.token_type, "Bearer");
    let kept: Option<Tokens> = client.session().tokens();
    assert_eq!(
        kept.and_then(|t| t.refresh_token),
        Some(session.refresh_token.clone()),
        "the client keeps the tokens of a login"
    );
    let refreshed = client
        .refresh_session()
        .body_map(|b| b.refresh_token(session.refresh_token.clone()))
        .send()
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(refreshed.refresh_token, session.refresh_token);
    let reused = client
        .refresh_session()
        .body_map(|b| b.refresh_token(session.refresh_token.clone()))
        .send()
        .await;
    expect_problem(reused, 401, "REFRESH_TOKEN_REUSED");
    let session = client
        .login_user()
        .body_map(|b| b.email(email.clone()).password("rust-sdk-password"))
        .send()
        .await
        .expect("login again")
        .into_inner();
    client.set_token(Some(session.access_token));
    assert_eq!(
        client
            .get_current_user()
            .send()
            .await
            .expect("me")
            .into_inner()
            .id,
        user.id
    );

    let created = client
        .create_post()
        .idempotency_key(format!("rs-{suffix}"))
        .body_map(|b| {
            b.title("From the Rust SDK")
                .content("Created by a generated client.")
                .published(true)
        })
        .send()
        .await
        .expect("create post");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let post = created.into_inner();
    assert_eq!(post.author.username, username);

    let fetched = client
        .get_post()
        .id(post.id)
        .send()
        .await
        .expect("get post");
    let current = etag(&fetched).expect("ETag header");
    assert_eq!(current, fetched.etag);
    let cached = client
        .get_post()
        .id(post.id)
        .if_none_match(current.clone())
        .send()
        .await
        .conditional()
        .expect("conditional GET");
    assert!(
        matches!(cached, Conditional::NotModified),
        "304 for a current copy"
    );
    let changed = client
        .get_post()
        .id(post.id)
        .if_none_match("\"0-0\"")
        .send()
        .await
        .conditional()
        .expect("conditional GET")
        .modified()
        .expect("200 for a stale copy");
    assert_eq!(changed.id, post.id);

    let updated = client
        .update_post()
        .id(post.id)
        .if_match(current.clone())
        .body_map(|b| b.title(Some("Edited through the SDK".parse().expect("title"))))
        .send()
        .await
        .expect("patch with If-Match")
        .into_inner();
    assert_eq!(updated.title, "Edited through the SDK");
    let stale = client
        .update_post()
        .id(post.id)
        .if_match(current)
        .body_map(|b| b.title(Some("Lost update".parse().expect("title"))))
        .send()
        .await;
    let refused = expect_problem(stale, 412, "PRECONDITION_FAILED");
    assert_eq!(
        refused.code,
        ProblemCode::PreconditionFailed,
        "a typed code"
    );

    let deleted = client
        .delete_post()
        .id(post.id)
        .send()
        .await
        .optional()
        .expect("delete");
    assert_eq!(deleted.expect("the deleted post").id, post.id);
    let again = client
        .delete_post()
        .id(post.id)
        .send()
        .await
        .optional()
        .expect("delete again");
    assert!(again.is_none(), "204 the second time");
    expect_problem(
        client.get_post().id(post.id).send().await,
        404,
        "POST_NOT_FOUND",
    );
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn airports_upsert_and_explicit_null() {
    let client = admin_client().await;
    // A code unlikely to collide between runs: Z + two letters from a random id.
    let letters: String = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(2)
        .map(|b| (b'A' + b % 26) as char)
        .collect();
    let code = format!("Z{letters}");
    let _ = client
        .delete_airport()
        .code(code.clone())
        .send()
        .await
        .optional();

    let created = client
        .put_airport()
        .code(code.clone())
        .body_map(|b| {
            b.runways(std::num::NonZeroU32::new(2).expect("2"))
                .takeoffs_per_hour(Some(40))
        })
        .send()
        .await
        .expect("put creates");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let replaced = client
        .put_airport()
        .code(code.clone())
        .body_map(|b| b.runways(std::num::NonZeroU32::new(3).expect("3")))
        .send()
        .await
        .expect("put replaces");
    assert_eq!(replaced.status(), reqwest::StatusCode::OK);
    assert_eq!(
        replaced.takeoffs_per_hour, None,
        "omitted optional field became null"
    );

    let patched = client
        .patch_airport()
        .code(code.clone())
        .body(AirportPatchRequest {
            takeoffs_per_hour: Field::Set(55),
            ..Default::default()
        })
        .send()
        .await
        .expect("patch")
        .into_inner();
    assert_eq!(patched.takeoffs_per_hour, Some(55));
    let cleared = client
        .patch_airport()
        .code(code.clone())
        .body(AirportPatchRequest {
            takeoffs_per_hour: Field::Clear,
            ..Default::default()
        })
        .send()
        .await
        .expect("patch with null")
        .into_inner();
    assert_eq!(cleared.takeoffs_per_hour, None);

    let missing = client
        .patch_airport()
        .code(format!("Y{letters}"))
        .body(AirportPatchRequest::default())
        .send()
        .await;
    let problem = expect_problem(missing, 400, "MISSING_FIELD");
    assert_eq!(problem.errors[0].field, "runways");
    let gone = client
        .delete_airport()
        .code(code)
        .send()
        .await
        .optional()
        .expect("delete");
    assert!(gone.is_some());
}
