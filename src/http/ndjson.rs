//! `Ndjson`: a streamed `application/x-ndjson` response body (one JSON value a line),
//! documented as such in the OpenAPI document.

use poem::{Body, IntoResponse, Response, http::header};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef, Registry},
};

pub const NDJSON_CONTENT_TYPE: &str = "application/x-ndjson";

pub struct Ndjson(pub Body);

impl Payload for Ndjson {
    const CONTENT_TYPE: &'static str = NDJSON_CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("One JSON document per line."),
            ..MetaSchema::new_with_format("string", "binary")
        }))
    }

    fn register(_registry: &mut Registry) {}
}

impl IntoResponse for Ndjson {
    fn into_response(self) -> Response {
        Response::builder()
            .header(header::CONTENT_TYPE, NDJSON_CONTENT_TYPE)
            .body(self.0)
    }
}
