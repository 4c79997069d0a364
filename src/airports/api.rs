//! `/v1/airports/*`: a client-keyed resource showing field mutability — `airportCode` is
//! create-only (from the path), `createdAt`/`updatedAt`/`etag` are read-only, `runways` and
//! `takeoffsPerHour` are updatable. PUT creates or replaces; PATCH upserts with merge-patch.

use std::marker::PhantomData;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};

use super::{
    model::{AirportCode, AirportRow},
    schema::Airport,
    service::{self, AirportPatch, Upserted},
};
use crate::{
    domain::{
        paging::decode_cursor,
        preconditions::{Preconditions, not_modified},
        text::DomainString,
    },
    error::AppError,
    http::{
        ApiTags,
        auth::Auth,
        body::{JsonBody, MergePatch, RequestFields},
        json::JsonBytes,
        pagination::{default_limit, finish_page, page_type},
        problem::{ApiError, error_statuses},
        version::ApiVersion,
    },
    state::AppState,
};

page_type!(
    /// A page of airports, ordered by code.
    AirportPage,
    Airport
);

/// The whole airport (PUT). Omitted optional fields become null.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct AirportPutRequest {
    /// Optional; if sent, it must equal the code in the path.
    #[oai(skip_serializing_if_is_none)]
    pub airport_code: Option<AirportCode>,
    #[oai(validator(minimum(value = "1")))]
    pub runways: i32,
    #[oai(nullable, validator(minimum(value = "0")))]
    pub takeoffs_per_hour: Option<i32>,
}

impl poem_openapi::types::Example for AirportPutRequest {
    fn example() -> Self {
        Self {
            airport_code: AirportCode::parse("LAX").ok(),
            runways: 4,
            takeoffs_per_hour: Some(60),
        }
    }
}

/// Changes to an airport (JSON merge-patch); creates it when absent (then `runways` is
/// required). `takeoffsPerHour: null` removes the value; `runways` cannot be null.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct AirportPatchRequest {
    /// Optional; if sent, it must equal the code in the path.
    #[oai(skip_serializing_if_is_none)]
    pub airport_code: Option<AirportCode>,
    #[oai(skip_serializing_if_is_none, validator(minimum(value = "1")))]
    pub runways: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0")))]
    pub takeoffs_per_hour: MaybeUndefined<i32>,
}

impl poem_openapi::types::Example for AirportPatchRequest {
    fn example() -> Self {
        Self {
            airport_code: None,
            runways: None,
            takeoffs_per_hour: MaybeUndefined::Value(75),
        }
    }
}

const AIRPORT_READ_ONLY: &[&str] = &["createdAt", "updatedAt", "etag"];

impl RequestFields for AirportPutRequest {
    const READ_ONLY: &'static [&'static str] = AIRPORT_READ_ONLY;
}

impl RequestFields for AirportPatchRequest {
    const READ_ONLY: &'static [&'static str] = AIRPORT_READ_ONLY;
}

/// `airportCode` is create-only and comes from the path: a different one in the body is an
/// attempt to change it.
fn check_code(in_body: Option<&AirportCode>, in_path: &AirportCode) -> Result<(), AppError> {
    match in_body {
        Some(code) if code != in_path => Err(AppError::ReadOnlyField("airportCode")),
        _ => Ok(()),
    }
}

#[derive(ApiResponse)]
pub enum ListAirportsResponse {
    /// A page of airports.
    #[oai(status = 200)]
    Ok(JsonBytes<AirportPage>),
}

#[derive(ApiResponse)]
pub enum GetAirportResponse {
    /// The airport.
    #[oai(status = 200)]
    Ok(JsonBytes<Airport>, #[oai(header = "ETag")] String),
    /// The client's copy (`If-None-Match`) is current.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum UpsertAirportResponse {
    /// An existing airport was changed.
    #[oai(status = 200)]
    Updated(JsonBytes<Airport>, #[oai(header = "ETag")] String),
    /// The airport was created.
    #[oai(status = 201)]
    Created(
        JsonBytes<Airport>,
        /// `/v1/airports/{code}`
        #[oai(header = "Location")]
        String,
        #[oai(header = "ETag")] String,
    ),
}

impl UpsertAirportResponse {
    fn of<S, V: ApiVersion>(outcome: Upserted) -> Result<Self, ApiError<S>> {
        Ok(match outcome {
            Upserted::Created(row) => {
                let airport = Airport::from(row);
                let location = format!("{}/airports/{}", V::PREFIX, airport.airport_code);
                Self::Created(JsonBytes::new(&airport)?, location, airport.etag)
            }
            Upserted::Updated(row) => {
                let airport = Airport::from(row);
                Self::Updated(JsonBytes::new(&airport)?, airport.etag)
            }
        })
    }
}

#[derive(ApiResponse)]
pub enum DeleteAirportResponse {
    /// The airport was deleted; here is what it was.
    #[oai(status = 200)]
    Deleted(JsonBytes<Airport>),
    /// No such airport.
    #[oai(status = 204)]
    Absent,
}

error_statuses!(ListAirportsErrors: 400, 429);
error_statuses!(GetAirportErrors: 400, 404, 429);
error_statuses!(WriteAirportErrors: 400, 401, 403, 408, 409, 411, 412, 413, 415, 429);
error_statuses!(DeleteAirportErrors: 400, 401, 403, 409, 412, 429);

/// Mounted once per API version (`V::PREFIX`); the same in every version.
pub struct AirportsApi<V>(PhantomData<V>);

impl<V> Default for AirportsApi<V> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[OpenApi(tag = "ApiTags::Airports", prefix_path = V::PREFIX)]
impl<V: ApiVersion> AirportsApi<V> {
    /// List airports
    ///
    /// Ordered by code, cursor-paginated.
    #[oai(path = "/airports", method = "get", operation_id = "list_airports")]
    async fn list(
        &self,
        state: Data<&AppState>,
        /// Page size (1–100).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Opaque cursor from a previous page's `nextLink`.
        #[oai(validator(min_length = 1, max_length = 512))]
        cursor: Query<Option<String>>,
    ) -> Result<ListAirportsResponse, ApiError<ListAirportsErrors>> {
        let after = match cursor.0.as_deref() {
            Some(c) => Some(
                AirportCode::parse(&decode_cursor("airport", c)?)
                    .map_err(|_| AppError::InvalidCursor)?,
            ),
            None => None,
        };
        let rows: Vec<AirportRow> = service::list(
            &state,
            after.as_ref().map(AirportCode::as_str),
            i64::from(limit.0) + 1,
        )
        .await?;
        let (rows, next_link) = finish_page(
            rows,
            limit.0,
            "airport",
            &format!("{}/airports", V::PREFIX),
            &[],
            |a| a.code.clone(),
        );
        let page = AirportPage {
            data: rows.into_iter().map(Airport::from).collect(),
            next_link,
        };
        Ok(ListAirportsResponse::Ok(JsonBytes::new(&page)?))
    }

    /// Get an airport
    #[oai(path = "/airports/:code", method = "get", operation_id = "get_airport")]
    async fn get(
        &self,
        state: Data<&AppState>,
        code: Path<AirportCode>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<GetAirportResponse, ApiError<GetAirportErrors>> {
        let airport = Airport::from(service::get(&state, &code.0).await?);
        if not_modified(if_none_match.0.as_deref(), &airport.etag) {
            return Ok(GetAirportResponse::NotModified(airport.etag));
        }
        Ok(GetAirportResponse::Ok(
            JsonBytes::new(&airport)?,
            airport.etag,
        ))
    }

    /// Create or replace an airport
    ///
    /// ADMIN only. 201 when created, 200 when replaced (omitted optional fields become null).
    /// `If-None-Match: *` makes it create-only; `If-Match` makes it replace-only-that-version.
    #[oai(path = "/airports/:code", method = "put", operation_id = "put_airport")]
    async fn put(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        code: Path<AirportCode>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
        body: JsonBody<AirportPutRequest>,
    ) -> Result<UpsertAirportResponse, ApiError<WriteAirportErrors>> {
        let request = body.0;
        check_code(request.airport_code.as_ref(), &code.0)?;
        let preconditions = Preconditions {
            if_match: if_match.0,
            if_none_match: if_none_match.0,
        };
        let outcome = service::put(
            &state,
            &auth.actor(),
            &code.0,
            request.runways,
            request.takeoffs_per_hour,
            &preconditions,
        )
        .await?;
        UpsertAirportResponse::of::<_, V>(outcome)
    }

    /// Update or create an airport
    ///
    /// ADMIN only. JSON merge-patch upsert: 201 when it creates (then `runways` is required),
    /// 200 when it modifies. `takeoffsPerHour: null` removes the value.
    #[oai(
        path = "/airports/:code",
        method = "patch",
        operation_id = "patch_airport"
    )]
    async fn patch(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        code: Path<AirportCode>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
        body: MergePatch<AirportPatchRequest>,
    ) -> Result<UpsertAirportResponse, ApiError<WriteAirportErrors>> {
        let request = body.0;
        check_code(request.airport_code.as_ref(), &code.0)?;
        let patch = AirportPatch {
            runways: request.runways,
            takeoffs_per_hour: match request.takeoffs_per_hour {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(n) => Some(Some(n)),
            },
        };
        let preconditions = Preconditions {
            if_match: if_match.0,
            if_none_match: if_none_match.0,
        };
        let outcome = service::patch(&state, &auth.actor(), &code.0, patch, &preconditions).await?;
        UpsertAirportResponse::of::<_, V>(outcome)
    }

    /// Delete an airport
    ///
    /// ADMIN only. Answers the deleted airport, or 204 when there is none.
    #[oai(
        path = "/airports/:code",
        method = "delete",
        operation_id = "delete_airport"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        code: Path<AirportCode>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> Result<DeleteAirportResponse, ApiError<DeleteAirportErrors>> {
        match service::delete(
            &state,
            &auth.actor(),
            &code.0,
            &Preconditions::if_match(if_match.0),
        )
        .await?
        {
            Some(row) => Ok(DeleteAirportResponse::Deleted(JsonBytes::new(
                &Airport::from(row),
            )?)),
            None => Ok(DeleteAirportResponse::Absent),
        }
    }
}
