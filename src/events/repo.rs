//! `events` queries: newest first by UUIDv7 id (keyset pages), optionally of one type.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{Event, EventType};
use crate::{
    db::schema::events,
    error::{AppError, AppResult},
    posts::model::Post,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct EventRow {
    id: Uuid,
    event_type: String,
    occurred_at: DateTime<Utc>,
    post: Option<serde_json::Value>,
}

impl TryFrom<EventRow> for Event {
    type Error = AppError;

    fn try_from(row: EventRow) -> AppResult<Self> {
        let event_type = EventType::parse(&row.event_type).ok_or_else(|| {
            AppError::internal(format!("unknown event type {:?}", row.event_type))
        })?;
        let post = row
            .post
            .map(serde_json::from_value::<Post>)
            .transpose()
            .map_err(|e| AppError::internal_from("reading an event's post", e))?;
        Ok(Self {
            id: row.id,
            event_type,
            occurred_at: row.occurred_at,
            post,
        })
    }
}

pub async fn insert(conn: &mut AsyncPgConnection, event: &Event) -> AppResult<()> {
    let post = event
        .post
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| AppError::internal_from("storing an event's post", e))?;
    diesel::insert_into(events::table)
        .values((
            events::id.eq(event.id),
            events::event_type.eq(event.event_type.as_str()),
            events::occurred_at.eq(event.occurred_at),
            events::post.eq(post),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<Event>> {
    let row: Option<EventRow> = events::table
        .find(id)
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(Event::try_from).transpose()
}

/// Up to `limit` events older than `before`, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    event_type: Option<EventType>,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Event>> {
    let mut query = events::table
        .select(EventRow::as_select())
        .order(events::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(event_type) = event_type {
        query = query.filter(events::event_type.eq(event_type.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(events::id.lt(before));
    }
    let rows: Vec<EventRow> = query.load(conn).await?;
    rows.into_iter().map(Event::try_from).collect()
}

/// Removes events that occurred before `before` (retention).
pub async fn purge(conn: &mut AsyncPgConnection, before: DateTime<Utc>) -> AppResult<usize> {
    Ok(
        diesel::delete(events::table.filter(events::occurred_at.lt(before)))
            .execute(conn)
            .await?,
    )
}
