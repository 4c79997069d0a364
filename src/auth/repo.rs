//! `refresh_tokens` queries. Tokens are looked up by their SHA-256 hash only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{db::schema::refresh_tokens, error::AppResult};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<Uuid>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub token_hash: &'a [u8],
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: NewRefreshToken<'_>) -> AppResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(&new)
        .execute(conn)
        .await?;
    Ok(())
}

/// The token with this hash, locked until the transaction ends (so two concurrent refreshes
/// with one token are serialized: the second sees it rotated).
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
) -> AppResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshTokenRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn find(conn: &mut AsyncPgConnection, hash: &[u8]) -> AppResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn mark_replaced(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    successor: Uuid,
) -> AppResult<()> {
    diesel::update(refresh_tokens::table.find(id))
        .set(refresh_tokens::replaced_by.eq(successor))
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every live token of the user; returns how many.
pub async fn revoke_all_of_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
    .await?)
}

pub async fn revoke_family(
    conn: &mut AsyncPgConnection,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
    .await?)
}

/// Deletes tokens that can never be used again: expired, or revoked. Returns how many.
pub async fn purge(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> AppResult<usize> {
    Ok(diesel::delete(
        refresh_tokens::table.filter(
            refresh_tokens::expires_at
                .lt(now)
                .or(refresh_tokens::revoked_at.is_not_null()),
        ),
    )
    .execute(conn)
    .await?)
}
