//! `AppState`: everything a request may need (settings, pools, cache, limiter, keys), shared
//! through `poem`'s `Data`. One `Arc`: cloning it per request is a reference-count bump.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use bytes::Bytes;

use crate::{
    cache::{PostsCache, ratelimit::RateLimiter, redis::Redis},
    config::Settings,
    db::Db,
    domain::representation::Representation,
    error::AppResult,
    events::model::Event,
    jobs::runner::JobsWake,
    posts::model::Post,
    security::{jwt::JwtKeys, password::PasswordHasher},
};

#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Option<Arc<Redis>>,
    pub cache: PostsCache,
    pub limiter: RateLimiter,
    pub jwt: Arc<JwtKeys>,
    pub passwords: PasswordHasher,
    pub lifecycle: Arc<Lifecycle>,
    /// Wakes this instance's job runner after a commit that queued work.
    pub jobs_wake: JobsWake,
    pub renderers: Renderers,
}

/// How background work writes domain values in an API version's representation (webhook
/// bodies, export lines). Installed by the composition (`api::renderers`), which knows the
/// versions, so that jobs and services import none.
#[derive(Clone, Copy)]
pub struct Renderers {
    pub event: fn(&Event, Representation) -> AppResult<Bytes>,
    pub post: fn(&Post, Representation) -> AppResult<Bytes>,
}

/// Where the process is in its life: readiness and draining read it.
#[derive(Debug, Default)]
pub struct Lifecycle(AtomicU8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Serving,
    Draining,
}

impl Lifecycle {
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    pub fn set(&self, phase: Phase) {
        let value = match phase {
            Phase::Starting => 0,
            Phase::Serving => 1,
            Phase::Draining => 2,
        };
        self.0.store(value, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.phase() == Phase::Draining
    }
}
