//! JSON request bodies: `JsonBody<T>` (POST/PUT, `application/json`) and `MergePatch<T>`
//! (PATCH, `application/merge-patch+json`, RFC 7396).
//!
//! The body is checked against the same schema the OpenAPI document publishes for `T` (the
//! `#[oai(validator(...))]` attributes are the single source of truth), so every violation is
//! reported with its field name and a stable code, and the spec cannot drift from what the
//! server accepts. Then `T` is parsed from the checked value.

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
};
use regex::Regex;
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

use super::problem::{FieldError, Problem};
use crate::state::AppState;

/// Server-managed fields a request body may not carry (400 `READ_ONLY_FIELD` rather than
/// `UNKNOWN_FIELD`). Implemented by every request body type.
pub trait RequestFields {
    const READ_ONLY: &'static [&'static str];
}

/// A validated `application/json` body.
pub struct JsonBody<T>(pub T);

/// A validated `application/merge-patch+json` body. `T`'s fields are `MaybeUndefined`, so
/// "absent" and "null" stay distinct.
pub struct MergePatch<T>(pub T);

/// A JSON body that may be absent entirely (no body and no `Content-Type`), as a browser sends
/// a cookie-only refresh.
pub struct OptionalJsonBody<T>(pub Option<T>);

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

macro_rules! impl_body_extractor {
    ($wrapper:ident, $media:expr, $required:expr, |$request:ident, $body:ident| $parse:expr) => {
        impl<'a, T> ApiExtractor<'a> for $wrapper<T>
        where
            T: ParseFromJSON + RequestFields + Send + 'static,
        {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                T::register(registry);
            }

            fn request_meta() -> Option<MetaRequest> {
                Some(MetaRequest {
                    description: None,
                    content: vec![MetaMediaType {
                        content_type: $media,
                        schema: T::schema_ref(),
                    }],
                    required: $required,
                })
            }

            async fn from_request(
                $request: &'a Request,
                $body: &mut RequestBody,
                _opts: ExtractParamOptions<()>,
            ) -> poem::Result<Self> {
                Ok(Self($parse.await?))
            }
        }
    };
}

impl_body_extractor!(JsonBody, JSON, true, |request, body| parse_body::<T>(
    request, body, JSON, false
));
impl_body_extractor!(
    MergePatch,
    MERGE_PATCH,
    true,
    |request, body| parse_body::<T>(request, body, MERGE_PATCH, true)
);
impl_body_extractor!(OptionalJsonBody, JSON, false, |request, body| {
    parse_optional_body::<T>(request, body)
});

/// No `Content-Type` and no bytes: absent. Anything else is parsed as a required body.
async fn parse_optional_body<T: ParseFromJSON + RequestFields + 'static>(
    request: &Request,
    body: &mut RequestBody,
) -> Result<Option<T>, Problem> {
    if request.headers().get(header::CONTENT_TYPE).is_none() {
        return match read_limited(request, body).await?.is_empty() {
            true => Ok(None),
            false => Err(unsupported_media_type(JSON)),
        };
    }
    parse_body(request, body, JSON, false).await.map(Some)
}

/// Content type, size limit, JSON syntax, schema, then `T`.
async fn parse_body<T: ParseFromJSON + RequestFields + 'static>(
    request: &Request,
    body: &mut RequestBody,
    media_type: &'static str,
    patch: bool,
) -> Result<T, Problem> {
    let content_type_ok = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| media_type_is(v, media_type));
    if !content_type_ok {
        return Err(unsupported_media_type(media_type));
    }
    let bytes = read_limited(request, body).await?;
    let value = parse_json(&bytes)?;
    check_against_schema::<T>(&value, patch)?;
    T::parse_from_json(Some(value)).map_err(|err| {
        Problem::bad_request("VALIDATION_FAILED", "The request body is invalid.")
            .with_errors(vec![FieldError::new("", err.into_message())])
    })
}

pub fn unsupported_media_type(expected: &str) -> Problem {
    Problem::new(
        poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        format!("This operation accepts `{expected}` bodies only."),
    )
}

/// Compares the media type, ignoring parameters (`; charset=utf-8`) and case.
pub fn media_type_is(header_value: &str, expected: &str) -> bool {
    header_value
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

/// Reads at most `MAX_BODY_BYTES`; more is 413 whether or not `Content-Length` announced it.
pub async fn read_limited(request: &Request, body: &mut RequestBody) -> Result<Vec<u8>, Problem> {
    let settings = request.data::<AppState>().map(|s| &s.settings);
    let limit = settings.map_or(1024 * 1024, |s| s.max_body_bytes);
    let timeout = settings.map_or(Duration::from_secs(30), |s| s.http_body_timeout);
    let too_large = || {
        Problem::new(
            poem::http::StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("The request body is larger than {limit} bytes."),
        )
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Ok(reader) = body.take() else {
        return Ok(Vec::new());
    };
    let mut reader = reader.into_async_read();
    if announced.is_some_and(|n| n > limit as u64) {
        drain_briefly(&mut reader).await;
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(announced.map_or(1024, |n| n as usize));
    // A body that trickles in must not hold the connection (and a request slot) for longer than
    // HTTP_BODY_TIMEOUT.
    let mut limited = (&mut reader).take(limit as u64 + 1);
    match tokio::time::timeout(timeout, limited.read_to_end(&mut bytes)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => {
            return Err(Problem::bad_request(
                "INVALID_JSON",
                "The request body could not be read.",
            ));
        }
        Err(_) => {
            return Err(Problem::new(
                poem::http::StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                format!(
                    "The request body did not arrive within {}.",
                    humantime::format_duration(timeout)
                ),
            )
            .closing());
        }
    }
    if bytes.len() > limit {
        drain_briefly(&mut reader).await;
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads (and drops) a little of an oversized body before answering 413. Closing a connection
/// with unread data makes the kernel send a reset, which can destroy the 413 before the client
/// reads it; a bounded drain lets ordinary clients see the answer without letting a huge body
/// cost more than 1 MiB or 250 ms.
async fn drain_briefly(reader: &mut (impl tokio::io::AsyncRead + Unpin)) {
    const DRAIN_BYTES: u64 = 1024 * 1024;
    let (mut limited, mut sink) = (reader.take(DRAIN_BYTES), tokio::io::sink());
    let drain = tokio::io::copy(&mut limited, &mut sink);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(250), drain).await;
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(bytes).map_err(|err| {
        Problem::bad_request(
            "INVALID_JSON",
            format!("The request body is not valid JSON: {err}."),
        )
    })
}

/// A rule the body broke, by category; the category picks the problem's `code`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Violation {
    ReadOnly,
    Unknown,
    Missing,
    Invalid,
}

/// Validates `value` against `T`'s published schema.
fn check_against_schema<T: Type + RequestFields + 'static>(
    value: &Value,
    patch: bool,
) -> Result<(), Problem> {
    let schemas = registry_of::<T>();
    let root = T::schema_ref();
    let Some(schema) = resolve(&schemas, &root) else {
        return Ok(());
    };
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            check_object(map, schema, &schemas, T::READ_ONLY, patch, "", &mut found)
        }
        _ => found.push((
            Violation::Invalid,
            FieldError::new("", "the body must be a JSON object"),
        )),
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort_by_key(|(kind, _)| *kind);
    let (code, detail) = match found[0].0 {
        Violation::ReadOnly => ("READ_ONLY_FIELD", "The body sets a read-only field."),
        Violation::Unknown => (
            "UNKNOWN_FIELD",
            "The body has a field this operation does not accept.",
        ),
        Violation::Missing => ("MISSING_FIELD", "The body lacks a required field."),
        Violation::Invalid => ("VALIDATION_FAILED", "The request has invalid fields."),
    };
    Err(Problem::bad_request(code, detail).with_errors(found.into_iter().map(|(_, e)| e).collect()))
}

/// The registry holding `T` and everything it references, built once per type.
fn registry_of<T: Type + 'static>() -> Arc<Registry> {
    static CACHE: OnceLock<RwLock<HashMap<TypeId, Arc<Registry>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(found) = cache.read().ok().and_then(|c| c.get(&id).cloned()) {
        return found;
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let registry = Arc::new(registry);
    if let Ok(mut c) = cache.write() {
        c.insert(id, registry.clone());
    }
    registry
}

fn resolve<'r>(registry: &'r Registry, schema: &'r MetaSchemaRef) -> Option<&'r MetaSchema> {
    match schema {
        MetaSchemaRef::Inline(schema) => Some(schema),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name),
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn check_object(
    map: &Map<String, Value>,
    schema: &MetaSchema,
    registry: &Registry,
    read_only: &[&str],
    patch: bool,
    prefix: &str,
    found: &mut Vec<(Violation, FieldError)>,
) {
    for (key, value) in map {
        let field = join(prefix, key);
        if let Some((_, property)) = schema.properties.iter().find(|(name, _)| name == key) {
            if let Some(property) = resolve(registry, property) {
                check_value(value, property, registry, &field, found);
            }
        } else if read_only.contains(&key.as_str()) {
            found.push((Violation::ReadOnly, FieldError::new(field, "is read-only")));
        } else {
            found.push((
                Violation::Unknown,
                FieldError::new(field, "is not a known field"),
            ));
        }
    }
    if !patch {
        for required in &schema.required {
            if !map.contains_key(*required) {
                found.push((
                    Violation::Missing,
                    FieldError::new(join(prefix, required), "is required"),
                ));
            }
        }
    }
}

fn check_value(
    value: &Value,
    schema: &MetaSchema,
    registry: &Registry,
    field: &str,
    found: &mut Vec<(Violation, FieldError)>,
) {
    // `allOf` wrappers (a documented `$ref`) apply every part.
    for part in &schema.all_of {
        if let Some(part) = resolve(registry, part) {
            check_value(value, part, registry, field, found);
        }
    }
    let mut invalid = |message: String| {
        found.push((Violation::Invalid, FieldError::new(field, message)));
    };
    if value.is_null() {
        if !schema.nullable {
            invalid("must not be null".into());
        }
        return;
    }
    match schema.ty {
        "string" => {
            let Some(s) = value.as_str() else {
                return invalid("must be a string".into());
            };
            check_string(s, schema, &mut invalid);
        }
        "integer" => {
            let Some(n) = value.as_i64().or_else(|| value.as_u64().map(|u| u as i64)) else {
                return invalid("must be an integer".into());
            };
            let bits_ok = match schema.format {
                Some("int32") => i32::try_from(n).is_ok(),
                _ => true,
            };
            if !bits_ok {
                return invalid("is out of range".into());
            }
            check_number(n as f64, schema, &mut invalid);
        }
        "number" => {
            let Some(n) = value.as_f64() else {
                return invalid("must be a number".into());
            };
            check_number(n, schema, &mut invalid);
        }
        "boolean" if !value.is_boolean() => invalid("must be true or false".into()),
        "array" => {
            let Some(items) = value.as_array() else {
                return invalid("must be an array".into());
            };
            if let Some(max) = schema.max_items
                && items.len() > max
            {
                return invalid(format!("must have at most {max} items"));
            }
            if let Some(min) = schema.min_items
                && items.len() < min
            {
                return invalid(format!("must have at least {min} items"));
            }
            if schema.unique_items == Some(true)
                && let Some(i) = (1..items.len()).find(|&i| items[..i].contains(&items[i]))
            {
                return invalid(format!(
                    "must not repeat an item ({} is given twice)",
                    items[i]
                ));
            }
            if let Some(item_schema) = schema.items.as_deref().and_then(|s| resolve(registry, s)) {
                for (i, item) in items.iter().enumerate() {
                    check_value(item, item_schema, registry, &format!("{field}[{i}]"), found);
                }
            }
        }
        "object" => match value.as_object() {
            Some(map) => check_object(map, schema, registry, &[], false, field, found),
            None => invalid("must be an object".into()),
        },
        _ => {}
    }
}

fn check_string(s: &str, schema: &MetaSchema, invalid: &mut impl FnMut(String)) {
    if s.contains('\0') {
        return invalid("must not contain NUL characters".into());
    }
    let length = s.chars().count();
    if let Some(min) = schema.min_length
        && length < min
    {
        return invalid(format!("must be at least {min} characters long"));
    }
    if let Some(max) = schema.max_length
        && length > max
    {
        return invalid(format!("must be at most {max} characters long"));
    }
    if !schema.enum_items.is_empty() && !schema.enum_items.iter().any(|e| e.as_str() == Some(s)) {
        let allowed: Vec<_> = schema.enum_items.iter().filter_map(Value::as_str).collect();
        return invalid(format!("must be one of {}", allowed.join(", ")));
    }
    if let Some(pattern) = &schema.pattern
        && !compiled(pattern).is_some_and(|re| re.is_match(s))
    {
        return invalid(format!("must match the pattern {pattern}"));
    }
    match schema.format {
        Some("email") if !crate::domain::text::is_email(s) => {
            invalid("must be an email address".into())
        }
        Some("uuid") if uuid::Uuid::parse_str(s).is_err() => invalid("must be a UUID".into()),
        _ => {}
    }
}

fn check_number(n: f64, schema: &MetaSchema, invalid: &mut impl FnMut(String)) {
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum == Some(true);
        if n < min || (exclusive && n == min) {
            return invalid(format!("must be at least {min}"));
        }
    }
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum == Some(true);
        if n > max || (exclusive && n == max) {
            invalid(format!("must be at most {max}"));
        }
    }
}

/// Schema patterns compiled once.
fn compiled(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.read().ok().and_then(|c| c.get(pattern).cloned()) {
        return Some(found);
    }
    let regex = Arc::new(Regex::new(pattern).ok()?);
    if let Ok(mut c) = cache.write() {
        c.insert(pattern.to_string(), regex.clone());
    }
    Some(regex)
}

#[cfg(test)]
mod tests {

    /// The request-body checker is hand-written: every JSON-schema keyword a request schema of
    /// either published document uses must be one it enforces (or one that only documents).
    /// A new keyword in the spec fails here until the checker learns it.
    #[test]
    fn every_keyword_of_the_published_request_schemas_is_enforced() {
        use std::collections::BTreeSet;
        const ENFORCED: &[&str] = &[
            "type",
            "properties",
            "required",
            "items",
            "minLength",
            "maxLength",
            "pattern",
            "enum",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "nullable",
            "format",
            "allOf",
            "maxItems",
            "minItems",
            "uniqueItems",
            // `additionalProperties: false` is enforced for every body (`UNKNOWN_FIELD`).
            "additionalProperties",
        ];
        const DOCUMENTING: &[&str] = &["description", "example", "title", "$ref", "deprecated"];
        fn keywords(
            schema: &serde_json::Value,
            schemas: &serde_json::Value,
            seen: &mut BTreeSet<String>,
            visited: &mut BTreeSet<String>,
        ) {
            let Some(object) = schema.as_object() else {
                return;
            };
            for (key, value) in object {
                seen.insert(key.clone());
                match key.as_str() {
                    "properties" => {
                        for property in value.as_object().into_iter().flat_map(|p| p.values()) {
                            keywords(property, schemas, seen, visited);
                        }
                    }
                    "items" => keywords(value, schemas, seen, visited),
                    "allOf" | "oneOf" | "anyOf" => {
                        for part in value.as_array().into_iter().flatten() {
                            keywords(part, schemas, seen, visited);
                        }
                    }
                    "$ref" => {
                        let name = value
                            .as_str()
                            .unwrap_or_default()
                            .trim_start_matches("#/components/schemas/");
                        if visited.insert(name.to_string()) {
                            keywords(&schemas[name], schemas, seen, visited);
                        }
                    }
                    _ => {}
                }
            }
        }
        for version in crate::api::spec::Version::ALL {
            let spec = crate::api::spec::document(version);
            let (mut seen, mut visited) = (BTreeSet::new(), BTreeSet::new());
            for item in spec["paths"].as_object().unwrap().values() {
                for op in item.as_object().unwrap().values() {
                    for media in op["requestBody"]["content"]
                        .as_object()
                        .into_iter()
                        .flat_map(|c| c.values())
                    {
                        keywords(
                            &media["schema"],
                            &spec["components"]["schemas"],
                            &mut seen,
                            &mut visited,
                        );
                    }
                }
            }
            let unchecked: Vec<_> = seen
                .iter()
                .filter(|k| !ENFORCED.contains(&k.as_str()) && !DOCUMENTING.contains(&k.as_str()))
                .collect();
            assert!(
                unchecked.is_empty(),
                "{}: request schemas use keywords the body checker ignores: {unchecked:?}",
                version.name()
            );
            assert!(seen.contains("pattern"), "the walk reached the schemas");
        }
    }

    use super::*;
    use poem_openapi::{Object, types::MaybeUndefined};

    #[derive(Object, Debug)]
    #[oai(rename_all = "camelCase")]
    struct Sample {
        #[oai(validator(min_length = 5, max_length = 10))]
        title: String,
        #[oai(validator(minimum(value = "1")))]
        count: Option<i32>,
        #[oai(validator(pattern = r"^[a-z]+$"))]
        slug: Option<String>,
    }
    impl RequestFields for Sample {
        const READ_ONLY: &'static [&'static str] = &["id", "createdAt"];
    }

    #[derive(Object, Debug)]
    #[oai(rename_all = "camelCase")]
    struct SamplePatch {
        title: MaybeUndefined<String>,
        #[oai(nullable)]
        note: MaybeUndefined<String>,
    }
    impl RequestFields for SamplePatch {
        const READ_ONLY: &'static [&'static str] = &["id"];
    }

    fn code_of<T: Type + RequestFields + 'static>(
        body: Value,
        patch: bool,
    ) -> Option<(&'static str, Vec<String>)> {
        check_against_schema::<T>(&body, patch)
            .err()
            .map(|p| (p.code, p.errors.iter().map(|e| e.field.clone()).collect()))
    }

    #[test]
    fn a_valid_body_passes() {
        assert_eq!(
            code_of::<Sample>(
                serde_json::json!({"title": "hello", "count": 2, "slug": "ab"}),
                false
            ),
            None
        );
    }

    #[test]
    fn bounds_are_exact() {
        assert!(code_of::<Sample>(serde_json::json!({"title": "abcd"}), false).is_some());
        assert!(code_of::<Sample>(serde_json::json!({"title": "abcde"}), false).is_none());
        assert!(code_of::<Sample>(serde_json::json!({"title": "abcdefghij"}), false).is_none());
        assert!(code_of::<Sample>(serde_json::json!({"title": "abcdefghijk"}), false).is_some());
        // Characters, not bytes.
        assert!(code_of::<Sample>(serde_json::json!({"title": "ééééé"}), false).is_none());
    }

    #[test]
    fn each_violation_has_its_code_and_field() {
        let cases = [
            (
                serde_json::json!({"title": "hello", "id": "x"}),
                "READ_ONLY_FIELD",
                "id",
            ),
            (
                serde_json::json!({"title": "hello", "bogus": 1}),
                "UNKNOWN_FIELD",
                "bogus",
            ),
            (serde_json::json!({}), "MISSING_FIELD", "title"),
            (
                serde_json::json!({"title": 12345}),
                "VALIDATION_FAILED",
                "title",
            ),
            (
                serde_json::json!({"title": "hello", "count": 0}),
                "VALIDATION_FAILED",
                "count",
            ),
            (
                serde_json::json!({"title": "hello", "count": 1.5}),
                "VALIDATION_FAILED",
                "count",
            ),
            (
                serde_json::json!({"title": "hello", "count": 3000000000u64}),
                "VALIDATION_FAILED",
                "count",
            ),
            (
                serde_json::json!({"title": "hello", "slug": "A"}),
                "VALIDATION_FAILED",
                "slug",
            ),
            (
                serde_json::json!({"title": "he\u{0}llo"}),
                "VALIDATION_FAILED",
                "title",
            ),
            (
                serde_json::json!({"title": null}),
                "VALIDATION_FAILED",
                "title",
            ),
        ];
        for (body, code, field) in cases {
            let (got, fields) = code_of::<Sample>(body.clone(), false).expect("rejected");
            assert_eq!(got, code, "{body}");
            assert_eq!(fields, vec![field.to_string()], "{body}");
        }
        let (code, _) = code_of::<Sample>(serde_json::json!([1]), false).unwrap();
        assert_eq!(code, "VALIDATION_FAILED");
    }

    #[test]
    fn merge_patch_allows_absent_fields_and_null_only_where_nullable() {
        assert_eq!(code_of::<SamplePatch>(serde_json::json!({}), true), None);
        assert_eq!(
            code_of::<SamplePatch>(serde_json::json!({"note": null}), true),
            None
        );
        let (code, fields) =
            code_of::<SamplePatch>(serde_json::json!({"title": null}), true).unwrap();
        assert_eq!(
            (code, fields),
            ("VALIDATION_FAILED", vec!["title".to_string()])
        );
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert!(media_type_is("application/json; charset=utf-8", JSON));
        assert!(media_type_is("Application/JSON", JSON));
        assert!(!media_type_is("text/plain", JSON));
        assert!(!media_type_is("application/json", MERGE_PATCH));
        assert!(media_type_is(
            "application/merge-patch+json;charset=UTF-8",
            MERGE_PATCH
        ));
    }
}
