//! Starting, reading, cancelling and downloading exports. Owners see their own operations;
//! ADMINs (`Permission::ReadAnyExport`) see every one; to anyone else they do not exist.

use bytes::Bytes;
use chrono::Utc;
use diesel_async::AsyncConnection;
use futures_util::Stream;
use uuid::Uuid;

use super::{
    model::{Operation, OperationStatus},
    repo,
};
use crate::{
    domain::representation::Representation,
    error::{AppError, AppResult, Resource},
    jobs::{
        JobKind,
        repo::{NewJob, enqueue},
    },
    security::rbac::{Actor, Permission},
    state::AppState,
};

/// Why an operation failed, as stored in `operations.error`; the API shows it as a Problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub code: String,
    pub detail: String,
}

/// Starts an export of the caller's posts in `representation`: the operation and its job are
/// written in one transaction.
pub async fn start(
    state: &AppState,
    actor: &Actor,
    representation: Representation,
) -> AppResult<Operation> {
    let now = Utc::now();
    let retention = chrono::Duration::from_std(state.settings.operation_retention)
        .unwrap_or(chrono::Duration::MAX);
    let operation = Operation {
        id: Uuid::now_v7(),
        kind: "export".into(),
        owner_id: actor.id,
        api_version: representation.as_str().into(),
        status: OperationStatus::NotStarted,
        percent_complete: 0,
        error: None,
        result_count: None,
        run: 0,
        created_at: now,
        updated_at: now,
        expires_at: now + retention,
    };
    {
        let mut conn = state.db.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            repo::insert(conn, &operation).await?;
            enqueue(
                conn,
                NewJob {
                    kind: JobKind::Export,
                    payload: serde_json::json!({ "operationId": operation.id }),
                    run_at: now,
                    traceparent: crate::telemetry::trace::current_traceparent(),
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    }
    state.jobs_wake.wake();
    Ok(operation)
}

fn visible(actor: &Actor, operation: &Operation) -> bool {
    actor.owns_or_can(operation.owner_id, Permission::ReadAnyExport)
}

async fn find_visible(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Option<Operation>> {
    let mut conn = state.db.conn().await?;
    Ok(repo::find(&mut conn, id)
        .await?
        .filter(|op| visible(actor, op) && op.expires_at > Utc::now()))
}

pub async fn get(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Operation> {
    find_visible(state, actor, id)
        .await?
        .ok_or(AppError::NotFound(Resource::Operation))
}

/// Cancels an unfinished operation; a finished one is answered as it is. `None` when there is
/// no such operation (for the caller).
pub async fn cancel(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Option<Operation>> {
    let Some(operation) = find_visible(state, actor, id).await? else {
        return Ok(None);
    };
    if operation.status.is_finished() {
        return Ok(Some(operation));
    }
    let mut conn = state.db.conn().await?;
    let canceled = repo::set_status_unless_finished(
        &mut conn,
        id,
        None,
        OperationStatus::Canceled,
        operation.percent_complete,
        None,
        None,
    )
    .await?;
    match canceled {
        Some(op) => Ok(Some(op)),
        // It finished meanwhile: answer what it became.
        None => Ok(repo::find(&mut conn, id).await?),
    }
}

/// The file of a succeeded export, chunk by chunk (one chunk in memory at a time; a pooled
/// connection only while a chunk is read).
pub async fn file(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
) -> AppResult<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let operation = get(state, actor, id).await?;
    if operation.status != OperationStatus::Succeeded {
        return Err(AppError::OperationNotFinished);
    }
    let state = state.clone();
    let run = operation.run;
    Ok(futures_util::stream::unfold(
        Some(None::<i32>),
        move |cursor| {
            let state = state.clone();
            async move {
                let after = cursor?;
                let next = async {
                    let mut conn = state.db.conn().await?;
                    repo::next_chunk(&mut conn, id, run, after).await
                }
                .await;
                match next {
                    Ok(Some((seq, data))) => Some((Ok(Bytes::from(data)), Some(Some(seq)))),
                    Ok(None) => None,
                    Err(err) => {
                        tracing::warn!(operation.id = %id, error = %err.chain(), "export download failed mid-stream");
                        Some((Err(std::io::Error::other(err.to_string())), None))
                    }
                }
            }
        },
    ))
}
