//! Users as the API documents show them: the `User` representation, the `Role` schema, and the
//! schemas of the value types (`model.rs`) that requests carry.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde::Serialize;
use uuid::Uuid;

use super::model::{Email, Password, PersonName, UserRow, Username};
use crate::{
    domain::preconditions::etag_of,
    http::types::{openapi_bounded_text, openapi_string},
    security::rbac::Role,
};

openapi_string!(Email, "email", |schema| {
    schema.format = Some("email");
    schema.max_length = Some(Email::MAX_LEN);
    schema.example = Some("alice@example.com".into());
});

openapi_string!(Username, "username", |schema| {
    schema.pattern = Some("^[a-z0-9_]{3,32}$".into());
    schema.min_length = Some(3);
    schema.max_length = Some(32);
    schema.example = Some("alice".into());
});

openapi_bounded_text!(Password, "password", |schema| {
    schema.format = Some("password");
});

openapi_bounded_text!(PersonName, "person_name");

// The documents' name for `security::rbac::Role` (which holds the rules), so that rbac knows
// no poem-openapi. Its doc comment is the schema's description.
/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename = "Role", rename_all = "UPPERCASE")]
#[serde(rename_all = "UPPERCASE")]
pub enum RoleName {
    Admin,
    Moderator,
    User,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::Moderator => Self::Moderator,
            Role::User => Self::User,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Self::Admin,
            RoleName::Moderator => Self::Moderator,
            RoleName::User => Self::User,
        }
    }
}

/// An account, as the API shows it (never the password hash).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    #[oai(nullable)]
    pub first_name: Option<String>,
    #[oai(nullable)]
    pub last_name: Option<String>,
    pub role: RoleName,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this representation, quotes included (as in the `ETag` header).
    pub etag: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            etag: etag_of(row.version, row.updated_at),
            role: row.role.into(),
            id: row.id,
            email: row.email,
            username: row.username,
            first_name: row.first_name,
            last_name: row.last_name,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}
