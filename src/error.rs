//! `AppError`: what went wrong, in domain words. Services and repositories return it; only
//! `http::problem` knows how it looks on the wire (status, `code`, headers). No HTTP types here.

use crate::cache::ratelimit::Decision;

/// A resource kind, for "not found" errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Post,
    Airport,
}

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Email,
    Username,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0:?} not found")]
    NotFound(Resource),
    #[error("field `{0}` is required")]
    MissingField(&'static str),
    #[error("field `{0}` is read-only")]
    ReadOnlyField(&'static str),
    #[error("field `{field}`: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("the cursor is not one this service issued")]
    InvalidCursor,
    #[error("{0:?} is already taken")]
    Taken(Taken),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("missing or invalid access token")]
    Unauthenticated,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("account is disabled")]
    AccountDisabled,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("not allowed")]
    Forbidden,
    #[error("the resource changed since the given ETag")]
    PreconditionFailed,
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyKeyInProgress,
    #[error("rate limit exceeded")]
    RateLimited(Decision),
    /// A dependency (database, pool) cannot serve now; the client should retry later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: logged with its cause, answered opaquely.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}
