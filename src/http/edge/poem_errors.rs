//! Every `poem::Error` becomes a `Problem`: ours pass through; poem's and poem-openapi's own
//! (unknown route, 405, a parameter or body that did not parse) are translated by their type,
//! with the spec's parameter names and reasons a client can act on.

use poem::{
    PathPattern,
    http::{Method, StatusCode},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};

use crate::http::{
    problem::{FieldError, Problem},
    routes::RouteTable,
};

pub(super) fn problem_of(
    err: poem::Error,
    method: &Method,
    path: &str,
    routes: &RouteTable,
) -> Problem {
    let route = err.data::<PathPattern>().map(|p| p.0.to_string());
    let mut problem = if let Some(problem) = err.downcast_ref::<Problem>() {
        problem.clone()
    } else if let Some(e) = err.downcast_ref::<ParseParamError>()
        && e.name == "cursor"
    {
        Problem::from(crate::error::AppError::InvalidCursor)
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        let name = param_name(routes, path, e.name);
        Problem::bad_request("INVALID_PARAMETER", format!("Invalid parameter `{name}`."))
            .with_errors(vec![FieldError::new(name, clean_reason(&e.reason))])
    } else if let Some(e) = err.downcast_ref::<ParsePathError>() {
        let name = param_name(routes, path, e.name);
        Problem::bad_request(
            "INVALID_PARAMETER",
            format!("Invalid path parameter `{name}`."),
        )
        .with_errors(vec![FieldError::new(name, clean_reason(&e.reason))])
    } else if err.is::<ContentTypeError>() {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Unsupported or missing `Content-Type`.",
        )
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        Problem::bad_request(
            "INVALID_JSON",
            format!("The request body is invalid: {}.", e.reason),
        )
    } else if err.is::<AuthorizationError>() {
        Problem::from(crate::error::AppError::Unauthenticated)
    } else {
        match err.status() {
            StatusCode::NOT_FOUND => Problem::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("No route for {method} {path}."),
            ),
            StatusCode::METHOD_NOT_ALLOWED => {
                let mut problem = Problem::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    format!("{method} is not allowed on {path}."),
                );
                problem.allow = routes.for_path(path);
                problem
            }
            StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "The request body is too large.",
            ),
            status if status.is_client_error() => {
                Problem::new(status, "BAD_REQUEST", err.to_string())
            }
            status => {
                let mut problem =
                    Problem::new(status, "INTERNAL_ERROR", "An unexpected error occurred.");
                problem.cause = Some(err.to_string());
                problem
            }
        }
    };
    if problem.route.is_none() {
        problem.route = route;
    }
    problem
}

/// poem-openapi reports path parameters as `param0`, `param1`...: use the spec's names.
fn param_name(routes: &RouteTable, path: &str, reported: &str) -> String {
    reported
        .strip_prefix("param")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|index| routes.param_name(path, index))
        .unwrap_or(reported)
        .to_string()
}

/// poem's reasons quote Rust types and validator syntax; say what the value must be.
fn clean_reason(reason: &str) -> String {
    let bound = |prefix: &str| {
        reason
            .split_once(prefix)
            .and_then(|(_, rest)| rest.split([',', ')']).next())
            .map(str::trim)
            .map(str::to_string)
    };
    if let Some(min) = bound("minimum(") {
        return format!("must be at least {min}");
    }
    if let Some(max) = bound("maximum(") {
        return format!("must be at most {max}");
    }
    if reason.contains("uuid") {
        return "must be a UUID".into();
    }
    if reason.contains("failed to parse") || reason.contains("expected") {
        return reason
            .rsplit(": ")
            .next()
            .unwrap_or(reason)
            .chars()
            .take(200)
            .collect();
    }
    reason.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_reasons_say_what_the_value_must_be() {
        assert_eq!(
            clean_reason("verification failed. minimum(1, exclusive: false)"),
            "must be at least 1"
        );
        assert_eq!(
            clean_reason("verification failed. maximum(100, exclusive: false)"),
            "must be at most 100"
        );
        assert_eq!(
            clean_reason("failed to parse \"string_uuid\": invalid length: found 3"),
            "must be a UUID"
        );
    }
}
