//! `events` queries: newest first by UUIDv7 id (keyset pages), optionally of one type.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{self, Jsonb, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{Event, EventType};
use crate::{
    db::schema::events,
    error::{AppError, AppResult},
    jobs::repo::NewJob,
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

fn post_json(event: &Event) -> AppResult<Option<serde_json::Value>> {
    event
        .post
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| AppError::internal_from("storing an event's post", e))
}

/// Writes `event` alone (a test send, delivered to one endpoint by its caller).
pub async fn insert(conn: &mut AsyncPgConnection, event: &Event) -> AppResult<()> {
    diesel::insert_into(events::table)
        .values((
            events::id.eq(event.id),
            events::event_type.eq(event.event_type.as_str()),
            events::occurred_at.eq(event.occurred_at),
            events::post.eq(post_json(event)?),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes `event` and, only when some enabled webhook endpoint subscribes to its type, the
/// job that fans it out (`fanout`): one statement, so the outbox costs a post change one round
/// trip, and a service with no subscribers queues no work at all. Returns whether the job was
/// written. An endpoint saved while the change commits may miss that one event, as it would
/// had it been saved a moment later.
pub async fn insert_with_fanout(
    conn: &mut AsyncPgConnection,
    event: &Event,
    fanout: &NewJob,
) -> AppResult<bool> {
    let post = post_json(event)?;
    let queued = diesel::sql_query(
        "WITH event AS ( \
             INSERT INTO events (id, type, occurred_at, post) VALUES ($1, $2, $3, $4) \
         ) \
         INSERT INTO jobs (id, kind, payload, run_at, traceparent, created_at, updated_at) \
         SELECT $5, $6, $7, $8, $9, $3, $3 \
         WHERE EXISTS ( \
             SELECT 1 FROM webhook_endpoints WHERE enabled AND event_types @> ARRAY[$2] \
         )",
    )
    .bind::<sql_types::Uuid, _>(event.id)
    .bind::<Text, _>(event.event_type.as_str())
    .bind::<Timestamptz, _>(event.occurred_at)
    .bind::<Nullable<Jsonb>, _>(post)
    .bind::<sql_types::Uuid, _>(Uuid::now_v7())
    .bind::<Text, _>(fanout.kind.as_str())
    .bind::<Jsonb, _>(&fanout.payload)
    .bind::<Timestamptz, _>(fanout.run_at)
    .bind::<Nullable<Text>, _>(fanout.traceparent.as_deref())
    .execute(conn)
    .await?;
    Ok(queued == 1)
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
