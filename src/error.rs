//! `AppError`: what went wrong, in domain words. Services and repositories return it; only
//! `http::problem` knows how it looks on the wire (status, `code`, headers). No HTTP types here.

use crate::cache::ratelimit::Decision;

/// A resource kind, for "not found" errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Post,
    Airport,
    Event,
    Webhook,
    Operation,
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
    /// A webhook URL the SSRF rules refuse (scheme, or an address that is not public).
    #[error("webhook URL refused: {0}")]
    WebhookUrlForbidden(String),
    #[error("the cursor is not one this service issued")]
    InvalidCursor,
    #[error("{0:?} is already taken")]
    Taken(Taken),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The operation has no result (yet): it has not succeeded.
    #[error("the operation has not succeeded")]
    OperationNotFinished,
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
    /// A bug or an unexpected failure: logged once at the edge with its whole cause chain,
    /// answered opaquely.
    #[error("internal error: {context}")]
    Internal {
        /// What was being done.
        context: String,
        /// What failed, with its own causes.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An unexpected failure with no underlying error value.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal {
            context: context.to_string(),
            source: None,
        }
    }

    /// An unexpected failure caused by `source` (kept, with its chain, for the log).
    pub fn internal_from(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// This error and every cause under it, `: `-separated (what the edge logs for a 5xx).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            text.push_str(": ");
            text.push_str(&err.to_string());
            cause = err.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_chain() {
        let io = std::io::Error::other("disk on fire");
        let err = AppError::internal_from("writing the export", io);
        assert_eq!(
            err.chain(),
            "internal error: writing the export: disk on fire"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
