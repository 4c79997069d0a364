//! A two-tier cache: an in-process moka tier in front of Redis, shared by every instance. It
//! knows no resource: its owner (`posts::PostsCache`) names the keys, the variants and the TTLs.
//!
//! Two kinds of entries:
//! - Versioned entries, keyed by an id and one of a fixed set of variants (representations).
//!   The Redis value starts with its version; an invalidation leaves a versioned tombstone under
//!   every variant of the id, and a put never replaces a newer version, so a slow reader cannot
//!   put an older copy back.
//! - Generation-scoped pages, keyed by a query string. A generation counter is part of their
//!   Redis keys, so one bump invalidates every page at once (never `KEYS`/`SCAN`).
//!
//! Invariants:
//! - Every invalidation is published on one Redis channel; every instance drops its in-process
//!   copies when it hears one, and uses its in-process tier only while it is subscribed
//!   (`local_ready`), so other instances see a change within milliseconds. Without Redis the
//!   in-process tier works alone (one instance).
//! - Every invalidation bumps `epoch`. A miss hands out a `FillToken`; a put whose token predates
//!   an invalidation is not kept in-process (the copy may be stale).
//! - Invalidations are awaited, so the writer's next read sees its change.
//! - With Redis down the cache is bypassed; invalidations that could not reach Redis are
//!   replayed before it is used again (past `MAX_PENDING_IDS`, it stays bypassed until every
//!   entry they concern has expired).
//! - Redis keys, channel messages and Lua scripts are shared with other instances, possibly of
//!   older versions: keep them byte-identical.

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

use super::redis::Redis;

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

/// State captured when a lookup missed, handed back to the matching put: it lets the put
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

/// The versioned entries: Redis keys `{name}:{id}:{variant}`, invalidation message `{name}:{id}`.
pub struct Versioned {
    pub name: &'static str,
    /// Every variant an id is cached in (one key each); an invalidation covers them all.
    pub variants: &'static [&'static str],
    pub ttl: Duration,
    /// Span name of a Redis lookup (dashboards know it).
    pub get_op: &'static str,
}

/// The generation-scoped pages: Redis keys `{page_prefix}{generation}:{query}`, the counter
/// under `generation_key`. Their invalidation message is `GENERATION_MESSAGE`.
pub struct Pages {
    pub generation_key: &'static str,
    pub page_prefix: &'static str,
    pub ttl: Duration,
    /// Span names of the Redis operations (dashboards know them).
    pub get_op: &'static str,
    pub put_op: &'static str,
    pub bump_op: &'static str,
}

/// Invalidations not yet delivered to Redis (it was down). The cache stays bypassed until
/// they are, or until every entry they concern has expired (`overflowed`).
#[derive(Default)]
struct Pending {
    /// Id → its version after the write.
    versioned: HashMap<Uuid, i64>,
    pages: bool,
    overflowed_until: Option<Instant>,
}

const MAX_PENDING_IDS: usize = 10_000;
/// Memory of each in-process tier (versioned entries, pages).
const LOCAL_TIER_BYTES: u64 = 4 * 1024 * 1024;
const CHANNEL: &str = "invalidations";
/// Written into the `bump_generation` script, so not configurable.
const GENERATION_MESSAGE: &str = "lists";

#[derive(Clone)]
pub struct TwoTier {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    redis: Option<Arc<Redis>>,
    versioned: Versioned,
    pages: Pages,
    local_versioned: moka::sync::Cache<(Uuid, &'static str), Arc<Cached>>,
    local_pages: moka::sync::Cache<String, Arc<Cached>>,
    /// Whether the in-process tier may be used: always without Redis; with Redis only while
    /// subscribed to invalidations.
    local_ready: AtomicBool,
    /// Bumped by every invalidation this instance makes or hears.
    epoch: AtomicU64,
    pending: Mutex<Pending>,
    has_pending: AtomicBool,
    generation_bumps: GenerationBumps,
    scripts: Scripts,
}

/// Tickets of writers waiting for the page generation to be bumped (see `invalidate_pages`).
#[derive(Default)]
struct GenerationBumps {
    requested: AtomicU64,
    completed: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

struct Scripts {
    get_page: ::redis::Script,
    put_versioned: ::redis::Script,
    bump_generation: ::redis::Script,
}

impl TwoTier {
    pub fn new(
        enabled: bool,
        redis: Option<Arc<Redis>>,
        versioned: Versioned,
        pages: Pages,
    ) -> Self {
        let local_ready = redis.is_none();
        Self {
            inner: Arc::new(Inner {
                enabled,
                // Bounded by bytes, not entries: a page weighs as much as a hundred entries.
                local_versioned: moka::sync::Cache::builder()
                    .max_capacity(LOCAL_TIER_BYTES)
                    .weigher(|_, entry: &Arc<Cached>| entry.weight())
                    .time_to_live(versioned.ttl)
                    .build(),
                local_pages: moka::sync::Cache::builder()
                    .max_capacity(LOCAL_TIER_BYTES)
                    .weigher(|_, entry: &Arc<Cached>| entry.weight())
                    .time_to_live(pages.ttl)
                    .build(),
                redis,
                versioned,
                pages,
                local_ready: AtomicBool::new(local_ready),
                epoch: AtomicU64::new(0),
                pending: Mutex::new(Pending::default()),
                has_pending: AtomicBool::new(false),
                generation_bumps: GenerationBumps::default(),
                scripts: Scripts {
                    // KEYS[1] generation key; ARGV[1] page key prefix, ARGV[2] page query.
                    get_page: ::redis::Script::new(
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

    // ---- versioned entries ------------------------------------------------------------------

    pub async fn get_entry(
        &self,
        id: Uuid,
        variant: &'static str,
    ) -> (Option<Arc<Cached>>, CacheStatus, FillToken) {
        let token = self.token(0);
        if !self.usable() {
            return (None, CacheStatus::Bypass, token);
        }
        if self.local_ready()
            && let Some(hit) = self.inner.local_versioned.get(&(id, variant))
        {
            return (Some(hit), CacheStatus::Hit, token);
        }
        let Some(redis) = &self.inner.redis else {
            return (None, CacheStatus::Miss, token);
        };
        let found: Option<Option<Vec<u8>>> = redis
            .cmd(
                self.inner.versioned.get_op,
                ::redis::cmd("GET").arg(redis.key(&self.entry_key(id, variant))),
            )
            .await;
        match found {
            None => (None, CacheStatus::Bypass, token),
            Some(raw) => match raw.as_deref().and_then(decode_entry) {
                Some(entry) => {
                    let entry = Arc::new(entry);
                    self.fill_local_entry(id, variant, entry.clone(), token);
                    (Some(entry), CacheStatus::Hit, token)
                }
                None => (None, CacheStatus::Miss, token),
            },
        }
    }

    /// Stores an entry after a miss. `version` orders it against invalidations' tombstones.
    pub fn put_entry(
        &self,
        id: Uuid,
        variant: &'static str,
        version: i64,
        entry: Cached,
        token: FillToken,
    ) {
        if !self.usable() {
            return;
        }
        let entry = Arc::new(entry);
        self.fill_local_entry(id, variant, entry.clone(), token);
        if let Some(redis) = self.inner.redis.clone() {
            let cache = self.clone();
            // Off the response path: the versioned write is safe whenever it lands.
            tokio::spawn(async move {
                let value = encode_entry(version, Some(&entry));
                let key = cache.entry_key(id, variant);
                cache
                    .put_versioned(&redis, &key, version, value, None)
                    .await;
            });
        }
    }

    fn fill_local_entry(
        &self,
        id: Uuid,
        variant: &'static str,
        entry: Arc<Cached>,
        token: FillToken,
    ) {
        if self.local_ready() && self.inner.epoch.load(Ordering::Acquire) == token.epoch {
            self.inner.local_versioned.insert((id, variant), entry);
        }
    }

    fn forget_local_entry(&self, id: Uuid) {
        for variant in self.inner.versioned.variants {
            self.inner.local_versioned.invalidate(&(id, *variant));
        }
    }

    /// Leaves a tombstone of `version` under every variant's key of the id, and announces it to
    /// the other instances. False when Redis could not be told.
    async fn tombstone(&self, redis: &Redis, id: Uuid, version: i64) -> bool {
        let message = format!("{}:{id}", self.inner.versioned.name);
        let variants = self.inner.versioned.variants;
        let last = variants.len().saturating_sub(1);
        for (i, variant) in variants.iter().enumerate() {
            let publish = (i == last).then_some(message.as_str());
            let tombstone = encode_entry(version, None);
            if !self
                .put_versioned(
                    redis,
                    &self.entry_key(id, variant),
                    version,
                    tombstone,
                    publish,
                )
                .await
            {
                return false;
            }
        }
        true
    }

    /// After the id's data was changed or deleted (`new_version`: its version after the write;
    /// `i64::MAX` for a delete). Awaited, so the writer's next read sees the change.
    pub async fn invalidate_entry(&self, id: Uuid, new_version: i64) {
        if !self.inner.enabled {
            return;
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.forget_local_entry(id);
        let Some(redis) = self.inner.redis.clone() else {
            return;
        };
        if !self.tombstone(&redis, id, new_version).await {
            self.remember(|p| {
                let version = p.versioned.entry(id).or_insert(new_version);
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
        let ttl_ms = self.inner.versioned.ttl.as_millis() as u64;
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

    /// The Redis key (under the prefix) of one variant of an id.
    fn entry_key(&self, id: Uuid, variant: &str) -> String {
        format!("{}:{id}:{variant}", self.inner.versioned.name)
    }

    // ---- generation-scoped pages ------------------------------------------------------------

    /// `query` is the canonical query string of a page.
    pub async fn get_page(&self, query: &str) -> (Option<Arc<Cached>>, CacheStatus, FillToken) {
        let token = self.token(0);
        if !self.usable() {
            return (None, CacheStatus::Bypass, token);
        }
        if self.local_ready()
            && let Some(hit) = self.inner.local_pages.get(query)
        {
            return (Some(hit), CacheStatus::Hit, token);
        }
        let Some(redis) = &self.inner.redis else {
            return (None, CacheStatus::Miss, token);
        };
        let pages = &self.inner.pages;
        let mut invocation = self
            .inner
            .scripts
            .get_page
            .key(redis.key(pages.generation_key));
        invocation.arg(redis.key(pages.page_prefix)).arg(query);
        let found: Option<(u64, Option<Vec<u8>>)> = redis.script(pages.get_op, &invocation).await;
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
                        self.fill_local_page(query, entry.clone(), token);
                        (Some(entry), CacheStatus::Hit, token)
                    }
                    None => (None, CacheStatus::Miss, token),
                }
            }
        }
    }

    pub fn put_page(&self, query: &str, body: Bytes, token: FillToken) {
        if !self.usable() {
            return;
        }
        let entry = Arc::new(Cached { etag: None, body });
        self.fill_local_page(query, entry.clone(), token);
        if let Some(redis) = self.inner.redis.clone() {
            let pages = &self.inner.pages;
            let key = redis.key(&format!(
                "{}{}:{query}",
                pages.page_prefix, token.generation
            ));
            let ttl_ms = pages.ttl.as_millis() as u64;
            let what = pages.put_op;
            tokio::spawn(async move {
                let mut set = ::redis::cmd("SET");
                set.arg(key).arg(entry.body.as_ref()).arg("PX").arg(ttl_ms);
                redis.cmd::<()>(what, &set).await;
            });
        }
    }

    fn fill_local_page(&self, query: &str, entry: Arc<Cached>, token: FillToken) {
        if self.local_ready() && self.inner.epoch.load(Ordering::Acquire) == token.epoch {
            self.inner.local_pages.insert(query.to_string(), entry);
        }
    }

    /// Invalidates every page. Awaited, like `invalidate_entry`.
    pub async fn invalidate_pages(&self) {
        if !self.inner.enabled {
            return;
        }
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.local_pages.invalidate_all();
        let Some(redis) = self.inner.redis.clone() else {
            return;
        };
        // Group commit: concurrent writers share one bump. A bump that starts after this
        // ticket was taken (after our write committed) makes our change visible, so whoever
        // holds the lock bumps once for every ticket taken so far.
        let bumps = &self.inner.generation_bumps;
        let ticket = bumps.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _turn = bumps.turn.lock().await;
        if bumps.completed.load(Ordering::Acquire) >= ticket {
            return;
        }
        let covers = bumps.requested.load(Ordering::Acquire);
        if !self.bump_generation(&redis).await {
            self.remember(|p| p.pages = true);
        }
        bumps.completed.store(covers, Ordering::Release);
    }

    async fn bump_generation(&self, redis: &Redis) -> bool {
        let pages = &self.inner.pages;
        let mut invocation = self
            .inner
            .scripts
            .bump_generation
            .key(redis.key(pages.generation_key));
        invocation.arg(redis.key(CHANNEL));
        redis
            .script::<i64>(pages.bump_op, &invocation)
            .await
            .is_some()
    }

    // ---- outages and other instances --------------------------------------------------------

    fn remember(&self, add: impl FnOnce(&mut Pending)) {
        if let Ok(mut pending) = self.inner.pending.lock() {
            add(&mut pending);
            if pending.versioned.len() > MAX_PENDING_IDS {
                // Too many to replay: stay bypassed until every copy they concern has expired.
                pending.versioned.clear();
                pending.pages = true;
                pending.overflowed_until = Some(Instant::now() + self.inner.versioned.ttl);
            }
            self.inner.has_pending.store(true, Ordering::Release);
        }
    }

    /// Delivers invalidations that Redis missed while it was down. True when none are left.
    async fn replay_pending(&self, redis: &Redis) -> bool {
        let (versioned, pages) = match self.inner.pending.lock() {
            Ok(p) => (
                p.versioned
                    .iter()
                    .map(|(id, v)| (*id, *v))
                    .collect::<Vec<_>>(),
                p.pages,
            ),
            Err(_) => return false,
        };
        for (id, version) in &versioned {
            if !self.tombstone(redis, *id, *version).await {
                return false;
            }
        }
        if pages && !self.bump_generation(redis).await {
            return false;
        }
        let Ok(mut pending) = self.inner.pending.lock() else {
            return false;
        };
        for (id, version) in &versioned {
            // Only if no newer write was remembered meanwhile.
            if pending.versioned.get(id) == Some(version) {
                pending.versioned.remove(id);
            }
        }
        if pages {
            pending.pages = false;
        }
        if pending
            .overflowed_until
            .is_some_and(|until| Instant::now() >= until)
        {
            pending.overflowed_until = None;
        }
        let clear =
            pending.versioned.is_empty() && !pending.pages && pending.overflowed_until.is_none();
        if clear {
            self.inner.has_pending.store(false, Ordering::Release);
        }
        clear
    }

    fn forget_local(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.local_versioned.invalidate_all();
        self.inner.local_pages.invalidate_all();
    }

    fn apply_message(&self, message: &str) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if message == GENERATION_MESSAGE {
            self.inner.local_pages.invalidate_all();
        } else if let Some(id) = message
            .strip_prefix(self.inner.versioned.name)
            .and_then(|s| s.strip_prefix(':'))
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            self.forget_local_entry(id);
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
}
