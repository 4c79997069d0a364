//! v1 posts are deprecated in favour of v2 when configuration says so: `V1_DEPRECATED_AT` adds
//! `Deprecation: @<unix seconds>` (RFC 9745), `V1_SUNSET` adds `Sunset: <HTTP-date>` (RFC 8594),
//! and either adds `Link: </v2/posts>; rel="successor-version"`. The headers are sent on every
//! response of a v1 posts operation and declared (optional) in the v1 document, so clients can
//! rely on them being described even while they are not sent.

use poem::http::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::config::Settings;

const PATH: &str = "/v1/posts";
const SUCCESSOR: &str = "</v2/posts>; rel=\"successor-version\"";

/// The headers v1 post responses carry under the configuration (none when it sets neither
/// variable), as `(path prefix, headers)` for the edge.
pub fn headers(settings: &Settings) -> Option<(&'static str, Vec<(HeaderName, HeaderValue)>)> {
    let mut headers = Vec::new();
    if let Some(at) = settings.v1_deprecated_at
        && let Ok(value) = HeaderValue::from_str(&format!("@{}", at.timestamp()))
    {
        headers.push((HeaderName::from_static("deprecation"), value));
    }
    if let Some(sunset) = settings.v1_sunset
        && let Ok(value) =
            HeaderValue::from_str(&sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        headers.push((HeaderName::from_static("sunset"), value));
    }
    if headers.is_empty() {
        return None;
    }
    headers.push((
        HeaderName::from_static("link"),
        HeaderValue::from_static(SUCCESSOR),
    ));
    Some((PATH, headers))
}

/// Declares the three headers, optional, on every response of every v1 posts operation.
pub fn declare(spec: &mut Value) {
    let headers = [
        (
            "Deprecation",
            "When v1 is deprecated (`V1_DEPRECATED_AT`): `@` and the Unix time it was deprecated \
             (RFC 9745). Use v2 (`Link`).",
        ),
        (
            "Sunset",
            "When v1 has an end-of-life date (`V1_SUNSET`): the HTTP-date after which it may stop \
             answering (RFC 8594).",
        ),
        (
            "Link",
            "With `Deprecation` or `Sunset`: `</v2/posts>; rel=\"successor-version\"`.",
        ),
    ];
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with(PATH) {
            continue;
        }
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(response) = response.as_object_mut() else {
                    continue;
                };
                let declared = response
                    .entry("headers")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                if let Some(declared) = declared {
                    for (name, description) in headers {
                        declared.insert(
                            name.to_string(),
                            json!({
                                "description": description,
                                "required": false,
                                "deprecated": false,
                                "schema": { "type": "string" }
                            }),
                        );
                    }
                }
            }
        }
    }
}
