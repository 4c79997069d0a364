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
    domain::paging::{decode_uuid_cursor, split_page},
    error::{AppError, AppResult, Resource},
    jobs::{JobKind, repo::NewJob},
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

/// Whether recording an event queued work for the job runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "wake the job runner after the commit when the fan-out was queued"]
pub enum Fanout {
    Queued,
    NoSubscribers,
}

impl Fanout {
    /// After the commit: wake this instance's job runner if there is work for it.
    pub fn wake_after_commit(self, state: &AppState) {
        if self == Self::Queued {
            state.jobs_wake.wake();
        }
    }
}

/// Records that `post` changed, on `conn` inside the change's transaction, with the job that
/// fans it out to the webhook endpoints subscribed to it (none when there are none). The
/// caller calls `wake_after_commit` on the result once the transaction has committed.
pub async fn record(
    conn: &mut AsyncPgConnection,
    event_type: EventType,
    post: &Post,
) -> AppResult<Fanout> {
    let event = Event {
        id: Uuid::now_v7(),
        event_type,
        occurred_at: Utc::now(),
        post: Some(post.clone()),
    };
    let fanout = NewJob {
        kind: JobKind::EventFanout,
        payload: serde_json::json!({ "eventId": event.id }),
        run_at: event.occurred_at,
        // The fan-out and its deliveries continue the trace of the request.
        traceparent: crate::telemetry::trace::current_traceparent(),
    };
    Ok(if repo::insert_with_fanout(conn, &event, &fanout).await? {
        Fanout::Queued
    } else {
        Fanout::NoSubscribers
    })
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
