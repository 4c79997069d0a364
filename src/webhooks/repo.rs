//! `webhook_endpoints` and `webhook_deliveries` queries.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{AttemptResult, AttemptStatus, DeliveryRow, EndpointRow, NewEndpointRow};
use crate::{
    db::schema::{webhook_deliveries, webhook_endpoints},
    error::AppResult,
};

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewEndpointRow) -> AppResult<EndpointRow> {
    Ok(diesel::insert_into(webhook_endpoints::table)
        .values(new)
        .returning(EndpointRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<EndpointRow>> {
    Ok(webhook_endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The row, locked until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<EndpointRow>> {
    Ok(webhook_endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?)
}

/// Whether the endpoint exists, holding it (`FOR KEY SHARE`) until the transaction ends: taken
/// first by a transaction that writes its delivery rows, so it and a `DELETE` of the endpoint
/// (which cascades to those rows) lock in the same order and queue instead of deadlocking.
pub async fn hold(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<bool> {
    Ok(webhook_endpoints::table
        .find(id)
        .select(webhook_endpoints::id)
        .for_key_share()
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}

/// Newest first (UUIDv7 ids), strictly older than `before`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<EndpointRow>> {
    let mut query = webhook_endpoints::table
        .select(EndpointRow::as_select())
        .order(webhook_endpoints::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(webhook_endpoints::id.lt(before));
    }
    Ok(query.load(conn).await?)
}

/// Enabled endpoints subscribed to `event_type`.
pub async fn subscribed(
    conn: &mut AsyncPgConnection,
    event_type: &str,
) -> AppResult<Vec<EndpointRow>> {
    Ok(webhook_endpoints::table
        .filter(webhook_endpoints::enabled.eq(true))
        .filter(webhook_endpoints::event_types.contains(vec![event_type.to_string()]))
        .select(EndpointRow::as_select())
        .load(conn)
        .await?)
}

/// The fields a merge-patch may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub api_version: Option<String>,
}

/// Applies `changes` to a row the caller has locked; bumps the version.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &EndpointChanges,
    now: DateTime<Utc>,
) -> AppResult<EndpointRow> {
    Ok(diesel::update(webhook_endpoints::table.find(id))
        .set((
            changes,
            webhook_endpoints::version.eq(webhook_endpoints::version + 1),
            webhook_endpoints::updated_at.eq(now),
        ))
        .returning(EndpointRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Replaces the secret; the current one keeps signing until `previous_until`.
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    current: &EndpointRow,
    secret: &str,
    previous_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    diesel::update(webhook_endpoints::table.find(current.id))
        .set((
            webhook_endpoints::secret.eq(secret),
            webhook_endpoints::previous_secret.eq(Some(&current.secret)),
            webhook_endpoints::previous_secret_expires_at.eq(Some(previous_until)),
            webhook_endpoints::version.eq(webhook_endpoints::version + 1),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Disables an endpoint (its receiver answered 410 Gone).
pub async fn disable(conn: &mut AsyncPgConnection, id: Uuid, now: DateTime<Utc>) -> AppResult<()> {
    diesel::update(
        webhook_endpoints::table
            .find(id)
            .filter(webhook_endpoints::enabled.eq(true)),
    )
    .set((
        webhook_endpoints::enabled.eq(false),
        webhook_endpoints::version.eq(webhook_endpoints::version + 1),
        webhook_endpoints::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<EndpointRow>> {
    Ok(diesel::delete(webhook_endpoints::table.find(id))
        .returning(EndpointRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Writes attempt `attempt` of (event, endpoint) as pending, due at `due`; `false` when it
/// was already written (a fan-out or an attempt that ran twice).
pub async fn insert_pending(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    endpoint_id: Uuid,
    attempt: i32,
    due: DateTime<Utc>,
) -> AppResult<bool> {
    let inserted = diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(Uuid::now_v7()),
            webhook_deliveries::endpoint_id.eq(endpoint_id),
            webhook_deliveries::event_id.eq(event_id),
            webhook_deliveries::attempt.eq(attempt),
            webhook_deliveries::status.eq(AttemptStatus::Pending.as_str()),
            webhook_deliveries::created_at.eq(Utc::now()),
            webhook_deliveries::next_attempt_at.eq(Some(due)),
        ))
        .on_conflict((
            webhook_deliveries::event_id,
            webhook_deliveries::endpoint_id,
            webhook_deliveries::attempt,
        ))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// The latest attempt of (event, endpoint).
pub async fn latest_attempt(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    endpoint_id: Uuid,
) -> AppResult<Option<DeliveryRow>> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::event_id.eq(event_id))
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .order(webhook_deliveries::attempt.desc())
        .select(DeliveryRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Records how a pending attempt ended; `false` when it was no longer pending (recorded by a
/// run that had lost its lease).
pub async fn record(
    conn: &mut AsyncPgConnection,
    attempt_id: Uuid,
    result: &AttemptResult,
) -> AppResult<bool> {
    let updated = diesel::update(
        webhook_deliveries::table
            .find(attempt_id)
            .filter(webhook_deliveries::status.eq(AttemptStatus::Pending.as_str())),
    )
    .set((
        webhook_deliveries::status.eq(result.status.as_str()),
        webhook_deliveries::response_status.eq(result.response_status),
        webhook_deliveries::error.eq(result.error.as_deref()),
        webhook_deliveries::duration_ms.eq(Some(result.duration_ms)),
        webhook_deliveries::next_attempt_at.eq(result.next_attempt_at),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// An endpoint's attempts, newest first, strictly older than `before`.
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    endpoint_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<DeliveryRow>> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .select(DeliveryRow::as_select())
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(webhook_deliveries::id.lt(before));
    }
    Ok(query.load(conn).await?)
}
