//! Post rules, whatever API version asks: visibility (only published posts are public; drafts
//! and archived posts exist only for their author, MODERATORs and ADMINs), who may edit or
//! delete, status transitions (`publishedAt` is set the first time a post is published),
//! optimistic concurrency with ETags, the cache policy, and one event per committed change
//! (recorded in the change's own transaction).
//!
//! Cache policy: only published posts and pages that are the same for every caller are cached,
//! each representation under its own key (a `PostView` names it); every write invalidates every
//! representation of what it changed. The service renders through the caller's `PostView` and
//! never builds a URL: the view (in `v1.rs` / `v2.rs`) owns its representation and its links.

use bytes::Bytes;
use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    model::{NewPostRow, Post, PostContent, PostStatus, PostTitle, Tag, Tags},
    repo::{self, ListQuery, PostChanges, Visibility},
};
use crate::{
    cache::{CacheStatus, Cached},
    domain::{
        paging::{decode_uuid_cursor, split_page},
        preconditions::Preconditions,
        text::DomainString,
    },
    error::{AppError, AppResult, Resource},
    events::{model::EventType, service as events},
    security::rbac::{Actor, Permission},
    state::AppState,
};

/// The cursor kind of post lists (a cursor of another list is refused).
const CURSOR_KIND: &str = "post";

/// How one API version shows posts. Implemented next to each version's handlers.
pub trait PostView {
    /// The cache namespace of this representation (`v1`, `v2`).
    const NAME: &'static str;
    fn render_post(post: &Post) -> AppResult<Bytes>;
    /// A page: the posts and the link to the next page, if any.
    fn render_page(posts: &[Post], next_link: Option<String>) -> AppResult<Bytes>;
    /// The next page's link: the list's path with `query` (which ends with the cursor).
    fn page_link(query: &[(&'static str, String)]) -> String;
}

/// A serialized post (or page) and where it came from.
pub struct Rendered {
    pub etag: Option<String>,
    pub body: Bytes,
    pub cache: CacheStatus,
}

pub struct ListParams {
    pub limit: u32,
    /// Opaque, from a previous page's link.
    pub cursor: Option<String>,
    pub author: Option<Uuid>,
    pub tag: Option<Tag>,
    /// The statuses asked for (each still subject to visibility).
    pub statuses: Vec<PostStatus>,
    /// The list's other parameters as its version spells them: repeated in the next page's
    /// link, and part of the cache key (they shape the page's body).
    pub echo: Vec<(&'static str, String)>,
}

pub struct NewPost {
    pub title: PostTitle,
    pub content: PostContent,
    pub status: PostStatus,
    pub tags: Tags,
}

/// A status change asked for by a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    To(PostStatus),
    /// v1's `published: false`: a published post becomes a draft; drafts and archived posts
    /// stay as they are.
    Unpublish,
}

/// A merge-patch of a post: `None` leaves a field alone.
#[derive(Debug, Default, Clone)]
pub struct PostPatch {
    pub title: Option<PostTitle>,
    pub content: Option<PostContent>,
    pub status: Option<StatusChange>,
    pub tags: Option<Tags>,
}

/// Whether `viewer` may see the post at all (otherwise it does not exist for them).
fn visible(viewer: Option<&Actor>, post: &Post) -> bool {
    post.status.is_public()
        || viewer.is_some_and(|a| a.owns_or_can(post.author_id, Permission::SeeAllDrafts))
}

/// Which of `statuses` the viewer may list: public ones for everyone; the others of every
/// author for MODERATOR and ADMIN, of their own posts for other signed-in callers.
fn visibility(viewer: Option<&Actor>, statuses: &[PostStatus]) -> Visibility {
    let see_all = viewer.is_some_and(|a| a.can(Permission::SeeAllDrafts));
    let (public, private): (Vec<PostStatus>, Vec<PostStatus>) =
        statuses.iter().partition(|s| s.is_public());
    if see_all {
        return Visibility {
            any_author: statuses.to_vec(),
            own: None,
        };
    }
    Visibility {
        any_author: public,
        own: viewer
            .filter(|_| !private.is_empty())
            .map(|a| (a.id, private)),
    }
}

pub async fn get<V: PostView>(
    state: &AppState,
    viewer: Option<&Actor>,
    id: Uuid,
) -> AppResult<Rendered> {
    let (cached, status, token) = state.cache.get_post(id, V::NAME).await;
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
    let post = found
        .filter(|post| visible(viewer, post))
        .ok_or(AppError::NotFound(Resource::Post))?;
    let body = V::render_post(&post)?;
    let etag = post.etag();
    let cache = if post.status.is_public() {
        let entry = Cached {
            etag: Some(etag.clone()),
            body: body.clone(),
        };
        state
            .cache
            .put_post(id, V::NAME, post.version, entry, token);
        status
    } else {
        CacheStatus::Bypass
    };
    Ok(Rendered {
        etag: Some(etag),
        body,
        cache,
    })
}

pub async fn list<V: PostView>(
    state: &AppState,
    viewer: Option<&Actor>,
    params: ListParams,
) -> AppResult<Rendered> {
    let before = decode_uuid_cursor(CURSOR_KIND, params.cursor.as_deref())?;
    let visible = visibility(viewer, &params.statuses);

    // Only a published-only page is the same for everyone, so only it is cached, keyed by the
    // representation and everything that shapes its body: the page (limit, cursor) and every
    // parameter its next link repeats.
    let public = visible.own.is_none() && visible.any_author == [PostStatus::Published];
    let cache_key = public.then(|| {
        let mut key = format!(
            "{}|limit={}&cursor={}",
            V::NAME,
            params.limit,
            params.cursor.as_deref().unwrap_or_default()
        );
        for (name, value) in &params.echo {
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

    let posts = {
        let mut conn = state.db.conn().await?;
        repo::list(
            &mut conn,
            &ListQuery {
                visible: &visible,
                author: params.author,
                tag: params.tag.as_ref().map(DomainString::as_str),
                before,
                limit: i64::from(params.limit) + 1,
            },
        )
        .await?
    };
    let (posts, next) = split_page(posts, params.limit, CURSOR_KIND, &params.echo, |p| {
        p.id.to_string()
    });
    let next_link = next.map(|query| V::page_link(&query));
    let body = V::render_page(&posts, next_link)?;
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
    let tags = input.tags.as_strs();
    let new = NewPostRow {
        id: Uuid::now_v7(),
        author_id: actor.id,
        author_username,
        title: input.title.as_str(),
        content: input.content.as_str(),
        status: input.status.as_str(),
        published_at: input.status.is_public().then_some(now),
        tags,
        created_at: now,
        updated_at: now,
    };
    let post = {
        let mut conn = state.db.conn().await?;
        let (post, fanout) = conn
            .transaction::<_, AppError, _>(async |conn| {
                let post = repo::insert(conn, new).await?;
                let fanout = events::record(conn, EventType::PostCreated, &post).await?;
                Ok((post, fanout))
            })
            .await?;
        fanout.wake_after_commit(state);
        post
    };
    if post.status.is_public() {
        state.cache.invalidate_lists().await;
    }
    Ok(post)
}

/// What a locked write did, for the cache invalidation after the commit.
struct Written {
    post: Post,
    /// `None` when the write changed nothing (no event, nothing to invalidate).
    fanout: Option<events::Fanout>,
    was_public: bool,
}

/// The status after `change`, from `current`.
fn next_status(current: PostStatus, change: StatusChange) -> PostStatus {
    match change {
        StatusChange::To(status) => status,
        StatusChange::Unpublish if current == PostStatus::Published => PostStatus::Draft,
        StatusChange::Unpublish => current,
    }
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
    let is_empty = patch.title.is_none()
        && patch.content.is_none()
        && patch.status.is_none()
        && patch.tags.is_none();
    let mut conn = state.db.conn().await?;
    let written = conn
        .transaction::<_, AppError, _>(async |conn| {
            let current = repo::lock(conn, id)
                .await?
                .filter(|post| visible(Some(actor), post))
                .ok_or(AppError::NotFound(Resource::Post))?;
            if !actor.owns_or_can(current.author_id, Permission::EditAnyPost) {
                return Err(AppError::Forbidden);
            }
            if !preconditions.allow(Some(&current.etag())) {
                return Err(AppError::PreconditionFailed);
            }
            let was_public = current.status.is_public();
            if is_empty {
                return Ok(Written {
                    post: current,
                    fanout: None,
                    was_public,
                });
            }
            let now = Utc::now();
            let status = patch.status.map(|c| next_status(current.status, c));
            let changes = PostChanges {
                title: patch.title.map(PostTitle::into_inner),
                content: patch.content.map(PostContent::into_inner),
                status: status.map(PostStatus::as_str),
                // The first time a post is published, and never again.
                published_at: status
                    .filter(|s| s.is_public() && current.published_at.is_none())
                    .map(|_| now),
                tags: patch.tags.map(Tags::into_strings),
            };
            let post = repo::update(conn, id, &changes, now).await?;
            let fanout = events::record(conn, EventType::PostUpdated, &post).await?;
            Ok(Written {
                post,
                fanout: Some(fanout),
                was_public,
            })
        })
        .await?;
    drop(conn);
    if let Some(fanout) = written.fanout {
        fanout.wake_after_commit(state);
        state.cache.invalidate_post(id, written.post.version).await;
        if written.was_public || written.post.status.is_public() {
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
                .filter(|post| visible(Some(actor), post))
            else {
                return Ok(None);
            };
            if !actor.owns_or_can(current.author_id, Permission::DeleteAnyPost) {
                return Err(AppError::Forbidden);
            }
            if !preconditions.allow(Some(&current.etag())) {
                return Err(AppError::PreconditionFailed);
            }
            let deleted = repo::delete(conn, id).await?;
            let fanout = events::record(conn, EventType::PostDeleted, &deleted).await?;
            Ok(Some((deleted, fanout)))
        })
        .await?;
    drop(conn);
    let deleted = deleted.map(|(deleted, fanout)| {
        fanout.wake_after_commit(state);
        deleted
    });
    // Also when there was nothing to delete: this may be a retry of a DELETE whose first attempt
    // committed on an instance that died before it could invalidate the shared cache (found by
    // the scale-out test: the post stayed readable from the cache after a 204).
    let public = deleted.as_ref().is_none_or(|post| post.status.is_public());
    state.cache.invalidate_post(id, i64::MAX).await;
    if public {
        state.cache.invalidate_lists().await;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::rbac::Role;

    fn actor(role: Role) -> Actor {
        Actor {
            id: Uuid::now_v7(),
            role,
        }
    }

    #[test]
    fn v1_unpublish_makes_only_a_published_post_a_draft() {
        use PostStatus::*;
        assert_eq!(next_status(Published, StatusChange::Unpublish), Draft);
        assert_eq!(next_status(Draft, StatusChange::Unpublish), Draft);
        assert_eq!(next_status(Archived, StatusChange::Unpublish), Archived);
        assert_eq!(
            next_status(Archived, StatusChange::To(Published)),
            Published
        );
    }

    #[test]
    fn lists_show_private_statuses_only_to_their_author_or_moderators() {
        use PostStatus::*;
        let all = PostStatus::ALL.to_vec();
        let anonymous = visibility(None, &all);
        assert_eq!(anonymous.any_author, [Published]);
        assert!(anonymous.own.is_none());
        let user = actor(Role::User);
        let mine = visibility(Some(&user), &all);
        assert_eq!(mine.any_author, [Published]);
        assert_eq!(mine.own, Some((user.id, vec![Draft, Archived])));
        let moderator = visibility(Some(&actor(Role::Moderator)), &[Draft]);
        assert_eq!(moderator.any_author, [Draft]);
        assert!(visibility(None, &[Draft]).is_nothing());
    }
}
