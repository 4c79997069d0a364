//! Airport rules: ADMIN-only writes, PUT (create or replace) and merge-patch upserts under
//! `If-Match` / `If-None-Match`, and `runways` required whenever an airport is created.

use chrono::Utc;
use diesel_async::AsyncConnection;

use super::{
    model::{AirportCode, AirportRow, NewAirportRow},
    repo,
};
use crate::{
    domain::{
        preconditions::{Preconditions, etag_of},
        text::DomainString,
    },
    error::{AppError, AppResult, Resource},
    security::rbac::{Actor, Permission},
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
    upsert(state, actor, code, preconditions, |_| {
        Ok((runways, takeoffs_per_hour))
    })
    .await
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
    desired: impl Fn(Option<&AirportRow>) -> AppResult<(i32, Option<i32>)> + Send + Sync,
) -> AppResult<Upserted> {
    if !actor.can(Permission::WriteAirports) {
        return Err(AppError::Forbidden);
    }
    let mut conn = state.db.conn().await?;
    // Twice at most: if a concurrent request creates the airport between our look and our
    // insert, the second round finds (and locks) it.
    for _ in 0..2 {
        let outcome = conn
            .transaction::<_, AppError, _>(async |conn| {
                let now = Utc::now();
                let current = repo::lock(conn, code.as_str()).await?;
                let current_etag = current
                    .as_ref()
                    .map(|row| etag_of(row.version, row.updated_at));
                if !preconditions.allow(current_etag.as_deref()) {
                    return Err(AppError::PreconditionFailed);
                }
                let (runways, takeoffs_per_hour) = desired(current.as_ref())?;
                Ok(match current {
                    None => repo::insert(
                        conn,
                        NewAirportRow {
                            code: code.as_str(),
                            runways,
                            takeoffs_per_hour,
                            created_at: now,
                            updated_at: now,
                        },
                    )
                    .await?
                    .map(Upserted::Created),
                    Some(row)
                        if row.runways == runways && row.takeoffs_per_hour == takeoffs_per_hour =>
                    {
                        Some(Upserted::Updated(row))
                    }
                    Some(_) => Some(Upserted::Updated(
                        repo::replace(conn, code.as_str(), runways, takeoffs_per_hour, now).await?,
                    )),
                })
            })
            .await?;
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
    }
    Err(AppError::Conflict(
        "The airport is being changed by others; retry.",
    ))
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
    conn.transaction::<_, AppError, _>(async |conn| {
        let Some(current) = repo::lock(conn, code.as_str()).await? else {
            return Ok(None);
        };
        if !preconditions.allow(Some(&etag_of(current.version, current.updated_at))) {
            return Err(AppError::PreconditionFailed);
        }
        Ok(Some(repo::delete(conn, code.as_str()).await?))
    })
    .await
}
