//! Events as v1 shows them: the post inside is a v1 post (`published`, no tags).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;
use uuid::Uuid;

use super::{api::EventTypeParam, model::Event, service::EventView};
use crate::{
    error::{AppError, AppResult},
    http::{
        pagination::{next_link, page_type},
        version::V1,
    },
    posts::v1::PostV1,
};

/// What an event carries.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "EventData")]
pub struct EventDataV1 {
    /// The post after the change (before it, for `post.deleted`); `null` for `webhook.test`.
    #[oai(nullable)]
    pub post: Option<PostV1>,
}

/// Something that happened to a post.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Event", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct EventV1 {
    /// The event's id (UUIDv7: ordered by time); also the `webhook-id` of its deliveries.
    pub id: Uuid,
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: EventTypeParam,
    /// When the change was committed.
    pub occurred_at: DateTime<Utc>,
    pub data: EventDataV1,
}

impl From<&Event> for EventV1 {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id,
            event_type: event.event_type.into(),
            occurred_at: event.occurred_at,
            data: EventDataV1 {
                post: event.post.as_ref().map(PostV1::from),
            },
        }
    }
}

page_type!(
    /// A page of events, newest first.
    EventPage,
    EventV1
);

impl EventView for V1 {
    fn render_event(event: &Event) -> AppResult<Bytes> {
        serialize(&EventV1::from(event))
    }

    fn render_page(events: &[Event], next_link: Option<String>) -> AppResult<Bytes> {
        serialize(&EventPage {
            data: events.iter().map(EventV1::from).collect(),
            next_link,
        })
    }

    fn page_link(query: &[(&'static str, String)]) -> String {
        next_link("/v1/events", query)
    }
}

impl super::api::EventsVersion for V1 {
    type Event = EventV1;
    type Page = EventPage;
}

pub(super) fn serialize(value: &impl Serialize) -> AppResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| AppError::internal_from("serializing an event", e))
}
