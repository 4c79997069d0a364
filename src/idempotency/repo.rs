//! `idempotency_keys` queries. The primary key `(user_id, key)` is the lock: exactly one request
//! inserts (or takes over an expired or abandoned) row and owns the key until it stores its
//! response or releases the key.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Bytea, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::idempotency_keys, error::AppResult};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct IdempotencyRecord {
    pub request_hash: Vec<u8>,
    pub response_status: Option<i16>,
    pub response_headers: Option<String>,
    pub response_body: Option<Vec<u8>>,
    pub locked_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Claims the key for this request. True when the caller now owns it (a new key, or one whose
/// record expired, or whose owner died without finishing).
pub async fn claim(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    request_hash: &[u8],
    now: DateTime<Utc>,
    locked_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> AppResult<bool> {
    let claimed = diesel::sql_query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, locked_until, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, key) DO UPDATE SET
             request_hash = EXCLUDED.request_hash,
             response_status = NULL, response_headers = NULL, response_body = NULL,
             locked_until = EXCLUDED.locked_until,
             created_at = EXCLUDED.created_at,
             expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at < $5
            OR (idempotency_keys.response_status IS NULL AND idempotency_keys.locked_until < $5)",
    )
    .bind::<SqlUuid, _>(user_id)
    .bind::<Text, _>(key)
    .bind::<Bytea, _>(request_hash)
    .bind::<Timestamptz, _>(locked_until)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(expires_at)
    .execute(conn)
    .await?;
    Ok(claimed == 1)
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
) -> AppResult<Option<IdempotencyRecord>> {
    Ok(idempotency_keys::table
        .find((user_id, key))
        .select(IdempotencyRecord::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Stores the owner's response; from now on retries replay it.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    key: &str,
    status: i16,
    headers: &str,
    body: &[u8],
) -> AppResult<()> {
    diesel::update(idempotency_keys::table.find((user_id, key)))
        .set((
            idempotency_keys::response_status.eq(status),
            idempotency_keys::response_headers.eq(headers),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives the key up without a stored response (the request failed): a retry runs afresh.
pub async fn release(conn: &mut AsyncPgConnection, user_id: Uuid, key: &str) -> AppResult<()> {
    diesel::delete(
        idempotency_keys::table
            .find((user_id, key))
            .filter(idempotency_keys::response_status.is_null()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Housekeeping: deletes expired records. Returns how many.
pub async fn purge(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> AppResult<usize> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.lt(now)))
            .execute(conn)
            .await?,
    )
}
