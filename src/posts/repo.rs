//! `posts` queries: a post is read from its own row (the author's username and the tags are
//! stored on it). Lists use keyset pagination on the UUIDv7 id, newest first; a tag filter walks
//! `post_tags` (tag, post_id) in the same order. Writers lock the row first (`lock`) and keep
//! `post_tags` in step with `posts.tags` in the same transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tracing::Instrument;
use uuid::Uuid;

use super::model::{NewPostRow, Post, PostStatus};
use crate::{
    db::schema::{post_tags, posts},
    error::AppResult,
};

/// Which posts a list may show the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Statuses shown whoever wrote the post.
    pub any_author: Vec<PostStatus>,
    /// Statuses shown only for this author's posts.
    pub own: Option<(Uuid, Vec<PostStatus>)>,
}

impl Visibility {
    pub fn is_nothing(&self) -> bool {
        self.any_author.is_empty() && self.own.as_ref().is_none_or(|(_, s)| s.is_empty())
    }
}

pub struct ListQuery<'a> {
    pub visible: &'a Visibility,
    pub author: Option<Uuid>,
    pub tag: Option<&'a str>,
    pub before: Option<Uuid>,
    pub limit: i64,
}

fn texts(statuses: &[PostStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

pub async fn insert(conn: &mut AsyncPgConnection, new: NewPostRow<'_>) -> AppResult<Post> {
    let tags: Vec<String> = new.tags.iter().map(|t| t.to_string()).collect();
    let post = diesel::insert_into(posts::table)
        .values(&new)
        .returning(Post::as_returning())
        .get_result(conn)
        .instrument(crate::db_span!("INSERT", "posts"))
        .await?;
    insert_tags(conn, post.id, &tags).await?;
    Ok(post)
}

async fn insert_tags(conn: &mut AsyncPgConnection, id: Uuid, tags: &[String]) -> AppResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = tags
        .iter()
        .map(|tag| (post_tags::tag.eq(tag), post_tags::post_id.eq(id)))
        .collect();
    diesel::insert_into(post_tags::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<Post>> {
    Ok(posts::table
        .find(id)
        .select(Post::as_select())
        .first(conn)
        .instrument(crate::db_span!("SELECT", "posts"))
        .await
        .optional()?)
}

/// The row, locked until the transaction ends (writers of one post queue here, in order).
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<Post>> {
    Ok(posts::table
        .find(id)
        .select(Post::as_select())
        .for_no_key_update()
        .first(conn)
        .instrument(crate::db_span!("SELECT", "posts"))
        .await
        .optional()?)
}

/// Filters a boxed query on `posts` (joined or not) by a `Visibility`.
macro_rules! visible_only {
    ($query:expr, $visible:expr) => {{
        let visible: &Visibility = $visible;
        let any = texts(&visible.any_author);
        match &visible.own {
            None if any.len() == 1 => $query.filter(posts::status.eq(any[0])),
            None => $query.filter(posts::status.eq_any(any)),
            Some((author, own)) if any.is_empty() => $query
                .filter(posts::status.eq_any(texts(own)))
                .filter(posts::author_id.eq(*author)),
            Some((author, own)) => $query.filter(
                posts::status.eq_any(any).or(posts::status
                    .eq_any(texts(own))
                    .and(posts::author_id.eq(*author))),
            ),
        }
    }};
}

pub async fn list(conn: &mut AsyncPgConnection, q: &ListQuery<'_>) -> AppResult<Vec<Post>> {
    if q.visible.is_nothing() {
        return Ok(Vec::new());
    }
    if let Some(tag) = q.tag {
        // Newest first along (tag, post_id): as fast at 10^6 posts as at 10^3.
        let mut query = posts::table
            .inner_join(post_tags::table)
            .select(Post::as_select())
            .filter(post_tags::tag.eq(tag))
            .order(post_tags::post_id.desc())
            .limit(q.limit)
            .into_boxed();
        query = visible_only!(query, q.visible);
        if let Some(author) = q.author {
            query = query.filter(posts::author_id.eq(author));
        }
        if let Some(before) = q.before {
            query = query.filter(post_tags::post_id.lt(before));
        }
        return Ok(query
            .load(conn)
            .instrument(crate::db_span!("SELECT", "posts"))
            .await?);
    }
    let mut query = posts::table
        .select(Post::as_select())
        .order(posts::id.desc())
        .limit(q.limit)
        .into_boxed();
    query = visible_only!(query, q.visible);
    if let Some(author) = q.author {
        query = query.filter(posts::author_id.eq(author));
    }
    if let Some(before) = q.before {
        query = query.filter(posts::id.lt(before));
    }
    Ok(query
        .load(conn)
        .instrument(crate::db_span!("SELECT", "posts"))
        .await?)
}

/// Every post of one author, drafts included, oldest first, in keyset batches (exports).
pub async fn by_author(
    conn: &mut AsyncPgConnection,
    author: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<Post>> {
    let mut query = posts::table
        .select(Post::as_select())
        .filter(posts::author_id.eq(author))
        .order(posts::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(posts::id.gt(after));
    }
    Ok(query.load(conn).await?)
}

/// The columns a write may change; `None` leaves one alone.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = posts)]
pub struct PostChanges {
    pub title: Option<String>,
    pub content: Option<String>,
    pub status: Option<&'static str>,
    pub published_at: Option<DateTime<Utc>>,
    pub tags: Option<Vec<String>>,
}

/// Applies `changes` to a row the caller has locked; bumps the version.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &PostChanges,
    now: DateTime<Utc>,
) -> AppResult<Post> {
    let post = diesel::update(posts::table.find(id))
        .set((
            changes,
            posts::version.eq(posts::version + 1),
            posts::updated_at.eq(now),
        ))
        .returning(Post::as_returning())
        .get_result(conn)
        .instrument(crate::db_span!("UPDATE", "posts"))
        .await?;
    if let Some(tags) = &changes.tags {
        diesel::delete(post_tags::table.filter(post_tags::post_id.eq(id)))
            .execute(conn)
            .instrument(crate::db_span!("UPDATE", "posts"))
            .await?;
        insert_tags(conn, id, tags).await?;
    }
    Ok(post)
}

/// Deletes a row the caller has locked (its tags go with it).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Post> {
    Ok(diesel::delete(posts::table.find(id))
        .returning(Post::as_returning())
        .get_result(conn)
        .instrument(crate::db_span!("DELETE", "posts"))
        .await?)
}

/// How many posts exist (the seed's progress and idempotence).
pub async fn count(conn: &mut AsyncPgConnection) -> AppResult<i64> {
    Ok(posts::table.count().get_result(conn).await?)
}
