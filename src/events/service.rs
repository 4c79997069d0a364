//! Recording events in a post change's transaction, and reading them (ADMIN) through the
//! caller's `EventView`.

use bytes::Bytes;
use chrono::Utc;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::{
    model::{Event, EventType},
    repo,
};
use crate::{
    error::{AppError, AppResult, Resource},
    http::pagination::{decode_uuid_cursor, split_page},
    jobs::{
        JobKind,
        repo::{NewJob, enqueue},
    },
    posts::model::Post,
    security::rbac::{Actor, Permission},
    state::AppState,
};

const CURSOR_KIND: &str = "event";

/// How one API version shows events (the post inside in that version's representation).
pub trait EventView {
    fn render_event(event: &Event) -> AppResult<Bytes>;
    fn render_page(events: &[Event], next_link: Option<String>) -> AppResult<Bytes>;
    /// The next page's link: the list's path with `query`.
    fn page_link(query: &[(&'static str, String)]) -> String;
}

/// The representation a webhook endpoint asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    V1,
    V2,
}

impl Representation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "v1" => Some(Self::V1),
            "v2" => Some(Self::V2),
            _ => None,
        }
    }
}

/// The event's JSON in `representation` (a webhook delivery's body).
pub fn render(event: &Event, representation: Representation) -> AppResult<Bytes> {
    match representation {
        Representation::V1 => <crate::http::version::V1 as EventView>::render_event(event),
        Representation::V2 => <crate::http::version::V2 as EventView>::render_event(event),
    }
}

/// Records that `post` changed, on `conn` inside the change's transaction, with the job that
/// fans it out to webhooks. The caller wakes the runner (`state.jobs_wake`) after the commit.
pub async fn record(
    conn: &mut AsyncPgConnection,
    event_type: EventType,
    post: &Post,
) -> AppResult<Event> {
    let event = Event {
        id: Uuid::now_v7(),
        event_type,
        occurred_at: Utc::now(),
        post: Some(post.clone()),
    };
    repo::insert(conn, &event).await?;
    enqueue(
        conn,
        NewJob {
            kind: JobKind::EventFanout,
            payload: serde_json::json!({ "eventId": event.id }),
            run_at: event.occurred_at,
            // The fan-out and its deliveries continue the trace of the request.
            traceparent: crate::telemetry::trace::current_traceparent(),
        },
    )
    .await?;
    Ok(event)
}

fn authorize(actor: &Actor) -> AppResult<()> {
    if actor.can(Permission::ReadEvents) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

pub async fn get<V: EventView>(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Bytes> {
    authorize(actor)?;
    let event = {
        let mut conn = state.db.conn().await?;
        repo::find(&mut conn, id).await?
    };
    let event = event.ok_or(AppError::NotFound(Resource::Event))?;
    V::render_event(&event)
}

pub async fn list<V: EventView>(
    state: &AppState,
    actor: &Actor,
    event_type: Option<EventType>,
    limit: u32,
    cursor: Option<&str>,
) -> AppResult<Bytes> {
    authorize(actor)?;
    let before = decode_uuid_cursor(CURSOR_KIND, cursor)?;
    let events = {
        let mut conn = state.db.conn().await?;
        repo::list(&mut conn, event_type, before, i64::from(limit) + 1).await?
    };
    let echo: Vec<(&'static str, String)> = event_type
        .map(|t| vec![("type", t.as_str().to_string())])
        .unwrap_or_default();
    let (events, next) = split_page(events, limit, CURSOR_KIND, &echo, |e| e.id.to_string());
    V::render_page(&events, next.map(|query| V::page_link(&query)))
}
