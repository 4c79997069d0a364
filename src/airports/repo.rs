//! `airports` queries, ordered by code. Writers lock the row first (`lock`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::model::{AirportRow, NewAirportRow};
use crate::{db::schema::airports, error::AppResult};

pub async fn find(conn: &mut AsyncPgConnection, code: &str) -> AppResult<Option<AirportRow>> {
    Ok(airports::table
        .find(code)
        .select(AirportRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The row, locked until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, code: &str) -> AppResult<Option<AirportRow>> {
    Ok(airports::table
        .find(code)
        .select(AirportRow::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<AirportRow>> {
    let mut query = airports::table
        .select(AirportRow::as_select())
        .order(airports::code.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(airports::code.gt(after.to_string()));
    }
    Ok(query.load(conn).await?)
}

/// Inserts unless the code exists (then `None`: someone else created it first).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: NewAirportRow<'_>,
) -> AppResult<Option<AirportRow>> {
    Ok(diesel::insert_into(airports::table)
        .values(&new)
        .on_conflict_do_nothing()
        .returning(AirportRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Sets both updatable fields of a row the caller has locked.
pub async fn replace(
    conn: &mut AsyncPgConnection,
    code: &str,
    runways: i32,
    takeoffs_per_hour: Option<i32>,
    now: DateTime<Utc>,
) -> AppResult<AirportRow> {
    Ok(diesel::update(airports::table.find(code))
        .set((
            airports::runways.eq(runways),
            airports::takeoffs_per_hour.eq(takeoffs_per_hour),
            airports::version.eq(airports::version + 1),
            airports::updated_at.eq(now),
        ))
        .returning(AirportRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Deletes a row the caller has locked.
pub async fn delete(conn: &mut AsyncPgConnection, code: &str) -> AppResult<AirportRow> {
    Ok(diesel::delete(airports::table.find(code))
        .returning(AirportRow::as_returning())
        .get_result(conn)
        .await?)
}
