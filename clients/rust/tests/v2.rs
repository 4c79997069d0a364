//! The v2 client against a live Herald (`HERALD_URL`): the v2 posts flow (status, publishedAt,
//! tags and the tag filter), and one post written through each version and read and updated
//! through the other. `scripts/contract` runs these with `--include-ignored`.

use herald_client::{v1, v2};

fn base_url() -> String {
    std::env::var("HERALD_URL")
        .expect("HERALD_URL: these tests need a live Herald (scripts/contract starts one)")
}

/// A fresh account, logged in through v2; a v1 client sharing its session.
async fn clients() -> (v2::Client, v1::Client) {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let username = format!("rs2_{}", &suffix[..12]);
    let email = format!("{username}@example.com");
    let client = v2::Client::connect(&base_url()).expect("a v2 client");
    client
        .register_user()
        .body_map(|b| {
            b.email(email.clone())
                .username(username.clone())
                .password("rust-sdk-password")
        })
        .send()
        .await
        .expect("register through v2");
    client
        .login_user()
        .body_map(|b| b.email(email.clone()).password("rust-sdk-password"))
        .send()
        .await
        .expect("login through v2");
    let old = v1::Client::builder(&base_url())
        .session(client.session().clone())
        .build()
        .expect("a v1 client on the same session");
    (client, old)
}

fn tag(text: &str) -> v2::types::CreatePostRequestTagsItem {
    text.parse().expect("a valid tag")
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn v2_posts_have_status_published_at_and_tags() {
    let (client, _) = clients().await;
    let unique = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let draft = client
        .create_post()
        .body_map(|b| {
            b.title("A v2 draft")
                .content("Written through the v2 client.")
                .tags(Some(vec![tag(&unique), tag("sdk")]))
        })
        .send()
        .await
        .expect("create")
        .into_inner();
    assert_eq!(draft.status, v2::types::PostStatus::Draft);
    assert!(draft.published_at.is_none());
    assert_eq!(draft.tags, [unique.clone(), "sdk".to_string()]);

    let published = client
        .update_post()
        .id(draft.id)
        .body_map(|b| b.status(Some(v2::types::PostStatus::Published)))
        .send()
        .await
        .expect("publish")
        .into_inner();
    assert_eq!(published.status, v2::types::PostStatus::Published);
    let first = published
        .published_at
        .expect("publishedAt set on publishing");
    for status in [
        v2::types::PostStatus::Archived,
        v2::types::PostStatus::Published,
    ] {
        let again = client
            .update_post()
            .id(draft.id)
            .body_map(|b| b.status(Some(status)))
            .send()
            .await
            .expect("status change")
            .into_inner();
        assert_eq!(again.published_at, Some(first), "publishedAt never changes");
    }

    let page = client
        .list_posts()
        .tag(unique.as_str())
        .send()
        .await
        .expect("list by tag")
        .into_inner();
    let ids: Vec<_> = page.data.iter().map(|p| p.id).collect();
    assert_eq!(
        ids,
        [draft.id],
        "the tag filter keeps the posts that carry it"
    );
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn a_post_written_through_one_version_reads_and_updates_through_the_other() {
    let (client, old) = clients().await;
    let written = client
        .create_post()
        .body_map(|b| {
            b.title("Written through v2")
                .content("Read and unpublished through v1.")
                .status(Some(v2::types::PostStatus::Published))
                .tags(Some(vec![tag("keep")]))
        })
        .send()
        .await
        .expect("create through v2")
        .into_inner();
    let as_v1 = old
        .get_post()
        .id(written.id)
        .send()
        .await
        .expect("read through v1")
        .into_inner();
    assert!(as_v1.published);
    assert_eq!(
        as_v1.etag, written.etag,
        "one ETag for both representations"
    );
    old.update_post()
        .id(written.id)
        .if_match(as_v1.etag.clone())
        .body_map(|b| b.published(Some(false)))
        .send()
        .await
        .expect("unpublish through v1");
    let back = client
        .get_post()
        .id(written.id)
        .send()
        .await
        .expect("read through v2")
        .into_inner();
    assert_eq!(back.status, v2::types::PostStatus::Draft);
    assert_eq!(back.tags, ["keep"], "v1 never changes tags");

    let from_v1 = old
        .create_post()
        .body_map(|b| {
            b.title("Written through v1")
                .content("Archived through v2.")
                .published(true)
        })
        .send()
        .await
        .expect("create through v1")
        .into_inner();
    client
        .update_post()
        .id(from_v1.id)
        .if_match(from_v1.etag.clone())
        .body_map(|b| b.status(Some(v2::types::PostStatus::Archived)))
        .send()
        .await
        .expect("archive through v2");
    let archived = old
        .get_post()
        .id(from_v1.id)
        .send()
        .await
        .expect("read through v1")
        .into_inner();
    assert!(!archived.published, "archived reads as unpublished in v1");
}

#[tokio::test]
#[ignore = "needs a live Herald: scripts/contract runs it"]
async fn an_export_is_polled_to_completion_and_its_file_streamed() {
    let (client, _) = clients().await;
    let post = client
        .create_post()
        .body_map(|b| {
            b.title("Exported through v2")
                .content("This post goes into the export.")
                .tags(Some(vec![tag("export")]))
        })
        .send()
        .await
        .expect("create")
        .into_inner();
    let started = client
        .create_export()
        .body_map(|b| b.format(v2::types::ExportFormat::Ndjson))
        .send()
        .await
        .expect("start the export");
    assert_eq!(started.status().as_u16(), 202);
    let location = started.headers()["operation-location"]
        .to_str()
        .expect("ASCII")
        .to_string();
    let id = started.into_inner().id;
    assert_eq!(location, format!("/v2/operations/{id}"));

    // Poll as the server says (`Retry-After`), within a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let response = client.get_operation().id(id).send().await.expect("poll");
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let operation = response.into_inner();
        match wait {
            None => break operation,
            Some(seconds) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "still {:?}",
                    operation.status
                );
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            }
        }
    };
    assert_eq!(done.status, v2::types::OperationStatus::Succeeded);
    let result = done.result.expect("a result once succeeded");
    assert!(result.count >= 1);

    let mut file = client
        .get_export_file()
        .id(id)
        .send()
        .await
        .expect("download")
        .into_inner()
        .into_inner();
    let mut text = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut file).await {
        text.extend_from_slice(&chunk.expect("a chunk"));
    }
    let lines: Vec<serde_json::Value> = String::from_utf8(text)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON post a line"))
        .collect();
    assert_eq!(lines.len() as i64, result.count);
    let exported = lines
        .iter()
        .find(|p| p["id"] == post.id.to_string())
        .expect("the new post is in the file");
    assert_eq!(exported["tags"], serde_json::json!(["export"]));
}
