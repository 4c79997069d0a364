//! The SDK against a live Herald (`HERALD_URL`) through a fault-injecting proxy started here
//! (`support/mod.rs`): dropped connections before and after Herald saw the request, 503s with
//! `Retry-After`, delays, and HTTPS with a self-signed certificate. What the proxy and Herald saw
//! is counted, not assumed. `scripts/contract` runs these with `--include-ignored`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod support;

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{TryStreamExt, future::join_all};
use herald_client::{Client, Paginated, RetryPolicy, Tokens, types::StatusFilter};
use support::{Fault, FaultProxy, herald_url, self_signed_tls};
use uuid::Uuid;

fn fast() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

/// Registers and logs in a fresh user straight to Herald: its id, tokens and a direct client.
async fn fresh_user(tag: &str) -> (Uuid, Tokens, Client) {
    let direct = Client::connect(&herald_url()).unwrap();
    let name = format!("rs_{tag}_{}", &Uuid::new_v4().simple().to_string()[..10]);
    let email = format!("{name}@example.com");
    let user = direct
        .register_user()
        .body_map(|b| {
            b.email(email.clone())
                .username(name.clone())
                .password("rust-sdk-password")
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    direct
        .login_user()
        .body_map(|b| b.email(email).password("rust-sdk-password"))
        .send()
        .await
        .unwrap();
    let tokens = direct.session().tokens().unwrap();
    (user.id, tokens, direct)
}

async fn posts_of(client: &Client, author: Uuid) -> Vec<herald_client::types::Post> {
    client
        .list_posts()
        .author_id(author)
        .status(StatusFilter::All)
        .limit(100u32)
        .stream()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn a_post_whose_answer_was_lost_is_retried_with_its_key_and_creates_exactly_one_post() {
    let (id, tokens, direct) = fresh_user("once").await;
    let proxy = FaultProxy::start(&herald_url(), None).await;
    let client = Client::builder(&proxy.url())
        .tokens(tokens)
        .retry(fast())
        .build()
        .unwrap();
    // Attempt 1 reaches Herald but its answer is dropped; attempt 2 never reaches Herald;
    // attempt 3 is answered 503 by the proxy; attempt 4 gets Herald's stored answer again.
    proxy.inject(
        "POST",
        "/v1/posts",
        &[
            Fault::DropAfter,
            Fault::DropBefore,
            Fault::Unavailable {
                retry_after_secs: 1,
            },
        ],
    );
    let title = format!("Exactly once {}", Uuid::new_v4().simple());
    let started = Instant::now();
    let created = client
        .create_post()
        .body_map(|b| {
            b.title(title.clone())
                .content("Created through a lossy network.")
        })
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    assert_eq!(
        created
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..]),
        "the stored answer"
    );
    let attempts = proxy.seen("POST", "/v1/posts");
    let faults: Vec<_> = attempts.iter().map(|a| a.fault).collect();
    assert_eq!(
        faults,
        [
            Some(Fault::DropAfter),
            Some(Fault::DropBefore),
            Some(Fault::Unavailable {
                retry_after_secs: 1
            }),
            None
        ]
    );
    let keys: HashSet<_> = attempts.iter().map(|a| a.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), 1, "one key for all attempts: {keys:?}");
    assert!(keys.iter().all(Option::is_some));
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After: 1 honoured ({took:?})"
    );
    let mine: Vec<_> = posts_of(&direct, id)
        .await
        .into_iter()
        .filter(|p| p.title == title)
        .collect();
    assert_eq!(mine.len(), 1, "Herald holds exactly one post");
    assert_eq!(mine[0].id, created.id);
    println!(
        "measured: {} attempts, {} post created, {took:?}",
        attempts.len(),
        mine.len()
    );
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn a_post_without_key_support_is_not_sent_again_once_it_may_have_reached_herald() {
    let proxy = FaultProxy::start(&herald_url(), None).await;
    let client = Client::builder(&proxy.url()).retry(fast()).build().unwrap();
    proxy.inject("POST", "/v1/auth/login", &[Fault::DropAfter]);
    let result = client
        .login_user()
        .body_map(|b| b.email("user1@example.com").password("user123"))
        .send()
        .await;
    assert!(result.is_err());
    assert_eq!(proxy.count("POST", "/v1/auth/login"), 1);
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn a_paginated_read_of_250_posts_gets_each_exactly_once_through_faults() {
    let (id, tokens, direct) = fresh_user("pages").await;
    let mut created = HashSet::new();
    for batch in 0..25 {
        let posts = join_all((0..10).map(|i| {
            direct
                .create_post()
                .body_map(move |b| {
                    b.title(format!("Page post {}", batch * 10 + i))
                        .content("Paginated through faults.")
                        .published(true)
                })
                .send()
        }))
        .await;
        created.extend(posts.into_iter().map(|p| p.unwrap().id));
    }
    assert_eq!(created.len(), 250);
    let proxy = FaultProxy::start(&herald_url(), None).await;
    let client = Client::builder(&proxy.url())
        .tokens(tokens)
        .retry(fast())
        .build()
        .unwrap();
    proxy.inject(
        "GET",
        "/v1/posts",
        &[
            Fault::Delay(Duration::from_millis(200)),
            Fault::DropBefore,
            Fault::Unavailable {
                retry_after_secs: 1,
            },
            Fault::DropAfter,
        ],
    );
    let seen: Vec<Uuid> = client
        .list_posts()
        .author_id(id)
        .status(StatusFilter::All)
        .limit(30u32)
        .stream()
        .map_ok(|p| p.id)
        .try_collect()
        .await
        .unwrap();
    let distinct: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 250, "250 items");
    assert_eq!(distinct.len(), 250, "no item twice");
    assert_eq!(distinct, created, "exactly the posts created");
    let requests = proxy.count("GET", "/v1/posts");
    assert_eq!(requests, 9 + 3, "9 pages, 3 of them retried once");
    println!(
        "measured: {} posts, {} distinct, {requests} page requests for 9 pages",
        seen.len(),
        distinct.len()
    );
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn twenty_concurrent_calls_with_a_rejected_access_token_cause_exactly_one_refresh() {
    let (_, tokens, _) = fresh_user("flight").await;
    let proxy = FaultProxy::start(&herald_url(), None).await;
    let changes = Arc::new(AtomicUsize::new(0));
    let counted = changes.clone();
    let client = Client::builder(&proxy.url())
        .tokens(Tokens {
            access_token: "expired-or-revoked".into(),
            ..tokens
        })
        .on_tokens(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .retry(fast())
        .build()
        .unwrap();
    // Hold the refresh a little so that every call piles up on it.
    proxy.inject(
        "POST",
        "/v1/auth/refresh",
        &[Fault::Delay(Duration::from_millis(100))],
    );
    let answers = join_all((0..20).map(|_| client.get_current_user().send())).await;
    assert!(answers.iter().all(Result::is_ok), "every call succeeded");
    assert_eq!(
        proxy.count("GET", "/v1/users/me"),
        40,
        "each: one 401, one retry"
    );
    assert_eq!(
        proxy.count("POST", "/v1/auth/refresh"),
        1,
        "one refresh at the proxy"
    );
    assert_eq!(changes.load(Ordering::SeqCst), 1, "one token change");
    println!(
        "measured (401): {} refresh for 20 calls",
        proxy.count("POST", "/v1/auth/refresh")
    );
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn twenty_concurrent_calls_with_an_expired_access_token_refresh_once_before_sending() {
    let (_, tokens, _) = fresh_user("expiry").await;
    let proxy = FaultProxy::start(&herald_url(), None).await;
    let client = Client::builder(&proxy.url())
        .tokens(Tokens {
            expires_at: Some(Instant::now()),
            ..tokens
        })
        .retry(fast())
        .build()
        .unwrap();
    let answers = join_all((0..20).map(|_| client.get_current_user().send())).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(proxy.count("POST", "/v1/auth/refresh"), 1);
    assert_eq!(
        proxy.count("GET", "/v1/users/me"),
        20,
        "none sent with the expired token"
    );
    println!(
        "measured (expiry): {} refresh for 20 calls",
        proxy.count("POST", "/v1/auth/refresh")
    );
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn a_timeout_fires_within_its_bound_attempts_included() {
    let proxy = FaultProxy::start(&herald_url(), None).await;
    let client = Client::connect(&proxy.url())
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .with_retry(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        });
    let slow = Fault::Delay(Duration::from_secs(3));
    proxy.inject("GET", "/v1/posts", &[slow, slow]);
    let started = Instant::now();
    let error = client.list_posts().send().await.unwrap_err();
    let took = started.elapsed();
    match error {
        herald_client::Error::CommunicationError(e) => assert!(e.is_timeout(), "{e}"),
        other => panic!("not a timeout: {other:?}"),
    }
    // Two 300 ms attempts and a 50–100 ms backoff.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1200),
        "took {took:?}"
    );
    assert_eq!(proxy.count("GET", "/v1/posts"), 2);
    println!("measured: gave up after {took:?} (bound 700 ms + scheduling)");
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn speaks_https_with_rustls_and_verifies_the_certificate() {
    let (acceptor, cert) = self_signed_tls();
    let proxy = FaultProxy::start(&herald_url(), Some(acceptor)).await;
    let trusting = Client::builder(&proxy.url())
        .add_root_certificate_der(cert)
        .build()
        .unwrap();
    let page = trusting.list_posts().limit(1u32).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert_eq!(proxy.count("GET", "/v1/posts"), 1);

    let untrusting = Client::builder(&proxy.url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let refused = untrusting.list_posts().send().await;
    assert!(
        matches!(refused, Err(herald_client::Error::CommunicationError(_))),
        "a self-signed certificate is not trusted by default: {refused:?}"
    );
    assert_eq!(proxy.count("GET", "/v1/posts"), 1, "no request got through");
}
