//! Which problem `code`s each documented error response can carry, as machine-readable
//! `x-problem-codes` lists in the OpenAPI document (an additive `x-` extension), plus a
//! document-level catalogue of every code (`x-problem-codes` at the root: code → meaning).
//! The SDKs generate their typed code unions from these. `problem.rs`, `body.rs` and `edge/`
//! raise the codes; `api.md` names them; a test below keeps the three in step.

use serde_json::{Map, Value};

/// Every code the service sends, with what it means. Codes are never renamed once released.
pub const CATALOGUE: &[(&str, &str)] = &[
    (
        "ACCOUNT_DISABLED",
        "Right password, but the account is deactivated.",
    ),
    ("AIRPORT_NOT_FOUND", "No airport with this code."),
    (
        "BAD_REQUEST",
        "A malformed request the more specific codes do not cover.",
    ),
    ("CONFLICT", "The change conflicts with the current state."),
    ("EMAIL_TAKEN", "An account with this email already exists."),
    (
        "EVENT_NOT_FOUND",
        "No such event (or it is older than the retention).",
    ),
    ("FORBIDDEN", "Authenticated, but not allowed to do this."),
    (
        "IDEMPOTENCY_KEY_IN_PROGRESS",
        "A request with this Idempotency-Key is still running; retry after `Retry-After`.",
    ),
    (
        "IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was used with a different request body.",
    ),
    (
        "INTERNAL_ERROR",
        "An unexpected error; quote the `requestId` when reporting it.",
    ),
    (
        "HTTP_VERSION_NOT_SUPPORTED",
        "The request line names an HTTP version other than 1.0 or 1.1.",
    ),
    ("INVALID_CREDENTIALS", "The email or password is wrong."),
    (
        "INVALID_CURSOR",
        "The cursor is malformed or was issued for another list.",
    ),
    (
        "INVALID_JSON",
        "The body is not valid JSON, or not the expected JSON shape.",
    ),
    (
        "INVALID_PARAMETER",
        "A path, query or header parameter is invalid.",
    ),
    (
        "INVALID_REFRESH_TOKEN",
        "The refresh token is unknown, expired or revoked.",
    ),
    (
        "LENGTH_REQUIRED",
        "A POST, PUT or PATCH without `Content-Length` or a chunked body.",
    ),
    (
        "METHOD_NOT_ALLOWED",
        "The path exists, but not with this method (`Allow` lists them).",
    ),
    ("MISSING_FIELD", "A required body field is absent."),
    ("NOT_ACCEPTABLE", "The `Accept` header excludes JSON."),
    ("NOT_FOUND", "No such route."),
    (
        "OPERATION_NOT_FINISHED",
        "The operation has not succeeded (yet): there is no result to fetch.",
    ),
    (
        "OPERATION_NOT_FOUND",
        "No such operation, or one of another user's.",
    ),
    (
        "NOT_IMPLEMENTED",
        "A method the server implements on no path (e.g. `FOO`, `CONNECT`).",
    ),
    (
        "PAYLOAD_TOO_LARGE",
        "The body is larger than the configured limit.",
    ),
    (
        "POST_NOT_FOUND",
        "No such post, or a draft the caller may not see.",
    ),
    (
        "PRECONDITION_FAILED",
        "`If-Match` / `If-None-Match` did not hold.",
    ),
    (
        "RATE_LIMITED",
        "Too many requests; retry after `Retry-After`.",
    ),
    ("READ_ONLY_FIELD", "The body sets a server-managed field."),
    (
        "REQUEST_TIMEOUT",
        "The request body did not arrive within `HTTP_BODY_TIMEOUT`.",
    ),
    (
        "REFRESH_TOKEN_REUSED",
        "A rotated-away refresh token was presented again; every session of the user is revoked.",
    ),
    (
        "SERVICE_UNAVAILABLE",
        "Overloaded, draining or a dependency is down; retry after `Retry-After`.",
    ),
    (
        "UNAUTHENTICATED",
        "A valid bearer access token is required.",
    ),
    (
        "UNKNOWN_FIELD",
        "The body has a field the schema does not define.",
    ),
    (
        "UNSUPPORTED_MEDIA_TYPE",
        "Unsupported or missing `Content-Type`.",
    ),
    ("URI_TOO_LONG", "The request-target is longer than 8 KiB."),
    (
        "USERNAME_TAKEN",
        "An account with this username already exists.",
    ),
    ("USER_NOT_FOUND", "No such user."),
    ("WEBHOOK_NOT_FOUND", "No such webhook endpoint."),
    (
        "WEBHOOK_URL_FORBIDDEN",
        "The webhook URL is not allowed: not https in production, or it resolves to a loopback, private, link-local or metadata address.",
    ),
    (
        "VALIDATION_FAILED",
        "A value breaks the schema (type, length, pattern, range); see `errors`.",
    ),
];

/// Where an operation's codes for a status differ from [`default_codes`].
const BY_OPERATION: &[(&str, u16, &[&str])] = &[
    ("login_user", 401, &["INVALID_CREDENTIALS"]),
    ("login_user", 403, &["ACCOUNT_DISABLED"]),
    (
        "refresh_session",
        401,
        &["INVALID_REFRESH_TOKEN", "REFRESH_TOKEN_REUSED"],
    ),
    ("register_user", 409, &["EMAIL_TAKEN", "USERNAME_TAKEN"]),
    ("create_post", 409, &["IDEMPOTENCY_KEY_IN_PROGRESS"]),
    ("get_post", 404, &["POST_NOT_FOUND"]),
    ("update_post", 404, &["POST_NOT_FOUND"]),
    ("get_user", 404, &["USER_NOT_FOUND"]),
    ("update_user", 404, &["USER_NOT_FOUND"]),
    ("get_airport", 404, &["AIRPORT_NOT_FOUND"]),
    ("get_event", 404, &["EVENT_NOT_FOUND"]),
    ("get_operation", 404, &["OPERATION_NOT_FOUND"]),
    ("get_export_file", 404, &["OPERATION_NOT_FOUND"]),
    ("get_export_file", 409, &["OPERATION_NOT_FINISHED"]),
    // Webhooks: a refused URL is a 400 of its own, next to the body's codes.
    (
        "create_webhook",
        400,
        &[
            "VALIDATION_FAILED",
            "MISSING_FIELD",
            "UNKNOWN_FIELD",
            "READ_ONLY_FIELD",
            "INVALID_JSON",
            "WEBHOOK_URL_FORBIDDEN",
        ],
    ),
    (
        "update_webhook",
        400,
        &[
            "VALIDATION_FAILED",
            "MISSING_FIELD",
            "UNKNOWN_FIELD",
            "READ_ONLY_FIELD",
            "INVALID_JSON",
            "INVALID_PARAMETER",
            "WEBHOOK_URL_FORBIDDEN",
        ],
    ),
    ("get_webhook", 404, &["WEBHOOK_NOT_FOUND"]),
    ("update_webhook", 404, &["WEBHOOK_NOT_FOUND"]),
    ("rotate_webhook_secret", 404, &["WEBHOOK_NOT_FOUND"]),
    ("test_webhook", 404, &["WEBHOOK_NOT_FOUND"]),
    ("list_webhook_deliveries", 404, &["WEBHOOK_NOT_FOUND"]),
];

/// The codes a status carries on any operation, given the operation's shape.
fn default_codes(
    status: u16,
    has_body: bool,
    has_params: bool,
    has_cursor: bool,
) -> Vec<&'static str> {
    let fixed: &[&str] = match status {
        400 => {
            let mut codes = Vec::new();
            if has_body {
                codes.extend([
                    "VALIDATION_FAILED",
                    "MISSING_FIELD",
                    "UNKNOWN_FIELD",
                    "READ_ONLY_FIELD",
                    "INVALID_JSON",
                ]);
            }
            if has_params {
                codes.push("INVALID_PARAMETER");
            }
            if has_cursor {
                codes.push("INVALID_CURSOR");
            }
            return codes;
        }
        401 => &["UNAUTHENTICATED"],
        403 => &["FORBIDDEN"],
        406 => &["NOT_ACCEPTABLE"],
        408 => &["REQUEST_TIMEOUT"],
        409 => &["CONFLICT"],
        412 => &["PRECONDITION_FAILED"],
        411 => &["LENGTH_REQUIRED"],
        413 => &["PAYLOAD_TOO_LARGE"],
        415 => &["UNSUPPORTED_MEDIA_TYPE"],
        422 => &["IDEMPOTENCY_KEY_REUSED"],
        429 => &["RATE_LIMITED"],
        500 => &["INTERNAL_ERROR"],
        503 => &["SERVICE_UNAVAILABLE"],
        _ => &[],
    };
    fixed.to_vec()
}

/// Adds `x-problem-codes` to every problem+json response and the catalogue to the root.
pub fn annotate(spec: &mut Value) {
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                annotate_operation(operation);
            }
        }
    }
    if let Some(root) = spec.as_object_mut() {
        let catalogue: Map<String, Value> = CATALOGUE
            .iter()
            .map(|(code, meaning)| (code.to_string(), Value::from(*meaning)))
            .collect();
        root.insert("x-problem-codes".into(), Value::Object(catalogue));
    }
}

fn annotate_operation(operation: &mut Map<String, Value>) {
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let params = operation.get("parameters").and_then(Value::as_array);
    let has_params = params.is_some_and(|p| !p.is_empty());
    let has_cursor = params.is_some_and(|p| p.iter().any(|p| p["name"] == "cursor"));
    let has_body = operation.contains_key("requestBody");
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        if response
            .pointer("/content/application~1problem+json")
            .is_none()
        {
            continue;
        }
        let codes = BY_OPERATION
            .iter()
            .find(|(op, s, _)| *op == id && *s == status)
            .map(|(_, _, codes)| codes.to_vec())
            .unwrap_or_else(|| default_codes(status, has_body, has_params, has_cursor));
        if let Some(response) = response.as_object_mut() {
            response.insert("x-problem-codes".into(), Value::from(codes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_response_lists_known_codes_and_every_code_is_used_or_framework_level() {
        let spec = crate::api::spec::document(crate::api::spec::Version::V2);
        let known: Vec<&str> = CATALOGUE.iter().map(|(c, _)| *c).collect();
        let mut used = std::collections::BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    if response
                        .pointer("/content/application~1problem+json")
                        .is_none()
                    {
                        continue;
                    }
                    let codes = response["x-problem-codes"].as_array().unwrap();
                    assert!(!codes.is_empty(), "{method} {path} {status}: no codes");
                    for code in codes {
                        let code = code.as_str().unwrap();
                        assert!(known.contains(&code), "{code} is not in the catalogue");
                        used.insert(code);
                    }
                }
            }
        }
        // Raised by the edge for requests no operation matched, or for malformed requests.
        let framework = [
            "BAD_REQUEST",
            "HTTP_VERSION_NOT_SUPPORTED",
            "NOT_IMPLEMENTED",
            "METHOD_NOT_ALLOWED",
            "NOT_FOUND",
            "URI_TOO_LONG",
        ];
        for code in known {
            assert!(
                used.contains(code) || framework.contains(&code),
                "{code} documented nowhere"
            );
        }
        assert_eq!(
            spec["x-problem-codes"]["POST_NOT_FOUND"]
                .as_str()
                .map(|s| !s.is_empty()),
            Some(true)
        );
    }

    #[test]
    fn the_catalogue_names_every_code_the_source_raises() {
        // A code added to the service without a catalogue entry fails here.
        let sources = [
            include_str!("problem.rs"),
            include_str!("body.rs"),
            include_str!("edge/admission.rs"),
            include_str!("edge/poem_errors.rs"),
            include_str!("idempotency.rs"),
            include_str!("server.rs"),
        ];
        let code = regex::Regex::new(r#""([A-Z]+(?:_[A-Z]+)+)""#).unwrap();
        for source in sources {
            let body = source.split("#[cfg(test)]").next().unwrap();
            for capture in code.captures_iter(body) {
                let name = &capture[1];
                if name.starts_with("X_") || name == "PROBLEM_CONTENT_TYPE" {
                    continue;
                }
                assert!(
                    CATALOGUE.iter().any(|(c, _)| *c == name),
                    "{name} is missing from CATALOGUE"
                );
            }
        }
    }
}
