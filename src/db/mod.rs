//! PostgreSQL access: the bb8 pool of diesel-async connections, embedded migrations, and the
//! mapping of pool and driver failures to `AppError`. Repositories (`*/repo.rs`) use `Db::conn`.

pub mod schema;

use std::{sync::Arc, time::Duration};

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, PoolError, PoolableConnection,
        RecyclingMethod,
        bb8::{Pool, PooledConnection, RunError},
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{error::AppError, telemetry::WarnThrottle};

/// The SQL migrations, compiled into the binary: `herald migrate` needs no files at run time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type Conn<'a> = PooledConnection<'a, AsyncPgConnection>;

/// Pool handle; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    size: u32,
    url: Arc<str>,
    acquire_timeout: Duration,
    reachable: Arc<Reachability>,
}

/// Whether the database answered the pool's last connection attempt. bb8 makes a waiting
/// `get()` sit out its whole timeout even when connecting is refused at once; this lets a
/// request fail fast instead (503 at once), and `watch` notices when the database is back.
struct Reachability {
    down: tokio::sync::watch::Sender<bool>,
    warnings: WarnThrottle,
}

impl Reachability {
    fn mark_down(&self, reason: &dyn std::fmt::Display) {
        let was_down = self.down.send_replace(true);
        if !was_down || self.warnings.allow() {
            tracing::warn!(error = %reason, "database unreachable: requests that need it get 503");
        }
    }
}

/// bb8 hands connection errors to its error sink; ours records the outage.
#[derive(Clone)]
struct MarkDown(Arc<Reachability>);

impl std::fmt::Debug for MarkDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkDown")
    }
}

impl bb8::ErrorSink<PoolError> for MarkDown {
    fn sink(&self, error: PoolError) {
        self.0.mark_down(&error);
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

impl Db {
    /// Builds the pool without connecting, so the service starts (and reports not-ready)
    /// while the database is still down. `acquire_timeout` bounds every `conn()`.
    pub fn new(database_url: &str, size: u32, acquire_timeout: Duration) -> Self {
        let mut config = ManagerConfig::default();
        // A checkout only checks the connection's own "closed" flag (no round trip); a
        // connection the server dropped is discarded and replaced.
        config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            database_url,
            config,
        );
        let reachable = Arc::new(Reachability {
            down: tokio::sync::watch::Sender::new(false),
            warnings: WarnThrottle::new(Duration::from_secs(10)),
        });
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1.min(size)))
            .connection_timeout(acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .retry_connection(false)
            .error_sink(Box::new(MarkDown(reachable.clone())))
            .build_unchecked(manager);
        Self {
            pool,
            size,
            url: database_url.into(),
            acquire_timeout,
            reachable,
        }
    }

    /// A pooled connection, or `Unavailable`: at once while the database is known to be
    /// unreachable, else once the acquire timeout passes.
    pub async fn conn(&self) -> Result<Conn<'_>, AppError> {
        // The pool checkout as a span of its own when exporting: where a request waited.
        let span = crate::child_span!(
            "db.pool.acquire",
            otel.kind = "client",
            db.system.name = "postgresql",
        );
        tracing::Instrument::instrument(self.checkout(), span).await
    }

    async fn checkout(&self) -> Result<Conn<'_>, AppError> {
        let mut down = self.reachable.down.subscribe();
        if *down.borrow_and_update() {
            return Err(AppError::Unavailable("database unreachable".into()));
        }
        // A connection whose socket died while idle says so through `is_broken`; dropping it
        // here makes bb8 discard it, so we never hand out a connection known to be dead.
        for _ in 0..=self.pool.state().connections {
            let mut conn = tokio::select! {
                got = self.pool.get() => got.map_err(pool_error)?,
                _ = down.wait_for(|down| *down) => {
                    return Err(AppError::Unavailable("database unreachable".into()));
                }
            };
            if !conn.is_broken() {
                return Ok(conn);
            }
        }
        Err(AppError::Unavailable(
            "no working database connection".into(),
        ))
    }

    pub fn is_down(&self) -> bool {
        *self.reachable.down.borrow()
    }

    /// While the database is marked down, tries a connection every `interval` and clears the
    /// mark when one succeeds. Returns when `stop` resolves.
    pub async fn watch(self, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if !self.is_down() {
                continue;
            }
            let attempt = tokio::time::timeout(
                self.acquire_timeout,
                AsyncPgConnection::establish(&self.url),
            )
            .await;
            if let Ok(Ok(_)) = attempt {
                self.reachable.down.send_replace(false);
                tracing::info!("database reachable again");
            }
        }
    }

    /// `SELECT 1` within the acquire timeout: used by readiness and health.
    pub async fn ping(&self) -> Result<(), AppError> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(AppError::from)
    }

    /// (connections open, connections idle, max size): exported as metrics.
    pub fn stats(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections, self.size)
    }
}

fn pool_error(err: RunError) -> AppError {
    match err {
        RunError::TimedOut => {
            AppError::Unavailable("timed out waiting for a database connection".into())
        }
        RunError::User(e) => AppError::Unavailable(format!("cannot connect to the database: {e}")),
    }
}

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        match &err {
            DieselError::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
                _,
            ) => AppError::Unavailable(err.to_string()),
            // The server is shutting down, starting up or in recovery (SQLSTATE 57P0x): transient.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().starts_with("terminating connection")
                    || info.message().starts_with("the database system is") =>
            {
                AppError::Unavailable(err.to_string())
            }
            DieselError::BrokenTransactionManager => AppError::Unavailable(err.to_string()),
            _ => AppError::internal_from("database", err),
        }
    }
}

/// Applies every pending migration; returns how many ran.
pub async fn run_migrations(database_url: &str) -> Result<usize, AppError> {
    let conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| AppError::Unavailable(format!("cannot connect to the database: {e}")))?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| AppError::internal(format!("migration failed: {e}")))?;
    Ok(applied.len())
}

/// The unique-index name a violation reports, if any.
pub fn violated_constraint(err: &DieselError) -> Option<&str> {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            info.constraint_name()
        }
        _ => None,
    }
}
