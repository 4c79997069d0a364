//! The response cache for public post data (post detail and published list pages), and the
//! rate limiter (`ratelimit`). Only this folder knows Redis.
//!
//! A post is cached once per representation (`views`: the API versions' names); the views of
//! one post share its versioned invalidation, so a write invalidates all of them at once.
//!
//! Two tiers: an in-process moka tier in front of Redis. Every write invalidates what it
//! changed: the detail key directly (a versioned tombstone, so a slow reader cannot put an older
//! copy back) and all list pages at once through a generation counter that is part of their
//! keys (never `KEYS`/`SCAN`). Invalidations are published on a Redis channel; every instance
//! drops its in-process copies when it hears one, and uses its in-process tier only while it is
//! subscribed, so other instances see a change within milliseconds. Without `REDIS_URL` the
//! in-process tier works alone (one instance). With Redis down the cache is bypassed;
//! invalidations that could not reach Redis are replayed before it is used again.

pub mod ratelimit;
pub mod redis;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::StreamExt;
use uuid::Uuid;

use self::redis::Redis;

/// Where a cacheable response came from (`X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// Cache switched off, Redis unreachable, or the response is not cacheable (private).
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// A cached response body and, for single resources, its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub etag: Option<String>,
    pub body: Bytes,
}

impl Cached {
    /// Approximate bytes held, for the in-process tier's bound.
    fn weight(&self) -> u32 {
        let bytes = self.body.len() + self.etag.as_ref().map_or(0, String::len) + 64;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// State captured when a lookup missed, handed back to the matching `put_*`: it lets the put
/// notice that an invalidation happened in between (then the copy may be stale: not kept).
#[derive(Debug, Clone, Copy)]
pub struct FillToken {
    epoch: u64,
    generation: u64,
}

/// What `/health` reports for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHealth {
    Ok,
    Degraded,
}

/// Invalidations not yet delivered to Redis (it was down). The cache stays bypassed until
/// they are, or until every entry they concern has expired (`overflowed`).
#[derive(Default)]
struct Pending {
    /// Post id → its version after the write.
    posts: HashMap<Uuid, i64>,
    lists: bool,
    overflowed_until: Option<Instant>,
}

const MAX_PENDING_POSTS: usize = 10_000;
/// Memory of each in-process tier (posts, list pages).
const LOCAL_TIER_BYTES: u64 = 4 * 1024 * 1024;
const CHANNEL: &str = "invalidations";

#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    ttl_post: Duration,
    ttl_list: Duration,
    redis: Option<Arc<Redis>>,
    /// The representations a post is cached in (one key each).
    views: &'static [&'static str],
    local_posts: moka::sync::Cache<(Uuid, &'static str), Arc<Cached>>,
    local_lists: moka::sync::Cache<String, Arc<Cached>>,
    /// Whether the in-process tier may be used: always without Redis; with Redis only while
    /// subscribed to invalidations.
    local_ready: AtomicBool,
    /// Bumped by every invalidation this instance makes or hears.
    epoch: AtomicU64,
    pending: Mutex<Pending>,
    has_pending: AtomicBool,
    list_bumps: ListBumps,
    scripts: Scripts,
}

/// Tickets of writers waiting for the list generation to be bumped (see `invalidate_lists`).
#[derive(Default)]
struct ListBumps {
    requested: AtomicU64,
    completed: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

struct Scripts {
    get_list: ::redis::Script,
    put_versioned: ::redis::Script,
    bump_generation: ::redis::Script,
}

impl Cache {
    pub fn new(
        enabled: bool,
        ttl_post: Duration,
        ttl_list: Duration,
        redis: Option<Arc<Redis>>,
        views: &'static [&'static str],
    ) -> Self {
        let local_ready = redis.is_none();
        Self {
            inner: Arc::new(Inner {
                enabled,
                ttl_post,
                ttl_list,
                // Bounded by bytes, not entries: a list page weighs as much as a hundred posts.
                local_posts: moka::sync::Cache::builder()
                    .max_capacity(LOCAL_TIER_BYTES)
                    .weigher(|_, entry: &Arc<Cached>| entry.weight())
                    .time_to_live(ttl_post)
                    .build(),
                local_lists: moka::sync::Cache::builder()
                    .max_capacity(LOCAL_TIER_BYTES)
                    .weigher(|_, entry: &Arc<Cached>| entry.weight())
                    .time_to_live(ttl_list)
                    .build(),
                redis,
                views,
                local_ready: AtomicBool::new(local_ready),
                epoch: AtomicU64::new(0),
                pending: Mutex::new(Pending::default()),
                has_pending: AtomicBool::new(false),
                list_bumps: ListBumps::default(),
                scripts: Scripts {
                    // KEYS[1] generation key; ARGV[1] page key prefix, ARGV[2] page query.
                    get_list: ::redis::Script::new(
                        r"local g = redis.call('GET', KEYS[1]) or '0'
                          return {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}",
                    ),
                    // KEYS[1] key; ARGV: version, value, ttl ms, channel, message.
                    // Never replaces a newer version (a slow reader's stale copy loses to the
                    // tombstone a writer left).
                    put_versioned: ::redis::Script::new(
                        r"local cur = redis.call('GET', KEYS[1])
                          if cur then
                            local v = tonumber(string.match(cur, '^(%-?%d+)'))
                            if v and v > tonumber(ARGV[1]) then return 0 end
                          end
                          redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
                          if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
                          return 1",
                    ),
                    // KEYS[1] generation key; ARGV: channel.
                    bump_generation: ::redis::Script::new(
                        r"redis.call('INCR', KEYS[1])
                          redis.call('PUBLISH', ARGV[1], 'lists')
                          return 1",
                    ),
                },
            }),
        }
    }

    pub fn health(&self) -> CacheHealth {
        match &self.inner.redis {
            Some(redis) if !redis.is_up() => CacheHealth::Degraded,
            _ => CacheHealth::Ok,
        }
    }

    fn token(&self, generation: u64) -> FillToken {
        FillToken {
            epoch: self.inner.epoch.load(Ordering::Acquire),
            generation,
        }
    }

    /// Whether lookups may be answered at all right now.
    fn usable(&self) -> bool {
        let inner = &self.inner;
        if !inner.enabled {
            return false;
        }
        match &inner.redis {
            None => true,
            Some(redis) => redis.is_up() && !inner.has_pending.load(Ordering::Acquire),
        }
    }

    fn local_ready(&self) -> bool {
        self.inner.local_ready.load(Ordering::Acquire)
    }

    // ---- post detail -------------------------------------------------------------------

    pub async fn get_post(
        &self,
        id: Uuid,
        view: &'static str,
    ) -> (Option<Arc<Cached>>, CacheStatus, FillToken) {
        let token = self.token(0);
        if !self.usable() {
            return (None, CacheStatus::Bypass, token);
        }
        if self.local_ready()
            && let Some(hit) = self.inner.local_posts.get(&(id, view))
        {
            return (Some(hit), CacheStatus::Hit, token);
        }
        let Some(redis) = &self.inner.redis else {
            return (None, CacheStatus::Miss, token);
        };
        let found: Option<Option<Vec<u8>>> = redis
            .cmd(
                "cache.get_post",
                ::redis::cmd("GET").arg(redis.key(&post_key(id, view))),
            )
            .await;
        match found {
            None => (None, CacheStatus::Bypass, token),
            Some(raw) => match raw.as_deref().and_then(decode_entry) {
                Some(entry) => {
                    let entry = Arc::new(entry);
                    self.fill_local_post(id, view, entry.clone(), token);
                    (Some(entry), CacheStatus::Hit, token)
                }
                None => (None, CacheStatus::Miss, token),
            },
        }
    }

    /// Stores a published post's response after a miss. `version` orders it against writers'
    /// tombstones.
    pub fn put_post(
        &self,
        id: Uuid,
        view: &'static str,
        version: i64,
        entry: Cached,
        token: FillToken,
    ) {
        if !self.usable() {
            return;
        }
        let entry = Arc::new(entry);
        self.fill_local_post(id, view, entry.clone(), token);
        if let Some(redis) = self.inner.redis.clone() {
            let cache = self.clone();
            // Off the response path: the versioned write is safe whenever it lands.
            tokio::spawn(async move {
                let value = encode_entry(version, Some(&entry));
                cache
                    .put_versioned(&redis, &post_key(id, view), version, value, None)
                    .await;
            });
        }
    }

    fn fill_local_post(&self, id: Uuid, view: &'static str, entry: Arc<Cached>, token: FillToken) {
        if self.local_ready() && self.inner.epoch.load(Ordering::Acquire) == token.epoch {
            self.inner.local_posts.insert((id, view), entry);
        }
    }

    fn forget_local_post(&self, id: Uuid) {
        for view in self.inner.views {
            self.inner.local_posts.invalidate(&(id, *view));
        }
    }

    /// Leaves a tombstone of `version` under every view's key of the post, and announces it to
    /// the other instances. False when Redis could not be told.
    async fn tombstone_post(&self, redis: &Redis, id: Uuid, version: i64) -> bool {
        let message = format!("post:{id}");
        let last = self.inner.views.len().saturating_sub(1);
        for (i, view) in self.inner.views.iter().enumerate() {
            let publish = (i == last).then_some(message.as_str());
            let tombstone = encode_entry(version, None);
            if !self
                .put_versioned(redis, &post_key(id, view), version, tombstone, publish)
                .await
            {
                return false;
            }
        }
        true
    }

    /// After a post was changed or deleted (`new_version`: its version after the write;
    /// `i64::MAX` for a delete). Awaited, so the writer's next read sees the change.
    pub async fn invalidate_post(&self, id: Uuid, new_version: i64) {
        if !self.inner.enabled {
            return;
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.forget_local_post(id);
        let Some(redis) = self.inner.redis.clone() else {
            return;
        };
        if !self.tombstone_post(&redis, id, new_version).await {
            self.remember(|p| {
                let version = p.posts.entry(id).or_insert(new_version);
                *version = (*version).max(new_version);
            });
        }
    }

    async fn put_versioned(
        &self,
        redis: &Redis,
        suffix: &str,
        version: i64,
        value: Vec<u8>,
        publish: Option<&str>,
    ) -> bool {
        let key = redis.key(suffix);
        let channel = publish.map(|_| redis.key(CHANNEL)).unwrap_or_default();
        let message = publish.unwrap_or_default().to_string();
        let ttl_ms = self.inner.ttl_post.as_millis() as u64;
        let mut invocation = self.inner.scripts.put_versioned.key(key);
        invocation
            .arg(version)
            .arg(value)
            .arg(ttl_ms)
            .arg(channel)
            .arg(message);
        redis
            .script::<i64>("cache.put_versioned", &invocation)
            .await
            .is_some()
    }

    // ---- list pages --------------------------------------------------------------------

    /// `query` is the canonical query string of a public list page.
    pub async fn get_list(&self, query: &str) -> (Option<Arc<Cached>>, CacheStatus, FillToken) {
        let token = self.token(0);
        if !self.usable() {
            return (None, CacheStatus::Bypass, token);
        }
        if self.local_ready()
            && let Some(hit) = self.inner.local_lists.get(query)
        {
            return (Some(hit), CacheStatus::Hit, token);
        }
        let Some(redis) = &self.inner.redis else {
            return (None, CacheStatus::Miss, token);
        };
        let mut invocation = self
            .inner
            .scripts
            .get_list
            .key(redis.key("lists:generation"));
        invocation.arg(redis.key("list:")).arg(query);
        let found: Option<(u64, Option<Vec<u8>>)> =
            redis.script("cache.get_list", &invocation).await;
        match found {
            None => (None, CacheStatus::Bypass, token),
            Some((generation, raw)) => {
                let token = FillToken {
                    generation,
                    ..token
                };
                match raw {
                    Some(body) => {
                        let entry = Arc::new(Cached {
                            etag: None,
                            body: Bytes::from(body),
                        });
                        self.fill_local_list(query, entry.clone(), token);
                        (Some(entry), CacheStatus::Hit, token)
                    }
                    None => (None, CacheStatus::Miss, token),
                }
            }
        }
    }

    pub fn put_list(&self, query: &str, body: Bytes, token: FillToken) {
        if !self.usable() {
            return;
        }
        let entry = Arc::new(Cached { etag: None, body });
        self.fill_local_list(query, entry.clone(), token);
        if let Some(redis) = self.inner.redis.clone() {
            let key = redis.key(&format!("list:{}:{query}", token.generation));
            let ttl_ms = self.inner.ttl_list.as_millis() as u64;
            tokio::spawn(async move {
                let mut set = ::redis::cmd("SET");
                set.arg(key).arg(entry.body.as_ref()).arg("PX").arg(ttl_ms);
                redis.cmd::<()>("cache.put_list", &set).await;
            });
        }
    }

    fn fill_local_list(&self, query: &str, entry: Arc<Cached>, token: FillToken) {
        if self.local_ready() && self.inner.epoch.load(Ordering::Acquire) == token.epoch {
            self.inner.local_lists.insert(query.to_string(), entry);
        }
    }

    /// After any write that can change a list page. Awaited, like `invalidate_post`.
    pub async fn invalidate_lists(&self) {
        if !self.inner.enabled {
            return;
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.local_lists.invalidate_all();
        let Some(redis) = self.inner.redis.clone() else {
            return;
        };
        // Group commit: concurrent writers share one bump. A bump that starts after this
        // ticket was taken (after our write committed) makes our change visible, so whoever
        // holds the lock bumps once for every ticket taken so far.
        let bumps = &self.inner.list_bumps;
        let ticket = bumps.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _turn = bumps.turn.lock().await;
        if bumps.completed.load(Ordering::Acquire) >= ticket {
            return;
        }
        let covers = bumps.requested.load(Ordering::Acquire);
        if !self.bump_generation(&redis).await {
            self.remember(|p| p.lists = true);
        }
        bumps.completed.store(covers, Ordering::Release);
    }

    async fn bump_generation(&self, redis: &Redis) -> bool {
        let mut invocation = self
            .inner
            .scripts
            .bump_generation
            .key(redis.key("lists:generation"));
        invocation.arg(redis.key(CHANNEL));
        redis
            .script::<i64>("cache.invalidate_lists", &invocation)
            .await
            .is_some()
    }

    // ---- outages and other instances --------------------------------------------------------

    fn remember(&self, add: impl FnOnce(&mut Pending)) {
        if let Ok(mut pending) = self.inner.pending.lock() {
            add(&mut pending);
            if pending.posts.len() > MAX_PENDING_POSTS {
                // Too many to replay: stay bypassed until every copy they concern has expired.
                pending.posts.clear();
                pending.lists = true;
                pending.overflowed_until = Some(Instant::now() + self.inner.ttl_post);
            }
            self.inner.has_pending.store(true, Ordering::Release);
        }
    }

    /// Delivers invalidations that Redis missed while it was down. True when none are left.
    async fn replay_pending(&self, redis: &Redis) -> bool {
        let (posts, lists) = match self.inner.pending.lock() {
            Ok(p) => (
                p.posts.iter().map(|(id, v)| (*id, *v)).collect::<Vec<_>>(),
                p.lists,
            ),
            Err(_) => return false,
        };
        for (id, version) in &posts {
            if !self.tombstone_post(redis, *id, *version).await {
                return false;
            }
        }
        if lists && !self.bump_generation(redis).await {
            return false;
        }
        let Ok(mut pending) = self.inner.pending.lock() else {
            return false;
        };
        for (id, version) in &posts {
            // Only if no newer write was remembered meanwhile.
            if pending.posts.get(id) == Some(version) {
                pending.posts.remove(id);
            }
        }
        if lists {
            pending.lists = false;
        }
        if pending
            .overflowed_until
            .is_some_and(|until| Instant::now() >= until)
        {
            pending.overflowed_until = None;
        }
        let clear =
            pending.posts.is_empty() && !pending.lists && pending.overflowed_until.is_none();
        if clear {
            self.inner.has_pending.store(false, Ordering::Release);
        }
        clear
    }

    fn forget_local(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.local_posts.invalidate_all();
        self.inner.local_lists.invalidate_all();
    }

    fn apply_message(&self, message: &str) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if message == "lists" {
            self.inner.local_lists.invalidate_all();
        } else if let Some(id) = message
            .strip_prefix("post:")
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            self.forget_local_post(id);
        }
    }

    /// Background work with Redis: keeps the invalidation subscription (the in-process tier is
    /// used only while it is live) and replays missed invalidations. Returns when `stop` fires.
    pub async fn maintain(self, stop: impl std::future::Future<Output = ()>) {
        let Some(redis) = self.inner.redis.clone() else {
            return;
        };
        tokio::pin!(stop);
        loop {
            if redis.is_up() && self.inner.has_pending.load(Ordering::Acquire) {
                self.replay_pending(&redis).await;
            }
            if redis.is_up() {
                let subscribed = tokio::time::timeout(Duration::from_secs(1), async {
                    let mut pubsub = redis.client().get_async_pubsub().await?;
                    pubsub.subscribe(redis.key(CHANNEL)).await?;
                    Ok::<_, ::redis::RedisError>(pubsub)
                })
                .await;
                if let Ok(Ok(pubsub)) = subscribed {
                    // Anything published before we subscribed is unknown to us: start empty.
                    self.forget_local();
                    self.inner.local_ready.store(true, Ordering::Release);
                    let mut messages = pubsub.into_on_message();
                    let mut tick = tokio::time::interval(Duration::from_millis(250));
                    loop {
                        tokio::select! {
                            _ = &mut stop => return,
                            message = messages.next() => match message {
                                Some(m) => {
                                    if let Ok(text) = m.get_payload::<String>() {
                                        self.apply_message(&text);
                                    }
                                }
                                None => break,
                            },
                            _ = tick.tick() => {
                                if !redis.is_up() {
                                    break;
                                }
                                if self.inner.has_pending.load(Ordering::Acquire) {
                                    self.replay_pending(&redis).await;
                                }
                            }
                        }
                    }
                    self.inner.local_ready.store(false, Ordering::Release);
                    self.forget_local();
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

/// The Redis key (under the prefix) of one representation of a post.
fn post_key(id: Uuid, view: &str) -> String {
    format!("post:{id}:{view}")
}

/// `version\netag\nbody`, or `version\n` for a tombstone.
fn encode_entry(version: i64, entry: Option<&Cached>) -> Vec<u8> {
    let mut out = format!("{version}\n").into_bytes();
    if let Some(entry) = entry {
        out.extend_from_slice(entry.etag.as_deref().unwrap_or_default().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&entry.body);
    }
    out
}

fn decode_entry(raw: &[u8]) -> Option<Cached> {
    let first = raw.iter().position(|b| *b == b'\n')?;
    let rest = &raw[first + 1..];
    let second = rest.iter().position(|b| *b == b'\n')?;
    let etag = std::str::from_utf8(&rest[..second]).ok()?;
    Some(Cached {
        etag: (!etag.is_empty()).then(|| etag.to_string()),
        body: Bytes::copy_from_slice(&rest[second + 1..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_tombstones_read_as_misses() {
        let entry = Cached {
            etag: Some("\"1-a\"".into()),
            body: Bytes::from_static(b"{\"a\":\n1}"),
        };
        assert_eq!(decode_entry(&encode_entry(3, Some(&entry))), Some(entry));
        assert_eq!(decode_entry(&encode_entry(3, None)), None);
    }

    #[tokio::test]
    async fn the_in_process_tier_serves_until_invalidated() {
        let cache = Cache::new(
            true,
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            &["v1", "v2"],
        );
        let id = Uuid::now_v7();
        let (found, status, token) = cache.get_post(id, "v1").await;
        assert!(found.is_none());
        assert_eq!(status, CacheStatus::Miss);
        let (_, _, v2_token) = cache.get_post(id, "v2").await;
        cache.put_post(
            id,
            "v2",
            1,
            Cached {
                etag: None,
                body: Bytes::from_static(b"{\"v\":2}"),
            },
            v2_token,
        );
        cache.put_post(
            id,
            "v1",
            1,
            Cached {
                etag: None,
                body: Bytes::from_static(b"{}"),
            },
            token,
        );
        assert_eq!(cache.get_post(id, "v1").await.1, CacheStatus::Hit);
        assert_eq!(cache.get_post(id, "v2").await.1, CacheStatus::Hit);
        cache.invalidate_post(id, 2).await;
        assert_eq!(cache.get_post(id, "v1").await.1, CacheStatus::Miss);
        assert_eq!(
            cache.get_post(id, "v2").await.1,
            CacheStatus::Miss,
            "one write invalidates every representation"
        );
    }

    #[tokio::test]
    async fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache = Cache::new(
            true,
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            &["v1", "v2"],
        );
        let (_, _, token) = cache.get_list("limit=10").await;
        cache.invalidate_lists().await;
        cache.put_list("limit=10", Bytes::from_static(b"[]"), token);
        assert_eq!(cache.get_list("limit=10").await.1, CacheStatus::Miss);
    }

    #[tokio::test]
    async fn a_disabled_cache_bypasses() {
        let cache = Cache::new(
            false,
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            &["v1"],
        );
        assert_eq!(
            cache.get_post(Uuid::now_v7(), "v1").await.1,
            CacheStatus::Bypass
        );
    }
}
