//! `PostsCache`: the cache of public post data (post detail and published list pages) on the
//! two-tier machinery (`two_tier`). What is cacheable at all is the posts service's call.
//!
//! Invariants:
//! - A post is cached once per representation (`views`: the API versions' names), as versioned
//!   entries ordered by the post's version; the views of one post share its invalidation, so a
//!   write to a post invalidates all of them at once.
//! - Published list pages are generation-scoped pages keyed by their canonical query string;
//!   any write that can change a list invalidates every page.
//! - Redis keys `post:{id}:{view}`, `lists:generation` and `list:{generation}:{query}` (under
//!   the configured prefix) are shared with other instances, and the span names with
//!   dashboards: keep them.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use uuid::Uuid;

use super::{
    redis::Redis,
    two_tier::{CacheHealth, CacheStatus, Cached, FillToken, Pages, TwoTier, Versioned},
};

#[derive(Clone)]
pub struct PostsCache {
    tiers: TwoTier,
}

impl PostsCache {
    pub fn new(
        enabled: bool,
        ttl_post: Duration,
        ttl_list: Duration,
        redis: Option<Arc<Redis>>,
        views: &'static [&'static str],
    ) -> Self {
        let posts = Versioned {
            name: "post",
            variants: views,
            ttl: ttl_post,
            get_op: "cache.get_post",
        };
        let lists = Pages {
            generation_key: "lists:generation",
            page_prefix: "list:",
            ttl: ttl_list,
            get_op: "cache.get_list",
            put_op: "cache.put_list",
            bump_op: "cache.invalidate_lists",
        };
        Self {
            tiers: TwoTier::new(enabled, redis, posts, lists),
        }
    }

    pub fn health(&self) -> CacheHealth {
        self.tiers.health()
    }

    pub async fn get_post(
        &self,
        id: Uuid,
        view: &'static str,
    ) -> (Option<Arc<Cached>>, CacheStatus, FillToken) {
        self.tiers.get_entry(id, view).await
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
        self.tiers.put_entry(id, view, version, entry, token);
    }

    /// After a post was changed or deleted (`new_version`: its version after the write;
    /// `i64::MAX` for a delete). Awaited, so the writer's next read sees the change.
    pub async fn invalidate_post(&self, id: Uuid, new_version: i64) {
        self.tiers.invalidate_entry(id, new_version).await;
    }

    /// `query` is the canonical query string of a public list page.
    pub async fn get_list(&self, query: &str) -> (Option<Arc<Cached>>, CacheStatus, FillToken) {
        self.tiers.get_page(query).await
    }

    pub fn put_list(&self, query: &str, body: Bytes, token: FillToken) {
        self.tiers.put_page(query, body, token);
    }

    /// After any write that can change a list page. Awaited, like `invalidate_post`.
    pub async fn invalidate_lists(&self) {
        self.tiers.invalidate_pages().await;
    }

    /// Background work with Redis (see `TwoTier::maintain`). Returns when `stop` fires.
    pub async fn maintain(self, stop: impl std::future::Future<Output = ()>) {
        self.tiers.maintain(stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both views, a minute's TTLs, no Redis: the in-process tier alone.
    fn in_process_only() -> PostsCache {
        PostsCache::new(
            true,
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            &["v1", "v2"],
        )
    }

    #[tokio::test]
    async fn the_in_process_tier_serves_until_invalidated() {
        let cache = in_process_only();
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
        let cache = in_process_only();
        let (_, _, token) = cache.get_list("limit=10").await;
        cache.invalidate_lists().await;
        cache.put_list("limit=10", Bytes::from_static(b"[]"), token);
        assert_eq!(cache.get_list("limit=10").await.1, CacheStatus::Miss);
    }

    #[tokio::test]
    async fn a_disabled_cache_bypasses() {
        let cache = PostsCache::new(
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
