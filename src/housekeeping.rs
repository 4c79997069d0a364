//! Periodic clean-up (every `HOUSEKEEPING_INTERVAL`, daily by default): refresh tokens that can
//! never be used again, expired idempotency records, events older than `EVENT_RETENTION`,
//! finished jobs older than `JOB_RETENTION`, and expired operations with their files. Logs how
//! many it removed. Every instance runs it; the deletes are idempotent.

use std::future::Future;

use chrono::Utc;

use crate::{
    auth::service::purge_refresh_tokens, error::AppResult, events, exports, idempotency, jobs,
    state::AppState,
};

/// What one pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub refresh_tokens: usize,
    pub idempotency_keys: usize,
    pub events: usize,
    pub jobs: usize,
    pub operations: usize,
}

fn ago(duration: std::time::Duration) -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

pub async fn purge_once(state: &AppState) -> AppResult<Purged> {
    let refresh_tokens = purge_refresh_tokens(state).await?;
    let mut conn = state.db.conn().await?;
    let idempotency_keys = idempotency::repo::purge(&mut conn, Utc::now()).await?;
    let events = events::repo::purge(&mut conn, ago(state.settings.event_retention)).await?;
    let jobs = jobs::repo::purge_finished(&mut conn, ago(state.settings.job_retention)).await?;
    let operations = exports::repo::purge(&mut conn, Utc::now()).await?;
    let purged = Purged {
        refresh_tokens,
        idempotency_keys,
        events,
        jobs,
        operations,
    };
    tracing::info!(
        event = "housekeeping.purge",
        purged.refresh_tokens = refresh_tokens,
        purged.idempotency_keys = idempotency_keys,
        purged.events = events,
        purged.jobs = jobs,
        purged.operations = operations,
        "housekeeping: purged expired and revoked records"
    );
    Ok(purged)
}

/// Runs `purge_once` every interval until `stop` resolves.
pub async fn run(state: AppState, stop: impl Future<Output = ()>) {
    let period = state.settings.housekeeping_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                if let Err(err) = purge_once(&state).await {
                    tracing::warn!(error = %err, "housekeeping failed; will retry next interval");
                }
            }
        }
    }
}
