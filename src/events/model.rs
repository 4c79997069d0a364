//! Events in domain words: what happened to which post, and when.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::posts::model::Post;

/// What happened. The text is stored in `events.type` and shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    PostCreated,
    PostUpdated,
    PostDeleted,
    /// Sent to one webhook endpoint on request (`POST /webhooks/{id}/test`).
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        Self::PostCreated,
        Self::PostUpdated,
        Self::PostDeleted,
        Self::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostCreated => "post.created",
            Self::PostUpdated => "post.updated",
            Self::PostDeleted => "post.deleted",
            Self::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// An event: the post as it was after the change (before it, for `post.deleted`); `None` only
/// for a `webhook.test` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub post: Option<Post>,
}
