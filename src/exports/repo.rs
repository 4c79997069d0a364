//! `operations` and `export_chunks` queries.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{Operation, OperationStatus};
use crate::{
    db::schema::{export_chunks, operations, posts},
    error::AppResult,
};

pub async fn insert(conn: &mut AsyncPgConnection, op: &Operation) -> AppResult<()> {
    diesel::insert_into(operations::table)
        .values((
            operations::id.eq(op.id),
            operations::kind.eq(&op.kind),
            operations::owner_id.eq(op.owner_id),
            operations::api_version.eq(&op.api_version),
            operations::status.eq(op.status.as_str()),
            operations::percent_complete.eq(op.percent_complete),
            operations::created_at.eq(op.created_at),
            operations::updated_at.eq(op.updated_at),
            operations::expires_at.eq(op.expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> AppResult<Option<Operation>> {
    Ok(operations::table
        .find(id)
        .select(Operation::as_select())
        .first(conn)
        .await
        .optional()?)
}

const UNFINISHED: [&str; 2] = ["notStarted", "running"];

/// Makes job run `run` the owner of an unfinished operation (status `running`, progress 0);
/// `None` when it is finished, gone, or a later run already owns it.
pub async fn start_run(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    run: i32,
) -> AppResult<Option<Operation>> {
    Ok(diesel::update(
        operations::table
            .find(id)
            .filter(operations::status.eq_any(UNFINISHED))
            .filter(operations::run.lt(run)),
    )
    .set((
        operations::run.eq(run),
        operations::status.eq(OperationStatus::Running.as_str()),
        operations::percent_complete.eq(0),
        operations::updated_at.eq(Utc::now()),
    ))
    .returning(Operation::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Sets the status of an operation that is not finished yet (and, with `run`, still owned by
/// that run); `None` otherwise, so a canceled export is never marked succeeded, the reverse,
/// nor anything by a run that was taken over.
pub async fn set_status_unless_finished(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    run: Option<i32>,
    status: OperationStatus,
    percent: i32,
    result_count: Option<i64>,
    error: Option<serde_json::Value>,
) -> AppResult<Option<Operation>> {
    // One run, or (`None`) any: runs are numbered from 0.
    let (from, to) = run.map_or((0, i32::MAX), |r| (r, r));
    Ok(diesel::update(
        operations::table
            .find(id)
            .filter(operations::status.eq_any(UNFINISHED))
            .filter(operations::run.between(from, to)),
    )
    .set((
        operations::status.eq(status.as_str()),
        operations::percent_complete.eq(percent),
        operations::result_count.eq(result_count),
        operations::error.eq(error),
        operations::updated_at.eq(Utc::now()),
    ))
    .returning(Operation::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// How many posts `author` has (the export's 100 %).
pub async fn count_posts(conn: &mut AsyncPgConnection, author: Uuid) -> AppResult<i64> {
    Ok(posts::table
        .filter(posts::author_id.eq(author))
        .count()
        .get_result(conn)
        .await?)
}

/// Removes the chunks of run `run` (`None`: of every run).
pub async fn delete_chunks(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    run: Option<i32>,
) -> AppResult<usize> {
    let mut query = diesel::delete(export_chunks::table)
        .filter(export_chunks::operation_id.eq(id))
        .into_boxed();
    if let Some(run) = run {
        query = query.filter(export_chunks::run.eq(run));
    }
    Ok(query.execute(conn).await?)
}

/// Removes the chunks earlier runs left behind.
pub async fn delete_earlier_runs(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    run: i32,
) -> AppResult<usize> {
    Ok(diesel::delete(
        export_chunks::table
            .filter(export_chunks::operation_id.eq(id))
            .filter(export_chunks::run.lt(run)),
    )
    .execute(conn)
    .await?)
}

pub async fn insert_chunk(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    run: i32,
    seq: i32,
    data: &[u8],
) -> AppResult<()> {
    diesel::insert_into(export_chunks::table)
        .values((
            export_chunks::operation_id.eq(id),
            export_chunks::run.eq(run),
            export_chunks::seq.eq(seq),
            export_chunks::data.eq(data),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The chunk of run `run` after `after` (the first with `None`), in order.
pub async fn next_chunk(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    run: i32,
    after: Option<i32>,
) -> AppResult<Option<(i32, Vec<u8>)>> {
    Ok(export_chunks::table
        .filter(export_chunks::operation_id.eq(id))
        .filter(export_chunks::run.eq(run))
        .filter(export_chunks::seq.gt(after.unwrap_or(-1)))
        .order(export_chunks::seq.asc())
        .select((export_chunks::seq, export_chunks::data))
        .first(conn)
        .await
        .optional()?)
}

/// Removes operations (and, by cascade, their files) that expired before `now`.
pub async fn purge(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> AppResult<usize> {
    Ok(
        diesel::delete(operations::table.filter(operations::expires_at.lt(now)))
            .execute(conn)
            .await?,
    )
}
