//! `users` queries. Uniqueness violations become `AppError::Taken`; a conditional update that
//! matched no row returns `None` (the caller decides between 404 and 412).

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tracing::Instrument;
use uuid::Uuid;

use super::model::{NewUserRow, UserRow};
use crate::{
    db::{schema::users, violated_constraint},
    error::{AppError, AppResult, Taken},
};

diesel::define_sql_function!(fn lower(x: Text) -> Text);

pub async fn insert(conn: &mut AsyncPgConnection, new: NewUserRow<'_>) -> AppResult<UserRow> {
    diesel::insert_into(users::table)
        .values(&new)
        .returning(UserRow::as_returning())
        .get_result(conn)
        .instrument(crate::db_span!("INSERT", "users"))
        .await
        .map_err(|err| match violated_constraint(&err) {
            Some("users_email_lower_key") => AppError::Taken(Taken::Email),
            Some("users_username_lower_key") => AppError::Taken(Taken::Username),
            _ => err.into(),
        })
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .instrument(crate::db_span!("SELECT", "users"))
        .await
        .optional()?)
}

/// The row, locked until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .for_no_key_update()
        .first(conn)
        .instrument(crate::db_span!("SELECT", "users"))
        .await
        .optional()?)
}

/// Case-insensitive, served by the `lower(email)` unique index.
pub async fn find_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> AppResult<Option<UserRow>> {
    Ok(users::table
        .filter(lower(users::email).eq(lower(email)))
        .select(UserRow::as_select())
        .first(conn)
        .instrument(crate::db_span!("SELECT", "users"))
        .await
        .optional()?)
}

pub async fn exists_by_username(conn: &mut AsyncPgConnection, username: &str) -> AppResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table.filter(lower(users::username).eq(lower(username))),
    ))
    .get_result(conn)
    .await?)
}

/// Newest first (ids are UUIDv7), strictly after `after` when given.
pub async fn list(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<UserRow>> {
    let mut query = users::table
        .select(UserRow::as_select())
        .order(users::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.lt(after));
    }
    Ok(query.load(conn).await?)
}

/// Replaces the stored password hash (an upgrade to current parameters; not a change of the
/// user's representation, so the version stays).
pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &str,
) -> AppResult<()> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .await?;
    Ok(())
}

/// The fields a merge-patch may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub role: Option<&'static str>,
    pub is_active: Option<bool>,
}

/// Applies `changes` to a row the caller has locked; bumps the version.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &UserChanges,
    now: DateTime<Utc>,
) -> AppResult<UserRow> {
    Ok(diesel::update(users::table.find(id))
        .set((
            changes,
            users::version.eq(users::version + 1),
            users::updated_at.eq(now),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .instrument(crate::db_span!("UPDATE", "users"))
        .await?)
}
