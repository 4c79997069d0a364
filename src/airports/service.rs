//! Airport rules: ADMIN-only writes, PUT (create or replace) and merge-patch upserts under
//! `If-Match` / `If-None-Match`, and `runways` required whenever an airport is created.

use chrono::Utc;

use super::{
    model::{AirportCode, AirportRow, NewAirportRow},
    repo,
};
use crate::{
    auth::rbac::{Actor, Permission},
    error::{AppError, AppResult, Resource},
    http::{
        conditional::{Preconditions, etag_of},
        types::DomainString,
    },
    state::AppState,
};

/// Whether an upsert created the airport or changed an existing one.
pub enum Upserted {
    Created(AirportRow),
    Updated(AirportRow),
}

/// A merge-patch: `None` leaves a field alone; `Some(None)` clears `takeoffsPerHour`.
#[derive(Debug, Default)]
pub struct AirportPatch {
    pub runways: Option<i32>,
    pub takeoffs_per_hour: Option<Option<i32>>,
}

/// Retries of an optimistic write before giving up (each retry means another write won).
const MAX_WRITE_ATTEMPTS: usize = 16;

pub async fn get(state: &AppState, code: &AirportCode) -> AppResult<AirportRow> {
    let mut conn = state.db.conn().await?;
    repo::find(&mut conn, code.as_str())
        .await?
        .ok_or(AppError::NotFound(Resource::Airport))
}

pub async fn list(state: &AppState, after: Option<&str>, limit: i64) -> AppResult<Vec<AirportRow>> {
    let mut conn = state.db.conn().await?;
    repo::list(&mut conn, after, limit).await
}

/// PUT: the body is the whole airport; omitted optional fields become null.
pub async fn put(
    state: &AppState,
    actor: &Actor,
    code: &AirportCode,
    runways: i32,
    takeoffs_per_hour: Option<i32>,
    preconditions: &Preconditions,
) -> AppResult<Upserted> {
    upsert(state, actor, code, preconditions, |_| Ok((runways, takeoffs_per_hour))).await
}

/// PATCH: merges into the existing airport, or creates one (then `runways` is required).
pub async fn patch(
    state: &AppState,
    actor: &Actor,
    code: &AirportCode,
    patch: AirportPatch,
    preconditions: &Preconditions,
) -> AppResult<Upserted> {
    upsert(state, actor, code, preconditions, |current| match current {
        Some(row) => Ok((
            patch.runways.unwrap_or(row.runways),
            patch.takeoffs_per_hour.unwrap_or(row.takeoffs_per_hour),
        )),
        None => Ok((
            patch.runways.ok_or(AppError::MissingField("runways"))?,
            patch.takeoffs_per_hour.flatten(),
        )),
    })
    .await
}

async fn upsert(
    state: &AppState,
    actor: &Actor,
    code: &AirportCode,
    preconditions: &Preconditions,
    desired: impl Fn(Option<&AirportRow>) -> AppResult<(i32, Option<i32>)>,
) -> AppResult<Upserted> {
    if !actor.can(Permission::WriteAirports) {
        return Err(AppError::Forbidden);
    }
    let mut conn = state.db.conn().await?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let now = Utc::now();
        let current = repo::find(&mut conn, code.as_str()).await?;
        let current_etag = current.as_ref().map(|row| etag_of(row.version, row.updated_at));
        if !preconditions.allow(current_etag.as_deref()) {
            return Err(AppError::PreconditionFailed);
        }
        let (runways, takeoffs_per_hour) = desired(current.as_ref())?;
        match current {
            None => {
                let new = NewAirportRow {
                    code: code.as_str(),
                    runways,
                    takeoffs_per_hour,
                    created_at: now,
                    updated_at: now,
                };
                if let Some(row) = repo::insert(&mut conn, new).await? {
                    return Ok(Upserted::Created(row));
                }
            }
            Some(row) if row.runways == runways && row.takeoffs_per_hour == takeoffs_per_hour => {
                return Ok(Upserted::Updated(row));
            }
            Some(row) => {
                if let Some(row) =
                    repo::replace(&mut conn, code.as_str(), row.version, runways, takeoffs_per_hour, now).await?
                {
                    return Ok(Upserted::Updated(row));
                }
            }
        }
    }
    Err(AppError::Conflict("The airport is being changed by others; retry."))
}

/// `None` when there is no such airport.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    code: &AirportCode,
    preconditions: &Preconditions,
) -> AppResult<Option<AirportRow>> {
    if !actor.can(Permission::WriteAirports) {
        return Err(AppError::Forbidden);
    }
    let mut conn = state.db.conn().await?;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let Some(current) = repo::find(&mut conn, code.as_str()).await? else {
            return Ok(None);
        };
        if !preconditions.allow(Some(&etag_of(current.version, current.updated_at))) {
            return Err(AppError::PreconditionFailed);
        }
        if let Some(row) = repo::delete(&mut conn, code.as_str(), current.version).await? {
            return Ok(Some(row));
        }
    }
    Err(AppError::Conflict("The airport is being changed by others; retry."))
}
