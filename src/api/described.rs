//! The documents as SDK input: what poem-openapi cannot take from the code, added once to every
//! version's document.
//!
//! - A description for every property and parameter that has none (SDK generators turn them
//!   into doc comments): common fields (`id`, `createdAt`, ...) and path/conditional parameters
//!   by name, the rest by `Schema.property`.
//! - The headers clients read, declared (optional, so the released v1 only grows):
//!   `X-Request-Id` on every response, the `RateLimit-*` family on every versioned operation,
//!   `Retry-After` on 429 and 503, `Idempotent-Replayed` on replayable creations.
//! - v2 only (a schema change a released version cannot take): `nextLink` required on every
//!   page (the server always sends it, `null` on the last page) and `tokenType` the enum `Bearer`.

use serde_json::{Map, Value, json};

/// Properties described the same wherever they appear.
const COMMON: &[(&str, &str)] = &[
    ("id", "The resource's id (a UUIDv7: time-ordered)."),
    (
        "createdAt",
        "When the resource was created (RFC 3339, UTC).",
    ),
    (
        "updatedAt",
        "When the resource last changed (RFC 3339, UTC).",
    ),
    ("data", "The page's items, in the list's order."),
    (
        "email",
        "The account's email address (unique, case-insensitively).",
    ),
    (
        "username",
        "The account's username: 3–32 of `a-z`, `0-9`, `_` (unique, case-insensitively).",
    ),
    (
        "password",
        "The account's password (8–128 characters); never stored or logged as given.",
    ),
    ("firstName", "Given name (optional)."),
    ("lastName", "Family name (optional)."),
    ("title", "The post's title (5–200 characters)."),
    ("content", "The post's body (10–5000 characters)."),
    ("runways", "Number of runways (at least 1)."),
    (
        "takeoffsPerHour",
        "Takeoffs an hour (0 or more), or `null` when unknown.",
    ),
    (
        "refreshToken",
        "An opaque refresh token from a login or refresh.",
    ),
    (
        "isActive",
        "Whether the account may log in (`false`: disabled, sessions revoked).",
    ),
    ("timestamp", "When the check ran (RFC 3339, UTC)."),
    (
        "tags",
        "0–10 distinct tags of `a-z`, `0-9` and `-` (1–32 characters each), in the order given.",
    ),
];

/// Properties whose meaning depends on their schema.
const BY_SCHEMA: &[(&str, &str, &str)] = &[
    ("Author", "id", "The author's user id."),
    ("Author", "username", "The author's username."),
    ("SessionUser", "id", "The logged-in user's id."),
    (
        "PostPatchRequest",
        "published",
        "`true` publishes; `false` makes a published post a draft.",
    ),
];

/// Parameters described the same on every operation.
const PARAMETERS: &[(&str, &str)] = &[
    ("id", "The resource's id."),
    (
        "code",
        "The airport's IATA code: 3 uppercase letters (`LAX`).",
    ),
    (
        "If-Match",
        "Apply the write only to this version (the `ETag` of the resource as the client has it); 412 otherwise.",
    ),
    (
        "If-None-Match",
        "The `ETag` the client has (or `*` on PUT: create only). A GET answers 304 when it is current.",
    ),
];

/// Request examples of the main operations (`v1` / `v2` where the bodies differ).
fn request_example(operation_id: &str, released: bool) -> Option<Value> {
    Some(match (operation_id, released) {
        ("register_user", _) => json!({
            "email": "ada@example.com", "username": "ada", "password": "correct-horse-battery",
            "firstName": "Ada", "lastName": "Lovelace"
        }),
        ("login_user", _) => json!({"email": "user1@example.com", "password": "user123"}),
        ("refresh_session", _) => json!({"refreshToken": "9f3Jq2...opaque...Xw"}),
        ("create_post", true) => json!({
            "title": "Hello, Herald", "content": "The first post on this server.", "published": true
        }),
        ("create_post", false) => json!({
            "title": "Hello, Herald", "content": "The first post on this server.",
            "status": "published", "tags": ["release-notes", "rust"]
        }),
        ("update_post", true) => json!({"title": "Hello again, Herald", "published": false}),
        ("update_post", false) => {
            json!({"title": "Hello again, Herald", "status": "archived", "tags": []})
        }
        ("update_user", _) => json!({"firstName": "Ada", "lastName": null}),
        ("put_airport", _) => json!({"runways": 4, "takeoffsPerHour": 60}),
        ("patch_airport", _) => json!({"takeoffsPerHour": null}),
        _ => return None,
    })
}

fn header(description: &str) -> Value {
    json!({
        "description": description,
        "required": false,
        "deprecated": false,
        "schema": { "type": "string" }
    })
}

/// Adds what this module describes to `spec`; `released` leaves schemas unchanged (v1).
pub fn describe(spec: &mut Value, released: bool) {
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            describe_schema(name, schema, released);
        }
    }
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let versioned = path.starts_with("/v");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            describe_operation(operation, versioned);
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(example) = request_example(&id, released)
                && let Some(content) = operation
                    .get_mut("requestBody")
                    .and_then(|b| b.get_mut("content"))
                    .and_then(Value::as_object_mut)
            {
                for media in content.values_mut().filter_map(Value::as_object_mut) {
                    media.insert("example".into(), example.clone());
                }
            }
        }
    }
}

fn describe_schema(name: &str, schema: &mut Value, released: bool) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (property, value) in properties.iter_mut() {
        let Some(value) = value.as_object_mut() else {
            continue;
        };
        if value.contains_key("description") || value.contains_key("$ref") {
            continue;
        }
        let text = BY_SCHEMA
            .iter()
            .find(|(s, p, _)| *s == name && p == property)
            .map(|(_, _, d)| *d)
            .or_else(|| COMMON.iter().find(|(p, _)| p == property).map(|(_, d)| *d));
        if let Some(text) = text {
            value.insert("description".into(), Value::from(text));
        }
    }
    if released {
        return;
    }
    if name.ends_with("Page") && properties.contains_key("nextLink") {
        let required = schema
            .as_object_mut()
            .map(|s| s.entry("required").or_insert_with(|| json!([])));
        if let Some(Value::Array(required)) = required
            && !required.iter().any(|r| r == "nextLink")
        {
            required.push(Value::from("nextLink"));
        }
    }
    if name == "TokenResponse"
        && let Some(token_type) = schema.pointer_mut("/properties/tokenType")
        && let Some(token_type) = token_type.as_object_mut()
    {
        token_type.insert("enum".into(), json!(["Bearer"]));
    }
}

fn describe_operation(operation: &mut Map<String, Value>, versioned: bool) {
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters.iter_mut().filter_map(Value::as_object_mut) {
            let described = parameter
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty());
            let name = parameter.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some((_, text)) = PARAMETERS.iter().find(|(n, _)| *n == name)
                && !described
            {
                parameter.insert("description".into(), Value::from(*text));
            }
        }
    }
    let replayable = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let Some(headers) = response
            .as_object_mut()
            .map(|r| r.entry("headers").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut add = |name: &str, description: &str| {
            headers
                .entry(name.to_string())
                .or_insert_with(|| header(description));
        };
        add(
            "X-Request-Id",
            "The request's id (the caller's, when it sent a sane one); quote it when reporting a problem.",
        );
        if versioned {
            add(
                "RateLimit-Limit",
                "The limit that applies (requests per window).",
            );
            add(
                "RateLimit-Remaining",
                "Requests left in the current window.",
            );
            add("RateLimit-Reset", "Seconds until the window resets.");
            add(
                "RateLimit-Policy",
                "The limit as the IETF draft writes it: `\"name\";q=<limit>;w=<window seconds>`.",
            );
            add(
                "RateLimit",
                "The state as the IETF draft writes it: `\"name\";r=<remaining>;t=<reset seconds>`.",
            );
        }
        if status == "429" || status == "503" {
            add("Retry-After", "Seconds to wait before retrying.");
        }
        if replayable && status.starts_with('2') {
            add(
                "Idempotent-Replayed",
                "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`.",
            );
        }
    }
}
