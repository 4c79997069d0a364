//! The test harness: every test gets the real app on 127.0.0.1:0, its own PostgreSQL database
//! (cloned from a migrated template, dropped afterwards) and, when it asks, its own Redis key
//! prefix (deleted afterwards). Tests talk HTTP to it.
//!
//! Environment: `TEST_DATABASE_URL` (a role that may CREATE DATABASE; default
//! postgres://herald:herald@127.0.0.1:5432/postgres), `TEST_REDIS_URL` (default
//! redis://127.0.0.1:6379), `TEST_LOG=1` to see the app's logs.

pub mod process;

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use herald::{
    app::{self, Server},
    config::Settings,
    security::{
        jwt::{JwtKeys, TokenSubject},
        rbac::Role,
    },
    state::AppState,
    users::{model::NewUserRow, repo as users_repo},
};
use redis::Commands as _;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

pub const PASSWORD: &str = "correct-horse-battery";

pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://herald:herald@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `admin_database_url` with another database name.
pub fn database_url(name: &str) -> String {
    let admin = admin_database_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
                .try_init();
        }
    });
}

/// A reqwest client builder for tests. Building the whole workspace unifies reqwest's features
/// with the Rust SDK's (rustls without a built-in crypto provider), so the provider is installed
/// here, once per process, before any client is built.
pub fn http_client() -> reqwest::ClientBuilder {
    static PROVIDER: OnceLock<()> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// The migrated template every test database is cloned from, named after a hash of the
/// migrations so a changed migration gets a fresh one (and after the run, see below).
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let mut hash = Sha256::new();
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .expect("migrations dir")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for entry in entries {
                hash.update(entry.file_name().expect("name").as_encoded_bytes());
                hash.update(std::fs::read(entry.join("up.sql")).unwrap_or_default());
            }
            let digest = hash.finalize();
            // `scripts/test` names its run (HERALD_TEST_RUN) so that it drops only its own
            // template at the end, never one a concurrent run is cloning from.
            let run = std::env::var("HERALD_TEST_RUN")
                .ok()
                .map(|r| {
                    r.chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(20)
                        .collect::<String>()
                })
                .filter(|r| !r.is_empty())
                .map_or(String::new(), |r| format!("_{r}"));
            let name = format!(
                "herald_tpl_{}{run}",
                digest[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            let mut admin = AsyncPgConnection::establish(&admin_database_url())
                .await
                .expect(
                    "connect to TEST_DATABASE_URL (run scripts/test, or see tests/api/support)",
                );
            // One creator at a time, across test processes.
            sql_query("SELECT pg_advisory_lock(424242)")
                .execute(&mut admin)
                .await
                .expect("lock");
            if !database_exists(&mut admin, &name).await {
                let building = format!("{name}_building");
                sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .expect("drop stale template");
                sql_query(format!("CREATE DATABASE {building}"))
                    .execute(&mut admin)
                    .await
                    .expect("create template");
                herald::db::run_migrations(&database_url(&building))
                    .await
                    .expect("migrate template");
                sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("rename template");
            }
            sql_query("SELECT pg_advisory_unlock(424242)")
                .execute(&mut admin)
                .await
                .expect("unlock");
            name
        })
        .await
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> bool {
    sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Exists>(conn)
        .await
        .map(|e| e.exists)
        .unwrap_or(false)
}

/// A fresh database cloned from the template; dropped when the guard goes.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let template = template().await;
        let name = format!("herald_test_{}", Uuid::now_v7().simple());
        let mut admin = AsyncPgConnection::establish(&admin_database_url())
            .await
            .expect("connect to TEST_DATABASE_URL");
        let mut attempt = 0;
        loop {
            match sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut admin)
                .await
            {
                Ok(_) => break,
                // Another session was briefly connected to the template.
                Err(err) if attempt < 20 => {
                    attempt += 1;
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(err) => panic!("create test database: {err}"),
            }
        }
        Self {
            url: database_url(&name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_database_url()).await {
                    let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Deletes a test's Redis keys when it goes.
pub struct RedisPrefix(pub String);

impl RedisPrefix {
    pub fn new() -> Self {
        Self(format!("herald:test:{}:", Uuid::now_v7().simple()))
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.0);
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(redis_url()) else {
                return;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                return;
            };
            let keys: Vec<String> = match conn.scan_match::<_, String>(&pattern) {
                Ok(iter) => iter.filter_map(Result::ok).collect(),
                Err(_) => return,
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        })
        .join();
    }
}

/// How to start a test app.
#[derive(Default, Clone)]
pub struct Options {
    /// Use Redis (the shared server unless `redis_url` is set).
    pub redis: bool,
    pub redis_url: Option<String>,
    /// Share this Redis key prefix (several instances of one "cluster").
    pub redis_prefix: Option<String>,
    /// Use this database instead of a fresh one (several instances of one "cluster").
    pub database_url: Option<String>,
    pub env: Vec<(String, String)>,
}

impl Options {
    pub fn redis() -> Self {
        Self {
            redis: true,
            ..Self::default()
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub database_url: String,
    pub redis_prefix: String,
    server: Option<Server>,
    // Dropped after the server.
    _redis_keys: Option<RedisPrefix>,
    _database: Option<TestDatabase>,
}

pub fn settings_for(
    database_url: &str,
    redis: Option<(&str, &str)>,
    env: &[(String, String)],
) -> Settings {
    let mut vars: HashMap<String, String> = [
        ("APP_ENV", "development"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("AUTO_MIGRATE", "false"),
        ("SHUTDOWN_DRAIN_DELAY", "0s"),
        ("DATABASE_POOL_SIZE", "8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.insert("DATABASE_URL".into(), database_url.into());
    if let Some((url, prefix)) = redis {
        vars.insert("REDIS_URL".into(), url.into());
        vars.insert("REDIS_KEY_PREFIX".into(), prefix.into());
        // Generous, so a loaded CI machine does not make Redis look down.
        vars.insert("REDIS_TIMEOUT".into(), "500ms".into());
    }
    for (k, v) in env {
        vars.insert(k.clone(), v.clone());
    }
    Settings::from_vars(&vars).expect("test settings")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        init_logs();
        let (database, database_url) = match &options.database_url {
            Some(url) => (None, url.clone()),
            None => {
                let db = TestDatabase::create().await;
                let url = db.url.clone();
                (Some(db), url)
            }
        };
        let (redis_keys, prefix) = match (&options.redis_prefix, options.redis) {
            (Some(prefix), _) => (None, prefix.clone()),
            (None, true) => {
                let keys = RedisPrefix::new();
                let prefix = keys.0.clone();
                (Some(keys), prefix)
            }
            (None, false) => (None, String::new()),
        };
        let redis_url = options.redis_url.clone().unwrap_or_else(redis_url);
        let redis = (options.redis || options.redis_prefix.is_some())
            .then_some((redis_url.as_str(), prefix.as_str()));
        let settings = settings_for(&database_url, redis, &options.env);
        let server = app::start(settings, std::future::pending())
            .await
            .expect("start app");
        let base = format!("http://{}", server.addr);
        Self {
            base,
            client: http_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            state: server.state.clone(),
            database_url,
            redis_prefix: prefix,
            server: Some(server),
            _redis_keys: redis_keys,
            _database: database,
        }
    }

    /// Another instance sharing this one's database and Redis prefix.
    pub async fn sibling(&self, redis: bool) -> TestApp {
        TestApp::with(Options {
            redis,
            redis_prefix: redis.then(|| self.redis_prefix.clone()),
            database_url: Some(self.database_url.clone()),
            ..Options::default()
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A user with this role, inserted directly, with an access token minted by the app.
    pub async fn user(&self, role: Role) -> TestUser {
        let mut conn = self.state.db.conn().await.expect("db");
        insert_user(&mut conn, &self.state.jwt, role).await
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .patch(self.url(path))
            .header("content-type", "application/merge-patch+json")
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// Creates a post as `user`; returns its JSON.
    pub async fn create_post(&self, user: &TestUser, title: &str, published: bool) -> Value {
        let response = self
            .post("/v1/posts")
            .bearer_auth(&user.token)
            .json(&serde_json::json!({
                "title": title,
                "content": "Some content that is long enough.",
                "published": published
            }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::CREATED, "create post");
        response.json().await.expect("json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

/// Inserts a user with this role and `PASSWORD`, and signs an access token for it with `keys`.
pub async fn insert_user(conn: &mut AsyncPgConnection, keys: &JwtKeys, role: Role) -> TestUser {
    let id = Uuid::now_v7();
    let username = format!("u{}", &id.simple().to_string()[20..]);
    let email = format!("{username}@example.com");
    let now = chrono::Utc::now();
    users_repo::insert(
        conn,
        NewUserRow {
            id,
            email: &email,
            username: &username,
            password_hash: password_hash().await,
            first_name: None,
            last_name: None,
            role: role.as_str(),
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .expect("insert user");
    let token = keys
        .issue(&TokenSubject {
            id,
            email: &email,
            username: &username,
            role,
        })
        .expect("token");
    TestUser {
        id,
        email,
        username,
        token,
    }
}

/// argon2 of `PASSWORD`, computed once per process.
pub async fn password_hash() -> &'static str {
    static HASH: OnceCell<String> = OnceCell::const_new();
    HASH.get_or_init(|| async {
        herald::security::password::PasswordHasher::new(1)
            .hash(PASSWORD)
            .await
            .expect("hash")
    })
    .await
}

pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub token: String,
}

/// Asserts an RFC 9457 problem with this status and code, consistent in header and body;
/// returns the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let headers = response.headers().clone();
    let path = response.url().path().to_string();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "status of {path}: {body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "content type of {path}"
    );
    assert_eq!(
        headers.get("x-error-code").and_then(|v| v.to_str().ok()),
        Some(code),
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["instance"], path, "{body}");
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(body["requestId"], request_id, "{body}");
    body
}

/// The `field`s of a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
