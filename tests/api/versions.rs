//! v1 and v2 side by side on the same data: a post written through either version reads and
//! updates through the other (one ETag, v1's `published` as a view of v2's `status`), caches
//! hold each representation and a write invalidates both, v2's own rules (tags, statuses,
//! `publishedAt`), the unchanged resources under `/v2`, and v1's deprecation headers.

use herald::security::rbac::Role;
use serde_json::{Value, json};

use crate::support::{Options, TestApp, TestUser, assert_problem, error_fields};

async fn create_v2(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let response = app
        .post("/v2/posts")
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "create through v2");
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v2/posts/")
    );
    response.json().await.unwrap()
}

async fn get(app: &TestApp, path: &str, user: &TestUser) -> (Value, String, String) {
    let response = app.get(path).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let cache = response.headers()["x-cache"].to_str().unwrap().to_string();
    (response.json().await.unwrap(), etag, cache)
}

async fn patch(
    app: &TestApp,
    path: &str,
    user: &TestUser,
    etag: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app
        .patch(path)
        .bearer_auth(&user.token)
        .body(body.to_string());
    if let Some(etag) = etag {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_written_through_v2_reads_and_updates_through_v1_with_one_etag() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    let post = create_v2(
        &app,
        &user,
        json!({"title": "Both versions", "content": "Written through v2.", "status": "published", "tags": ["a", "b"]}),
    )
    .await;
    let id = post["id"].as_str().unwrap();
    let (as_v1, v1_etag, _) = get(&app, &format!("/v1/posts/{id}"), &user).await;
    assert_eq!(as_v1["published"], true);
    assert_eq!(as_v1["etag"], post["etag"]);
    assert_eq!(
        v1_etag,
        post["etag"].as_str().unwrap(),
        "one ETag, both views"
    );
    assert!(as_v1.get("tags").is_none() && as_v1.get("status").is_none());
    let keys: Vec<&String> = as_v1.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "author",
            "content",
            "createdAt",
            "etag",
            "id",
            "published",
            "title",
            "updatedAt"
        ],
        "v1's representation is unchanged"
    );

    // v1 unpublishes it with the ETag v2 handed out; v2 sees a draft with its tags.
    let response = patch(
        &app,
        &format!("/v1/posts/{id}"),
        &user,
        Some(&v1_etag),
        json!({"published": false}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let after_v1: Value = response.json().await.unwrap();
    let (as_v2, v2_etag, _) = get(&app, &format!("/v2/posts/{id}"), &user).await;
    assert_eq!(as_v2["status"], "draft");
    assert_eq!(as_v2["tags"], json!(["a", "b"]), "v1 never changes tags");
    assert_eq!(
        as_v2["publishedAt"], post["publishedAt"],
        "publishedAt stays"
    );
    assert_eq!(v2_etag, after_v1["etag"].as_str().unwrap());

    // The old ETag is stale in both versions.
    for version in ["v1", "v2"] {
        let body = if version == "v1" {
            json!({"title": "Stale write"})
        } else {
            json!({"tags": []})
        };
        let response = patch(
            &app,
            &format!("/{version}/posts/{id}"),
            &user,
            Some(&v1_etag),
            body,
        )
        .await;
        assert_problem(response, 412, "PRECONDITION_FAILED").await;
    }

    // Deleted through v1: gone in v2 too (and a retried v2 DELETE is 204).
    let response = app
        .delete(&format!("/v1/posts/{id}"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .get(&format!("/v2/posts/{id}"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "POST_NOT_FOUND").await;
    let response = app
        .delete(&format!("/v2/posts/{id}"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_publishing_is_a_view_of_v2_status_and_archived_stays_archived() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Written through v1", false).await;
    let id = post["id"].as_str().unwrap();
    let v1 = format!("/v1/posts/{id}");
    let v2 = format!("/v2/posts/{id}");
    let (draft, _, _) = get(&app, &v2, &user).await;
    assert_eq!(
        (draft["status"].as_str(), draft["tags"].clone()),
        (Some("draft"), json!([]))
    );
    assert_eq!(draft["publishedAt"], Value::Null);

    // v1 `published: true` publishes (and sets publishedAt, once).
    assert_eq!(
        patch(&app, &v1, &user, None, json!({"published": true}))
            .await
            .status(),
        200
    );
    let (published, _, _) = get(&app, &v2, &user).await;
    assert_eq!(published["status"], "published");
    let first = published["publishedAt"].clone();
    assert!(first.is_string());

    // Archived through v2: v1 calls it unpublished, and v1 `published: false` leaves it archived.
    assert_eq!(
        patch(&app, &v2, &user, None, json!({"status": "archived"}))
            .await
            .status(),
        200
    );
    let (as_v1, _, _) = get(&app, &v1, &user).await;
    assert_eq!(as_v1["published"], false);
    assert_eq!(
        patch(&app, &v1, &user, None, json!({"published": false}))
            .await
            .status(),
        200
    );
    let (still, _, _) = get(&app, &v2, &user).await;
    assert_eq!(still["status"], "archived");

    // Published again: publishedAt never changes after the first time.
    assert_eq!(
        patch(&app, &v1, &user, None, json!({"published": true}))
            .await
            .status(),
        200
    );
    let (again, _, _) = get(&app, &v2, &user).await;
    assert_eq!(again["publishedAt"], first);
    // v1 lists: archived posts are among the caller's drafts.
    assert_eq!(
        patch(&app, &v2, &user, None, json!({"status": "archived"}))
            .await
            .status(),
        200
    );
    let drafts: Value = app
        .get("/v1/posts?status=draft")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(drafts["data"][0]["id"], id);
}

#[tokio::test(flavor = "multi_thread")]
async fn caches_hold_each_representation_and_a_write_invalidates_both() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Cached twice", true).await;
    let id = post["id"].as_str().unwrap();
    for version in ["v1", "v2"] {
        let path = format!("/{version}/posts/{id}");
        assert_eq!(get(&app, &path, &user).await.2, "MISS", "{path}");
        let (body, _, cache) = get(&app, &path, &user).await;
        assert_eq!(cache, "HIT", "{path}");
        assert_eq!(
            body.get("published").is_some(),
            version == "v1",
            "{version}'s own shape from its cache"
        );
        let (_, list_cache) = {
            let response = app.get(&format!("/{version}/posts")).send().await.unwrap();
            let cache = response.headers()["x-cache"].to_str().unwrap().to_string();
            ((), cache)
        };
        assert!(list_cache == "MISS" || list_cache == "HIT");
    }
    // One write through v2 invalidates both representations of the post and both lists.
    assert_eq!(
        patch(
            &app,
            &format!("/v2/posts/{id}"),
            &user,
            None,
            json!({"title": "Changed in v2"})
        )
        .await
        .status(),
        200
    );
    for version in ["v1", "v2"] {
        let (body, _, cache) = get(&app, &format!("/{version}/posts/{id}"), &user).await;
        assert_eq!(cache, "MISS", "{version} post invalidated");
        assert_eq!(body["title"], "Changed in v2");
        let page: Value = app
            .get(&format!("/{version}/posts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["data"][0]["title"], "Changed in v2",
            "{version} list invalidated"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_tags_are_validated_at_their_bounds() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let create = |tags: Value| {
        app.post("/v2/posts")
            .bearer_auth(&user.token)
            .json(&json!({"title": "Tagged post", "content": "Checking tag rules.", "tags": tags}))
            .send()
    };
    let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    for ok in [
        json!([]),
        json!(ten),
        json!(["a"]),
        json!(["x".repeat(32)]),
        json!(["a-1", "0-9"]),
    ] {
        assert_eq!(create(ok.clone()).await.unwrap().status(), 201, "{ok}");
    }
    for bad in [
        json!(eleven),
        json!(["a", "a"]),
        json!([""]),
        json!(["x".repeat(33)]),
        json!(["Upper"]),
        json!(["under_score"]),
        json!(["sp ace"]),
        json!([1]),
        json!(null),
        json!("rust"),
    ] {
        let problem =
            assert_problem(create(bad.clone()).await.unwrap(), 400, "VALIDATION_FAILED").await;
        assert!(
            error_fields(&problem).iter().any(|f| f.starts_with("tags")),
            "{bad}: {problem}"
        );
    }
    // PATCH: `tags: null` is refused, `[]` clears them; an unknown status is refused.
    let post = create_v2(
        &app,
        &user,
        json!({"title": "Tags to clear", "content": "Has tags at first.", "tags": ["x"]}),
    )
    .await;
    let path = format!("/v2/posts/{}", post["id"].as_str().unwrap());
    let response = patch(&app, &path, &user, None, json!({"tags": null})).await;
    assert_problem(response, 400, "VALIDATION_FAILED").await;
    let cleared: Value = patch(&app, &path, &user, None, json!({"tags": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["tags"], json!([]));
    let response = patch(&app, &path, &user, None, json!({"status": "deleted"})).await;
    assert_problem(response, 400, "VALIDATION_FAILED").await;
    let response = patch(
        &app,
        &path,
        &user,
        None,
        json!({"publishedAt": "2026-01-01T00:00:00Z"}),
    )
    .await;
    assert_problem(response, 400, "READ_ONLY_FIELD").await;
    let response = patch(&app, &path, &user, None, json!({"published": true})).await;
    assert_problem(response, 400, "UNKNOWN_FIELD").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_lists_filter_by_tag_and_status_with_visibility() {
    let app = TestApp::spawn().await;
    let author = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let moderator = app.user(Role::Moderator).await;
    let mut published = Vec::new();
    for i in 0..5 {
        let post = create_v2(&app, &author, json!({"title": format!("Tagged {i} post"), "content": "Published and tagged.", "status": "published", "tags": ["walk", format!("n{i}")]})).await;
        published.push(post["id"].as_str().unwrap().to_string());
    }
    let draft = create_v2(
        &app,
        &author,
        json!({"title": "Tagged draft", "content": "A draft with the tag.", "tags": ["walk"]}),
    )
    .await;
    let archived = create_v2(&app, &author, json!({"title": "Tagged archive", "content": "An archived post.", "status": "archived", "tags": ["walk"]})).await;
    create_v2(
        &app,
        &author,
        json!({"title": "Untagged post", "content": "Published, no tags.", "status": "published"}),
    )
    .await;

    // A tag walk with limit=2, newest first, no duplicates or gaps, links that keep the tag.
    let mut seen = Vec::new();
    let mut next = Some("/v2/posts?tag=walk&limit=2".to_string());
    while let Some(link) = next {
        let page: Value = app.get(&link).send().await.unwrap().json().await.unwrap();
        for post in page["data"].as_array().unwrap() {
            assert!(post["tags"].as_array().unwrap().contains(&json!("walk")));
            seen.push(post["id"].as_str().unwrap().to_string());
        }
        next = page["nextLink"].as_str().map(|l| {
            assert!(l.contains("tag=walk"), "{l}");
            l.to_string()
        });
    }
    let mut expected = published.clone();
    expected.reverse();
    assert_eq!(seen, expected, "public tag page: published posts only");

    let ids = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |path: &'static str, who: &TestUser| {
        let request = app.get(path).bearer_auth(&who.token).send();
        async move { ids(request.await.unwrap().json::<Value>().await.unwrap()) }
    };
    let draft_id = draft["id"].as_str().unwrap().to_string();
    let archived_id = archived["id"].as_str().unwrap().to_string();
    assert_eq!(
        list("/v2/posts?tag=walk&status=draft", &author).await,
        [draft_id.as_str()]
    );
    assert_eq!(
        list("/v2/posts?tag=walk&status=archived", &author).await,
        [archived_id.as_str()]
    );
    assert!(
        list("/v2/posts?tag=walk&status=draft", &other)
            .await
            .is_empty(),
        "others' drafts do not exist"
    );
    assert_eq!(
        list("/v2/posts?tag=walk&status=archived", &moderator).await,
        [archived_id.as_str()]
    );
    assert_eq!(
        list("/v2/posts?tag=walk&status=all", &author).await.len(),
        7
    );
    assert_eq!(list("/v2/posts?tag=walk&status=all", &other).await.len(), 5);
    let response = app.get("/v2/posts?tag=Not_A_Tag").send().await.unwrap();
    assert_problem(response, 400, "INVALID_PARAMETER").await;
    // Someone else's archived post does not exist for a USER.
    let response = app
        .get(&format!("/v2/posts/{archived_id}"))
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "POST_NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_resources_behave_the_same_under_v2() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let response = app
        .post("/v2/auth/register")
        .json(&json!({"email": "twin@example.com", "username": "twin_user", "password": "twin-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    let response = app
        .post("/v2/auth/login")
        .json(&json!({"email": "twin@example.com", "password": "twin-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("Path=/v2/auth"), "{cookie}");
    let session: Value = response.json().await.unwrap();
    let me: Value = app
        .get("/v1/users/me")
        .bearer_auth(session["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["id"], user["id"],
        "one account, one token, both versions"
    );
    let response = app
        .put("/v2/airports/TWN")
        .bearer_auth(&admin.token)
        .json(&json!({"runways": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/v2/airports/TWN");
    let airport: Value = app
        .get("/v1/airports/TWN")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(airport["runways"], 2);
    assert_problem(
        app.get("/v2/users/me").send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_problem(app.get("/v3/posts").send().await.unwrap(), 404, "NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_posts_carry_deprecation_headers_only_when_configured() {
    let quiet = TestApp::spawn().await;
    let response = quiet.get("/v1/posts").send().await.unwrap();
    for header in ["deprecation", "sunset", "link"] {
        assert!(
            !response.headers().contains_key(header),
            "{header} without configuration"
        );
    }
    let app = TestApp::with(
        Options::default()
            .env("V1_DEPRECATED_AT", "2026-12-01T00:00:00Z")
            .env("V1_SUNSET", "2027-06-30T12:00:00Z"),
    )
    .await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Deprecated view", true).await;
    let id = post["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", "/v1/posts".to_string()),
        ("GET", format!("/v1/posts/{id}")),
        ("GET", format!("/v1/posts/{}", uuid::Uuid::now_v7())),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&path))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["deprecation"], "@1796083200", "{path}");
        assert_eq!(headers["sunset"], "Wed, 30 Jun 2027 12:00:00 GMT", "{path}");
        assert_eq!(
            headers["link"], "</v2/posts>; rel=\"successor-version\"",
            "{path}"
        );
    }
    for path in ["/v2/posts", "/v1/users/me", "/health"] {
        let response = app.get(path).send().await.unwrap();
        assert!(!response.headers().contains_key("deprecation"), "{path}");
    }
    let only_sunset =
        TestApp::with(Options::default().env("V1_SUNSET", "2027-06-30T12:00:00Z")).await;
    let response = only_sunset.get("/v1/posts").send().await.unwrap();
    assert!(!response.headers().contains_key("deprecation"));
    assert!(response.headers().contains_key("sunset") && response.headers().contains_key("link"));
}
