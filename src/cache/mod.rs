//! Everything that knows Redis (nothing outside this folder does):
//!
//! - `two_tier`: the generic two-tier cache, an in-process tier in front of Redis with
//!   invalidation across instances; knows no resource.
//! - `posts`: `PostsCache`, the cache of public post data (post detail, published list pages)
//!   on top of it: which keys exist, their TTLs, the views, what a write invalidates.
//! - `ratelimit`: the rate limiter.
//! - `redis`: the shared connection (pool, timeouts, up/down).

pub mod posts;
pub mod ratelimit;
pub mod redis;
pub mod two_tier;

pub use self::{
    posts::PostsCache,
    two_tier::{CacheHealth, CacheStatus, Cached, FillToken},
};
