//! `/v1/auth/*`: register, login, refresh (cookie or body), logout.

use std::{marker::PhantomData, sync::Arc};

use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Serialize;
use uuid::Uuid;

use super::service;
use crate::{
    config::Settings,
    http::{
        ApiTags,
        auth::Auth,
        body::{JsonBody, OptionalJsonBody, RequestFields},
        edge::RequestContext,
        json::JsonBytes,
        problem::{ApiError, error_statuses},
        version::ApiVersion,
    },
    state::AppState,
    users::{
        model::{Email, Password, PersonName, Username},
        schema::{RoleName, User},
    },
};

const REFRESH_COOKIE: &str = "refreshToken";

/// A new account.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub email: Email,
    pub username: Username,
    pub password: Password,
    #[oai(nullable)]
    pub first_name: Option<PersonName>,
    #[oai(nullable)]
    pub last_name: Option<PersonName>,
}

impl RequestFields for RegisterRequest {
    const READ_ONLY: &'static [&'static str] =
        &["id", "role", "isActive", "createdAt", "updatedAt", "etag"];
}

/// Credentials.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginRequest {
    pub email: Email,
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"^[^\x00]*$"))]
    pub password: String,
}

impl RequestFields for LoginRequest {
    const READ_ONLY: &'static [&'static str] = &[];
}

/// A refresh token, for clients that do not keep the cookie.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[oai(validator(min_length = 1, max_length = 512, pattern = r"^[^\x00]*$"))]
    pub refresh_token: String,
}

impl RequestFields for RefreshRequest {
    const READ_ONLY: &'static [&'static str] = &[];
}

/// Who the tokens belong to.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SessionUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub role: RoleName,
}

/// Tokens of a session.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange it at `/v1/auth/refresh` (it is also set as an HttpOnly cookie).
    pub refresh_token: String,
    pub user: SessionUser,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(
        JsonBytes<User>,
        /// `/v1/users/{id}`
        #[oai(header = "Location")]
        String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum SessionResponse {
    /// Logged in: tokens, and the refresh token as an HttpOnly cookie scoped to `/v1/auth`.
    #[oai(status = 200)]
    Ok(
        JsonBytes<TokenResponse>,
        #[oai(header = "Set-Cookie")] String,
    ),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// Logged out; the refresh cookie is cleared.
    #[oai(status = 204)]
    LoggedOut(#[oai(header = "Set-Cookie")] String),
}

error_statuses!(RegisterErrors: 400, 408, 409, 411, 413, 415, 429);
error_statuses!(LoginErrors: 400, 401, 403, 408, 411, 413, 415, 429);
error_statuses!(RefreshErrors: 400, 401, 408, 411, 413, 415, 429);
error_statuses!(LogoutErrors: 400, 401, 408, 411, 413, 415, 429);

/// Mounted once per API version (`V::PREFIX`); the same in every version.
pub struct AuthApi<V>(PhantomData<V>);

impl<V> Default for AuthApi<V> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[OpenApi(tag = "ApiTags::Auth", prefix_path = V::PREFIX)]
impl<V: ApiVersion> AuthApi<V> {
    /// Register an account
    ///
    /// Creates a `USER` account. Email and username are unique, case-insensitively.
    #[oai(
        path = "/auth/register",
        method = "post",
        operation_id = "register_user"
    )]
    async fn register(
        &self,
        state: Data<&AppState>,
        body: JsonBody<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError<RegisterErrors>> {
        let RegisterRequest {
            email,
            username,
            password,
            first_name,
            last_name,
        } = body.0;
        let row = service::register(
            &state,
            service::Registration {
                email,
                username,
                password,
                first_name,
                last_name,
            },
        )
        .await?;
        let user = User::from(row);
        Ok(RegisterResponse::Created(
            JsonBytes::new(&user)?,
            format!("{}/users/{}", V::PREFIX, user.id),
            user.etag,
        ))
    }

    /// Log in
    ///
    /// Exchanges email and password for an access token and a refresh token. Failed attempts are
    /// limited per client IP and email (`RATE_LIMIT_LOGIN`).
    #[oai(path = "/auth/login", method = "post", operation_id = "login_user")]
    async fn login(
        &self,
        state: Data<&AppState>,
        ctx: Data<&Arc<RequestContext>>,
        body: JsonBody<LoginRequest>,
    ) -> Result<SessionResponse, ApiError<LoginErrors>> {
        let session =
            service::login(&state, &body.0.email, &body.0.password, ctx.client_ip).await?;
        session_response::<_, V>(&state.settings, session)
    }

    /// Refresh a session
    ///
    /// Rotates the refresh token (from the `refreshToken` cookie, or the body) and issues a new
    /// access token. Presenting a token that was already rotated away revokes every session of
    /// the account (`REFRESH_TOKEN_REUSED`).
    #[oai(
        path = "/auth/refresh",
        method = "post",
        operation_id = "refresh_session"
    )]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        ctx: Data<&Arc<RequestContext>>,
        req: &Request,
        body: OptionalJsonBody<RefreshRequest>,
    ) -> Result<SessionResponse, ApiError<RefreshErrors>> {
        let token = body
            .0
            .map(|b| b.refresh_token)
            .or_else(|| refresh_cookie(req))
            .ok_or(crate::error::AppError::InvalidRefreshToken)?;
        let session = service::refresh(&state, &token, ctx.client_ip).await?;
        session_response::<_, V>(&state.settings, session)
    }

    /// Log out
    ///
    /// Revokes the session of the presented refresh token (cookie or body), or every session of
    /// the caller when none is presented, and clears the cookie.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout_user")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        ctx: Data<&Arc<RequestContext>>,
        auth: Auth,
        req: &Request,
        body: OptionalJsonBody<RefreshRequest>,
    ) -> Result<LogoutResponse, ApiError<LogoutErrors>> {
        let token = body
            .0
            .map(|b| b.refresh_token)
            .or_else(|| refresh_cookie(req));
        service::logout(&state, &auth.actor(), token.as_deref(), ctx.client_ip).await?;
        Ok(LogoutResponse::LoggedOut(cookie::<V>(
            &state.settings,
            "",
            0,
        )))
    }
}

fn session_response<S, V: ApiVersion>(
    settings: &Settings,
    session: service::Session,
) -> Result<SessionResponse, ApiError<S>> {
    let cookie = cookie::<V>(settings, &session.refresh_token, session.refresh_expires_in);
    let body = TokenResponse {
        access_token: session.access_token,
        token_type: "Bearer".into(),
        expires_in: session.expires_in,
        refresh_token: session.refresh_token,
        user: SessionUser {
            id: session.user.id,
            role: session.user.role.into(),
            email: session.user.email,
            username: session.user.username,
        },
    };
    Ok(SessionResponse::Ok(JsonBytes::new(&body)?, cookie))
}

/// The refresh cookie: HttpOnly, SameSite=Strict, only sent to the version's `/auth` paths
/// (`/v1/auth`), Secure in production.
fn cookie<V: ApiVersion>(settings: &Settings, value: &str, max_age: u64) -> String {
    let mut cookie = Cookie::new_with_str(REFRESH_COOKIE, value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path(format!("{}/auth", V::PREFIX));
    cookie.set_max_age(std::time::Duration::from_secs(max_age));
    if settings.is_production() {
        cookie.set_secure(true);
    }
    cookie.to_string()
}

/// The `refreshToken` cookie's value, from any `Cookie` header (the first one wins, as RFC 6265
/// orders them).
fn refresh_cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.parse::<CookieJar>().ok()?.get(REFRESH_COOKIE))
        .map(|cookie| cookie.value_str().to_string())
        .find(|value| !value.is_empty())
}
