//! The shared Redis connection: a bb8-redis pool with every command bounded by `REDIS_TIMEOUT`,
//! and an up/down flag that the cache and the rate limiter consult before they try.
//!
//! When a command fails or times out, Redis is marked down: callers fall back (cache bypassed,
//! in-process limiter) without paying a timeout per request, one warning is logged per interval,
//! and a probe task marks it up again as soon as a PING answers.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bb8_redis::{RedisConnectionManager, bb8};
use redis::{FromRedisValue, RedisError, RedisResult, aio::MultiplexedConnection};

use crate::telemetry::WarnThrottle;

/// bb8-redis' manager never reports a connection as broken; this one does after an I/O error
/// or a timeout, so the pool replaces it instead of handing it out again.
pub struct Manager {
    inner: RedisConnectionManager,
}

pub struct Connection {
    conn: MultiplexedConnection,
    broken: bool,
}

impl bb8::ManageConnection for Manager {
    type Connection = Connection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Connection, RedisError> {
        let conn = bb8::ManageConnection::connect(&self.inner).await?;
        Ok(Connection {
            conn,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), RedisError> {
        bb8::ManageConnection::is_valid(&self.inner, &mut conn.conn).await
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.broken
    }
}

pub struct Redis {
    pool: bb8::Pool<Manager>,
    client: redis::Client,
    timeout: Duration,
    prefix: String,
    up: AtomicBool,
    warnings: WarnThrottle,
}

impl Redis {
    /// Builds the pool without connecting; `probe` decides when Redis counts as up.
    pub fn new(url: &str, timeout: Duration, prefix: &str) -> RedisResult<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let manager = Manager {
            inner: RedisConnectionManager::new(url)?,
        };
        let pool = bb8::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            // A connection is checked by its own broken flag, not a PING per checkout.
            .test_on_check_out(false)
            .connection_timeout(timeout.max(Duration::from_millis(100)))
            .retry_connection(false)
            .build_unchecked(manager);
        Ok(Arc::new(Self {
            pool,
            client,
            timeout,
            prefix: prefix.to_string(),
            up: AtomicBool::new(false),
            warnings: WarnThrottle::new(Duration::from_secs(10)),
        }))
    }

    /// `prefix` + `suffix`: every key Herald writes lives under the configured prefix.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// (connections open, connections idle): exported as metrics.
    pub fn stats(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs a command within the timeout. `None` (and Redis marked down) when Redis is down,
    /// fails or is slow; callers then fall back.
    pub async fn cmd<T: FromRedisValue>(&self, what: &'static str, cmd: &redis::Cmd) -> Option<T> {
        self.run(
            what,
            |mut conn| async move { cmd.query_async(&mut conn).await },
        )
        .await
    }

    /// Runs a Lua script invocation (EVALSHA, loading the script on first use) like `cmd`.
    pub async fn script<T: FromRedisValue>(
        &self,
        what: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        self.run(what, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Option<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return None;
        }
        // One client span per operation (named by `what`, e.g. `cache.get_post`) when exporting.
        let span = crate::child_span!(
            "redis",
            otel.name = what,
            otel.kind = "client",
            db.system.name = "redis",
            db.operation.name = what,
        );
        tracing::Instrument::instrument(self.run_attempts(what, op), span).await
    }

    async fn run_attempts<T, F, Fut>(&self, what: &'static str, op: F) -> Option<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        // A connection that died with a Redis restart fails at once; the pool may hold a few,
        // so try again on another before calling Redis down.
        let mut last_error = String::new();
        for _ in 0..3 {
            let attempt = async {
                let mut pooled = self.pool.get().await.map_err(|e| (e.to_string(), false))?;
                // The multiplexed handle is a cheap clone of the pooled connection.
                op(pooled.conn.clone()).await.map_err(|err| {
                    let dead = err.is_io_error()
                        || err.is_connection_dropped()
                        || err.is_unrecoverable_error()
                        || err.is_connection_refusal();
                    pooled.broken |= dead || err.is_timeout();
                    (err.to_string(), dead)
                })
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(value)) => return Some(value),
                Ok(Err((reason, true))) => last_error = reason,
                Ok(Err((reason, false))) => {
                    self.mark_down(what, &reason);
                    return None;
                }
                Err(_) => {
                    self.mark_down(what, "timed out");
                    return None;
                }
            }
        }
        self.mark_down(what, &last_error);
        None
    }

    fn mark_down(&self, what: &str, reason: &str) {
        let was_up = self.up.swap(false, Ordering::Relaxed);
        if was_up || self.warnings.allow() {
            tracing::warn!(
                redis.operation = what,
                error = reason,
                "redis unavailable: cache bypassed, rate limits per instance until it recovers"
            );
        }
    }

    /// One PING within the timeout; marks Redis up when it answers. Returns whether it did.
    pub async fn probe(&self) -> bool {
        let ping = async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let ok = matches!(
            tokio::time::timeout(self.timeout.max(Duration::from_millis(250)), ping).await,
            Ok(Ok(_))
        );
        if ok && !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!("redis reachable: shared cache and rate limits active");
        }
        ok
    }

    /// Probes every `interval` while Redis is down; exits when `stop` resolves.
    pub async fn watch(self: Arc<Self>, interval: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if !self.is_up() && !self.probe().await && self.warnings.allow() {
                tracing::warn!("redis still unreachable");
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
