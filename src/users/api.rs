//! `/v1/users/*`: the caller, the user list (ADMIN), one user, and merge-patching a user.

use std::marker::PhantomData;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};
use uuid::Uuid;

use super::{
    model::{PersonName, UserRow},
    schema::{RoleName, User},
    service::{self, UserPatch},
};
use crate::{
    domain::{
        paging::decode_uuid_cursor,
        preconditions::{Preconditions, not_modified},
    },
    http::{
        ApiTags,
        auth::Auth,
        body::{MergePatch, RequestFields},
        json::JsonBytes,
        pagination::{default_limit, finish_page, page_type},
        problem::{ApiError, error_statuses},
        version::ApiVersion,
    },
    state::AppState,
};

page_type!(
    /// A page of users, newest first.
    UserPage,
    User
);

/// Changes to a user (JSON merge-patch): absent fields stay, `null` clears a name. `role` and
/// `isActive` are for ADMINs only; `isActive: false` revokes the user's refresh tokens.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserPatchRequest {
    #[oai(nullable)]
    pub first_name: MaybeUndefined<PersonName>,
    #[oai(nullable)]
    pub last_name: MaybeUndefined<PersonName>,
    pub role: Option<RoleName>,
    pub is_active: Option<bool>,
}

impl RequestFields for UserPatchRequest {
    const READ_ONLY: &'static [&'static str] =
        &["id", "email", "username", "createdAt", "updatedAt", "etag"];
}

fn names(value: MaybeUndefined<PersonName>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(name) => Some(Some(name.into_inner())),
    }
}

#[derive(ApiResponse)]
pub enum UserResponse {
    /// The user.
    #[oai(status = 200)]
    Ok(JsonBytes<User>, #[oai(header = "ETag")] String),
    /// The client's copy (`If-None-Match`) is current.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

impl UserResponse {
    fn of<S>(row: UserRow, if_none_match: Option<&str>) -> Result<Self, ApiError<S>> {
        let user = User::from(row);
        if not_modified(if_none_match, &user.etag) {
            return Ok(Self::NotModified(user.etag));
        }
        let body = JsonBytes::new(&user)?;
        Ok(Self::Ok(body, user.etag))
    }
}

#[derive(ApiResponse)]
pub enum UpdateUserResponse {
    /// The updated user.
    #[oai(status = 200)]
    Ok(JsonBytes<User>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum UserListResponse {
    /// A page of users.
    #[oai(status = 200)]
    Ok(JsonBytes<UserPage>),
}

error_statuses!(MeErrors: 401, 429);
error_statuses!(ListUsersErrors: 400, 401, 403, 429);
error_statuses!(GetUserErrors: 400, 401, 403, 404, 429);
error_statuses!(PatchUserErrors: 400, 401, 403, 404, 408, 409, 411, 412, 413, 415, 429);

/// Mounted once per API version (`V::PREFIX`); the same in every version.
pub struct UsersApi<V>(PhantomData<V>);

impl<V> Default for UsersApi<V> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[OpenApi(tag = "ApiTags::Users", prefix_path = V::PREFIX)]
impl<V: ApiVersion> UsersApi<V> {
    /// The caller's account
    #[oai(path = "/users/me", method = "get", operation_id = "get_current_user")]
    async fn me(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<UserResponse, ApiError<MeErrors>> {
        let row = service::me(&state, &auth.actor()).await?;
        UserResponse::of(row, if_none_match.0.as_deref())
    }

    /// List users
    ///
    /// ADMIN only. Newest first, cursor-paginated.
    #[oai(path = "/users", method = "get", operation_id = "list_users")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Page size (1–100).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Opaque cursor from a previous page's `nextLink`.
        #[oai(validator(min_length = 1, max_length = 512))]
        cursor: Query<Option<String>>,
    ) -> Result<UserListResponse, ApiError<ListUsersErrors>> {
        let after = decode_uuid_cursor("user", cursor.0.as_deref())?;
        let rows = service::list(&state, &auth.actor(), after, i64::from(limit.0) + 1).await?;
        let (rows, next_link) = finish_page(
            rows,
            limit.0,
            "user",
            &format!("{}/users", V::PREFIX),
            &[],
            |u| u.id.to_string(),
        );
        let page = UserPage {
            data: rows.into_iter().map(User::from).collect(),
            next_link,
        };
        Ok(UserListResponse::Ok(JsonBytes::new(&page)?))
    }

    /// Get a user
    ///
    /// ADMIN, or the user themself.
    #[oai(path = "/users/:id", method = "get", operation_id = "get_user")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<Uuid>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<UserResponse, ApiError<GetUserErrors>> {
        let row = service::get(&state, &auth.actor(), id.0).await?;
        UserResponse::of(row, if_none_match.0.as_deref())
    }

    /// Update a user
    ///
    /// JSON merge-patch. Names: the user or an ADMIN. `role` and `isActive`: ADMIN only; an
    /// ADMIN cannot demote or deactivate themself (409).
    #[oai(path = "/users/:id", method = "patch", operation_id = "update_user")]
    async fn patch(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: MergePatch<UserPatchRequest>,
    ) -> Result<UpdateUserResponse, ApiError<PatchUserErrors>> {
        let request = body.0;
        let patch = UserPatch {
            first_name: names(request.first_name),
            last_name: names(request.last_name),
            role: request.role.map(Into::into),
            is_active: request.is_active,
        };
        let row = service::patch(
            &state,
            &auth.actor(),
            id.0,
            patch,
            &Preconditions::if_match(if_match.0),
        )
        .await?;
        let user = User::from(row);
        Ok(UpdateUserResponse::Ok(JsonBytes::new(&user)?, user.etag))
    }
}
