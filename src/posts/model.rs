//! Posts as the database holds them and as the API shows them, and the value types for a
//! valid title and content.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use poem_openapi::Object;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    db::schema::posts,
    http::{conditional::etag_of, types::bounded_text},
};

bounded_text!(
    /// A post title: 5–200 characters.
    #[derive(Debug)]
    PostTitle, "post_title", 5..=200, |schema| {
        schema.example = Some("Hello, Herald".into());
    }
);

bounded_text!(
    /// A post body: 10–5000 characters.
    #[derive(Debug)]
    PostContent, "post_content", 10..=5000, |schema| {
        schema.example = Some("The first post on this server.".into());
    }
);

/// A row of `posts`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = posts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct PostRow {
    pub id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub content: String,
    pub published: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Copied from the author at creation (usernames never change): no join to read a post.
    pub author_username: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = posts)]
pub struct NewPostRow<'a> {
    pub id: Uuid,
    pub author_id: Uuid,
    pub author_username: &'a str,
    pub title: &'a str,
    pub content: &'a str,
    pub published: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The author of a post.
#[derive(Debug, Clone, Object, Serialize)]
pub struct Author {
    pub id: Uuid,
    pub username: String,
}

/// A post.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Post {
    pub id: Uuid,
    pub title: String,
    pub content: String,
    /// Drafts (`false`) are visible only to their author, MODERATORs and ADMINs.
    pub published: bool,
    pub author: Author,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this representation, quotes included (as in the `ETag` header).
    pub etag: String,
}

impl From<PostRow> for Post {
    fn from(row: PostRow) -> Self {
        Self {
            etag: etag_of(row.version, row.updated_at),
            id: row.id,
            title: row.title,
            content: row.content,
            published: row.published,
            author: Author {
                id: row.author_id,
                username: row.author_username,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::types::DomainString;

    #[test]
    fn title_and_content_bounds_are_exact() {
        assert!(PostTitle::parse("abcd").is_err());
        assert!(PostTitle::parse("abcde").is_ok());
        assert!(PostTitle::parse(&"a".repeat(200)).is_ok());
        assert!(PostTitle::parse(&"a".repeat(201)).is_err());
        assert!(PostContent::parse(&"a".repeat(9)).is_err());
        assert!(PostContent::parse(&"a".repeat(10)).is_ok());
        assert!(PostContent::parse(&"a".repeat(5000)).is_ok());
        assert!(PostContent::parse(&"a".repeat(5001)).is_err());
        assert!(PostTitle::parse("with\0nul").is_err());
    }
}
