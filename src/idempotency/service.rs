//! The rules of an `Idempotency-Key`, between the HTTP middleware (`http::idempotency`) and the
//! stored records (`repo`): who owns a key, what a retry gets, how long anything is kept.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::repo;
use crate::{
    error::{AppError, AppResult},
    state::AppState,
};

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an owner may take before its key counts as abandoned (a crash mid-request).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A response as stored and replayed: status, the replayed headers, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a request with a key does.
#[derive(Debug)]
pub enum Begin {
    /// It owns the key: run it, then `complete` or `release`.
    Owner,
    /// A retry of a finished request: answer this again.
    Replay(StoredResponse),
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

/// Claims `key` for the request with `fingerprint`, or finds what a retry gets. A key still
/// owned by a running request is `IdempotencyKeyInProgress`; a key used with another request
/// is `IdempotencyKeyReused`.
pub async fn begin(
    state: &AppState,
    user_id: Uuid,
    key: &str,
    fingerprint: &[u8],
) -> AppResult<Begin> {
    let now = Utc::now();
    let mut conn = state.db.conn().await?;
    let claimed = repo::claim(
        &mut conn,
        user_id,
        key,
        fingerprint,
        now,
        now + to_chrono(LOCK_TIMEOUT),
        now + to_chrono(RETENTION),
    )
    .await?;
    if claimed {
        return Ok(Begin::Owner);
    }
    // Gone between the claim and this read: it expired or its owner released it just now.
    let record = repo::find(&mut conn, user_id, key)
        .await?
        .ok_or(AppError::IdempotencyKeyInProgress)?;
    if record.request_hash != fingerprint {
        return Err(AppError::IdempotencyKeyReused);
    }
    let (Some(status), Some(body)) = (record.response_status, record.response_body) else {
        return Err(AppError::IdempotencyKeyInProgress);
    };
    let headers = record
        .response_headers
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    Ok(Begin::Replay(StoredResponse {
        status: u16::try_from(status).unwrap_or(200),
        headers,
        body,
    }))
}

/// Stores the owner's response for its retries.
pub async fn complete(
    state: &AppState,
    user_id: Uuid,
    key: &str,
    response: &StoredResponse,
) -> AppResult<()> {
    let headers = serde_json::to_string(&response.headers)
        .map_err(|e| AppError::internal_from("storing response headers", e))?;
    let mut conn = state.db.conn().await?;
    repo::complete(
        &mut conn,
        user_id,
        key,
        i16::try_from(response.status).unwrap_or(500),
        &headers,
        &response.body,
    )
    .await
}

/// Gives the key up (the request failed): a corrected retry may use it.
pub async fn release(state: &AppState, user_id: Uuid, key: &str) -> AppResult<()> {
    let mut conn = state.db.conn().await?;
    repo::release(&mut conn, user_id, key).await
}
