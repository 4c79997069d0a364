//! RFC 9457 problem details: the one place where an error becomes a status, a `code`, headers
//! and an `application/problem+json` body.
//!
//! Handlers return `Result<_, ApiError<S>>`: `S` lists the statuses the operation documents
//! (see `error_statuses!`), and the `?` operator turns an `AppError` into it through
//! `From<AppError> for Problem`, the single mapping. The body itself (which needs the request id
//! and path) is written by `http::edge` for every error, whether a handler or poem raised it.

use std::{fmt, marker::PhantomData, time::Duration};

use poem::{
    IntoResponse, Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

use crate::{
    cache::ratelimit::Decision,
    error::{AppError, Resource, Taken},
};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One invalid input: which field (camelCase, as sent) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, serde::Deserialize)]
pub struct FieldError {
    /// The request field (camelCase) or parameter name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Problem details (RFC 9457) as every error response carries them.
#[derive(Debug, Clone, Object, Serialize, serde::Deserialize)]
#[oai(rename = "Problem", rename_all = "camelCase", example)]
#[serde(rename_all = "camelCase")]
pub struct ProblemBody {
    /// A URI identifying the problem type (`urn:herald:problem:<code>`).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// Stable machine-readable error code (UPPER_SNAKE); also sent as `X-Error-Code`.
    pub code: String,
    /// The request id (`X-Request-Id`) to quote when reporting the problem.
    pub request_id: String,
    /// For validation failures: every invalid field.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl poem_openapi::types::Example for ProblemBody {
    fn example() -> Self {
        Self {
            type_: "urn:herald:problem:validation-failed".into(),
            title: "Validation failed".into(),
            status: 400,
            detail: "The request body has invalid fields.".into(),
            instance: "/v1/posts".into(),
            code: "VALIDATION_FAILED".into(),
            request_id: "0193a1c2-7d4e-7c3a-9f1e-2b8c4d5e6f70".into(),
            errors: Some(vec![FieldError::new(
                "title",
                "must be at least 5 characters long",
            )]),
        }
    }
}

/// An error on its way to the client. Everything but the request id and path. Boxed: errors
/// travel through every `Result` of the edge, which should stay small.
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDetails>);

#[derive(Debug, Clone)]
pub struct ProblemDetails {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<Duration>,
    pub allow: Option<String>,
    /// The rate limit that refused the request (its `RateLimit-*` headers).
    pub rate_limit: Option<Decision>,
    /// For 5xx: what actually failed. Logged, never sent.
    pub cause: Option<String>,
    /// The route template, when the error happened inside a matched route.
    pub route: Option<String>,
    /// Close the connection after this answer (`Connection: close`): the request was not read
    /// whole, or the connection must not be kept.
    pub close: bool,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDetails {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            allow: None,
            rate_limit: None,
            cause: None,
            route: None,
            close: false,
        }))
    }

    /// Closes the connection after this answer.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unavailable(detail: impl Into<String>, retry_after: Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            detail,
        )
        .with_retry_after(retry_after)
    }

    /// The body, with the per-request parts filled in.
    pub fn body(&self, request_id: &str, instance: &str) -> ProblemBody {
        ProblemBody {
            type_: format!(
                "urn:herald:problem:{}",
                self.code.to_ascii_lowercase().replace('_', "-")
            ),
            title: title_of(self.status),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: instance.to_string(),
            code: self.code.to_string(),
            request_id: request_id.to_string(),
            errors: (!self.errors.is_empty()).then(|| self.errors.clone()),
        }
    }

    /// The response, with the per-request parts filled in.
    pub fn render(&self, request_id: &str, instance: &str) -> Response {
        let body = self.body(request_id, instance);
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)
            .header("x-error-code", self.code)
            .body(json);
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"herald\""),
            );
        }
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, allow);
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

fn title_of(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_string()
}

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;

    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

impl ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status
    }

    /// Only reached if something renders the error without going through `http::edge`.
    fn as_response(&self) -> Response {
        self.render("", "")
    }
}

/// The one mapping from domain errors to HTTP.
impl From<AppError> for Problem {
    fn from(err: AppError) -> Self {
        use StatusCode as S;
        match err {
            AppError::NotFound(resource) => {
                let (code, what) = match resource {
                    Resource::User => ("USER_NOT_FOUND", "user"),
                    Resource::Post => ("POST_NOT_FOUND", "post"),
                    Resource::Airport => ("AIRPORT_NOT_FOUND", "airport"),
                    Resource::Event => ("EVENT_NOT_FOUND", "event"),
                    Resource::Webhook => ("WEBHOOK_NOT_FOUND", "webhook endpoint"),
                    Resource::Operation => ("OPERATION_NOT_FOUND", "operation"),
                };
                Problem::new(S::NOT_FOUND, code, format!("No such {what}."))
            }
            AppError::MissingField(field) => {
                Problem::bad_request("MISSING_FIELD", format!("The field `{field}` is required."))
                    .with_errors(vec![FieldError::new(field, "is required")])
            }
            AppError::ReadOnlyField(field) => Problem::bad_request(
                "READ_ONLY_FIELD",
                format!("The field `{field}` is read-only."),
            )
            .with_errors(vec![FieldError::new(field, "is read-only")]),
            AppError::InvalidField { field, message } => {
                Problem::bad_request("VALIDATION_FAILED", "The request has invalid fields.")
                    .with_errors(vec![FieldError::new(field, message)])
            }
            AppError::WebhookUrlForbidden(why) => Problem::bad_request(
                "WEBHOOK_URL_FORBIDDEN",
                format!("The webhook URL is not allowed: {why}."),
            )
            .with_errors(vec![FieldError::new("url", why)]),
            AppError::InvalidCursor => Problem::bad_request(
                "INVALID_CURSOR",
                "The cursor is malformed or was not issued by this service.",
            )
            .with_errors(vec![FieldError::new("cursor", "is not a valid cursor")]),
            AppError::Taken(Taken::Email) => Problem::new(
                S::CONFLICT,
                "EMAIL_TAKEN",
                "An account with this email already exists.",
            ),
            AppError::Taken(Taken::Username) => Problem::new(
                S::CONFLICT,
                "USERNAME_TAKEN",
                "An account with this username already exists.",
            ),
            AppError::Conflict(why) => Problem::new(S::CONFLICT, "CONFLICT", why),
            AppError::OperationNotFinished => Problem::new(
                S::CONFLICT,
                "OPERATION_NOT_FINISHED",
                "The operation has not succeeded (yet); poll it until its status is `succeeded`.",
            )
            .with_retry_after(std::time::Duration::from_secs(1)),
            AppError::Unauthenticated => Problem::new(
                S::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "A valid bearer access token is required.",
            ),
            AppError::InvalidCredentials => Problem::new(
                S::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "The email or password is wrong.",
            ),
            AppError::AccountDisabled => Problem::new(
                S::FORBIDDEN,
                "ACCOUNT_DISABLED",
                "This account has been disabled.",
            ),
            AppError::InvalidRefreshToken => Problem::new(
                S::UNAUTHORIZED,
                "INVALID_REFRESH_TOKEN",
                "The refresh token is unknown, expired or revoked.",
            ),
            AppError::RefreshTokenReused => Problem::new(
                S::UNAUTHORIZED,
                "REFRESH_TOKEN_REUSED",
                "This refresh token was already used; every session of the account has been revoked.",
            ),
            AppError::Forbidden => {
                Problem::new(S::FORBIDDEN, "FORBIDDEN", "You are not allowed to do this.")
            }
            AppError::PreconditionFailed => Problem::new(
                S::PRECONDITION_FAILED,
                "PRECONDITION_FAILED",
                "The resource does not match the request's precondition (If-Match / If-None-Match).",
            ),
            AppError::IdempotencyKeyReused => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used with a different request.",
            ),
            AppError::IdempotencyKeyInProgress => Problem::new(
                S::CONFLICT,
                "IDEMPOTENCY_KEY_IN_PROGRESS",
                "A request with this Idempotency-Key is still being processed.",
            )
            .with_retry_after(Duration::from_secs(1)),
            AppError::RateLimited(decision) => {
                let mut problem = Problem::new(
                    S::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    format!("Too many requests ({} limit).", decision.bucket.name()),
                )
                .with_retry_after(Duration::from_secs(decision.reset_secs()));
                problem.rate_limit = Some(decision);
                problem
            }
            AppError::Unavailable(cause) => {
                let mut problem = Problem::unavailable(
                    "A dependency of the service is unavailable; retry later.",
                    Duration::from_secs(5),
                );
                problem.cause = Some(cause);
                problem
            }
            internal @ AppError::Internal { .. } => {
                let mut problem = Problem::new(
                    S::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "An unexpected error occurred.",
                );
                problem.cause = Some(internal.chain());
                problem
            }
        }
    }
}

/// The error statuses an operation documents, beside the ones every operation can give.
pub trait ErrorStatuses: Send + Sync + 'static {
    const STATUSES: &'static [u16];
    /// Whether `COMMON_STATUSES` are documented too (not for operations whose own success
    /// responses use those statuses, like `/health`'s 503).
    const WITH_COMMON: bool = true;
}

/// Every operation can answer these: an `Accept` without JSON, a bug, an overload or an outage.
const COMMON_STATUSES: &[u16] = &[406, 500, 503];

/// Declares a marker type listing the documented error statuses of some operations.
macro_rules! error_statuses {
    ($(#[$meta:meta])* $vis:vis $name:ident: $($status:literal),+ $(,)?) => {
        $(#[$meta])*
        $vis struct $name;
        impl $crate::http::problem::ErrorStatuses for $name {
            const STATUSES: &'static [u16] = &[$($status),+];
        }
    };
    ($(#[$meta:meta])* $vis:vis $name:ident: only $($status:literal),+ $(,)?) => {
        $(#[$meta])*
        $vis struct $name;
        impl $crate::http::problem::ErrorStatuses for $name {
            const STATUSES: &'static [u16] = &[$($status),+];
            const WITH_COMMON: bool = false;
        }
    };
}
pub(crate) use error_statuses;

/// A handler's error: a `Problem`, documented as the statuses `S` lists.
pub struct ApiError<S>(pub Problem, PhantomData<fn() -> S>);

impl<S> fmt::Debug for ApiError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S> From<Problem> for ApiError<S> {
    fn from(problem: Problem) -> Self {
        Self(problem, PhantomData)
    }
}

impl<S> From<AppError> for ApiError<S> {
    fn from(err: AppError) -> Self {
        Self(Problem::from(err), PhantomData)
    }
}

impl<S> From<ApiError<S>> for poem::Error {
    fn from(err: ApiError<S>) -> Self {
        poem::Error::from(err.0)
    }
}

impl<S> IntoResponse for ApiError<S> {
    fn into_response(self) -> Response {
        self.0.as_response()
    }
}

impl<S: ErrorStatuses> ApiResponse for ApiError<S> {
    fn meta() -> MetaResponses {
        let common: &[u16] = if S::WITH_COMMON { COMMON_STATUSES } else { &[] };
        let mut statuses: Vec<u16> = S::STATUSES.iter().chain(common).copied().collect();
        statuses.sort_unstable();
        statuses.dedup();
        MetaResponses {
            responses: statuses.into_iter().map(problem_response).collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ProblemBody::register(registry);
    }
}

/// How a documented error status reads in the spec.
fn problem_response(status: u16) -> MetaResponse {
    let description = match status {
        400 => {
            "Invalid input: `VALIDATION_FAILED`, `MISSING_FIELD`, `UNKNOWN_FIELD`, `READ_ONLY_FIELD`, `INVALID_JSON`, `INVALID_PARAMETER` or `INVALID_CURSOR`."
        }
        401 => "Missing or invalid credentials (`WWW-Authenticate: Bearer`).",
        403 => "Authenticated, but not allowed (`FORBIDDEN`).",
        404 => "No such resource.",
        405 => "Method not allowed for this path (`Allow` lists the allowed ones).",
        406 => "The `Accept` header excludes JSON (`NOT_ACCEPTABLE`).",
        408 => {
            "The body did not arrive within `HTTP_BODY_TIMEOUT` (`REQUEST_TIMEOUT`); the connection is closed."
        }
        409 => "Conflict with the current state.",
        411 => {
            "Neither `Content-Length` nor a chunked body (`LENGTH_REQUIRED`); send `Content-Length: 0` for an empty body."
        }
        412 => "The `If-Match` / `If-None-Match` precondition failed (`PRECONDITION_FAILED`).",
        413 => "The body is larger than the configured limit (`PAYLOAD_TOO_LARGE`).",
        415 => "Unsupported `Content-Type` (`UNSUPPORTED_MEDIA_TYPE`).",
        422 => "The `Idempotency-Key` was used with a different body (`IDEMPOTENCY_KEY_REUSED`).",
        429 => "Rate limit exceeded (`RATE_LIMITED`; see `Retry-After`).",
        500 => "Unexpected error (`INTERNAL_ERROR`); quote `requestId` when reporting it.",
        503 => {
            "Overloaded, draining, or a dependency is down (`SERVICE_UNAVAILABLE`; see `Retry-After`)."
        }
        _ => "Error.",
    };
    let mut headers = vec![MetaHeader {
        name: "X-Error-Code".to_string(),
        description: Some("The problem's `code`.".to_string()),
        required: true,
        deprecated: false,
        schema: String::schema_ref(),
    }];
    if matches!(status, 409 | 429 | 503) {
        headers.push(MetaHeader {
            name: "Retry-After".to_string(),
            description: Some("Seconds to wait before retrying.".to_string()),
            required: status != 409,
            deprecated: false,
            schema: u64::schema_ref(),
        });
    }
    if status == 401 {
        headers.push(MetaHeader {
            name: "WWW-Authenticate".to_string(),
            description: Some("The authentication scheme: `Bearer`.".to_string()),
            required: true,
            deprecated: false,
            schema: String::schema_ref(),
        });
    }
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: PROBLEM_CONTENT_TYPE,
            schema: MetaSchemaRef::Reference("Problem".to_string()),
        }],
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_renders_code_header_and_body() {
        let problem = Problem::from(AppError::NotFound(Resource::Post));
        let response = problem.render("req-1", "/v1/posts/x");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["x-error-code"], "POST_NOT_FOUND");
        assert_eq!(response.headers()["content-type"], PROBLEM_CONTENT_TYPE);
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().into_vec().await.unwrap()).unwrap();
        assert_eq!(body["code"], "POST_NOT_FOUND");
        assert_eq!(body["requestId"], "req-1");
        assert_eq!(body["instance"], "/v1/posts/x");
        assert_eq!(body["status"], 404);
        assert!(body.get("errors").is_none());
    }

    #[test]
    fn unauthorized_and_throttled_problems_carry_their_headers() {
        let r = Problem::from(AppError::Unauthenticated).render("r", "/");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let r = Problem::from(AppError::RateLimited(Decision {
            bucket: crate::cache::ratelimit::Bucket::Login,
            allowed: false,
            limit: 5,
            remaining: 0,
            reset: Duration::from_millis(1500),
            window: Duration::from_secs(900),
        }))
        .render("r", "/");
        assert_eq!(r.headers()["retry-after"], "2");
        let r = Problem::from(AppError::Unavailable("db".into())).render("r", "/");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key("retry-after"));
    }

    #[test]
    fn internal_errors_are_opaque() {
        let p = Problem::from(AppError::internal("secret table name"));
        assert!(!p.detail.contains("secret"));
        assert_eq!(p.code, "INTERNAL_ERROR");
    }
}
