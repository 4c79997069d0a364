//! Periodic clean-up (every `HOUSEKEEPING_INTERVAL`, daily by default): refresh tokens that can
//! never be used again and expired idempotency records. Logs how many it removed.

use std::future::Future;

use chrono::Utc;

use crate::{auth::service::purge_refresh_tokens, error::AppResult, idempotency, state::AppState};

/// What one pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub refresh_tokens: usize,
    pub idempotency_keys: usize,
}

pub async fn purge_once(state: &AppState) -> AppResult<Purged> {
    let refresh_tokens = purge_refresh_tokens(state).await?;
    let idempotency_keys = {
        let mut conn = state.db.conn().await?;
        idempotency::repo::purge(&mut conn, Utc::now()).await?
    };
    let purged = Purged {
        refresh_tokens,
        idempotency_keys,
    };
    tracing::info!(
        event = "housekeeping.purge",
        purged.refresh_tokens = refresh_tokens,
        purged.idempotency_keys = idempotency_keys,
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
