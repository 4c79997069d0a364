//! Fixed-window rate limits, counted atomically in Redis (one Lua script: `INCRBY` + `PEXPIRE`
//! on the window's first hit + `PTTL`), shared by every instance; with no Redis, or while it is
//! down, counted in process (moka entries that expire with their window).
//!
//! Invariants, for every bucket, in Redis and in process:
//! - **Exact under concurrency.** Every request is counted *before* it is admitted, and it is
//!   admitted only if its position in the window's count is within the limit. N concurrent
//!   requests against a limit L admit exactly min(N, L), on one instance or on several sharing
//!   Redis; none is refused while the shared count has room.
//! - **One round trip per burst, not per request.** Requests for the same key that arrive while
//!   a count for that key is on its way to Redis join the next one ("group commit"): one
//!   `INCRBY n` counts them all, and each learns its own position from the result. A hot key
//!   (one busy client IP) costs a Redis round trip per batch, and no token is ever held back by
//!   one instance where another could use it (which is what leases of reserved tokens did).
//! - **Give-back.** An attempt counted before the outcome is known (a login, counted before the
//!   password is checked) is given back with `release` when it turns out not to count.
//!
//! Why hand-written: the algorithm is the five-line script express-rate-limit's Redis store
//! uses, and its headers (limit, remaining, reset) describe exactly a fixed window. `governor`
//! (GCRA) keeps its state in process only, and cannot give an attempt back. One algorithm in
//! both stores keeps limits identical when Redis goes away.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};

use super::redis::Redis;
use crate::config::RateLimitRule;

/// Which limit a decision is about; also the policy name in the `RateLimit*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Requests per client IP across the API.
    Global,
    /// Failed logins per client IP and email.
    Login,
    /// Writes per user.
    Writes,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Global => "global",
            Bucket::Login => "login",
            Bucket::Writes => "writes",
        }
    }
}

/// The state of one limit after a request was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub bucket: Bucket,
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Until the window ends.
    pub reset: Duration,
    pub window: Duration,
}

impl Decision {
    /// The decision for a request whose cost brought the window's count to `position`.
    fn at(bucket: Bucket, rule: RateLimitRule, position: u64, reset: Duration) -> Self {
        Self {
            bucket,
            allowed: position <= rule.count,
            limit: rule.count,
            remaining: rule.count.saturating_sub(position),
            reset,
            window: rule.window,
        }
    }

    /// Seconds until the window resets, rounded up (what `RateLimit-Reset` and `Retry-After` say).
    pub fn reset_secs(&self) -> u64 {
        self.reset.as_secs() + u64::from(self.reset.subsec_nanos() > 0)
    }
}

/// What one `INCRBY` of a batch found: the window's count before the batch was added, and
/// the window's time left. A member's position is `before + offset + cost`.
#[derive(Debug, Clone, Copy)]
struct BatchCount {
    before: u64,
    ttl_ms: u64,
}

type CountFuture = Shared<BoxFuture<'static, Option<BatchCount>>>;

/// The batch of one key that is still open to joiners, and what it will add.
struct OpenBatch {
    total: u64,
    counted: CountFuture,
}

/// Per key: the batch being collected, and a lock that lets one batch at a time go to Redis.
#[derive(Default)]
struct KeyBatches {
    open: Mutex<Option<OpenBatch>>,
    sending: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: Option<Arc<Redis>>,
    local: Arc<LocalWindows>,
    batches: moka::sync::Cache<String, Arc<KeyBatches>>,
    hit_script: Arc<::redis::Script>,
    release_script: Arc<::redis::Script>,
}

impl RateLimiter {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Self {
            redis,
            local: Arc::new(LocalWindows::default()),
            batches: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            // KEYS[1] counter; ARGV[1] cost, ARGV[2] window ms. Returns {count, ms left}.
            hit_script: Arc::new(::redis::Script::new(
                r"local n = redis.call('INCRBY', KEYS[1], ARGV[1])
                  local ttl = redis.call('PTTL', KEYS[1])
                  if ttl < 0 then
                    redis.call('PEXPIRE', KEYS[1], ARGV[2])
                    ttl = tonumber(ARGV[2])
                  end
                  return {n, ttl}",
            )),
            // Gives back within the window that counted it; a window that ended is left alone.
            release_script: Arc::new(::redis::Script::new(
                r"if redis.call('EXISTS', KEYS[1]) == 1 then
                    return redis.call('DECRBY', KEYS[1], ARGV[1])
                  end
                  return 0",
            )),
        }
    }

    /// Counts `cost` events against `rule` for `key` in `bucket`, and decides.
    pub async fn hit(&self, bucket: Bucket, key: &str, rule: RateLimitRule, cost: u64) -> Decision {
        if let Some(redis) = self.redis.as_ref().filter(|r| r.is_up()) {
            let redis_key = redis.key(&format!("ratelimit:{}:{key}", bucket.name()));
            if let Some((position, reset)) = self.join_batch(redis, redis_key, rule, cost).await {
                return Decision::at(bucket, rule, position, reset);
            }
        }
        let (count, reset) = self.local.hit(bucket, key, rule, cost);
        Decision::at(bucket, rule, count, reset)
    }

    /// Gives back `cost` counted by `hit` (e.g. a login that succeeded).
    pub async fn release(&self, bucket: Bucket, key: &str, rule: RateLimitRule, cost: u64) {
        if let Some(redis) = self.redis.as_ref().filter(|r| r.is_up()) {
            let redis_key = redis.key(&format!("ratelimit:{}:{key}", bucket.name()));
            let mut invocation = self.release_script.key(redis_key);
            invocation.arg(cost);
            if redis
                .script::<i64>("ratelimit.release", &invocation)
                .await
                .is_some()
            {
                return;
            }
        }
        self.local.release(bucket, key, rule, cost);
    }

    /// Joins the open batch of `key` (opening one if there is none) and waits for its count.
    /// Returns this request's position in the window and the window's time left; `None` when
    /// Redis failed.
    async fn join_batch(
        &self,
        redis: &Arc<Redis>,
        key: String,
        rule: RateLimitRule,
        cost: u64,
    ) -> Option<(u64, Duration)> {
        let batches = self
            .batches
            .get_with_by_ref(&key, || Arc::new(KeyBatches::default()));
        let (counted, offset) = {
            let mut open = batches.open.lock().ok()?;
            match open.as_mut() {
                Some(batch) => {
                    let offset = batch.total;
                    batch.total += cost;
                    (batch.counted.clone(), offset)
                }
                None => {
                    let counted = self.send_batch(redis.clone(), batches.clone(), key, rule);
                    *open = Some(OpenBatch {
                        total: cost,
                        counted: counted.clone(),
                    });
                    (counted, 0)
                }
            }
        };
        let count = counted.await?;
        Some((
            count.before + offset + cost,
            Duration::from_millis(count.ttl_ms),
        ))
    }

    /// A task (not the request: a dropped request must not strand its batch) that waits for the
    /// previous batch of the key to come back, closes the open one and counts it in Redis.
    fn send_batch(
        &self,
        redis: Arc<Redis>,
        batches: Arc<KeyBatches>,
        key: String,
        rule: RateLimitRule,
    ) -> CountFuture {
        let script = self.hit_script.clone();
        let task = tokio::spawn(async move {
            let _one_at_a_time = batches.sending.lock().await;
            let total = batches.open.lock().ok()?.take()?.total;
            let mut invocation = script.key(key);
            invocation.arg(total).arg(rule.window.as_millis() as u64);
            let (count, ttl_ms): (u64, u64) = redis.script("ratelimit.hit", &invocation).await?;
            Some(BatchCount {
                before: count.saturating_sub(total),
                ttl_ms,
            })
        });
        task.map(|joined| joined.ok().flatten()).boxed().shared()
    }
}

/// Counters of one bucket and window length, each dropped when its window ends.
type Windows = moka::sync::Cache<String, Arc<Window>>;

/// In-process fixed windows: one counter per key.
#[derive(Default)]
struct LocalWindows {
    buckets: Mutex<Vec<(Bucket, Duration, Windows)>>,
}

struct Window {
    started: Instant,
    count: AtomicU64,
}

impl LocalWindows {
    fn windows_for(&self, bucket: Bucket, window: Duration) -> Windows {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock only means another thread panicked mid-insert; start afresh.
            return moka::sync::Cache::builder().time_to_live(window).build();
        };
        if let Some((_, _, cache)) = buckets
            .iter()
            .find(|(b, w, _)| *b == bucket && *w == window)
        {
            return cache.clone();
        }
        let cache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(window)
            .build();
        buckets.push((bucket, window, cache.clone()));
        cache
    }

    /// Adds `cost` to the key's window; returns the count after it (this request's position,
    /// exact under concurrency: one atomic add) and the window's time left.
    fn hit(&self, bucket: Bucket, key: &str, rule: RateLimitRule, cost: u64) -> (u64, Duration) {
        let windows = self.windows_for(bucket, rule.window);
        let window = windows.get_with_by_ref(key, || {
            Arc::new(Window {
                started: Instant::now(),
                count: AtomicU64::new(0),
            })
        });
        let count = window.count.fetch_add(cost, Ordering::AcqRel) + cost;
        let reset = rule.window.saturating_sub(window.started.elapsed());
        (count, reset)
    }

    fn release(&self, bucket: Bucket, key: &str, rule: RateLimitRule, cost: u64) {
        if let Some(window) = self.windows_for(bucket, rule.window).get(key) {
            let _ = window
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(cost))
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(count: u64) -> RateLimitRule {
        RateLimitRule {
            count,
            window: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn the_local_limiter_allows_exactly_the_limit() {
        let limiter = RateLimiter::new(None);
        for i in 1..=3 {
            let d = limiter.hit(Bucket::Writes, "u", rule(3), 1).await;
            assert!(d.allowed, "hit {i}");
            assert_eq!(d.remaining, 3 - i);
        }
        let d = limiter.hit(Bucket::Writes, "u", rule(3), 1).await;
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(d.reset_secs() <= 60 && d.reset_secs() >= 59);
        // Another key has its own window.
        assert!(limiter.hit(Bucket::Writes, "v", rule(3), 1).await.allowed);
    }

    #[tokio::test]
    async fn a_released_attempt_no_longer_counts() {
        let limiter = RateLimiter::new(None);
        assert!(limiter.hit(Bucket::Login, "k", rule(2), 1).await.allowed);
        limiter.release(Bucket::Login, "k", rule(2), 1).await;
        assert!(limiter.hit(Bucket::Login, "k", rule(2), 1).await.allowed);
        assert!(limiter.hit(Bucket::Login, "k", rule(2), 1).await.allowed);
        assert!(!limiter.hit(Bucket::Login, "k", rule(2), 1).await.allowed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_local_hits_admit_exactly_the_limit() {
        let limiter = RateLimiter::new(None);
        let hits = (0..200).map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.hit(Bucket::Global, "ip", rule(50), 1).await })
        });
        let decisions = futures_util::future::join_all(hits).await;
        let allowed = decisions
            .iter()
            .filter(|d| d.as_ref().unwrap().allowed)
            .count();
        assert_eq!(allowed, 50);
    }
}
