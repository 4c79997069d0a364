//! Post rules: draft visibility, who may edit or delete, optimistic concurrency with ETags, and
//! the cache policy (only published posts and published-only list pages are cached: a response
//! that depends on who asks never is; every write invalidates what it changed).

use bytes::Bytes;
use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    model::{NewPostRow, Post, PostContent, PostRow, PostTitle},
    repo::{self, ListQuery, PostChanges, Visible},
};
use crate::{
    auth::rbac::{Actor, Permission},
    cache::{CacheStatus, Cached},
    error::{AppError, AppResult, Resource},
    http::{
        conditional::{Preconditions, etag_of},
        pagination::{decode_cursor, finish_page, page_type},
        types::DomainString,
    },
    state::AppState,
};

page_type!(
    /// A page of posts, newest first.
    PostPage,
    Post
);

/// A serialized post (or page) and where it came from.
pub struct Rendered {
    pub etag: Option<String>,
    pub body: Bytes,
    pub cache: CacheStatus,
}

/// `?status=`: which posts a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum StatusFilter {
    Published,
    Draft,
    All,
}

pub struct ListParams {
    pub limit: u32,
    pub cursor: Option<String>,
    pub author: Option<Uuid>,
    pub status: StatusFilter,
}

pub struct NewPost {
    pub title: PostTitle,
    pub content: PostContent,
    pub published: bool,
}

/// Whether `viewer` may see the post at all (otherwise it does not exist for them).
fn visible(viewer: Option<&Actor>, row: &PostRow) -> bool {
    row.published || viewer.is_some_and(|a| a.owns_or_can(row.author_id, Permission::SeeAllDrafts))
}

fn render(post: &Post) -> AppResult<Bytes> {
    serde_json::to_vec(post)
        .map(Bytes::from)
        .map_err(|e| AppError::internal_from("serializing a post", e))
}

pub async fn get(state: &AppState, viewer: Option<&Actor>, id: Uuid) -> AppResult<Rendered> {
    let (cached, status, token) = state.cache.get_post(id).await;
    crate::metrics::record_cache("post", status.as_str());
    if let Some(hit) = cached {
        return Ok(Rendered {
            etag: hit.etag.clone(),
            body: hit.body.clone(),
            cache: CacheStatus::Hit,
        });
    }
    let found = {
        let mut conn = state.db.conn().await?;
        repo::find(&mut conn, id).await?
    };
    let row = found
        .filter(|row| visible(viewer, row))
        .ok_or(AppError::NotFound(Resource::Post))?;
    let (published, version) = (row.published, row.version);
    let post = Post::from(row);
    let body = render(&post)?;
    let cache = if published {
        let entry = Cached {
            etag: Some(post.etag.clone()),
            body: body.clone(),
        };
        state.cache.put_post(id, version, entry, token);
        status
    } else {
        CacheStatus::Bypass
    };
    Ok(Rendered {
        etag: Some(post.etag),
        body,
        cache,
    })
}

pub async fn list(
    state: &AppState,
    viewer: Option<&Actor>,
    params: ListParams,
) -> AppResult<Rendered> {
    let before = match params.cursor.as_deref() {
        Some(cursor) => Some(
            decode_cursor("post", cursor)?
                .parse::<Uuid>()
                .map_err(|_| AppError::InvalidCursor)?,
        ),
        None => None,
    };
    let see_all = viewer.is_some_and(|a| a.can(Permission::SeeAllDrafts));
    let own = viewer.map(|a| a.id);
    let visible = match params.status {
        StatusFilter::Published => Visible::Published,
        StatusFilter::Draft if see_all => Visible::Drafts(None),
        StatusFilter::Draft => own.map_or(Visible::Nothing, |id| Visible::Drafts(Some(id))),
        StatusFilter::All if see_all => Visible::PublishedAndDrafts(None),
        StatusFilter::All => own.map_or(Visible::Published, |id| {
            Visible::PublishedAndDrafts(Some(id))
        }),
    };

    let mut link_params = Vec::new();
    if let Some(author) = params.author {
        link_params.push(("authorId", author.to_string()));
    }
    if params.status != StatusFilter::Published {
        let status = match params.status {
            StatusFilter::Draft => "draft",
            _ => "all",
        };
        link_params.push(("status", status.to_string()));
    }

    // Only a published-only page is the same for everyone, so only it is cached, keyed by
    // everything that shapes its body: the page (limit, cursor) and every parameter its
    // `nextLink` repeats (an anonymous `status=all` page links on with `status=all`).
    let cache_key = (visible == Visible::Published).then(|| {
        let mut key = format!(
            "limit={}&cursor={}",
            params.limit,
            params.cursor.as_deref().unwrap_or_default()
        );
        for (name, value) in &link_params {
            key.push_str(&format!("&{name}={value}"));
        }
        key
    });
    let (status, token) = match &cache_key {
        Some(key) => {
            let (cached, status, token) = state.cache.get_list(key).await;
            crate::metrics::record_cache("post_list", status.as_str());
            if let Some(hit) = cached {
                return Ok(Rendered {
                    etag: None,
                    body: hit.body.clone(),
                    cache: CacheStatus::Hit,
                });
            }
            (status, Some(token))
        }
        None => (CacheStatus::Bypass, None),
    };

    let rows = {
        let mut conn = state.db.conn().await?;
        repo::list(
            &mut conn,
            &ListQuery {
                visible,
                author: params.author,
                before,
                limit: i64::from(params.limit) + 1,
            },
        )
        .await?
    };
    let (rows, next_link) = finish_page(
        rows,
        params.limit,
        "post",
        "/v1/posts",
        &link_params,
        |row| row.id.to_string(),
    );
    let page = PostPage {
        data: rows.into_iter().map(Post::from).collect(),
        next_link,
    };
    let body = serde_json::to_vec(&page)
        .map(Bytes::from)
        .map_err(|e| AppError::internal_from("serializing a page", e))?;
    if let (Some(key), Some(token)) = (&cache_key, token) {
        state.cache.put_list(key, body.clone(), token);
    }
    Ok(Rendered {
        etag: None,
        body,
        cache: status,
    })
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    author_username: &str,
    input: NewPost,
) -> AppResult<Post> {
    let now = Utc::now();
    let row = {
        let mut conn = state.db.conn().await?;
        repo::insert(
            &mut conn,
            NewPostRow {
                id: Uuid::now_v7(),
                author_id: actor.id,
                author_username,
                title: input.title.as_str(),
                content: input.content.as_str(),
                published: input.published,
                created_at: now,
                updated_at: now,
            },
        )
        .await?
    };
    if row.published {
        state.cache.invalidate_lists().await;
    }
    Ok(Post::from(row))
}

/// A merge-patch of a post: `None` leaves a field alone.
#[derive(Debug, Default, Clone)]
pub struct PostPatch {
    pub title: Option<PostTitle>,
    pub content: Option<PostContent>,
    pub published: Option<bool>,
}

/// What a locked write did, for the cache invalidation after the commit.
struct Written {
    post: Post,
    version: i64,
    changed: bool,
    was_published: bool,
}

/// Merge-patch by the author, a MODERATOR or an ADMIN. The row is locked for the duration, so
/// concurrent writers queue and each checks `If-Match` against the version before it.
pub async fn patch(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    patch: PostPatch,
    preconditions: &Preconditions,
) -> AppResult<Post> {
    let changes = PostChanges {
        title: patch.title.map(|t| t.as_str().to_string()),
        content: patch.content.map(|c| c.as_str().to_string()),
        published: patch.published,
    };
    let is_empty =
        changes.title.is_none() && changes.content.is_none() && changes.published.is_none();
    let mut conn = state.db.conn().await?;
    let written = conn
        .transaction::<_, AppError, _>(async |conn| {
            let current = repo::lock(conn, id)
                .await?
                .filter(|row| visible(Some(actor), row))
                .ok_or(AppError::NotFound(Resource::Post))?;
            if !actor.owns_or_can(current.author_id, Permission::EditAnyPost) {
                return Err(AppError::Forbidden);
            }
            if !preconditions.allow(Some(&etag_of(current.version, current.updated_at))) {
                return Err(AppError::PreconditionFailed);
            }
            let was_published = current.published;
            let (row, changed) = if is_empty {
                (current, false)
            } else {
                (repo::update(conn, id, &changes, Utc::now()).await?, true)
            };
            Ok(Written {
                version: row.version,
                post: Post::from(row),
                changed,
                was_published,
            })
        })
        .await?;
    drop(conn);
    if written.changed {
        state.cache.invalidate_post(id, written.version).await;
        if written.was_published || written.post.published {
            state.cache.invalidate_lists().await;
        }
    }
    Ok(written.post)
}

/// `None` when there is nothing (visible to the caller) to delete.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    preconditions: &Preconditions,
) -> AppResult<Option<Post>> {
    let mut conn = state.db.conn().await?;
    let deleted = conn
        .transaction::<_, AppError, _>(async |conn| {
            let Some(current) = repo::lock(conn, id)
                .await?
                .filter(|row| visible(Some(actor), row))
            else {
                return Ok(None);
            };
            if !actor.owns_or_can(current.author_id, Permission::DeleteAnyPost) {
                return Err(AppError::Forbidden);
            }
            if !preconditions.allow(Some(&etag_of(current.version, current.updated_at))) {
                return Err(AppError::PreconditionFailed);
            }
            let row = repo::delete(conn, id).await?;
            Ok(Some(Post::from(row)))
        })
        .await?;
    drop(conn);
    // Also when there was nothing to delete: this may be a retry of a DELETE whose first attempt
    // committed on an instance that died before it could invalidate the shared cache (found by
    // the scale-out test: the post stayed readable from the cache after a 204).
    let published = deleted.as_ref().is_none_or(|post| post.published);
    state.cache.invalidate_post(id, i64::MAX).await;
    if published {
        state.cache.invalidate_lists().await;
    }
    Ok(deleted)
}
