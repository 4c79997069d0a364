//! `posts` queries: single-table (the author's username is stored on the post). Lists use
//! keyset pagination on the UUIDv7 id, newest first; writers lock the row first (`lock`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{NewPostRow, PostRow};
use crate::{db::schema::posts, error::AppResult};

/// Which posts a list may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visible {
    Published,
    /// Drafts of one author, or of everyone (`None`).
    Drafts(Option<Uuid>),
    /// Published posts plus drafts of one author, or plus every draft (`None`).
    PublishedAndDrafts(Option<Uuid>),
    /// Nothing (an anonymous caller asking for drafts).
    Nothing,
}

pub struct ListQuery {
    pub visible: Visible,
    pub author: Option<Uuid>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: NewPostRow<'_>) -> AppResult<PostRow> {
    Ok(diesel::insert_into(posts::table)
        .values(&new)
        .returning(PostRow::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<PostRow>> {
    Ok(posts::table
        .find(id)
        .select(PostRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The row, locked until the transaction ends (writers of one post queue here, in order).
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<PostRow>> {
    Ok(posts::table
        .find(id)
        .select(PostRow::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn list(conn: &mut AsyncPgConnection, q: &ListQuery) -> AppResult<Vec<PostRow>> {
    let mut query = posts::table
        .select(PostRow::as_select())
        .order(posts::id.desc())
        .limit(q.limit)
        .into_boxed();
    query = match q.visible {
        Visible::Published => query.filter(posts::published.eq(true)),
        Visible::Drafts(None) => query.filter(posts::published.eq(false)),
        Visible::Drafts(Some(author)) => query
            .filter(posts::published.eq(false))
            .filter(posts::author_id.eq(author)),
        Visible::PublishedAndDrafts(None) => query,
        Visible::PublishedAndDrafts(Some(author)) => {
            query.filter(posts::published.eq(true).or(posts::author_id.eq(author)))
        }
        Visible::Nothing => return Ok(Vec::new()),
    };
    if let Some(author) = q.author {
        query = query.filter(posts::author_id.eq(author));
    }
    if let Some(before) = q.before {
        query = query.filter(posts::id.lt(before));
    }
    Ok(query.load(conn).await?)
}

/// The fields a merge-patch may change; `None` leaves a column alone.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = posts)]
pub struct PostChanges {
    pub title: Option<String>,
    pub content: Option<String>,
    pub published: Option<bool>,
}

/// Applies `changes` to a row the caller has locked; bumps the version.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &PostChanges,
    now: DateTime<Utc>,
) -> AppResult<PostRow> {
    Ok(diesel::update(posts::table.find(id))
        .set((
            changes,
            posts::version.eq(posts::version + 1),
            posts::updated_at.eq(now),
        ))
        .returning(PostRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Deletes a row the caller has locked.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<PostRow> {
    Ok(diesel::delete(posts::table.find(id))
        .returning(PostRow::as_returning())
        .get_result(conn)
        .await?)
}

/// How many posts exist (the seed's progress and idempotence).
pub async fn count(conn: &mut AsyncPgConnection) -> AppResult<i64> {
    Ok(posts::table.count().get_result(conn).await?)
}
