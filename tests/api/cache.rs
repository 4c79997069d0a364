//! The response cache through HTTP, with real Redis: hits, misses, invalidation on every write,
//! other instances seeing changes, and Redis going away and coming back.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use herald::security::rbac::Role;
use serde_json::Value;

use crate::support::{Options, TestApp};

async fn x_cache(app: &TestApp, path: &str) -> (String, Value) {
    let response = app.get(path).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let cache = response.headers()["x-cache"].to_str().unwrap().to_string();
    (cache, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_is_a_miss_then_a_hit_and_a_write_is_seen_at_once() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Cached once", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    assert_eq!(x_cache(&app, &path).await.0, "MISS");
    let (cache, body) = x_cache(&app, &path).await;
    assert_eq!(cache, "HIT");
    assert_eq!(body, post, "a hit is the same representation");
    let response = app
        .get(&path)
        .header("if-none-match", post["etag"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            response.status().as_u16(),
            response.headers()["x-cache"].to_str().unwrap()
        ),
        (304, "HIT")
    );

    let response = app
        .patch(&path)
        .bearer_auth(&user.token)
        .body(r#"{"title": "Changed at once"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (cache, body) = x_cache(&app, &path).await;
    assert_eq!(cache, "MISS");
    assert_eq!(body["title"], "Changed at once");
    assert_eq!(x_cache(&app, &path).await.0, "HIT");

    app.delete(&path)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.get(&path).send().await.unwrap().status(),
        404,
        "a deleted post is not served from cache"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_post_shows_in_the_cached_list_at_once() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    app.create_post(&user, "First in list", true).await;
    assert_eq!(x_cache(&app, "/v1/posts").await.0, "MISS");
    let (cache, page) = x_cache(&app, "/v1/posts").await;
    assert_eq!(cache, "HIT");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    app.create_post(&user, "Second in list", true).await;
    let (cache, page) = x_cache(&app, "/v1/posts").await;
    assert_eq!(cache, "MISS");
    assert_eq!(page["data"][0]["title"], "Second in list");
    // A draft changes no public page (and is never in one).
    app.create_post(&user, "Private draft", false).await;
    let (_, page) = x_cache(&app, "/v1/posts").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    // Pages that depend on the caller are not cached.
    let response = app
        .get("/v1/posts?status=all")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-cache"], "BYPASS");
}

/// A cached page's body includes its `nextLink`, so a page asked for with `status=all` (public
/// for an anonymous caller) must not answer the plain published list, and the reverse.
#[tokio::test(flavor = "multi_thread")]
async fn an_anonymous_status_all_page_does_not_answer_the_plain_list() {
    let app = TestApp::with(Options::redis()).await;
    let user = app.user(Role::User).await;
    for i in 0..3 {
        app.create_post(&user, &format!("Paged post {i}"), true)
            .await;
    }
    let (cache, anonymous_all) = x_cache(&app, "/v1/posts?status=all&limit=2").await;
    assert_eq!(cache, "MISS");
    let all_link = anonymous_all["nextLink"].as_str().unwrap().to_string();
    assert!(all_link.contains("status=all"), "{all_link}");
    let (cache, _) = x_cache(&app, "/v1/posts?status=all&limit=2").await;
    assert_eq!(
        cache, "HIT",
        "the status=all page is public for anonymous callers"
    );

    let response = app
        .get("/v1/posts?limit=2")
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let plain: Value = response.json().await.unwrap();
    let link = plain["nextLink"].as_str().unwrap();
    assert!(
        !link.contains("status="),
        "plain list links on plainly: {link}"
    );
    assert_eq!(
        plain["data"], anonymous_all["data"],
        "same posts, other link"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_cache_off_everything_bypasses() {
    let app = TestApp::with(Options::redis().env("CACHE_ENABLED", "false")).await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Never cached", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(x_cache(&app, &path).await.0, "BYPASS");
        assert_eq!(x_cache(&app, "/v1/posts").await.0, "BYPASS");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_the_in_process_cache_works_alone() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Local cache", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    assert_eq!(x_cache(&app, &path).await.0, "MISS");
    assert_eq!(x_cache(&app, &path).await.0, "HIT");
    app.patch(&path)
        .bearer_auth(&user.token)
        .body(r#"{"title": "Locally changed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&app, &path).await.1["title"], "Locally changed");
    let health: Value = app
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["services"]["cache"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_instance_sees_a_change_within_a_second() {
    let a = TestApp::with(Options::redis()).await;
    let b = a.sibling(true).await;
    let user = a.user(Role::User).await;
    let post = a.create_post(&user, "Shared across instances", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    // Warm both instances (B reads it through Redis into its own tier).
    x_cache(&a, &path).await;
    x_cache(&b, &path).await;
    assert_eq!(x_cache(&b, &path).await.0, "HIT");
    x_cache(&b, "/v1/posts").await;

    let response = a
        .patch(&path)
        .bearer_auth(&user.token)
        .body(r#"{"title": "Changed on A"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    a.create_post(&user, "Created on A", true).await;
    let started = Instant::now();
    loop {
        let (_, body) = x_cache(&b, &path).await;
        let (_, page) = x_cache(&b, "/v1/posts").await;
        if body["title"] == "Changed on A" && page["data"][0]["title"] == "Created on A" {
            break;
        }
        // A liveness bound, not a speed claim (the latency is printed; speed is the bench's).
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B still serves stale data after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("instance B saw A's writes after {:?}", started.elapsed());
}

/// Polls `check` until it holds; fails after a generous liveness bound (not a speed claim).
async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "waited 15 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A private redis-server, killed and restarted by the test. It listens on a Unix socket of
/// its own (a path no other test can take), not a TCP port: a port found free and then released
/// for redis-server to bind could be taken by another test in between, and a restart on the same
/// port could find it taken.
struct PrivateRedis {
    socket: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let socket =
            std::env::temp_dir().join(format!("herald-test-redis-{}.sock", uuid::Uuid::now_v7()));
        let mut this = Self {
            socket,
            child: None,
        };
        this.restart();
        this
    }

    /// Starts (again) on the same socket and waits until it accepts connections.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_dying_under_load_costs_no_errors_and_the_cache_comes_back() {
    let mut redis = PrivateRedis::start();
    let app = TestApp::with(Options {
        redis: true,
        redis_url: Some(redis.url()),
        env: vec![
            ("REDIS_TIMEOUT".into(), "50ms".into()),
            ("RATE_LIMIT_GLOBAL".into(), "100000/1m".into()),
        ],
        ..Options::default()
    })
    .await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "Survives Redis", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    x_cache(&app, &path).await;
    assert_eq!(x_cache(&app, &path).await.0, "HIT");

    // Concurrent readers and a writer while Redis is killed.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (client, url, list, token, stop, served) = (
            app.client.clone(),
            app.url(&path),
            app.url("/v1/posts"),
            user.token.clone(),
            stop.clone(),
            served.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut count = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let response = if worker == 0 && count % 5 == 0 {
                    client
                        .patch(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/merge-patch+json")
                        .body(format!(
                            r#"{{"content": "Written during the outage {count}"}}"#
                        ))
                        .send()
                        .await
                } else if count % 2 == 0 {
                    client.get(&list).send().await
                } else {
                    client.get(&url).send().await
                }
                .expect("request");
                let status = response.status();
                assert!(!status.is_server_error(), "{status} during a Redis outage");
                slowest = slowest.max(started.elapsed());
                count += 1;
                served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (count, slowest)
        }));
    }
    // Kill Redis once the load is running, then wait until the service has noticed.
    wait_for("the load to start", || async {
        served.load(std::sync::atomic::Ordering::Relaxed) >= 40
    })
    .await;
    redis.kill();
    let during_outage = served.load(std::sync::atomic::Ordering::Relaxed);
    wait_for("/health to report the cache degraded", || async {
        let health: Value = app
            .get("/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "healthy", "{health}");
        health["services"]["cache"] == "degraded"
    })
    .await;
    wait_for("requests to go on during the outage", || async {
        served.load(std::sync::atomic::Ordering::Relaxed) >= during_outage + 40
    })
    .await;
    let (cache, _) = x_cache(&app, &path).await;
    assert_eq!(cache, "BYPASS");

    redis.restart();
    let restarted = Instant::now();
    loop {
        let (cache, body) = x_cache(&app, &path).await;
        if cache == "HIT" {
            assert!(
                body["content"]
                    .as_str()
                    .unwrap()
                    .starts_with("Written during the outage"),
                "{body}"
            );
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "no cache hit 15 s after Redis returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = restarted.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut requests = 0;
    let mut slowest_of_all = Duration::ZERO;
    for worker in load {
        let (count, slowest) = worker.await.unwrap();
        requests += count;
        slowest_of_all = slowest_of_all.max(slowest);
    }
    let health: Value = app
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["services"]["cache"], "ok");
    eprintln!(
        "{requests} requests across the outage, none failed (slowest {slowest_of_all:?}); cache hits again {recovered:?} after restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_redis_at_start_up_degrades_but_serves() {
    let app = TestApp::with(Options {
        redis: true,
        // A socket nobody listens on.
        redis_url: Some(format!(
            "redis+unix://{}",
            std::env::temp_dir()
                .join(format!(
                    "herald-test-no-redis-{}.sock",
                    uuid::Uuid::now_v7()
                ))
                .display()
        )),
        ..Options::default()
    })
    .await;
    let user = app.user(Role::User).await;
    let post = app.create_post(&user, "No Redis at all", true).await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    assert_eq!(x_cache(&app, &path).await.0, "BYPASS");
    let response = app.get("/health").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let health: Value = response.json().await.unwrap();
    assert_eq!(
        health["services"],
        serde_json::json!({"database": "ok", "cache": "degraded"})
    );
}
