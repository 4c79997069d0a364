//! Posts in domain words, whatever API version shows them: a post (also the row as the database
//! holds it), its status, its tags, and the value types for a valid title, content and tag.
//! The representations (v1 with `published`, v2 with `status` and `tags`) live in `v1.rs` and
//! `v2.rs`; the value types' schemas in `schema.rs`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::{
    db::schema::posts,
    domain::{
        preconditions::etag_of,
        text::{DomainString, bounded_text},
    },
};

bounded_text!(
    /// A post title: 5–200 characters.
    #[derive(Debug)]
    PostTitle, 5..=200
);

bounded_text!(
    /// A post body: 10–5000 characters.
    #[derive(Debug)]
    PostContent, 10..=5000
);

/// Where a post is in its life. Only published posts are public; drafts and archived posts are
/// seen only by their author, MODERATORs and ADMINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostStatus {
    Draft,
    Published,
    Archived,
}

impl PostStatus {
    pub const ALL: [PostStatus; 3] = [Self::Draft, Self::Published, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }

    pub fn is_public(self) -> bool {
        self == Self::Published
    }
}

/// A status text that names no status (the database's CHECK makes this a bug).
#[derive(Debug, thiserror::Error)]
#[error("unknown post status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for PostStatus {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or(UnknownStatus(text))
    }
}

/// A tag: 1–32 characters of `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

pub const TAG_PATTERN: &str = "^[a-z0-9-]{1,32}$";
pub const MAX_TAGS: usize = 10;

impl DomainString for Tag {
    fn parse(text: &str) -> Result<Self, String> {
        let valid = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err("must be 1 to 32 characters of a-z, 0-9 and -".into())
        }
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// A post's tags: at most `MAX_TAGS`, distinct, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub fn parse(tags: Vec<Tag>) -> Result<Self, String> {
        if tags.len() > MAX_TAGS {
            return Err(format!("at most {MAX_TAGS} tags"));
        }
        for (i, tag) in tags.iter().enumerate() {
            if tags[..i].contains(tag) {
                return Err(format!("`{}` is given twice; tags must be distinct", tag.0));
            }
        }
        Ok(Self(tags))
    }

    pub fn as_strs(&self) -> Vec<&str> {
        self.0.iter().map(|t| t.0.as_str()).collect()
    }

    pub fn into_strings(self) -> Vec<String> {
        self.0.into_iter().map(|t| t.0).collect()
    }
}

/// A post: the row of `posts`, and the domain value every API version renders. Its serde form
/// is how events keep a post as it was (`events.post`); never sent to a client as is.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = posts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Post {
    pub id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub content: String,
    /// Bumped by every write; with `updated_at` it makes the ETag.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Copied from the author at creation (usernames never change): no join to read a post.
    pub author_username: String,
    #[diesel(deserialize_as = String)]
    pub status: PostStatus,
    /// Set the first time the post becomes published; never changes after that.
    pub published_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
}

impl Post {
    /// The strong ETag every representation of this version of the post shares.
    pub fn etag(&self) -> String {
        etag_of(self.version, self.updated_at)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = posts)]
pub struct NewPostRow<'a> {
    pub id: Uuid,
    pub author_id: Uuid,
    pub author_username: &'a str,
    pub title: &'a str,
    pub content: &'a str,
    pub status: &'a str,
    pub published_at: Option<DateTime<Utc>>,
    pub tags: Vec<&'a str>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn tags_are_short_lowercase_distinct_and_few() {
        for ok in ["a", "release-notes", "2026", &"x".repeat(32)] {
            assert!(Tag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Rust", "a b", "ü", "under_score", &"x".repeat(33)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
        let tag = |t: &str| Tag::parse(t).unwrap();
        assert!(Tags::parse((0..10).map(|i| tag(&format!("t{i}"))).collect()).is_ok());
        assert!(Tags::parse((0..11).map(|i| tag(&format!("t{i}"))).collect()).is_err());
        assert!(Tags::parse(vec![tag("a"), tag("b"), tag("a")]).is_err());
        assert_eq!(
            Tags::parse(vec![tag("b"), tag("a")]).unwrap().as_strs(),
            ["b", "a"],
            "order kept"
        );
    }

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_errors() {
        for status in PostStatus::ALL {
            assert_eq!(
                PostStatus::try_from(status.as_str().to_string()).unwrap(),
                status
            );
        }
        assert!(PostStatus::try_from("deleted".to_string()).is_err());
    }
}
