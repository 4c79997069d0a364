//! `/v1/posts/*`, the released view of posts: `published` (true exactly when the post's status
//! is `published`), no tags. List, get (ETag, 304, `X-Cache`), create (idempotent with
//! `Idempotency-Key`), merge-patch (`If-Match`), delete. A v1 `published: false` unpublishes a
//! published post and leaves an archived one archived; v1 never sees or changes tags.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
};
use serde::Serialize;
use uuid::Uuid;

use super::{
    model::{Post, PostContent, PostStatus, PostTitle, Tags},
    service::{self, ListParams, NewPost, PostPatch, PostView, Rendered, StatusChange},
};
use crate::{
    domain::preconditions::{Preconditions, not_modified},
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

/// The author of a post.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Author {
    pub id: Uuid,
    pub username: String,
}

impl Author {
    pub fn of(post: &Post) -> Self {
        Self {
            id: post.author_id,
            username: post.author_username.clone(),
        }
    }
}

/// A post.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Post", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct PostV1 {
    pub id: Uuid,
    pub title: String,
    pub content: String,
    /// Drafts (`false`) are visible only to their author, MODERATORs and ADMINs.
    pub published: bool,
    pub author: Author,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this representation, quotes included (as in the `ETag` header).
    pub etag: String,
}

impl From<&Post> for PostV1 {
    fn from(post: &Post) -> Self {
        Self {
            etag: post.etag(),
            id: post.id,
            title: post.title.clone(),
            content: post.content.clone(),
            published: post.status.is_public(),
            author: Author::of(post),
            created_at: post.created_at,
            updated_at: post.updated_at,
        }
    }
}

page_type!(
    /// A page of posts, newest first.
    PostPage,
    PostV1
);

/// How v1 shows posts (`PostView` for the service's cache and pages).
pub struct ViewV1;

impl PostView for ViewV1 {
    const NAME: &'static str = "v1";

    fn render_post(post: &Post) -> AppResult<Bytes> {
        serde_json::to_vec(&PostV1::from(post))
            .map(Bytes::from)
            .map_err(|e| AppError::internal_from("serializing a post", e))
    }

    fn render_page(posts: &[Post], next_link: Option<String>) -> AppResult<Bytes> {
        let page = PostPage {
            data: posts.iter().map(PostV1::from).collect(),
            next_link,
        };
        serde_json::to_vec(&page)
            .map(Bytes::from)
            .map_err(|e| AppError::internal_from("serializing a page", e))
    }

    fn page_link(query: &[(&'static str, String)]) -> String {
        next_link("/v1/posts", query)
    }
}

/// `?status=`: which posts a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum StatusFilter {
    Published,
    Draft,
    All,
}

impl StatusFilter {
    /// v1 knows published and unpublished: an archived post is one of its drafts.
    fn statuses(self) -> Vec<PostStatus> {
        match self {
            Self::Published => vec![PostStatus::Published],
            Self::Draft => vec![PostStatus::Draft, PostStatus::Archived],
            Self::All => PostStatus::ALL.to_vec(),
        }
    }
}

/// A new post.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatePostRequest {
    pub title: PostTitle,
    pub content: PostContent,
    /// Publish now (`true`) or keep as a draft (default).
    pub published: Option<bool>,
}

/// Changes to a post (JSON merge-patch): absent fields stay as they are.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PostPatchRequest {
    pub title: Option<PostTitle>,
    pub content: Option<PostContent>,
    pub published: Option<bool>,
}

const POST_READ_ONLY: &[&str] = &["id", "author", "createdAt", "updatedAt", "etag"];

impl RequestFields for CreatePostRequest {
    const READ_ONLY: &'static [&'static str] = POST_READ_ONLY;
}

impl RequestFields for PostPatchRequest {
    const READ_ONLY: &'static [&'static str] = POST_READ_ONLY;
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
        JsonBytes<PostV1>,
        #[oai(header = "ETag")] String,
        /// `HIT`, `MISS` or `BYPASS` (a draft, or the cache off or unreachable).
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
        JsonBytes<PostV1>,
        /// `/v1/posts/{id}`
        #[oai(header = "Location")]
        String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum UpdatePostResponse {
    /// The updated post.
    #[oai(status = 200)]
    Ok(JsonBytes<PostV1>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum DeletePostResponse {
    /// The post was deleted; here is what it was.
    #[oai(status = 200)]
    Deleted(JsonBytes<PostV1>),
    /// No such post (already deleted, never existed, or not visible to the caller).
    #[oai(status = 204)]
    Absent,
}

error_statuses!(ListPostsErrors: 400, 401, 429);
error_statuses!(GetPostErrors: 400, 401, 404, 429);
error_statuses!(CreatePostErrors: 400, 401, 408, 409, 411, 413, 415, 422, 429);
error_statuses!(UpdatePostErrors: 400, 401, 403, 404, 408, 409, 411, 412, 413, 415, 429);
error_statuses!(DeletePostErrors: 400, 401, 403, 409, 412, 429);

pub struct PostsApi;

#[OpenApi(tag = "ApiTags::Posts")]
impl PostsApi {
    /// List posts
    ///
    /// Newest first, cursor-paginated. `status=draft|all` adds the drafts the caller may see
    /// (their own; every draft for MODERATOR and ADMIN).
    #[oai(path = "/v1/posts", method = "get", operation_id = "list_posts")]
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
        /// `published` (default), `draft` or `all`.
        status: Query<Option<StatusFilter>>,
    ) -> Result<ListPostsResponse, ApiError<ListPostsErrors>> {
        let status = status.0.unwrap_or(StatusFilter::Published);
        let mut echo = Vec::new();
        if let Some(author) = author_id.0 {
            echo.push(("authorId", author.to_string()));
        }
        match status {
            StatusFilter::Published => {}
            StatusFilter::Draft => echo.push(("status", "draft".into())),
            StatusFilter::All => echo.push(("status", "all".into())),
        }
        let params = ListParams {
            limit: limit.0,
            cursor: cursor.0,
            author: author_id.0,
            tag: None,
            statuses: status.statuses(),
            echo,
        };
        let page = service::list::<ViewV1>(&state, auth.actor().as_ref(), params).await?;
        Ok(ListPostsResponse::Ok(
            JsonBytes::from_bytes(page.body),
            page.cache.as_str().to_string(),
        ))
    }

    /// Get a post
    ///
    /// A draft exists only for its author, MODERATORs and ADMINs.
    #[oai(path = "/v1/posts/:id", method = "get", operation_id = "get_post")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: MaybeAuth,
        id: Path<Uuid>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<GetPostResponse, ApiError<GetPostErrors>> {
        let Rendered { etag, body, cache } =
            service::get::<ViewV1>(&state, auth.actor().as_ref(), id.0).await?;
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
    /// With an `Idempotency-Key`, a retry gets the first response again (`Idempotent-Replayed:
    /// true`) instead of creating a second post.
    #[oai(
        path = "/v1/posts",
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
        body: JsonBody<CreatePostRequest>,
    ) -> Result<CreatePostResponse, ApiError<CreatePostErrors>> {
        let request = body.0;
        let post = service::create(
            &state,
            &auth.actor(),
            &auth.0.username,
            NewPost {
                title: request.title,
                content: request.content,
                status: if request.published.unwrap_or(false) {
                    PostStatus::Published
                } else {
                    PostStatus::Draft
                },
                tags: Tags::default(),
            },
        )
        .await?;
        Ok(CreatePostResponse::Created(
            JsonBytes::new(&PostV1::from(&post))?,
            format!("/v1/posts/{}", post.id),
            post.etag(),
        ))
    }

    /// Update a post
    ///
    /// JSON merge-patch by the author, a MODERATOR or an ADMIN. With `If-Match`, the update
    /// applies only to that version (412 otherwise).
    #[oai(path = "/v1/posts/:id", method = "patch", operation_id = "update_post")]
    async fn patch(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: MergePatch<PostPatchRequest>,
    ) -> Result<UpdatePostResponse, ApiError<UpdatePostErrors>> {
        let request = body.0;
        let patch = PostPatch {
            title: request.title,
            content: request.content,
            status: request.published.map(|published| {
                if published {
                    StatusChange::To(PostStatus::Published)
                } else {
                    StatusChange::Unpublish
                }
            }),
            tags: None,
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
            JsonBytes::new(&PostV1::from(&post))?,
            post.etag(),
        ))
    }

    /// Delete a post
    ///
    /// By the author, a MODERATOR or an ADMIN. Answers the deleted post, or 204 when there is
    /// none, so a retried DELETE never sees 404.
    #[oai(
        path = "/v1/posts/:id",
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
            Some(post) => Ok(DeletePostResponse::Deleted(JsonBytes::new(&PostV1::from(
                &post,
            ))?)),
            None => Ok(DeletePostResponse::Absent),
        }
    }
}
