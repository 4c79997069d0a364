//! Roles and what each may do: pure data and functions, no I/O. Services ask
//! `actor.can(Permission::...)`; ownership rules ("the author may edit") live in the services.

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "UPPERCASE")]
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

    /// The role stored in the database (constrained by a CHECK, so anything else is a bug).
    pub fn from_db(text: &str) -> Role {
        match text {
            "ADMIN" => Role::Admin,
            "MODERATOR" => Role::Moderator,
            _ => Role::User,
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

    const ALL: [Permission; 6] = [
        ManageUsers,
        ChangeRoles,
        SeeAllDrafts,
        EditAnyPost,
        DeleteAnyPost,
        WriteAirports,
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
            assert_eq!(Role::from_db(role.as_str()), role);
        }
    }
}
