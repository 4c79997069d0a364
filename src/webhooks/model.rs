//! Webhook endpoints and delivery attempts as the database holds them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::{
    db::schema::{webhook_deliveries, webhook_endpoints},
    domain::preconditions::etag_of,
    events::model::EventType,
};

/// How long a rotated-out secret keeps signing.
pub const PREVIOUS_SECRET_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// A row of `webhook_endpoints`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct EndpointRow {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub api_version: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRow {
    pub fn etag(&self) -> String {
        etag_of(self.version, self.updated_at)
    }

    /// The secrets that sign a delivery made `now`: the current one, and the previous one
    /// during its grace period.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }

    pub fn event_types(&self) -> Vec<EventType> {
        self.event_types
            .iter()
            .filter_map(|t| EventType::parse(t))
            .collect()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewEndpointRow {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub api_version: String,
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The state of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    Pending,
    Succeeded,
    Failed,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A row of `webhook_deliveries`: one attempt of one event to one endpoint.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct DeliveryRow {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub attempt: i32,
    pub status: String,
    pub response_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status: AttemptStatus,
    pub response_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// When the next attempt is due, if there is one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}
