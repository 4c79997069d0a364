//! Exports: 202 + `Operation-Location`, polling, the NDJSON file in the version that asked,
//! owner/ADMIN visibility, cancel, idempotency, batches larger than one query, and takeover of
//! an export whose worker died.

use std::time::{Duration, Instant};

use diesel::sql_query;
use diesel_async::RunQueryDsl;
use herald::security::rbac::Role;
use serde_json::{Value, json};

use crate::support::{Options, TestApp, TestUser, assert_problem};

/// Starts an export through `version`; returns the operation and its location.
async fn start(app: &TestApp, user: &TestUser, version: &str) -> (Value, String) {
    let response = app
        .post(&format!("/{version}/exports"))
        .bearer_auth(&user.token)
        .json(&json!({"format": "ndjson"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(response.headers()["retry-after"], "1");
    let operation: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!(
            "/{version}/operations/{}",
            operation["id"].as_str().unwrap()
        )
    );
    assert_eq!(operation["kind"], "export");
    (operation, location)
}

/// Polls the operation until it is finished (within 30 s).
async fn finished(app: &TestApp, user: &TestUser, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = app
            .get(location)
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let polling = response.headers().get("retry-after").is_some();
        let operation: Value = response.json().await.unwrap();
        let status = operation["status"].as_str().unwrap().to_string();
        if ["succeeded", "failed", "canceled"].contains(&status.as_str()) {
            assert!(!polling, "no Retry-After once finished");
            return operation;
        }
        assert!(polling, "Retry-After while {status}");
        assert!(
            Instant::now() < deadline,
            "export still {status}: {operation}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn lines(app: &TestApp, user: &TestUser, url: &str) -> Vec<Value> {
    let response = app.get(url).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_writes_every_post_of_its_owner_in_the_version_that_asked() {
    let app = TestApp::spawn().await;
    let owner = app.user(Role::User).await;
    let other = app.user(Role::User).await;
    let admin = app.user(Role::Admin).await;
    app.create_post(&owner, "Published one", true).await;
    app.create_post(&owner, "A draft of mine", false).await;
    let tagged = app
        .post("/v2/posts")
        .bearer_auth(&owner.token)
        .json(&json!({"title": "Tagged one", "content": "Content long enough.", "status": "archived", "tags": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.status(), 201);
    app.create_post(&other, "Not the owner's", true).await;

    let (_, location) = start(&app, &owner, "v2").await;
    let operation = finished(&app, &owner, &location).await;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    assert_eq!(operation["percentComplete"], 100);
    assert_eq!(operation["error"], Value::Null);
    assert_eq!(operation["result"]["count"], 3);
    let file_url = operation["result"]["fileUrl"].as_str().unwrap();
    assert!(file_url.starts_with("/v2/exports/") && file_url.ends_with("/file"));
    let posts = lines(&app, &owner, file_url).await;
    let titles: Vec<&str> = posts.iter().map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["Published one", "A draft of mine", "Tagged one"],
        "oldest first"
    );
    assert_eq!(posts[2]["status"], "archived");
    assert_eq!(posts[2]["tags"], json!(["x"]));

    // Through v1: v1's representation.
    let (_, location) = start(&app, &owner, "v1").await;
    let operation = finished(&app, &owner, &location).await;
    let posts = lines(
        &app,
        &owner,
        operation["result"]["fileUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[1]["published"], false);
    assert!(posts[2].get("tags").is_none());

    // An ADMIN sees it; another user does not (it does not exist for them).
    assert_eq!(
        app.get(&location)
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let file = operation["result"]["fileUrl"].as_str().unwrap();
    assert_eq!(lines(&app, &admin, file).await.len(), 3);
    assert_problem(
        app.get(&location)
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap(),
        404,
        "OPERATION_NOT_FOUND",
    )
    .await;
    assert_problem(
        app.get(file)
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap(),
        404,
        "OPERATION_NOT_FOUND",
    )
    .await;
    assert_eq!(
        app.delete(&location)
            .bearer_auth(&other.token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_problem(
        app.get(&location).send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_problem(
        app.post("/v1/exports")
            .bearer_auth(&owner.token)
            .json(&json!({"format": "csv"}))
            .send()
            .await
            .unwrap(),
        400,
        "VALIDATION_FAILED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unfinished_export_has_no_file_and_can_be_canceled() {
    // No workers: the export stays queued.
    let app = TestApp::with(Options::default().env("JOBS_ENABLED", "false")).await;
    let owner = app.user(Role::User).await;
    app.create_post(&owner, "Some post here", true).await;
    let (operation, location) = start(&app, &owner, "v1").await;
    assert_eq!(operation["status"], "notStarted");
    assert_eq!(operation["result"], Value::Null);
    let id = operation["id"].as_str().unwrap();
    let file = format!("/v1/exports/{id}/file");
    let refused = assert_problem(
        app.get(&file)
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap(),
        409,
        "OPERATION_NOT_FINISHED",
    )
    .await;
    assert!(refused["detail"].is_string());

    let canceled = app
        .delete(&location)
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 200);
    let canceled: Value = canceled.json().await.unwrap();
    assert_eq!(canceled["status"], "canceled");
    // Finished: a second cancel answers it as it is; the file never comes.
    let again: Value = app
        .delete(&location)
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "canceled");
    assert_problem(
        app.get(&file)
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap(),
        409,
        "OPERATION_NOT_FINISHED",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/v1/operations/{}", uuid::Uuid::now_v7()))
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    // A worker that picks the canceled export up later leaves it canceled.
    let worker = app.sibling(false).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still: Value = worker
        .get(&location)
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "canceled");
    let mut conn = app.state.db.conn().await.unwrap();
    let ran: Vec<Count> =
        sql_query("SELECT count(*) AS n FROM jobs WHERE kind = 'export' AND state = 'succeeded'")
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(ran[0].n, 1, "the worker did pick the export up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_export_with_an_idempotency_key_is_the_same_operation() {
    let app = TestApp::with(Options::default().env("JOBS_ENABLED", "false")).await;
    let owner = app.user(Role::User).await;
    let send = || {
        app.post("/v2/exports")
            .bearer_auth(&owner.token)
            .header("idempotency-key", "export-once")
            .json(&json!({"format": "ndjson"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        second.headers()["operation-location"],
        format!("/v2/operations/{}", first["id"].as_str().unwrap()).as_str(),
        "a replay carries the headers the contract requires"
    );
    assert_eq!(second.headers()["retry-after"], "1");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let mut conn = app.state.db.conn().await.unwrap();
    let count: Vec<Count> = sql_query("SELECT count(*) AS n FROM operations")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(count[0].n, 1);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_larger_than_a_batch_and_a_chunk_is_complete_and_in_order() {
    let app = TestApp::spawn().await;
    let owner = app.user(Role::User).await;
    let mut conn = app.state.db.conn().await.unwrap();
    // 1,234 posts of ~1 KiB: three query batches and several file chunks.
    sql_query(format!(
        "INSERT INTO posts (id, author_id, author_username, title, content, status, tags, version, created_at, updated_at) \
         SELECT uuid_generate_v7_for_test(g), '{}', '{}', 'Post ' || g, repeat('x', 1000), 'draft', '{{}}', 1, now(), now() \
         FROM generate_series(1, 1234) g",
        owner.id, owner.username
    ).replace(
        "uuid_generate_v7_for_test(g)",
        // UUIDv7-like ids in insertion order (the keyset order): a time prefix then the number.
        "(lpad(to_hex(g), 12, '0') || '7000800000000000' || lpad(to_hex(g), 4, '0'))::uuid",
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let (_, location) = start(&app, &owner, "v1").await;
    let operation = finished(&app, &owner, &location).await;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    assert_eq!(operation["result"]["count"], 1234);
    let posts = lines(
        &app,
        &owner,
        operation["result"]["fileUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(posts.len(), 1234);
    for (i, post) in posts.iter().enumerate() {
        assert_eq!(post["title"], format!("Post {}", i + 1));
    }
    let mut conn = app.state.db.conn().await.unwrap();
    let chunks: Vec<Count> = sql_query("SELECT count(*) AS n FROM export_chunks")
        .load(&mut conn)
        .await
        .unwrap();
    assert!(chunks[0].n >= 4, "{} chunks", chunks[0].n);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_whose_worker_died_is_taken_over_by_another_instance() {
    let app = TestApp::with(Options::default().env("JOBS_ENABLED", "false")).await;
    let owner = app.user(Role::User).await;
    app.create_post(&owner, "Survives a crash", false).await;
    let (operation, location) = start(&app, &owner, "v2").await;
    let id = operation["id"].as_str().unwrap();
    // What a worker that claimed the job and died mid-export leaves behind: a running job with
    // a lapsed lease, a running operation and a partial file.
    let mut conn = app.state.db.conn().await.unwrap();
    sql_query(
        "UPDATE jobs SET state = 'running', attempts = 1, locked_by = 'dead-worker', \
         locked_until = now() - interval '1 second' WHERE kind = 'export'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sql_query(format!(
        "UPDATE operations SET status = 'running', percent_complete = 40 WHERE id = '{id}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    sql_query(format!(
        "INSERT INTO export_chunks (operation_id, run, seq, data) VALUES ('{id}', 1, 0, 'half a line')"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let survivor = app.sibling(false).await;
    let operation = finished(&survivor, &owner, &location).await;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    let posts = lines(
        &survivor,
        &owner,
        operation["result"]["fileUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(posts.len(), 1, "the partial file was replaced");
    assert_eq!(posts[0]["title"], "Survives a crash");
    let mut conn = app.state.db.conn().await.unwrap();
    let attempts: Vec<Count> = sql_query(
        "SELECT attempts::bigint AS n FROM jobs WHERE kind = 'export' AND state = 'succeeded'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].n, 2, "taken over: a second claim");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_twenty_exports_and_run_each_once() {
    let first = TestApp::with(Options::default().env("RATE_LIMIT_WRITES", "1000/1m")).await;
    let second = first.sibling(false).await;
    let owner = first.user(Role::User).await;
    first
        .create_post(&owner, "Exported twenty times", true)
        .await;
    let starts = (0..20).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let owner = &owner;
        async move { start(app, owner, "v1").await.1 }
    });
    let locations = futures::future::join_all(starts).await;
    for location in &locations {
        let operation = finished(&first, &owner, location).await;
        assert_eq!(operation["status"], "succeeded", "{operation}");
        assert_eq!(operation["result"]["count"], 1);
    }
    let mut conn = first.state.db.conn().await.unwrap();
    let runs: Vec<Count> = sql_query(
        "SELECT count(*) AS n FROM jobs WHERE kind = 'export' AND state = 'succeeded' AND attempts = 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(runs[0].n, 20, "every export ran once");
}

#[derive(diesel::QueryableByName)]
struct JobRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
}

async fn export_job(conn: &mut diesel_async::AsyncPgConnection) -> Option<JobRow> {
    sql_query("SELECT state, attempts FROM jobs WHERE kind = 'export'")
        .load::<JobRow>(conn)
        .await
        .unwrap()
        .pop()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_survives_the_sigkill_of_the_instance_running_it() {
    use diesel_async::{AsyncConnection, AsyncPgConnection};

    use crate::support::{TestDatabase, insert_user, process::HeraldProcess, settings_for};

    let db = TestDatabase::create().await;
    let owner = {
        let pool = herald::db::Db::new(&db.url, 1, Duration::from_secs(5));
        let mut conn = pool.conn().await.unwrap();
        let keys = herald::security::jwt::JwtKeys::new(&settings_for(&db.url, None, &[]));
        let owner = insert_user(&mut conn, &keys, Role::User).await;
        sql_query(format!(
            "INSERT INTO posts (id, author_id, author_username, title, content, status, tags, version, created_at, updated_at) \
             SELECT (lpad(to_hex(g), 12, '0') || '7000800000000000' || lpad(to_hex(g), 4, '0'))::uuid, \
             '{}', '{}', 'Post ' || g, 'Long enough content.', 'published', '{{}}', 1, now(), now() \
             FROM generate_series(1, 1200) g",
            owner.id, owner.username
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        owner
    };
    let mut doomed = HeraldProcess::serve(&[
        ("DATABASE_URL", &db.url),
        ("AUTO_MIGRATE", "false"),
        ("JOBS_LEASE", "1s"),
        ("JOBS_POLL_INTERVAL", "100ms"),
    ]);
    // Hold the export at its first write, so the kill lands while the job is running there.
    let mut blocker = AsyncPgConnection::establish(&db.url).await.unwrap();
    sql_query("BEGIN").execute(&mut blocker).await.unwrap();
    sql_query("LOCK TABLE export_chunks IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let client = crate::support::http_client().build().unwrap();
    let started = client
        .post(doomed.url("/v1/exports"))
        .bearer_auth(&owner.token)
        .json(&json!({"format": "ndjson"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_string();
    let mut watcher = AsyncPgConnection::establish(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while export_job(&mut watcher)
        .await
        .is_none_or(|job| job.state != "running")
    {
        assert!(Instant::now() < deadline, "the export was never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.signal("KILL");
    doomed.wait_for_exit(Duration::from_secs(10));
    sql_query("ROLLBACK").execute(&mut blocker).await.unwrap();

    let survivor = TestApp::with(Options {
        database_url: Some(db.url.clone()),
        ..Options::default().env("JOBS_POLL_INTERVAL", "100ms")
    })
    .await;
    let operation = finished(&survivor, &owner, &location).await;
    assert_eq!(operation["status"], "succeeded", "{operation}");
    assert_eq!(operation["result"]["count"], 1200);
    let posts = lines(
        &survivor,
        &owner,
        operation["result"]["fileUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(posts.len(), 1200);
    let job = export_job(&mut watcher).await.unwrap();
    assert_eq!(
        (job.state.as_str(), job.attempts),
        ("succeeded", 2),
        "taken over once"
    );
}
