//! The schemas of posts' value types (`model.rs`), shared by every version's representation.

use super::model::{PostContent, PostTitle, TAG_PATTERN, Tag};
use crate::http::types::{openapi_bounded_text, openapi_string};

openapi_bounded_text!(PostTitle, "post_title", |schema| {
    schema.example = Some("Hello, Herald".into());
});

openapi_bounded_text!(PostContent, "post_content", |schema| {
    schema.example = Some("The first post on this server.".into());
});

openapi_string!(Tag, "tag", |schema| {
    schema.min_length = Some(1);
    schema.max_length = Some(32);
    schema.pattern = Some(TAG_PATTERN.into());
    schema.example = Some("release-notes".into());
});
