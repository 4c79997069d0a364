//! Background work on PostgreSQL: a transactional outbox and work queue in one table (`jobs`).
//!
//! Invariants, in one place:
//! - A job is written in the same transaction as the change that causes it (`repo::enqueue`
//!   takes the caller's connection; an event's fan-out is written by the event's own insert,
//!   `events::repo::insert_with_fanout`): a rolled-back change leaves no job, a committed one
//!   is never without its job.
//! - A worker claims due jobs with `FOR UPDATE SKIP LOCKED`, so several workers and instances
//!   share the queue and no job is claimed twice at once. A claim is a lease (`locked_until`):
//!   the runner extends it while the handler works; a job whose lease ran out (its instance
//!   died) is due again and is taken over, with `attempts` counting every claim.
//! - A handler never holds a pooled connection or a request while it waits on an outside party
//!   (webhook receivers): it takes a connection for each short step and gives it back.
//! - Delivery is at least once: a handler may run again after a crash, so every handler is
//!   idempotent (it checks the state it would change).
//! - Finishing a job is guarded by the claim (`locked_by` and `attempts`): a worker whose lease
//!   was taken over cannot overwrite the new owner's result.
//!
//! Why not a queue crate: the maintained ones either bring their own PostgreSQL driver and pool
//! (apalis, sqlxmq, graphile-worker: sqlx) or are not published for reuse (crates.io's
//! `crates_io_worker`, whose design this follows: diesel-async, SKIP LOCKED, one table). One
//! table and three queries on Herald's own pool keep the outbox in the writer's transaction.

pub mod repo;
pub mod runner;

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a job does; the text is stored in `jobs.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Turns one event into one delivery job per subscribed webhook endpoint.
    EventFanout,
    /// One delivery of one event to one endpoint (all its attempts).
    WebhookDelivery,
    /// Writes an export's NDJSON file.
    Export,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [Self::EventFanout, Self::WebhookDelivery, Self::Export];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventFanout => "event.fanout",
            Self::WebhookDelivery => "webhook.delivery",
            Self::Export => "export",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Claims so far, this one included (1 on the first run).
    pub attempts: i32,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How a handler's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the row is kept as `succeeded` until housekeeping removes it.
    Done,
    /// Try again after `after` (the handler owns its backoff schedule).
    RetryAfter { after: Duration, error: String },
    /// Give up; the row is kept as `failed`.
    Failed { error: String },
}
