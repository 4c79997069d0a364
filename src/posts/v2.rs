//! `/v2/posts/*`: posts with a `status` (draft, published, archived) instead of `published`, a
//! read-only `publishedAt`, and `tags` (with a `?tag=` filter). Everything else (ETags, 304,
//! `If-Match`, `Idempotency-Key`, DELETE 200/204, permissions, cursors) as in v1: the same
//! service and data, another representation.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use serde::Serialize;
use uuid::Uuid;

use super::{
    model::{MAX_TAGS, Post, PostContent, PostStatus, PostTitle, Tag, Tags},
    service::{self, ListParams, NewPost, PostPatch, PostView, Rendered, StatusChange},
    v1::Author,
};
use crate::{
    domain::{
        preconditions::{Preconditions, not_modified},
        text::DomainString,
    },
    error::{AppError, AppResult},
    http::{
        ApiTags,
        auth::{Auth, MaybeAuth},
        body::{JsonBody, MergePatch, RequestFields},
        idempotency::{IdempotencyKey, idempotent},
        json::JsonBytes,
        pagination::{default_limit, next_link, page_type},
        problem::{ApiError, error_statuses},
    },
    state::AppState,
};

/// Where a post is in its life: only `published` posts are public; `draft` (the default for a
/// new post) and `archived` posts are seen only by their author, MODERATORs and ADMINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename = "PostStatus", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
    Archived,
}

impl From<PostStatus> for Status {
    fn from(status: PostStatus) -> Self {
        match status {
            PostStatus::Draft => Self::Draft,
            PostStatus::Published => Self::Published,
            PostStatus::Archived => Self::Archived,
        }
    }
}

impl From<Status> for PostStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Draft => Self::Draft,
            Status::Published => Self::Published,
            Status::Archived => Self::Archived,
        }
    }
}

/// A post.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Post", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PostV2 {
    pub id: Uuid,
    pub title: String,
    pub content: String,
    pub status: Status,
    /// When the post was first published (set once, never changed); `null` before.
    #[oai(nullable)]
    pub published_at: Option<DateTime<Utc>>,
    /// 0–10 distinct tags, in the order given.
    pub tags: Vec<String>,
    pub author: Author,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this version of the post (shared with its v1 representation).
    pub etag: String,
}

impl From<&Post> for PostV2 {
    fn from(post: &Post) -> Self {
        Self {
            etag: post.etag(),
            id: post.id,
            title: post.title.clone(),
            content: post.content.clone(),
            status: post.status.into(),
            published_at: post.published_at,
            tags: post.tags.clone(),
            author: Author::of(post),
            created_at: post.created_at,
            updated_at: post.updated_at,
        }
    }
}

page_type!(
    /// A page of posts, newest first.
    PostPage,
    PostV2
);

/// How v2 shows posts (`PostView` for the service's cache and pages).
pub struct ViewV2;

impl PostView for ViewV2 {
    const NAME: &'static str = "v2";

    fn render_post(post: &Post) -> AppResult<Bytes> {
        serde_json::to_vec(&PostV2::from(post))
            .map(Bytes::from)
            .map_err(|e| AppError::internal_from("serializing a post", e))
    }

    fn render_page(posts: &[Post], next_link: Option<String>) -> AppResult<Bytes> {
        let page = PostPage {
            data: posts.iter().map(PostV2::from).collect(),
            next_link,
        };
        serde_json::to_vec(&page)
            .map(Bytes::from)
            .map_err(|e| AppError::internal_from("serializing a page", e))
    }

    fn page_link(query: &[(&'static str, String)]) -> String {
        next_link("/v2/posts", query)
    }
}

/// `?status=` of v2 lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "PostStatusFilter", rename_all = "lowercase")]
pub enum StatusFilter {
    Published,
    Draft,
    Archived,
    All,
}

impl StatusFilter {
    fn statuses(self) -> Vec<PostStatus> {
        match self {
            Self::Published => vec![PostStatus::Published],
            Self::Draft => vec![PostStatus::Draft],
            Self::Archived => vec![PostStatus::Archived],
            Self::All => PostStatus::ALL.to_vec(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Draft => "draft",
            Self::Archived => "archived",
            Self::All => "all",
        }
    }
}

/// A new post.
#[derive(Debug, Object)]
#[oai(rename = "CreatePostRequest", rename_all = "camelCase")]
pub struct CreatePostRequestV2 {
    pub title: PostTitle,
    pub content: PostContent,
    pub status: Option<Status>,
    /// 0–10 distinct tags (default none).
    #[oai(validator(max_items = 10, unique_items))]
    pub tags: Option<Vec<Tag>>,
}

/// Changes to a post (JSON merge-patch): absent fields stay as they are; `tags: []` clears the
/// tags (`null` is refused).
#[derive(Debug, Object)]
#[oai(rename = "PostPatchRequest", rename_all = "camelCase")]
pub struct PostPatchRequestV2 {
    pub title: Option<PostTitle>,
    pub content: Option<PostContent>,
    pub status: Option<Status>,
    #[oai(validator(max_items = 10, unique_items))]
    pub tags: Option<Vec<Tag>>,
}

const POST_READ_ONLY: &[&str] = &[
    "id",
    "author",
    "createdAt",
    "updatedAt",
    "etag",
    "publishedAt",
];

impl RequestFields for CreatePostRequestV2 {
    const READ_ONLY: &'static [&'static str] = POST_READ_ONLY;
}

impl RequestFields for PostPatchRequestV2 {
    const READ_ONLY: &'static [&'static str] = POST_READ_ONLY;
}

/// Tags from a request: the schema already bounds them; this is the domain's own check.
fn tags(tags: Vec<Tag>) -> Result<Tags, AppError> {
    Tags::parse(tags).map_err(|message| AppError::InvalidField {
        field: "tags",
        message,
    })
}

#[derive(ApiResponse)]
pub enum ListPostsResponse {
    /// A page of posts.
    #[oai(status = 200)]
    Ok(
        JsonBytes<PostPage>,
        /// `HIT` or `MISS` for a public (published-only) page; `BYPASS` when the page depends on
        /// the caller or the cache is off or unreachable.
        #[oai(header = "X-Cache")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum GetPostResponse {
    /// The post.
    #[oai(status = 200)]
    Ok(
        JsonBytes<PostV2>,
        #[oai(header = "ETag")] String,
        /// `HIT`, `MISS` or `BYPASS` (not public, or the cache off or unreachable).
        #[oai(header = "X-Cache")]
        String,
    ),
    /// The client's copy (`If-None-Match`) is current.
    #[oai(status = 304)]
    NotModified(
        #[oai(header = "ETag")] String,
        #[oai(header = "X-Cache")] String,
    ),
}

#[derive(ApiResponse)]
pub enum CreatePostResponse {
    /// The post was created.
    #[oai(status = 201)]
    Created(
        JsonBytes<PostV2>,
        /// `/v2/posts/{id}`
        #[oai(header = "Location")]
        String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum UpdatePostResponse {
    /// The updated post.
    #[oai(status = 200)]
    Ok(JsonBytes<PostV2>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum DeletePostResponse {
    /// The post was deleted; here is what it was.
    #[oai(status = 200)]
    Deleted(JsonBytes<PostV2>),
    /// No such post (already deleted, never existed, or not visible to the caller).
    #[oai(status = 204)]
    Absent,
}

error_statuses!(ListPostsErrors: 400, 401, 429);
error_statuses!(GetPostErrors: 400, 401, 404, 429);
error_statuses!(CreatePostErrors: 400, 401, 408, 409, 411, 413, 415, 422, 429);
error_statuses!(UpdatePostErrors: 400, 401, 403, 404, 408, 409, 411, 412, 413, 415, 429);
error_statuses!(DeletePostErrors: 400, 401, 403, 409, 412, 429);

pub struct PostsV2Api;

#[OpenApi(tag = "ApiTags::Posts")]
impl PostsV2Api {
    /// List posts
    ///
    /// Newest first, cursor-paginated. `status=draft|archived|all` adds the posts of that status
    /// the caller may see (their own; every one for MODERATOR and ADMIN); `tag` keeps posts
    /// that carry it.
    #[oai(path = "/v2/posts", method = "get", operation_id = "list_posts")]
    // Each argument is one of the operation's parameters: the signature is the contract.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: MaybeAuth,
        /// Page size (1–100).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Opaque cursor from a previous page's `nextLink`.
        #[oai(validator(min_length = 1, max_length = 512))]
        cursor: Query<Option<String>>,
        /// Only posts by this author.
        #[oai(name = "authorId")]
        author_id: Query<Option<Uuid>>,
        /// Only posts carrying this tag.
        tag: Query<Option<Tag>>,
        /// `published` (default), `draft`, `archived` or `all`.
        status: Query<Option<StatusFilter>>,
    ) -> Result<ListPostsResponse, ApiError<ListPostsErrors>> {
        let status = status.0.unwrap_or(StatusFilter::Published);
        let mut echo = Vec::new();
        if let Some(author) = author_id.0 {
            echo.push(("authorId", author.to_string()));
        }
        if let Some(tag) = &tag.0 {
            echo.push(("tag", tag.as_str().to_string()));
        }
        if status != StatusFilter::Published {
            echo.push(("status", status.as_str().to_string()));
        }
        let params = ListParams {
            limit: limit.0,
            cursor: cursor.0,
            author: author_id.0,
            tag: tag.0,
            statuses: status.statuses(),
            echo,
        };
        let page = service::list::<ViewV2>(&state, auth.actor().as_ref(), params).await?;
        Ok(ListPostsResponse::Ok(
            JsonBytes::from_bytes(page.body),
            page.cache.as_str().to_string(),
        ))
    }

    /// Get a post
    ///
    /// A draft or archived post exists only for its author, MODERATORs and ADMINs.
    #[oai(path = "/v2/posts/:id", method = "get", operation_id = "get_post")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: MaybeAuth,
        id: Path<Uuid>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<GetPostResponse, ApiError<GetPostErrors>> {
        let Rendered { etag, body, cache } =
            service::get::<ViewV2>(&state, auth.actor().as_ref(), id.0).await?;
        let etag = etag.unwrap_or_default();
        let cache = cache.as_str().to_string();
        if not_modified(if_none_match.0.as_deref(), &etag) {
            return Ok(GetPostResponse::NotModified(etag, cache));
        }
        Ok(GetPostResponse::Ok(
            JsonBytes::from_bytes(body),
            etag,
            cache,
        ))
    }

    /// Create a post
    ///
    /// A draft unless `status` says otherwise. With an `Idempotency-Key`, a retry gets the first
    /// response again (`Idempotent-Replayed: true`) instead of creating a second post.
    #[oai(
        path = "/v2/posts",
        method = "post",
        operation_id = "create_post",
        transform = "idempotent"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Makes retries safe: 1–255 visible ASCII characters, remembered for 24 hours per user.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: JsonBody<CreatePostRequestV2>,
    ) -> Result<CreatePostResponse, ApiError<CreatePostErrors>> {
        let request = body.0;
        let post = service::create(
            &state,
            &auth.actor(),
            &auth.0.username,
            NewPost {
                title: request.title,
                content: request.content,
                status: request.status.map_or(PostStatus::Draft, PostStatus::from),
                tags: tags(request.tags.unwrap_or_default())?,
            },
        )
        .await?;
        Ok(CreatePostResponse::Created(
            JsonBytes::new(&PostV2::from(&post))?,
            format!("/v2/posts/{}", post.id),
            post.etag(),
        ))
    }

    /// Update a post
    ///
    /// JSON merge-patch of `title`, `content`, `status` and `tags` by the author, a MODERATOR or
    /// an ADMIN. With `If-Match`, the update applies only to that version (412 otherwise).
    #[oai(path = "/v2/posts/:id", method = "patch", operation_id = "update_post")]
    async fn patch(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: MergePatch<PostPatchRequestV2>,
    ) -> Result<UpdatePostResponse, ApiError<UpdatePostErrors>> {
        let request = body.0;
        let patch = PostPatch {
            title: request.title,
            content: request.content,
            status: request.status.map(|s| StatusChange::To(s.into())),
            tags: request.tags.map(tags).transpose()?,
        };
        let post = service::patch(
            &state,
            &auth.actor(),
            id.0,
            patch,
            &Preconditions::if_match(if_match.0),
        )
        .await?;
        Ok(UpdatePostResponse::Ok(
            JsonBytes::new(&PostV2::from(&post))?,
            post.etag(),
        ))
    }

    /// Delete a post
    ///
    /// By the author, a MODERATOR or an ADMIN. Answers the deleted post, or 204 when there is
    /// none, so a retried DELETE never sees 404.
    #[oai(
        path = "/v2/posts/:id",
        method = "delete",
        operation_id = "delete_post"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<DeletePostResponse, ApiError<DeletePostErrors>> {
        match service::delete(
            &state,
            &auth.actor(),
            id.0,
            &Preconditions::if_match(if_match.0),
        )
        .await?
        {
            Some(post) => Ok(DeletePostResponse::Deleted(JsonBytes::new(&PostV2::from(
                &post,
            ))?)),
            None => Ok(DeletePostResponse::Absent),
        }
    }
}

const _: () = assert!(MAX_TAGS == 10, "the schema's max_items says 10");
