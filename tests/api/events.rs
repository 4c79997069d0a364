//! Events: one per committed post change, in the change's transaction, read by ADMINs in the
//! representation of the version asked; none for a change that was rolled back.

use herald::security::rbac::Role;
use serde_json::{Value, json};

use crate::support::{Options, TestApp, TestUser, assert_problem};

async fn events(app: &TestApp, admin: &TestUser, path: &str) -> Value {
    let response = app
        .get(path)
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn count_events(app: &TestApp, admin: &TestUser) -> usize {
    let mut total = 0;
    let mut path = "/v1/events?limit=100".to_string();
    loop {
        let page = events(app, admin, &path).await;
        total += page["data"].as_array().unwrap().len();
        match page["nextLink"].as_str() {
            Some(next) => path = next.to_string(),
            None => return total,
        }
    }
}

/// Fifty `PATCH`es of the post's title at once (`"{prefix} {i}"`); their statuses.
async fn fifty_concurrent_title_changes(
    app: &TestApp,
    author: &TestUser,
    id: &str,
    prefix: &str,
) -> Vec<u16> {
    let patches = (0..50).map(|i| {
        let request = app
            .patch(&format!("/v1/posts/{id}"))
            .bearer_auth(&author.token)
            .json(&json!({"title": format!("{prefix} {i}")}));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    futures::future::join_all(patches).await
}

/// An enabled endpoint subscribed to `post.updated`, so that updates queue their fan-out job
/// (no subscriber, no job). Nothing listens at its address: these tests read the queue.
async fn subscribe_to_updates(app: &TestApp, admin: &TestUser) {
    let hook = app
        .post("/v1/webhooks")
        .bearer_auth(&admin.token)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["post.updated"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_committed_post_change_records_one_event_shown_in_each_versions_representation() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let author = app.user(Role::User).await;
    let created: Value = app
        .post("/v2/posts")
        .bearer_auth(&author.token)
        .json(&json!({"title": "Evented post", "content": "Content long enough.", "status": "published", "tags": ["a", "b"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let patched = app
        .patch(&format!("/v1/posts/{id}"))
        .bearer_auth(&author.token)
        .json(&json!({"title": "Renamed post"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let deleted = app
        .delete(&format!("/v2/posts/{id}"))
        .bearer_auth(&author.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let v1 = events(&app, &admin, "/v1/events").await;
    let types: Vec<&str> = v1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["post.deleted", "post.updated", "post.created"],
        "newest first: {v1}"
    );
    let updated = &v1["data"][1];
    assert_eq!(updated["data"]["post"]["title"], "Renamed post");
    assert_eq!(
        updated["data"]["post"]["published"], true,
        "v1 shape: {updated}"
    );
    assert!(
        updated["data"]["post"].get("tags").is_none(),
        "v1 has no tags"
    );
    assert!(updated["occurredAt"].is_string() && updated["id"].is_string());
    // The deleted post as it was before the delete.
    assert_eq!(v1["data"][0]["data"]["post"]["title"], "Renamed post");

    let v2 = events(&app, &admin, "/v2/events").await;
    assert_eq!(v2["data"][2]["data"]["post"]["status"], "published");
    assert_eq!(v2["data"][2]["data"]["post"]["tags"], json!(["a", "b"]));
    assert_eq!(v2["data"][2]["data"]["post"]["title"], "Evented post");
    assert_eq!(
        v2["data"][0]["id"], v1["data"][0]["id"],
        "one event, two views"
    );

    // One event; filters and pages keep the filter.
    let event_id = v1["data"][1]["id"].as_str().unwrap();
    let one = events(&app, &admin, &format!("/v2/events/{event_id}")).await;
    assert_eq!(one["type"], "post.updated");
    assert_eq!(one["data"]["post"]["status"], "published");
    let filtered = events(&app, &admin, "/v1/events?type=post.created&limit=1").await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["data"][0]["type"], "post.created");
    assert_eq!(filtered["nextLink"], Value::Null);
    let paged = events(&app, &admin, "/v1/events?limit=2").await;
    let next = paged["nextLink"].as_str().unwrap();
    assert!(next.starts_with("/v1/events?limit=2&cursor="), "{next}");
    let rest = events(&app, &admin, next).await;
    assert_eq!(rest["data"][0]["type"], "post.created");

    assert_problem(
        app.get(&format!("/v1/events/{}", uuid::Uuid::now_v7()))
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap(),
        404,
        "EVENT_NOT_FOUND",
    )
    .await;
    assert_problem(
        app.get("/v1/events")
            .bearer_auth(&author.token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_problem(
        app.get("/v2/events").send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_problem(
        app.get("/v1/events?type=post.exploded")
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_PARAMETER",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_or_empty_change_records_no_event() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let author = app.user(Role::User).await;
    let stranger = app.user(Role::User).await;
    let post = app.create_post(&author, "Guarded post", true).await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(count_events(&app, &admin).await, 1);

    // Refused inside the transaction (after the row lock): 412 and 403 roll back.
    let stale = app
        .patch(&format!("/v1/posts/{id}"))
        .bearer_auth(&author.token)
        .header("if-match", "\"stale\"")
        .json(&json!({"title": "Never written"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let foreign = app
        .patch(&format!("/v1/posts/{id}"))
        .bearer_auth(&stranger.token)
        .json(&json!({"title": "Never written"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    // An empty patch changes nothing, so it records nothing either.
    let empty = app
        .patch(&format!("/v1/posts/{id}"))
        .bearer_auth(&author.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);
    assert_eq!(count_events(&app, &admin).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_changes_record_exactly_one_event_each() {
    let app = TestApp::with(Options::default().env("RATE_LIMIT_WRITES", "1000/1m")).await;
    let admin = app.user(Role::Admin).await;
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Busy post", true).await;
    let id = post["id"].as_str().unwrap().to_string();
    let statuses = fifty_concurrent_title_changes(&app, &author, &id, "Title number").await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(ok > 0, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );

    let mut updates = Vec::new();
    let mut path = "/v2/events?type=post.updated&limit=100".to_string();
    loop {
        let page = events(&app, &admin, &path).await;
        updates.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["nextLink"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    assert_eq!(updates.len(), ok, "one event per committed change");
    // Each event holds its own version of the post: all titles distinct.
    let mut titles: Vec<&str> = updates
        .iter()
        .map(|e| e["data"]["post"]["title"].as_str().unwrap())
        .collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_transaction_fails_after_the_event_records_neither() {
    use diesel::sql_query;
    use diesel_async::RunQueryDsl;

    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Before the failure", true).await;
    let id = post["id"].as_str().unwrap();
    assert_eq!(count_events(&app, &admin).await, 1);

    subscribe_to_updates(&app, &admin).await;

    // The outbox row is the last write of the transaction: make it fail, after the post row and
    // the event were written.
    let mut conn = app.state.db.conn().await.unwrap();
    sql_query(
        "CREATE FUNCTION refuse_jobs() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'no jobs today'; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sql_query("CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_jobs()")
        .execute(&mut conn)
        .await
        .unwrap();
    let failed = app
        .patch(&format!("/v1/posts/{id}"))
        .bearer_auth(&author.token)
        .json(&json!({"title": "Never committed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 500);
    let unchanged: Value = app
        .get(&format!("/v1/posts/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        unchanged["title"], "Before the failure",
        "the change rolled back"
    );
    assert_eq!(count_events(&app, &admin).await, 1, "and its event with it");

    sql_query("DROP TRIGGER refuse_jobs ON jobs")
        .execute(&mut conn)
        .await
        .unwrap();
    let ok = app
        .patch(&format!("/v1/posts/{id}"))
        .bearer_auth(&author.token)
        .json(&json!({"title": "Committed at last"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(count_events(&app, &admin).await, 2);
}

/// Events past `EVENT_RETENTION` (30 days by default) are purged by id — their UUIDv7 ids are
/// minted as they occur — and younger ones, a second inside the boundary included, stay.
#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_purges_events_past_retention_by_their_time_ordered_ids() {
    use diesel::{
        sql_query,
        sql_types::{Timestamptz, Uuid as SqlUuid},
    };
    use diesel_async::RunQueryDsl;

    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let author = app.user(Role::User).await;
    app.create_post(&author, "A fresh change", true).await;

    let mut conn = app.state.db.conn().await.unwrap();
    let now = chrono::Utc::now();
    for (days, seconds) in [(31, 0), (30, 60), (29, 0)] {
        let at = now - chrono::Duration::days(days) - chrono::Duration::seconds(seconds);
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        ));
        sql_query("INSERT INTO events (id, type, occurred_at, post) VALUES ($1, 'webhook.test', $2, NULL)")
            .bind::<SqlUuid, _>(id)
            .bind::<Timestamptz, _>(at)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    drop(conn);
    assert_eq!(count_events(&app, &admin).await, 4);

    let purged = herald::housekeeping::purge_once(&app.state).await.unwrap();
    assert_eq!(purged.events, 2, "31 days and 30 days + a minute old");
    assert_eq!(count_events(&app, &admin).await, 2, "29 days old and fresh");
}

/// With a subscriber, every committed change of fifty concurrent ones queues exactly one fan-out
/// job for its own event; with none, a change queues no job at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_job_is_queued_per_change_only_while_someone_subscribes() {
    use diesel::{QueryableByName, sql_query, sql_types::BigInt};
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    async fn count(app: &TestApp, sql: &str) -> i64 {
        let mut conn = app.state.db.conn().await.unwrap();
        sql_query(sql)
            .get_result::<Count>(&mut conn)
            .await
            .unwrap()
            .n
    }
    const FANOUTS: &str = "SELECT count(*) AS n FROM jobs WHERE kind = 'event.fanout'";
    const DISTINCT_EVENTS: &str =
        "SELECT count(DISTINCT payload->>'eventId') AS n FROM jobs WHERE kind = 'event.fanout'";

    // The runner would finish (and, with retention, keep) the jobs anyway; off, they stay queued.
    let app = TestApp::with(
        Options::default()
            .env("RATE_LIMIT_WRITES", "1000/1m")
            .env("JOBS_ENABLED", "false"),
    )
    .await;
    let admin = app.user(Role::Admin).await;
    let author = app.user(Role::User).await;
    let post = app.create_post(&author, "Nobody listens yet", true).await;
    assert_eq!(count(&app, FANOUTS).await, 0, "no subscriber, no job");

    subscribe_to_updates(&app, &admin).await;
    let id = post["id"].as_str().unwrap().to_string();
    let statuses = fifty_concurrent_title_changes(&app, &author, &id, "Heard change").await;
    let ok = statuses.iter().filter(|s| **s == 200).count() as i64;
    assert!(ok > 0, "{statuses:?}");
    assert_eq!(
        count(&app, FANOUTS).await,
        ok,
        "one job per committed change"
    );
    assert_eq!(
        count(&app, DISTINCT_EVENTS).await,
        ok,
        "each for its own event"
    );

    // A type nobody subscribes to queues nothing.
    let deleted = app
        .delete(&format!("/v1/posts/{id}"))
        .bearer_auth(&author.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        count(&app, FANOUTS).await,
        ok,
        "post.deleted has no subscriber"
    );
}
