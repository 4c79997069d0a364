//! Fixed-window rate limits, counted atomically in Redis in one round trip (a Lua script:
//! `INCRBY` + `PEXPIRE` on the window's first hit + `PTTL`), shared by every instance; with no
//! Redis, or while it is down, counted in process (moka entries that expire with their window).
//!
//! Why hand-written: the algorithm is the five-line script express-rate-limit's Redis store
//! uses, and its headers (limit, remaining, reset) describe exactly a fixed window. `governor`
//! (GCRA) cannot peek without consuming, which the failed-login limit needs (the 6th attempt
//! is refused before the password is checked, and only failures count), and its state cannot
//! be shared through Redis. One algorithm in both stores keeps limits identical when Redis goes
//! away.
//!
//! Hot keys (one busy client IP, one busy user) would cost a Redis round trip per request, so
//! the global and write limits reserve tokens in batches ("leases"): a reservation is one
//! atomic `INCRBY n` of the shared counter, and requests then spend the reserved tokens in
//! process. A lease starts at one token, doubles while refills come faster than every 100 ms
//! (up to 256) and never exceeds an eighth of what is left of the limit, so limits stay exact
//! near their boundary and other instances only ever see reserved tokens as spent (never more
//! requests than the limit pass in total). Failed logins are not leased: they are rare and
//! peeked at.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
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

/// The state of one limit after a request was counted (or peeked at).
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
    fn new(bucket: Bucket, rule: RateLimitRule, count: u64, cost: u64, reset: Duration) -> Self {
        // A peek (cost 0) asks whether one more would pass.
        let allowed = if cost == 0 {
            count < rule.count
        } else {
            count <= rule.count
        };
        Self {
            bucket,
            allowed,
            limit: rule.count,
            remaining: rule.count.saturating_sub(count),
            reset,
            window: rule.window,
        }
    }

    /// Seconds until the window resets, rounded up (what `RateLimit-Reset` and `Retry-After` say).
    pub fn reset_secs(&self) -> u64 {
        self.reset.as_secs() + u64::from(self.reset.subsec_nanos() > 0)
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: Option<Arc<Redis>>,
    local: Arc<LocalWindows>,
    /// One map per leased bucket (global, writes), keyed by client IP or user id.
    leases: [Leases; 2],
    script: Arc<::redis::Script>,
}

type Leases = moka::sync::Cache<String, Arc<Lease>>;

/// Tokens of one key reserved in Redis by this instance. Spending is a short synchronous
/// critical section; only refills wait on Redis, one at a time per key.
#[derive(Debug, Default)]
struct Lease {
    state: std::sync::Mutex<LeaseState>,
    refill: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct LeaseState {
    /// Reserved and not spent yet.
    unused: u64,
    /// The shared counter after our last reservation.
    counted: u64,
    window_ends: Option<Instant>,
    /// The last reservation's size.
    size: u64,
    last_refill: Option<Instant>,
}

const MAX_LEASE: u64 = 256;
/// Refills closer together than this mean the key is hot: reserve more next time.
const HOT_REFILL: Duration = Duration::from_millis(100);

impl RateLimiter {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Self {
            redis,
            local: Arc::new(LocalWindows::default()),
            leases: std::array::from_fn(|_| {
                moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_idle(Duration::from_secs(3600))
                    .build()
            }),
            // KEYS[1] counter; ARGV[1] cost, ARGV[2] window ms. Returns {count, ms left}.
            script: Arc::new(::redis::Script::new(
                r"local n = redis.call('INCRBY', KEYS[1], ARGV[1])
                  local ttl = redis.call('PTTL', KEYS[1])
                  if ttl < 0 then
                    redis.call('PEXPIRE', KEYS[1], ARGV[2])
                    ttl = tonumber(ARGV[2])
                  end
                  return {n, ttl}",
            )),
        }
    }

    /// Counts `cost` events (0: just look) against `rule` for `key` in `bucket`.
    pub async fn hit(&self, bucket: Bucket, key: &str, rule: RateLimitRule, cost: u64) -> Decision {
        if let Some(redis) = &self.redis {
            let decided = if cost > 0 && bucket != Bucket::Login {
                self.hit_leased(redis, bucket, key, rule, cost).await
            } else {
                self.hit_redis(redis, bucket, key, rule, cost)
                    .await
                    .map(|(count, ttl_ms)| {
                        Decision::new(bucket, rule, count, cost, Duration::from_millis(ttl_ms))
                    })
            };
            if let Some(decision) = decided {
                return decision;
            }
        }
        let (count, reset) = self.local.hit(bucket, key, rule, cost);
        Decision::new(bucket, rule, count, cost, reset)
    }

    /// Spends reserved tokens, reserving more in Redis when they run out. `None` when Redis
    /// cannot be asked.
    async fn hit_leased(
        &self,
        redis: &Redis,
        bucket: Bucket,
        key: &str,
        rule: RateLimitRule,
        cost: u64,
    ) -> Option<Decision> {
        let leases = &self.leases[usize::from(bucket == Bucket::Writes)];
        let lease = match leases.get(key) {
            Some(lease) => lease,
            None => leases.get_with_by_ref(key, || Arc::new(Lease::default())),
        };
        if let Some(decision) = spend(&lease, bucket, rule, cost) {
            return Some(decision);
        }
        // Out of tokens: one refill at a time per key; whoever waited may find tokens now.
        let _refilling = lease.refill.lock().await;
        if let Some(decision) = spend(&lease, bucket, rule, cost) {
            return Some(decision);
        }
        let now = Instant::now();
        let size = {
            let state = lease.state.lock().ok()?;
            let hot = state
                .last_refill
                .is_some_and(|at| now.duration_since(at) < HOT_REFILL);
            let wanted = if hot {
                (state.size * 2).min(MAX_LEASE)
            } else {
                1
            };
            let counted = if state.window_ends.is_some_and(|end| now < end) {
                state.counted
            } else {
                0
            };
            wanted.min(rule.count.saturating_sub(counted) / 8).max(cost)
        };
        let (count, ttl_ms) = self.hit_redis(redis, bucket, key, rule, size).await?;
        let granted = size.saturating_sub(count.saturating_sub(rule.count));
        let mut state = lease.state.lock().ok()?;
        state.counted = count;
        state.size = size;
        state.last_refill = Some(now);
        state.window_ends = Some(now + Duration::from_millis(ttl_ms));
        state.unused = granted.saturating_sub(cost);
        Some(Decision {
            allowed: granted >= cost,
            ..Decision::new(
                bucket,
                rule,
                count - state.unused,
                cost,
                Duration::from_millis(ttl_ms),
            )
        })
    }

    async fn hit_redis(
        &self,
        redis: &Redis,
        bucket: Bucket,
        key: &str,
        rule: RateLimitRule,
        cost: u64,
    ) -> Option<(u64, u64)> {
        let key = redis.key(&format!("ratelimit:{}:{key}", bucket.name()));
        let window_ms = rule.window.as_millis() as u64;
        let mut invocation = self.script.key(key);
        invocation.arg(cost).arg(window_ms);
        redis.script("ratelimit.hit", &invocation).await
    }
}

/// Spends `cost` reserved tokens if the lease holds them for the current window.
fn spend(lease: &Lease, bucket: Bucket, rule: RateLimitRule, cost: u64) -> Option<Decision> {
    let mut state = lease.state.lock().ok()?;
    let now = Instant::now();
    let end = state.window_ends.filter(|end| now < *end)?;
    if state.unused < cost {
        return None;
    }
    state.unused -= cost;
    let spent = state.counted - state.unused;
    Some(Decision::new(bucket, rule, spent, cost, end - now))
}

/// Counters of one bucket and window length, each dropped when its window ends.
type Windows = moka::sync::Cache<String, Arc<Window>>;

/// In-process fixed windows: one counter per key.
#[derive(Default)]
struct LocalWindows {
    buckets: std::sync::Mutex<Vec<(Bucket, Duration, Windows)>>,
}

struct Window {
    started: Instant,
    count: AtomicU64,
}

impl LocalWindows {
    fn windows_for(
        &self,
        bucket: Bucket,
        window: Duration,
    ) -> moka::sync::Cache<String, Arc<Window>> {
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
    async fn a_peek_does_not_count() {
        let limiter = RateLimiter::new(None);
        for _ in 0..5 {
            assert!(limiter.hit(Bucket::Login, "k", rule(2), 0).await.allowed);
        }
        limiter.hit(Bucket::Login, "k", rule(2), 1).await;
        assert!(limiter.hit(Bucket::Login, "k", rule(2), 0).await.allowed);
        limiter.hit(Bucket::Login, "k", rule(2), 1).await;
        assert!(!limiter.hit(Bucket::Login, "k", rule(2), 0).await.allowed);
    }
}
