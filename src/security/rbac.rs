//! Roles and what each may do: pure data and functions, no I/O. Services ask
//! `actor.can(Permission::...)`; ownership rules ("the author may edit") live in the services.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Admin,
    Moderator,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Moderator => "MODERATOR",
            Role::User => "USER",
        }
    }

    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Moderator => matches!(permission, SeeAllDrafts | EditAnyPost | DeleteAnyPost),
            Role::User => false,
        }
    }
}

/// A role text that names no role (the database's CHECK should make this impossible).
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

/// How a role is read from the database: an unknown one is an error (a failed row read, a 500
/// with its cause logged), never quietly a USER.
impl TryFrom<String> for Role {
    type Error = UnknownRole;

    fn try_from(text: String) -> Result<Self, UnknownRole> {
        match text.as_str() {
            "ADMIN" => Ok(Role::Admin),
            "MODERATOR" => Ok(Role::Moderator),
            "USER" => Ok(Role::User),
            _ => Err(UnknownRole(text)),
        }
    }
}

/// Something beyond what every signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// List all users and read any user.
    ManageUsers,
    /// Change a user's role or active flag.
    ChangeRoles,
    /// See drafts of other authors.
    SeeAllDrafts,
    /// Edit posts of other authors.
    EditAnyPost,
    /// Delete posts of other authors.
    DeleteAnyPost,
    /// Create, replace and delete airports.
    WriteAirports,
    /// Read the event log.
    ReadEvents,
    /// Create, change and delete webhook endpoints; read their deliveries.
    ManageWebhooks,
    /// Read, cancel and download other users' exports.
    ReadAnyExport,
}

/// The authenticated caller, as the access token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
}

impl Actor {
    pub fn can(&self, permission: Permission) -> bool {
        self.role.can(permission)
    }

    /// The author themself, or someone whose role grants `permission`.
    pub fn owns_or_can(&self, owner: Uuid, permission: Permission) -> bool {
        self.id == owner || self.can(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    const ALL: [Permission; 9] = [
        ManageUsers,
        ChangeRoles,
        SeeAllDrafts,
        EditAnyPost,
        DeleteAnyPost,
        WriteAirports,
        ReadEvents,
        ManageWebhooks,
        ReadAnyExport,
    ];

    #[test]
    fn admins_can_do_everything() {
        assert!(ALL.iter().all(|p| Role::Admin.can(*p)));
    }

    #[test]
    fn moderators_manage_content_but_not_accounts_or_airports() {
        let allowed: Vec<_> = ALL.iter().filter(|p| Role::Moderator.can(**p)).collect();
        assert_eq!(allowed, vec![&SeeAllDrafts, &EditAnyPost, &DeleteAnyPost]);
    }

    #[test]
    fn users_have_no_extra_permissions() {
        assert!(ALL.iter().all(|p| !Role::User.can(*p)));
    }

    #[test]
    fn an_author_owns_their_post() {
        let me = Actor {
            id: Uuid::now_v7(),
            role: Role::User,
        };
        assert!(me.owns_or_can(me.id, EditAnyPost));
        assert!(!me.owns_or_can(Uuid::now_v7(), EditAnyPost));
    }

    #[test]
    fn roles_round_trip_through_the_database_text() {
        for role in [Role::Admin, Role::Moderator, Role::User] {
            assert_eq!(Role::try_from(role.as_str().to_string()).unwrap(), role);
        }
        for unknown in ["SUPERUSER", "admin", ""] {
            assert!(Role::try_from(unknown.to_string()).is_err(), "{unknown:?}");
        }
    }
}
