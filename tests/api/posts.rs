//! `/v1/posts/*`: every row of the Posts table, exact validation bounds, draft visibility,
//! ETags, and a pagination walk under concurrent inserts.

use std::{collections::HashSet, time::Duration};

use herald::security::rbac::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser, assert_problem, error_fields};

async fn create(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.post("/v1/posts")
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn post_body(title: &str, content: &str) -> Value {
    json!({"title": title, "content": content, "published": true})
}

#[tokio::test(flavor = "multi_thread")]
async fn create_answers_201_with_location_etag_and_author() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let response = create(
        &app,
        &user,
        json!({"title": "Hello world", "content": "Enough content here."}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let post: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/posts/{}", post["id"].as_str().unwrap())
    );
    assert_eq!(post["etag"], etag);
    assert_eq!(post["published"], false, "drafts by default");
    assert_eq!(
        post["author"],
        json!({"id": user.id, "username": user.username})
    );
    assert_eq!(post["createdAt"], post["updatedAt"]);
    assert!(post["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = uuid::Uuid::parse_str(post["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    // Nobody else is able to create without a token.
    let response = app
        .post("/v1/posts")
        .json(&post_body("Hello world", "Enough content here."))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "UNAUTHENTICATED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn title_and_content_bounds_are_exact() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let ok_content = "c".repeat(10);
    let ok_title = "t".repeat(5);
    for (title, content, expected) in [
        ("t".repeat(4), ok_content.clone(), Some("title")),
        ("t".repeat(5), ok_content.clone(), None),
        ("t".repeat(200), ok_content.clone(), None),
        ("t".repeat(201), ok_content.clone(), Some("title")),
        (ok_title.clone(), "c".repeat(9), Some("content")),
        (ok_title.clone(), "c".repeat(10), None),
        (ok_title.clone(), "c".repeat(5000), None),
        (ok_title.clone(), "c".repeat(5001), Some("content")),
        // Characters, not bytes.
        ("é".repeat(5), "ü".repeat(10), None),
    ] {
        let response = create(&app, &user, post_body(&title, &content)).await;
        match expected {
            None => assert_eq!(
                response.status(),
                201,
                "{} / {}",
                title.len(),
                content.len()
            ),
            Some(field) => {
                let problem = assert_problem(response, 400, "VALIDATION_FAILED").await;
                assert_eq!(error_fields(&problem), vec![field]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_get_precise_problems_and_create_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let cases = [
        (
            json!({"title": "Hello", "content": "0123456789", "views": 3}),
            "UNKNOWN_FIELD",
            "views",
        ),
        (
            json!({"title": "Hello", "content": "0123456789", "id": "x"}),
            "READ_ONLY_FIELD",
            "id",
        ),
        (
            json!({"title": "Hello", "content": "0123456789", "author": {}}),
            "READ_ONLY_FIELD",
            "author",
        ),
        (
            json!({"title": "Hello", "content": "0123456789", "etag": "\"1\""}),
            "READ_ONLY_FIELD",
            "etag",
        ),
        (
            json!({"title": "Hello", "content": "0123456789", "createdAt": "2020-01-01T00:00:00Z"}),
            "READ_ONLY_FIELD",
            "createdAt",
        ),
        (json!({"content": "0123456789"}), "MISSING_FIELD", "title"),
        (
            json!({"title": 12345, "content": "0123456789"}),
            "VALIDATION_FAILED",
            "title",
        ),
        (
            json!({"title": false, "content": "0123456789"}),
            "VALIDATION_FAILED",
            "title",
        ),
        (
            json!({"title": "Hello", "content": "0123456789", "published": "yes"}),
            "VALIDATION_FAILED",
            "published",
        ),
        (
            json!({"title": "Hello", "content": "0123456789", "published": null}),
            "VALIDATION_FAILED",
            "published",
        ),
        (
            json!({"title": "Hel\u{0}lo", "content": "0123456789"}),
            "VALIDATION_FAILED",
            "title",
        ),
    ];
    for (body, code, field) in cases {
        let problem = assert_problem(create(&app, &user, body.clone()).await, 400, code).await;
        assert_eq!(error_fields(&problem), vec![field], "{body}");
    }
    let response = app
        .post("/v1/posts")
        .bearer_auth(&user.token)
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "VALIDATION_FAILED").await;
    let page: Value = app
        .get("/v1/posts?status=all")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_carries_an_etag_and_answers_304_when_it_matches() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Cached title", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let response = app.get(&path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, post["etag"].as_str().unwrap());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, post);

    let response = app
        .get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    assert!(response.bytes().await.unwrap().is_empty());
    let response = app
        .get(&path)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let missing = format!("/v1/posts/{}", uuid::Uuid::now_v7());
    assert_problem(
        app.get(&missing).send().await.unwrap(),
        404,
        "POST_NOT_FOUND",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_exists_only_for_its_author_moderators_and_admins() {
    let app = TestApp::spawn().await;
    let author = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let moderator = app.user(Role::Moderator).await;
    let admin = app.user(Role::Admin).await;
    let draft = app.create_post(&author, "Secret draft", false).await;
    let path = format!("/v1/posts/{}", draft["id"].as_str().unwrap());

    assert_problem(app.get(&path).send().await.unwrap(), 404, "POST_NOT_FOUND").await;
    assert_problem(
        app.get(&path)
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap(),
        404,
        "POST_NOT_FOUND",
    )
    .await;
    for viewer in [&author, &moderator, &admin] {
        let response = app
            .get(&path)
            .bearer_auth(&viewer.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["x-cache"],
            "BYPASS",
            "drafts are never cached"
        );
    }
    // Other users cannot change it or even learn it exists.
    let response = app
        .patch(&path)
        .bearer_auth(&other.token)
        .body(r#"{"title": "Hijacked"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "POST_NOT_FOUND").await;
    let response = app
        .delete(&path)
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&path)
            .bearer_auth(&author.token)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still there"
    );

    // Lists: drafts only for those who may see them.
    let titles = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_string())
            .collect()
    };
    app.create_post(&other, "Public post", true).await;
    let list = |token: Option<&str>, query: &str| {
        let mut request = app.get(&format!("/v1/posts{query}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(titles(list(None, "").await), vec!["Public post"]);
    assert_eq!(
        titles(list(None, "?status=draft").await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(list(Some(&other.token), "?status=draft").await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(list(Some(&author.token), "?status=draft").await),
        vec!["Secret draft"]
    );
    assert_eq!(
        titles(list(Some(&author.token), "?status=all").await),
        vec!["Public post", "Secret draft"]
    );
    assert_eq!(
        titles(list(Some(&moderator.token), "?status=draft").await),
        vec!["Secret draft"]
    );
    assert_eq!(
        titles(list(Some(&admin.token), "?status=all").await),
        vec!["Public post", "Secret draft"]
    );
    assert_eq!(
        titles(list(Some(&other.token), "?status=all").await),
        vec!["Public post"]
    );
    let by_author = format!("?status=all&authorId={}", author.id);
    assert_eq!(
        titles(list(Some(&moderator.token), &by_author).await),
        vec!["Secret draft"]
    );
    assert_eq!(
        titles(list(None, &format!("?authorId={}", author.id)).await),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_parameters_are_validated() {
    let app = TestApp::spawn().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "status=secret",
        "authorId=nope",
    ] {
        let problem = assert_problem(
            app.get(&format!("/v1/posts?{query}")).send().await.unwrap(),
            400,
            "INVALID_PARAMETER",
        )
        .await;
        let field = query.split('=').next().unwrap();
        assert_eq!(error_fields(&problem), vec![field], "{query}");
    }
    for query in ["limit=1", "limit=100", "status=published", "status=all"] {
        assert_eq!(
            app.get(&format!("/v1/posts?{query}"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{query}"
        );
    }
    for cursor in [
        "%%%",
        "bm90LWEtY3Vyc29y",
        "cG9zdDpub3QtYS11dWlk",
        "dXNlcjowMTkzMDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDE",
    ] {
        let response = app
            .get(&format!("/v1/posts?cursor={cursor}"))
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, "INVALID_CURSOR").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_1_walk_sees_every_post_once_while_others_are_inserted() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let mut existing = Vec::new();
    for i in 0..12 {
        let post = app
            .create_post(&user, &format!("Existing post {i}"), true)
            .await;
        existing.push(post["id"].as_str().unwrap().to_string());
    }
    let writer = app.user(Role::User).await;
    let inserting = {
        let client = app.client.clone();
        let url = app.url("/v1/posts");
        let token = writer.token.clone();
        tokio::spawn(async move {
            let mut inserted = 0;
            for i in 0..25 {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("Concurrent post {i}"), "content": "Inserted during the walk.", "published": true}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                inserted += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            inserted
        })
    };
    let mut seen = Vec::new();
    let mut next = Some("/v1/posts?limit=1".to_string());
    while let Some(link) = next {
        let page: Value = app.get(&link).send().await.unwrap().json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 1);
        seen.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        next = page["nextLink"].as_str().map(String::from);
    }
    assert_eq!(inserting.await.unwrap(), 25);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no post twice");
    for id in &existing {
        assert!(
            unique.contains(id),
            "post {id} that existed before the walk was skipped"
        );
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, never going back");
}

#[tokio::test(flavor = "multi_thread")]
async fn next_links_keep_filters_and_end_with_null() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    for i in 0..3 {
        app.create_post(&user, &format!("Filtered post {i}"), true)
            .await;
    }
    let query = format!("/v1/posts?limit=2&authorId={}&status=all", user.id);
    let page: Value = app
        .get(&query)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = page["nextLink"].as_str().unwrap();
    assert!(next.starts_with("/v1/posts?limit=2&"), "{next}");
    assert!(
        next.contains(&format!("authorId={}", user.id))
            && next.contains("status=all")
            && next.contains("cursor=")
    );
    let page: Value = app
        .get(next)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert!(page["nextLink"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_follows_ownership_roles_and_if_match() {
    let app = TestApp::spawn().await;
    let author = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let moderator = app.user(Role::Moderator).await;
    let admin = app.user(Role::Admin).await;
    let post = app.create_post(&author, "Original title", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let first_etag = post["etag"].as_str().unwrap().to_string();

    let response = app
        .patch(&path)
        .bearer_auth(&author.token)
        .header("if-match", &first_etag)
        .body(r#"{"title": "Edited by author"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert_ne!(etag, first_etag);
    assert_eq!(body["etag"], etag);
    assert_eq!(body["title"], "Edited by author");
    assert_eq!(body["content"], post["content"], "absent fields stay");
    assert_ne!(body["updatedAt"], post["updatedAt"]);

    let stale = app
        .patch(&path)
        .bearer_auth(&author.token)
        .header("if-match", &first_etag)
        .body(r#"{"title": "Lost update"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412, "PRECONDITION_FAILED").await;

    assert_problem(
        app.patch(&path)
            .bearer_auth(&other.token)
            .body(r#"{"title": "Not mine"}"#)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_problem(
        app.patch(&path)
            .body(r#"{"title": "Anonymous"}"#)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    for (who, title) in [(&moderator, "Moderated title"), (&admin, "Administered")] {
        let response = app
            .patch(&path)
            .bearer_auth(&who.token)
            .body(json!({"title": title}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = app
        .patch(&path)
        .bearer_auth(&author.token)
        .body(r#"{"title": null}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "VALIDATION_FAILED").await;
    let response = app
        .patch(&path)
        .bearer_auth(&author.token)
        .body(r#"{"title": "abc"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "VALIDATION_FAILED").await;
    let response = app
        .patch(&path)
        .bearer_auth(&author.token)
        .body(r#"{"author": {"id": "x"}}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "READ_ONLY_FIELD").await;
    // An empty merge-patch changes nothing.
    let current: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    let response = app
        .patch(&path)
        .bearer_auth(&author.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), current);
    // Merge-patch only.
    let response = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&author.token)
        .json(&json!({"title": "Plain JSON"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let response = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&author.token)
        .header(
            "content-type",
            "application/merge-patch+json; charset=utf-8",
        )
        .body(r#"{"published": false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "media type parameters are fine");
    let missing = format!("/v1/posts/{}", uuid::Uuid::now_v7());
    assert_problem(
        app.patch(&missing)
            .bearer_auth(&admin.token)
            .body(r#"{"title": "Nothing here"}"#)
            .send()
            .await
            .unwrap(),
        404,
        "POST_NOT_FOUND",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_answers_the_post_then_204_and_respects_roles_and_if_match() {
    let app = TestApp::spawn().await;
    let author = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let moderator = app.user(Role::Moderator).await;
    let post = app.create_post(&author, "Short lived", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());

    assert_problem(
        app.delete(&path)
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_problem(
        app.delete(&path).send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    let stale = app
        .delete(&path)
        .bearer_auth(&author.token)
        .header("if-match", "\"0-0\"")
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412, "PRECONDITION_FAILED").await;

    let response = app
        .delete(&path)
        .bearer_auth(&author.token)
        .header("if-match", post["etag"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), post);
    let again = app
        .delete(&path)
        .bearer_auth(&author.token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert!(again.bytes().await.unwrap().is_empty());
    assert_problem(app.get(&path).send().await.unwrap(), 404, "POST_NOT_FOUND").await;

    let post = app.create_post(&author, "Moderated away", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    assert_eq!(
        app.delete(&path)
            .bearer_auth(&moderator.token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
