//! PostgreSQL access: the bb8 pool of diesel-async connections, embedded migrations, and the
//! mapping of pool and driver failures to `AppError`. Repositories (`*/repo.rs`) use `Db::conn`.

pub mod schema;

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
        bb8::{Pool, PooledConnection, RunError},
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::AppError;

/// The SQL migrations, compiled into the binary: `herald migrate` needs no files at run time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type Conn<'a> = PooledConnection<'a, AsyncPgConnection>;

/// Pool handle; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    size: u32,
}

impl Db {
    /// Builds the pool without connecting, so the service starts (and reports not-ready)
    /// while the database is still down. `acquire_timeout` bounds every `conn()`.
    pub fn new(database_url: &str, size: u32, acquire_timeout: Duration) -> Self {
        let mut config = ManagerConfig::default();
        // A checkout only checks the connection's own "closed" flag (no round trip); a
        // connection the server dropped is discarded and replaced.
        config.recycling_method = RecyclingMethod::Fast;
        let manager =
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1.min(size)))
            .connection_timeout(acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .retry_connection(false)
            .build_unchecked(manager);
        Self { pool, size }
    }

    /// A pooled connection, or `Unavailable` once the acquire timeout passes.
    pub async fn conn(&self) -> Result<Conn<'_>, AppError> {
        // A connection whose socket died while idle says so through `is_broken`; dropping it
        // here makes bb8 discard it, so we never hand out a connection known to be dead.
        for _ in 0..=self.pool.state().connections {
            let mut conn = self.pool.get().await.map_err(pool_error)?;
            if !conn.is_broken() {
                return Ok(conn);
            }
        }
        Err(AppError::Unavailable("no working database connection".into()))
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
        RunError::TimedOut => AppError::Unavailable("timed out waiting for a database connection".into()),
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
            _ => AppError::Internal(format!("database: {err}")),
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
        .map_err(|e| AppError::Internal(format!("migration failed: {e}")))?;
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
