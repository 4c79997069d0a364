//! Conditional requests under concurrency: many writers with one `If-Match`, exactly one wins.

use herald::security::rbac::Role;
use serde_json::{Value, json};

use crate::support::{Options, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_patches_with_one_etag_yield_one_200_and_99_412() {
    let app = TestApp::with(Options::default().env("RATE_LIMIT_WRITES", "1000/1m")).await;
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Contended title", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let etag = post["etag"].as_str().unwrap().to_string();

    let requests = (0..100).map(|i| {
        let request = app
            .patch(&path)
            .bearer_auth(&author.token)
            .header("if-match", &etag)
            .body(json!({"title": format!("Written by writer {i}")}).to_string());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (i, status, body)
        }
    });
    let results = futures::future::join_all(requests).await;
    let winners: Vec<_> = results.iter().filter(|(_, s, _)| *s == 200).collect();
    let losers = results
        .iter()
        .filter(|(_, s, b)| *s == 412 && b["code"] == "PRECONDITION_FAILED")
        .count();
    assert_eq!(winners.len(), 1, "exactly one 200");
    assert_eq!(losers, 99, "and 99 412s");
    let (winner, _, body) = winners[0];
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["title"], format!("Written by writer {winner}"));
    assert_eq!(
        stored, *body,
        "the stored post is exactly the winner's change"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_patches_without_if_match_all_apply() {
    let app = TestApp::with(Options::default().env("RATE_LIMIT_WRITES", "1000/1m")).await;
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Last writer wins", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let requests = (0..20).map(|i| {
        let request = app
            .patch(&path)
            .bearer_auth(&author.token)
            .body(json!({"content": format!("Content from writer {i:02}")}).to_string());
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    let version: i64 = stored["etag"]
        .as_str()
        .unwrap()
        .trim_matches('"')
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(version, 21, "every write applied once, none lost");
}
