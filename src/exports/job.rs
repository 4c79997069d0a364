//! The export job: writes the owner's posts, oldest first, in keyset batches, as NDJSON chunks.

use uuid::Uuid;

use super::{model::OperationStatus, repo, service::Failure};
use crate::{
    error::{AppError, AppResult},
    events::service::Representation,
    jobs::{Job, Outcome},
    posts::{self, service::PostView},
    state::AppState,
};

/// Posts read per query (bounds memory with the chunk size).
const BATCH: i64 = 500;
/// A chunk is written once this many bytes are buffered.
const CHUNK_BYTES: usize = 256 * 1024;
/// Runs (crashes included) before an export is marked failed.
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
    match export(state, id).await {
        Ok(()) => Outcome::Done,
        Err(err) if job.attempts < MAX_ATTEMPTS => Outcome::transient(&err, job.attempts),
        Err(err) => {
            tracing::error!(operation.id = %id, error = %err.chain(), "export failed for good");
            let failure = Failure {
                code: "INTERNAL_ERROR".into(),
                detail: "The export failed; it can be started again.".into(),
            };
            let stored = serde_json::to_value(&failure).ok();
            if let Ok(mut conn) = state.db.conn().await {
                let _ = repo::set_status_unless_finished(
                    &mut conn,
                    id,
                    OperationStatus::Failed,
                    0,
                    None,
                    stored,
                )
                .await;
                let _ = repo::delete_chunks(&mut conn, id).await;
            }
            Outcome::Failed { error: err.chain() }
        }
    }
}

fn render(representation: Representation, post: &posts::model::Post) -> AppResult<bytes::Bytes> {
    match representation {
        Representation::V1 => posts::v1::ViewV1::render_post(post),
        Representation::V2 => posts::v2::ViewV2::render_post(post),
    }
}

/// Writes the file from the start (chunks of an earlier, interrupted run are removed first).
/// Returns early, removing what it wrote, when the operation was canceled.
async fn export(state: &AppState, id: Uuid) -> AppResult<()> {
    let mut conn = state.db.conn().await?;
    let Some(operation) = repo::find(&mut conn, id).await? else {
        return Ok(()); // purged
    };
    if operation.status.is_finished() {
        return Ok(());
    }
    let representation = Representation::parse(&operation.api_version).ok_or_else(|| {
        AppError::internal(format!(
            "export in unknown version {:?}",
            operation.api_version
        ))
    })?;
    repo::delete_chunks(&mut conn, id).await?;
    let total = repo::count_posts(&mut conn, operation.owner_id).await?;
    if repo::set_status_unless_finished(&mut conn, id, OperationStatus::Running, 0, None, None)
        .await?
        .is_none()
    {
        return Ok(()); // canceled before it started
    }
    drop(conn);

    let mut buffer = Vec::with_capacity(CHUNK_BYTES + 8 * 1024);
    let mut seq = 0;
    let mut written: i64 = 0;
    let mut after = None;
    loop {
        let mut conn = state.db.conn().await?;
        let batch = posts::repo::by_author(&mut conn, operation.owner_id, after, BATCH).await?;
        for post in &batch {
            buffer.extend_from_slice(&render(representation, post)?);
            buffer.push(b'\n');
            if buffer.len() >= CHUNK_BYTES {
                repo::insert_chunk(&mut conn, id, seq, &buffer).await?;
                seq += 1;
                buffer.clear();
            }
        }
        written += batch.len() as i64;
        after = batch.last().map(|p| p.id);
        let percent = (written * 100).checked_div(total).unwrap_or(0).clamp(0, 99) as i32;
        // Progress, and the cancel check: a canceled operation is not updated.
        let still_running = repo::set_status_unless_finished(
            &mut conn,
            id,
            OperationStatus::Running,
            percent,
            None,
            None,
        )
        .await?
        .is_some();
        if !still_running {
            repo::delete_chunks(&mut conn, id).await?;
            return Ok(());
        }
        if (batch.len() as i64) < BATCH {
            break;
        }
    }
    let mut conn = state.db.conn().await?;
    if !buffer.is_empty() {
        repo::insert_chunk(&mut conn, id, seq, &buffer).await?;
    }
    let finished = repo::set_status_unless_finished(
        &mut conn,
        id,
        OperationStatus::Succeeded,
        100,
        Some(written),
        None,
    )
    .await?;
    if finished.is_none() {
        repo::delete_chunks(&mut conn, id).await?;
    }
    tracing::info!(operation.id = %id, posts = written, "export written");
    Ok(())
}
