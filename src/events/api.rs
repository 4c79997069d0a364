//! `/v{n}/events`: the event log, for ADMINs. Written once for every version: a version brings
//! its own `Event` schema (the post inside in its representation) through `EventsVersion`.

use std::marker::PhantomData;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Enum, OpenApi,
    param::{Path, Query},
    types::{ToJSON, Type},
};
use uuid::Uuid;

use super::{
    model::EventType,
    service::{self, EventView},
};
use crate::{
    http::{
        ApiTags,
        auth::Auth,
        json::JsonBytes,
        pagination::default_limit,
        problem::{ApiError, error_statuses},
        version::ApiVersion,
    },
    state::AppState,
};

/// A version's event schemas and how it renders events.
pub trait EventsVersion: ApiVersion + EventView {
    /// `Event` of this version.
    type Event: Type + ToJSON + Send;
    /// `EventPage` of this version.
    type Page: Type + ToJSON + Send;
}

/// What happened: a post was created, updated or deleted, or a webhook endpoint was tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename = "EventType")]
pub enum EventTypeParam {
    #[oai(rename = "post.created")]
    #[serde(rename = "post.created")]
    PostCreated,
    #[oai(rename = "post.updated")]
    #[serde(rename = "post.updated")]
    PostUpdated,
    #[oai(rename = "post.deleted")]
    #[serde(rename = "post.deleted")]
    PostDeleted,
    #[oai(rename = "webhook.test")]
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl From<EventTypeParam> for EventType {
    fn from(param: EventTypeParam) -> Self {
        match param {
            EventTypeParam::PostCreated => Self::PostCreated,
            EventTypeParam::PostUpdated => Self::PostUpdated,
            EventTypeParam::PostDeleted => Self::PostDeleted,
            EventTypeParam::WebhookTest => Self::WebhookTest,
        }
    }
}

impl From<EventType> for EventTypeParam {
    fn from(event_type: EventType) -> Self {
        match event_type {
            EventType::PostCreated => Self::PostCreated,
            EventType::PostUpdated => Self::PostUpdated,
            EventType::PostDeleted => Self::PostDeleted,
            EventType::WebhookTest => Self::WebhookTest,
        }
    }
}

#[derive(ApiResponse)]
pub enum EventPageResponse<T: Type + ToJSON + Send> {
    /// A page of events, newest first.
    #[oai(status = 200)]
    Ok(JsonBytes<T>),
}

#[derive(ApiResponse)]
pub enum EventResponse<T: Type + ToJSON + Send> {
    /// The event.
    #[oai(status = 200)]
    Ok(JsonBytes<T>),
}

error_statuses!(ListEventsErrors: 400, 401, 403, 429);
error_statuses!(GetEventErrors: 400, 401, 403, 404, 429);

/// Mounted once per API version.
pub struct EventsApi<V>(PhantomData<V>);

impl<V> Default for EventsApi<V> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[OpenApi(tag = "ApiTags::Events", prefix_path = V::PREFIX)]
impl<V: EventsVersion> EventsApi<V> {
    /// List events
    ///
    /// ADMIN only. Newest first, cursor-paginated; one event per committed post change, kept
    /// for `EVENT_RETENTION` (30 days). The post inside is in this version's representation.
    #[oai(path = "/events", method = "get", operation_id = "list_events")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Page size (1–100).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Opaque cursor from a previous page's `nextLink`.
        #[oai(validator(min_length = 1, max_length = 512))]
        cursor: Query<Option<String>>,
        /// Only events of this type.
        #[oai(name = "type")]
        event_type: Query<Option<EventTypeParam>>,
    ) -> Result<EventPageResponse<V::Page>, ApiError<ListEventsErrors>> {
        let body = service::list::<V>(
            &state,
            &auth.actor(),
            event_type.0.map(EventType::from),
            limit.0,
            cursor.0.as_deref(),
        )
        .await?;
        Ok(EventPageResponse::Ok(JsonBytes::from_bytes(body)))
    }

    /// Get an event
    ///
    /// ADMIN only.
    #[oai(path = "/events/:id", method = "get", operation_id = "get_event")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The event's id.
        id: Path<Uuid>,
    ) -> Result<EventResponse<V::Event>, ApiError<GetEventErrors>> {
        let body = service::get::<V>(&state, &auth.actor(), id.0).await?;
        Ok(EventResponse::Ok(JsonBytes::from_bytes(body)))
    }
}
