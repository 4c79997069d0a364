//! Airports as the database holds them and as the API shows them. The IATA code from the path
//! is the key, set once at creation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use poem_openapi::Object;
use serde::Serialize;

use crate::{
    db::schema::airports,
    http::{
        conditional::etag_of,
        types::{DomainString, openapi_string},
    },
};

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

openapi_string!(AirportCode, "airport_code", |schema| {
    schema.pattern = Some("^[A-Z]{3}$".into());
    schema.min_length = Some(3);
    schema.max_length = Some(3);
    schema.example = Some("LAX".into());
});

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

/// An airport.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase", example)]
#[serde(rename_all = "camelCase")]
pub struct Airport {
    /// IATA code; set once, from the path.
    pub airport_code: String,
    /// Number of runways (at least 1).
    pub runways: i32,
    /// Takeoffs per hour, when known.
    #[oai(nullable)]
    pub takeoffs_per_hour: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this representation, quotes included (as in the `ETag` header).
    pub etag: String,
}

impl poem_openapi::types::Example for Airport {
    fn example() -> Self {
        let at = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        Self {
            airport_code: "LAX".into(),
            runways: 4,
            takeoffs_per_hour: Some(60),
            created_at: at,
            updated_at: at,
            etag: etag_of(1, at),
        }
    }
}

impl From<AirportRow> for Airport {
    fn from(row: AirportRow) -> Self {
        Self {
            etag: etag_of(row.version, row.updated_at),
            airport_code: row.code,
            runways: row.runways,
            takeoffs_per_hour: row.takeoffs_per_hour,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
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
