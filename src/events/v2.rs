//! Events as v2 shows them: the post inside is a v2 post (`status`, `tags`).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;
use uuid::Uuid;

use super::{api::EventTypeParam, model::Event, service::EventView, v1::serialize};
use crate::{
    error::AppResult,
    http::{
        pagination::{next_link, page_type},
        version::V2,
    },
    posts::v2::PostV2,
};

/// What an event carries.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "EventData")]
pub struct EventDataV2 {
    /// The post after the change (before it, for `post.deleted`); `null` for `webhook.test`.
    #[oai(nullable)]
    pub post: Option<PostV2>,
}

/// Something that happened to a post.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Event", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct EventV2 {
    /// The event's id (UUIDv7: ordered by time); also the `webhook-id` of its deliveries.
    pub id: Uuid,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: EventTypeParam,
    /// When the change was committed.
    pub occurred_at: DateTime<Utc>,
    pub data: EventDataV2,
}

impl From<&Event> for EventV2 {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id,
            event_type: event.event_type.into(),
            occurred_at: event.occurred_at,
            data: EventDataV2 {
                post: event.post.as_ref().map(PostV2::from),
            },
        }
    }
}

page_type!(
    /// A page of events, newest first.
    EventPage,
    EventV2
);

impl EventView for V2 {
    fn render_event(event: &Event) -> AppResult<Bytes> {
        serialize(&EventV2::from(event))
    }

    fn render_page(events: &[Event], next_link: Option<String>) -> AppResult<Bytes> {
        serialize(&EventPage {
            data: events.iter().map(EventV2::from).collect(),
            next_link,
        })
    }

    fn page_link(query: &[(&'static str, String)]) -> String {
        next_link("/v2/events", query)
    }
}

impl super::api::EventsVersion for V2 {
    type Event = EventV2;
    type Page = EventPage;
}
