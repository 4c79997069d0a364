//! Account rules: who may read and change which user, and what deactivation implies.

use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    model::UserRow,
    repo::{self, UserChanges},
};
use crate::{
    auth::repo as tokens_repo,
    domain::preconditions::{Preconditions, etag_of},
    error::{AppError, AppResult, Resource},
    security::rbac::{Actor, Permission, Role},
    state::AppState,
};

/// A merge-patch of a user: `None` leaves a field alone; `Some(None)` clears a name.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

impl UserPatch {
    fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.role.is_none()
            && self.is_active.is_none()
    }
}

pub async fn me(state: &AppState, actor: &Actor) -> AppResult<UserRow> {
    let mut conn = state.db.conn().await?;
    repo::find(&mut conn, actor.id)
        .await?
        .ok_or(AppError::NotFound(Resource::User))
}

/// ADMIN, or the user themself.
pub async fn get(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<UserRow> {
    if !actor.owns_or_can(id, Permission::ManageUsers) {
        return Err(AppError::Forbidden);
    }
    let mut conn = state.db.conn().await?;
    repo::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound(Resource::User))
}

/// ADMIN only; newest first.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<UserRow>> {
    if !actor.can(Permission::ManageUsers) {
        return Err(AppError::Forbidden);
    }
    let mut conn = state.db.conn().await?;
    repo::list(&mut conn, after, limit).await
}

/// Names: the user or an ADMIN. Role and active flag: ADMIN only, and never on themself in a
/// way that would lock them out. Deactivation revokes the user's refresh tokens in the same
/// transaction.
pub async fn patch(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    patch: UserPatch,
    preconditions: &Preconditions,
) -> AppResult<UserRow> {
    if !actor.owns_or_can(id, Permission::ManageUsers) {
        return Err(AppError::Forbidden);
    }
    if (patch.role.is_some() || patch.is_active.is_some()) && !actor.can(Permission::ChangeRoles) {
        return Err(AppError::Forbidden);
    }
    if actor.id == id
        && (patch
            .role
            .is_some_and(|r| r != Role::Admin && actor.role == Role::Admin)
            || patch.is_active == Some(false))
    {
        return Err(AppError::Conflict(
            "An administrator cannot demote or deactivate themself.",
        ));
    }
    let changes = UserChanges {
        first_name: patch.first_name.clone(),
        last_name: patch.last_name.clone(),
        role: patch.role.map(Role::as_str),
        is_active: patch.is_active,
    };
    let mut conn = state.db.conn().await?;
    let (user, deactivated) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let current = repo::lock(conn, id)
                .await?
                .ok_or(AppError::NotFound(Resource::User))?;
            if !preconditions.allow(Some(&etag_of(current.version, current.updated_at))) {
                return Err(AppError::PreconditionFailed);
            }
            if patch.is_empty() {
                return Ok((current, false));
            }
            let now = Utc::now();
            let deactivating = patch.is_active == Some(false) && current.is_active;
            let updated = repo::update(conn, id, &changes, now).await?;
            if deactivating {
                tokens_repo::revoke_all_of_user(conn, id, now).await?;
            }
            Ok((updated, deactivating))
        })
        .await?;
    if deactivated {
        tracing::info!(event = "users.deactivated", user.id = %id, by = %actor.id, "account deactivated; refresh tokens revoked");
    }
    Ok(user)
}
