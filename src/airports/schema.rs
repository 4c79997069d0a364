//! Airports as the API documents show them: the `Airport` representation (with the example
//! the docs show) and the schema of `AirportCode`.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;

use super::model::{AirportCode, AirportRow};
use crate::{domain::preconditions::etag_of, http::types::openapi_string};

openapi_string!(AirportCode, "airport_code", |schema| {
    schema.pattern = Some("^[A-Z]{3}$".into());
    schema.min_length = Some(3);
    schema.max_length = Some(3);
    schema.example = Some("LAX".into());
});

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
