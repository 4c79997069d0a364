//! Operations in domain words.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::operations;

/// Where an operation is in its life. The text is stored and shown as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    NotStarted,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl OperationStatus {
    pub const ALL: [OperationStatus; 5] = [
        Self::NotStarted,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "notStarted",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// A status text that names no status (the database's CHECK makes this a bug).
#[derive(Debug, thiserror::Error)]
#[error("unknown operation status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for OperationStatus {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(UnknownStatus(text))
    }
}

/// An operation: the row of `operations`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = operations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Operation {
    pub id: Uuid,
    pub kind: String,
    pub owner_id: Uuid,
    /// The API version whose representation the file is written in (`v1`, `v2`).
    pub api_version: String,
    #[diesel(deserialize_as = String)]
    pub status: OperationStatus,
    pub percent_complete: i32,
    /// The problem+json body of a failed operation.
    pub error: Option<serde_json::Value>,
    pub result_count: Option<i64>,
    /// The job run that owns the file (see the migration).
    pub run: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
