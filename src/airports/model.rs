//! Airports as the database holds them. The IATA code from the path is the key, set once at
//! creation. How the API shows them: `schema.rs`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::{db::schema::airports, domain::text::DomainString};

/// Three uppercase letters (IATA). Not normalised: `lax` is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AirportCode(String);

impl DomainString for AirportCode {
    fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(text.to_string()))
        } else {
            Err("must be three uppercase letters (IATA code)".into())
        }
    }
    fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = airports)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AirportRow {
    pub code: String,
    pub runways: i32,
    pub takeoffs_per_hour: Option<i32>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = airports)]
pub struct NewAirportRow<'a> {
    pub code: &'a str,
    pub runways: i32,
    pub takeoffs_per_hour: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_three_uppercase_letters() {
        assert!(AirportCode::parse("LAX").is_ok());
        for bad in ["lax", "LA", "LAXX", "L4X", ""] {
            assert!(AirportCode::parse(bad).is_err(), "{bad}");
        }
    }
}
