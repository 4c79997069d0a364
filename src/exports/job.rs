//! The export job: writes the owner's posts, oldest first, in keyset batches, as NDJSON chunks.
//! Each run of the job (a claim: `job.attempts`) owns the file through `operations.run`; a run
//! that was taken over finds it no longer owns the operation and removes what it wrote.

use uuid::Uuid;

use super::{model::OperationStatus, repo, service::Failure};
use crate::{
    domain::representation::Representation,
    error::{AppError, AppResult},
    jobs::{Job, Outcome},
    posts,
    state::AppState,
};

/// Posts read per query (bounds memory with the chunk size).
const BATCH: i64 = 500;
/// A chunk is written once this many bytes are buffered.
const CHUNK_BYTES: usize = 256 * 1024;
/// Runs (crashes included: a run that never returned counts) before an export fails.
const MAX_ATTEMPTS: i32 = 3;

pub async fn run(state: &AppState, job: &Job) -> Outcome {
    let Some(id) = job
        .payload
        .get("operationId")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<Uuid>().ok())
    else {
        return Outcome::Failed {
            error: format!("export job {} has no operationId", job.id),
        };
    };
    if job.attempts > MAX_ATTEMPTS {
        // Earlier runs died without returning (killed, out of memory): give up.
        return give_up(state, id, job, "its runs kept dying".into()).await;
    }
    match export(state, id, job.attempts).await {
        Ok(()) => Outcome::Done,
        Err(err) if job.attempts < MAX_ATTEMPTS => Outcome::transient(&err, job.attempts),
        Err(err) => give_up(state, id, job, err.chain()).await,
    }
}

/// Marks the operation failed (its file removed); retried later if even that cannot be done,
/// so the operation never stays `running` until it expires.
async fn give_up(state: &AppState, id: Uuid, job: &Job, error: String) -> Outcome {
    tracing::error!(operation.id = %id, error, "export failed for good");
    let failure = Failure {
        code: "INTERNAL_ERROR".into(),
        detail: "The export failed; it can be started again.".into(),
    };
    let recorded = async {
        let mut conn = state.db.conn().await?;
        let stored = serde_json::to_value(&failure)
            .map_err(|e| AppError::internal_from("storing a failure", e))?;
        repo::set_status_unless_finished(
            &mut conn,
            id,
            None,
            OperationStatus::Failed,
            0,
            None,
            Some(stored),
        )
        .await?;
        repo::delete_chunks(&mut conn, id, None).await
    }
    .await;
    match recorded {
        Ok(_) => Outcome::Failed { error },
        Err(err) => Outcome::transient(&err, job.attempts),
    }
}

/// Writes the file as run `run`. Returns early, removing what it wrote, when the operation was
/// canceled or another run took it over.
async fn export(state: &AppState, id: Uuid, run: i32) -> AppResult<()> {
    let mut conn = state.db.conn().await?;
    let Some(operation) = repo::start_run(&mut conn, id, run).await? else {
        return Ok(()); // finished, canceled, purged, or a later run owns it
    };
    let representation = Representation::parse(&operation.api_version).ok_or_else(|| {
        AppError::internal(format!(
            "export in unknown version {:?}",
            operation.api_version
        ))
    })?;
    repo::delete_earlier_runs(&mut conn, id, run).await?;
    let total = repo::count_posts(&mut conn, operation.owner_id).await?;
    drop(conn);

    let mut buffer = Vec::with_capacity(CHUNK_BYTES + 8 * 1024);
    let mut seq = 0;
    let mut written: i64 = 0;
    let mut after = None;
    loop {
        let mut conn = state.db.conn().await?;
        let batch = posts::repo::by_author(&mut conn, operation.owner_id, after, BATCH).await?;
        for post in &batch {
            buffer.extend_from_slice(&(state.renderers.post)(post, representation)?);
            buffer.push(b'\n');
            if buffer.len() >= CHUNK_BYTES {
                repo::insert_chunk(&mut conn, id, run, seq, &buffer).await?;
                seq += 1;
                buffer.clear();
            }
        }
        written += batch.len() as i64;
        after = batch.last().map(|p| p.id);
        let percent = (written * 100).checked_div(total).unwrap_or(0).clamp(0, 99) as i32;
        // Progress, and the ownership and cancel check in one step.
        let still_mine = repo::set_status_unless_finished(
            &mut conn,
            id,
            Some(run),
            OperationStatus::Running,
            percent,
            None,
            None,
        )
        .await?
        .is_some();
        if !still_mine {
            repo::delete_chunks(&mut conn, id, Some(run)).await?;
            return Ok(());
        }
        if (batch.len() as i64) < BATCH {
            break;
        }
    }
    let mut conn = state.db.conn().await?;
    if !buffer.is_empty() {
        repo::insert_chunk(&mut conn, id, run, seq, &buffer).await?;
    }
    let finished = repo::set_status_unless_finished(
        &mut conn,
        id,
        Some(run),
        OperationStatus::Succeeded,
        100,
        Some(written),
        None,
    )
    .await?;
    if finished.is_none() {
        repo::delete_chunks(&mut conn, id, Some(run)).await?;
        return Ok(());
    }
    tracing::info!(operation.id = %id, posts = written, "export written");
    Ok(())
}
