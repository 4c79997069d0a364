//! Users as the database holds them, and the value types that make an invalid email,
//! username or password unrepresentable past the edge. How the API shows them: `schema.rs`.

use std::fmt;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::{
    db::schema::users,
    domain::text::{DomainString, EMAIL_MAX_LEN, bounded_text, is_email},
    security::rbac::Role,
};

/// An email address: one `@`, a non-empty local part, a dotted domain, no spaces; ≤ 254 chars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = EMAIL_MAX_LEN;

    pub fn is_valid(text: &str) -> bool {
        is_email(text)
    }
}

impl DomainString for Email {
    fn parse(text: &str) -> Result<Self, String> {
        if Self::is_valid(text) {
            Ok(Self(text.to_string()))
        } else {
            Err("must be an email address".into())
        }
    }
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3–32 characters of `[a-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl DomainString for Username {
    fn parse(text: &str) -> Result<Self, String> {
        let ok = (3..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err("must be 3 to 32 characters of a-z, 0-9 and _".into())
        }
    }
    fn as_str(&self) -> &str {
        &self.0
    }
}

bounded_text!(
    /// A password: 8–128 characters. Never printed.
    Password, 8..=128
);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

bounded_text!(
    /// A first or last name: 1–100 characters.
    #[derive(Debug)]
    PersonName, 1..=100
);

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[diesel(deserialize_as = String)]
    pub role: Role,
    pub is_active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRow<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub role: &'a str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.com", "ü@exämple.de"] {
            assert!(Email::is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b.com.",
            "a@b..com",
        ] {
            assert!(!Email::is_valid(bad), "{bad}");
        }
        assert!(!Email::is_valid(&format!(
            "{}@example.com",
            "a".repeat(250)
        )));
    }

    #[test]
    fn usernames() {
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        for bad in ["ab", "Alice", "al-ice", "al ice", &"a".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(!format!("{:?}", Password::parse("12345678").unwrap()).contains("1234"));
    }
}
