//! The OpenAPI documents, one per API version: built from the endpoint structs (no database or
//! Redis needed), then finished in one pass for what poem-openapi cannot express:
//! `additionalProperties: false` on request bodies (they reject unknown fields), an explicit
//! `security: []` on public operations, canonical header names, plain `application/json` media
//! types, the problem codes of every error response (`http::problem_codes`), and v1's
//! deprecation headers (`deprecation`). The result is what `/v{n}/openapi.json` serves, what the
//! docs UIs show and what `herald openapi` writes to `openapi/v{n}/`.

use poem_openapi::{LicenseObject, OpenApi, OpenApiService, ServerObject};
use serde_json::{Map, Value};

use super::{V1Apis, V2Apis, deprecation, described};

/// The released document: it may only grow (new operations, optional response headers,
/// descriptions); see `openapi/README.md`.
pub const V1_API_VERSION: &str = "1.0.0";
/// The version under development.
pub const V2_API_VERSION: &str = "2.0.0";

/// A committed API document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub const ALL: [Version; 2] = [Version::V1, Version::V2];

    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

const DESCRIPTION: &str = "Herald: posts, users and airports over a typed REST API.\n\n\
Every error is `application/problem+json` with a stable `code` (also in `X-Error-Code`) and the \
`requestId` (also in `X-Request-Id`, which every response carries). Lists are cursor-paginated \
(`limit`, `cursor`, `nextLink`). Single resources carry strong `ETag`s: send `If-None-Match` to \
get 304, `If-Match` to make a write conditional (412 otherwise). PATCH takes \
`application/merge-patch+json`. Responses under `/v1` carry `RateLimit-Limit`, \
`RateLimit-Remaining`, `RateLimit-Reset`, `RateLimit-Policy` and `RateLimit`; 429 and 503 carry \
`Retry-After`.";

const V2_DESCRIPTION: &str = "\n\nVersion 2 runs beside version 1 on the same data: posts \
have a `status` (`draft`, `published`, `archived`) instead of `published`, a `publishedAt`, and \
`tags` (filter lists with `?tag=`). Everything else is as in v1.";

fn described<T: OpenApi>(apis: T, version: &str, description: &str) -> OpenApiService<T, ()> {
    OpenApiService::new(apis, "Herald API", version)
        .description(description)
        .license(LicenseObject::new("MIT").url("https://opensource.org/licenses/MIT"))
        .server(ServerObject::new("/").description("This server"))
}

/// The v1 document's operations (also what its Swagger UI bundle is generated from).
pub fn service_v1() -> OpenApiService<V1Apis, ()> {
    described(super::v1_apis(), V1_API_VERSION, DESCRIPTION)
}

pub fn service_v2() -> OpenApiService<V2Apis, ()> {
    described(
        super::v2_apis(),
        V2_API_VERSION,
        &format!("{DESCRIPTION}{V2_DESCRIPTION}"),
    )
}

/// A finished document, as a JSON value.
pub fn document(version: Version) -> Value {
    let raw = match version {
        Version::V1 => service_v1().spec(),
        Version::V2 => service_v2().spec(),
    };
    let mut spec: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    finish(&mut spec);
    described::describe(&mut spec, version == Version::V1);
    if version == Version::V1 {
        deprecation::declare(&mut spec);
    }
    spec
}

/// `openapi.json` as served and committed.
pub fn json(spec: &Value) -> String {
    let mut text = serde_json::to_string_pretty(spec).unwrap_or_default();
    text.push('\n');
    text
}

/// `openapi.yaml` as served and committed.
pub fn yaml(spec: &Value) -> String {
    serde_yaml::to_string(spec).unwrap_or_default()
}

fn finish(spec: &mut Value) {
    crate::http::problem_codes::annotate(spec);
    let mut request_schemas = Vec::new();
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                let Some(operation) = operation.as_object_mut() else {
                    continue;
                };
                if !operation.contains_key("security") {
                    operation.insert("security".into(), Value::Array(Vec::new()));
                }
                if let Some(content) = operation
                    .get_mut("requestBody")
                    .and_then(|b| b.get_mut("content"))
                    .and_then(Value::as_object_mut)
                {
                    for media in content.values() {
                        if let Some(name) = media
                            .pointer("/schema/$ref")
                            .and_then(Value::as_str)
                            .and_then(|r| r.strip_prefix("#/components/schemas/"))
                        {
                            request_schemas.push(name.to_string());
                        }
                    }
                }
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    for response in responses.values_mut() {
                        normalise_response(response);
                    }
                }
            }
        }
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
                properties.values_mut().for_each(nullable_reference);
            }
        }
        for name in request_schemas {
            if let Some(schema) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
                schema.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
    }
}

/// A nullable object property: poem-openapi writes `allOf: [{$ref}, {nullable}]` without a
/// `type`, which OpenAPI 3.0 tools reject (a `nullable` needs a `type` beside it). Rewritten as
/// `{type: object, nullable: true, allOf: [{$ref}]}`.
fn nullable_reference(property: &mut Value) {
    let Some(object) = property.as_object_mut() else {
        return;
    };
    if object.get("nullable") != Some(&Value::Bool(true)) || object.contains_key("type") {
        return;
    }
    let Some(all_of) = object.get_mut("allOf").and_then(Value::as_array_mut) else {
        return;
    };
    all_of.retain(|part| part.get("$ref").is_some());
    object.insert("type".into(), Value::from("object"));
}

/// `ETAG` → `ETag`, `application/json; charset=utf-8` → `application/json`.
fn normalise_response(response: &mut Value) {
    if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
        let renamed: Map<String, Value> = std::mem::take(headers)
            .into_iter()
            .map(|(name, value)| (canonical_header(&name), value))
            .collect();
        *headers = renamed;
    }
    if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
        let renamed: Map<String, Value> = std::mem::take(content)
            .into_iter()
            .map(|(media, value)| {
                (
                    media.split(';').next().unwrap_or(&media).trim().to_string(),
                    value,
                )
            })
            .collect();
        *content = renamed;
    }
}

fn canonical_header(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "etag" => "ETag".into(),
        "www-authenticate" => "WWW-Authenticate".into(),
        lower => lower
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical_header("ETAG"), "ETag");
        assert_eq!(canonical_header("X-CACHE"), "X-Cache");
        assert_eq!(canonical_header("SET-COOKIE"), "Set-Cookie");
        assert_eq!(canonical_header("x-error-code"), "X-Error-Code");
    }

    #[test]
    fn the_document_is_openapi_3_0_and_every_operation_is_complete() {
        let spec = document(Version::V1);
        assert!(spec["openapi"].as_str().unwrap().starts_with("3.0"));
        let mut operations = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let at = format!("{method} {path}");
                assert!(op["operationId"].is_string(), "{at}: operationId");
                assert!(
                    op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{at}: tag"
                );
                assert!(op["summary"].is_string(), "{at}: summary");
                assert!(op["security"].is_array(), "{at}: security");
                for (status, response) in op["responses"].as_object().unwrap() {
                    // A health check's 503 is its own report (`status: unhealthy`), by contract.
                    let health_report = path.starts_with("/health") && status == "503";
                    if (status.starts_with('4') || status.starts_with('5')) && !health_report {
                        let schema =
                            &response["content"]["application/problem+json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/Problem", "{at} {status}");
                    }
                }
            }
        }
        assert!(operations >= 20);
    }

    #[test]
    fn every_v1_operation_has_a_v2_twin() {
        let v1 = document(Version::V1);
        let v2 = document(Version::V2);
        for (path, item) in v1["paths"].as_object().unwrap() {
            let twin = path.replacen("/v1/", "/v2/", 1);
            for (method, op) in item.as_object().unwrap() {
                assert_eq!(
                    v2["paths"][&twin][method]["operationId"], op["operationId"],
                    "{method} {twin}"
                );
            }
        }
        assert_eq!(v2["info"]["version"], V2_API_VERSION);
        let post = &v2["components"]["schemas"]["Post"]["properties"];
        assert!(
            post["status"].is_object()
                && post["tags"].is_object()
                && post["publishedAt"].is_object()
        );
        assert!(post.get("published").is_none());
    }

    #[test]
    fn serialized_examples_use_the_property_names_the_spec_publishes() {
        // serde writes the bodies, poem-openapi writes the spec: their names must agree.
        use poem_openapi::types::Example;
        let spec = document(Version::V1);
        let cases = [
            (
                "Problem",
                serde_json::to_value(crate::http::problem::ProblemBody::example()),
            ),
            (
                "Airport",
                serde_json::to_value(crate::airports::schema::Airport::example()),
            ),
        ];
        for (name, value) in cases {
            let value = value.unwrap();
            let properties = spec["components"]["schemas"][name]["properties"]
                .as_object()
                .unwrap();
            for key in value.as_object().unwrap().keys() {
                assert!(
                    properties.contains_key(key),
                    "{name}.{key} is not in the spec"
                );
            }
        }
    }

    #[test]
    fn request_bodies_reject_unknown_fields_in_the_spec() {
        let spec = document(Version::V1);
        assert_eq!(
            spec["components"]["schemas"]["CreatePostRequest"]["additionalProperties"],
            false
        );
        assert!(
            spec["components"]["schemas"]["Post"]
                .get("additionalProperties")
                .is_none()
        );
    }
}
