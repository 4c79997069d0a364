//! `jobs` queries. See `jobs` (mod.rs) for the invariants they keep.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Int4, Int8, Interval, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Job, JobKind};
use crate::{db::schema::jobs, error::AppResult};

/// A job to write in the caller's transaction.
pub struct NewJob {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// Not before this (now, for most jobs).
    pub run_at: DateTime<Utc>,
    pub traceparent: Option<String>,
}

/// Writes a job on `conn`, which should be inside the transaction of the change that causes
/// it. Returns its id.
pub async fn enqueue(conn: &mut AsyncPgConnection, job: NewJob) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    diesel::insert_into(jobs::table)
        .values((
            jobs::id.eq(id),
            jobs::kind.eq(job.kind.as_str()),
            jobs::payload.eq(job.payload),
            jobs::run_at.eq(job.run_at),
            jobs::traceparent.eq(job.traceparent),
            jobs::created_at.eq(now),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    payload: serde_json::Value,
    #[diesel(sql_type = Int4)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

fn interval(duration: Duration) -> diesel::pg::data_types::PgInterval {
    diesel::pg::data_types::PgInterval::from_microseconds(
        i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    )
}

/// Claims up to `limit` due jobs for `worker` with a lease of `lease`: queued ones whose time
/// has come (oldest first, along `jobs_due`), and running ones whose lease ran out (their worker
/// died; along `jobs_leased`). Each branch reads only its own index.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    lease: Duration,
    limit: i64,
) -> AppResult<Vec<Job>> {
    let rows: Vec<ClaimedRow> = diesel::sql_query(
        "WITH expired AS ( \
             SELECT id FROM jobs WHERE state = 'running' AND locked_until < now() \
             ORDER BY locked_until LIMIT $3 FOR UPDATE SKIP LOCKED), \
         due AS ( \
             SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now() \
             ORDER BY run_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, \
             locked_until = now() + $2, updated_at = now() \
         WHERE id IN (SELECT id FROM expired UNION ALL SELECT id FROM due LIMIT $3) \
         RETURNING id, kind, payload, attempts, traceparent, created_at",
    )
    .bind::<Text, _>(worker)
    .bind::<Interval, _>(interval(lease))
    .bind::<Int8, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Job {
            id: row.id,
            kind: row.kind,
            payload: row.payload,
            attempts: row.attempts,
            traceparent: row.traceparent,
            created_at: row.created_at,
        })
        .collect())
}

/// Only the worker that holds this claim may touch the job.
macro_rules! claimed {
    ($job:expr, $worker:expr) => {
        jobs::table
            .find($job.id)
            .filter(jobs::state.eq("running"))
            .filter(jobs::locked_by.eq($worker))
            .filter(jobs::attempts.eq($job.attempts))
    };
}

/// Extends the lease of a job this worker holds; `false` when it no longer holds it.
pub async fn extend_lease(
    conn: &mut AsyncPgConnection,
    job: &Job,
    worker: &str,
    lease: Duration,
) -> AppResult<bool> {
    let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let updated = diesel::update(claimed!(job, worker))
        .set(jobs::locked_until.eq(until))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Ends a claim: `succeeded` or `failed` (kept for housekeeping), or `queued` again at
/// `retry_at`. `false` when the claim was lost (another worker took the job over).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    job: &Job,
    worker: &str,
    state: &'static str,
    retry_at: Option<DateTime<Utc>>,
    error: Option<&str>,
) -> AppResult<bool> {
    let now = Utc::now();
    let updated = diesel::update(claimed!(job, worker))
        .set((
            jobs::state.eq(state),
            jobs::run_at.eq(retry_at.unwrap_or(now)),
            jobs::locked_by.eq(None::<String>),
            jobs::locked_until.eq(None::<DateTime<Utc>>),
            jobs::last_error.eq(error),
            jobs::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Removes finished jobs last touched before `before`.
pub async fn purge_finished(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> AppResult<usize> {
    Ok(diesel::delete(
        jobs::table
            .filter(jobs::state.eq_any(["succeeded", "failed"]))
            .filter(jobs::updated_at.lt(before)),
    )
    .execute(conn)
    .await?)
}

/// How many jobs are queued or running, by kind and state (metrics; finished jobs are counted
/// as they finish, by `herald_jobs_finished_total`).
pub async fn counts(conn: &mut AsyncPgConnection) -> AppResult<Vec<(String, String, i64)>> {
    Ok(jobs::table
        .filter(jobs::state.eq_any(["queued", "running"]))
        .group_by((jobs::kind, jobs::state))
        .select((jobs::kind, jobs::state, diesel::dsl::count_star()))
        .load(conn)
        .await?)
}

/// When the oldest due, unclaimed job became due (queue age), if any.
pub async fn oldest_due(conn: &mut AsyncPgConnection) -> AppResult<Option<DateTime<Utc>>> {
    Ok(jobs::table
        .filter(jobs::state.eq("queued"))
        .filter(jobs::run_at.le(Utc::now()))
        .select(diesel::dsl::min(jobs::run_at))
        .first(conn)
        .await?)
}
