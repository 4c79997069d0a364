//! `events` queries: newest first by UUIDv7 id (keyset pages), optionally of one type.

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, QueryFragment, QueryId},
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
    let queued = InsertWithFanout {
        event_id: event.id,
        event_type: event.event_type.as_str(),
        occurred_at: event.occurred_at,
        post: post_json(event)?,
        job_id: Uuid::now_v7(),
        kind: fanout.kind.as_str(),
        payload: &fanout.payload,
        run_at: fanout.run_at,
        traceparent: fanout.traceparent.as_deref(),
    }
    .execute(conn)
    .await?;
    Ok(queued == 1)
}

/// `insert_with_fanout`'s statement as a typed query rather than `sql_query` text: the
/// connection's statement cache then prepares it once, where `sql_query` is parsed and planned
/// on every call (a second round trip; measured at the cost of a whole extra insert).
struct InsertWithFanout<'a> {
    event_id: Uuid,
    event_type: &'a str,
    occurred_at: DateTime<Utc>,
    post: Option<serde_json::Value>,
    job_id: Uuid,
    kind: &'a str,
    payload: &'a serde_json::Value,
    run_at: DateTime<Utc>,
    traceparent: Option<&'a str>,
}

/// One statement text whatever the values: cache it under this type.
impl QueryId for InsertWithFanout<'_> {
    type QueryId = InsertWithFanout<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertWithFanout<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH event AS (INSERT INTO events (id, type, occurred_at, post) VALUES (");
        out.push_bind_param::<sql_types::Uuid, _>(&self.event_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.event_type)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.occurred_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.post)?;
        out.push_sql(
            ")) INSERT INTO jobs (id, kind, payload, run_at, traceparent, created_at, updated_at) \
             SELECT ",
        );
        out.push_bind_param::<sql_types::Uuid, _>(&self.job_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(self.payload)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.run_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.traceparent)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.occurred_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.occurred_at)?;
        out.push_sql(
            " WHERE EXISTS (SELECT 1 FROM webhook_endpoints \
             WHERE enabled AND event_types @> ARRAY[",
        );
        out.push_bind_param::<Text, _>(&self.event_type)?;
        out.push_sql("])");
        Ok(())
    }
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
/// Deletes events older than `before`, by id: ids are UUIDv7, minted as the event occurs, so
/// the primary key orders them by time and no index on `occurred_at` has to be kept up on
/// every post change.
pub async fn purge(conn: &mut AsyncPgConnection, before: DateTime<Utc>) -> AppResult<usize> {
    let millis = u64::try_from(before.timestamp_millis()).unwrap_or(0);
    let first_kept = uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid();
    Ok(
        diesel::delete(events::table.filter(events::id.lt(first_kept)))
            .execute(conn)
            .await?,
    )
}
