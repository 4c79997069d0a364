//! `/v{n}/exports` and `/v{n}/operations`: start an export (202 + `Operation-Location`), poll
//! it, cancel it, download its NDJSON file. The same in every version, except that the file is
//! written in the representation of the version that started it.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::{Body, web::Data};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Header, param::Path};
use serde::Serialize;
use uuid::Uuid;

use super::{
    model::{Operation, OperationStatus},
    service::{self, Failure},
};
use crate::{
    domain::representation::Representation,
    error::AppError,
    http::{
        ApiTags,
        auth::Auth,
        body::{JsonBody, RequestFields},
        idempotency::{IdempotencyKey, idempotent},
        json::JsonBytes,
        ndjson::Ndjson,
        problem::{ApiError, Problem, ProblemBody, error_statuses},
        version::ApiVersion,
    },
    state::AppState,
};

/// How long a client should wait before polling an unfinished operation again.
const POLL_AFTER_SECONDS: u64 = 1;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One post a line, as JSON.
    Ndjson,
}

/// What to export: every post the caller authored, drafts included.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ExportRequest {
    pub format: ExportFormat,
}

impl RequestFields for ExportRequest {
    const READ_ONLY: &'static [&'static str] = &[];
}

/// What kind of work an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    Export,
}

/// Where an operation is: `notStarted` → `running` → `succeeded`, `failed` or `canceled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename = "OperationStatus", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub enum Status {
    NotStarted,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl From<OperationStatus> for Status {
    fn from(status: OperationStatus) -> Self {
        match status {
            OperationStatus::NotStarted => Self::NotStarted,
            OperationStatus::Running => Self::Running,
            OperationStatus::Succeeded => Self::Succeeded,
            OperationStatus::Failed => Self::Failed,
            OperationStatus::Canceled => Self::Canceled,
        }
    }
}

/// What a succeeded export produced.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    /// Where to download the file (`GET`, with the same credentials).
    pub file_url: String,
    /// How many posts the file holds.
    pub count: i64,
}

/// A long-running operation. Kept for 24 hours after it was created.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Operation", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct OperationBody {
    /// The operation's id.
    pub id: Uuid,
    pub kind: OperationKind,
    pub status: Status,
    /// 0–100; 100 once succeeded.
    pub percent_complete: i32,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When its status or progress last changed.
    pub updated_at: DateTime<Utc>,
    /// Why it failed; `null` unless `status` is `failed`.
    #[oai(nullable)]
    pub error: Option<ProblemBody>,
    /// The file; `null` until `status` is `succeeded`.
    #[oai(nullable)]
    pub result: Option<OperationResult>,
}

impl OperationBody {
    fn of(operation: &Operation) -> Self {
        let instance = format!("/{}/operations/{}", operation.api_version, operation.id);
        let error = operation
            .error
            .clone()
            .and_then(|e| serde_json::from_value::<Failure>(e).ok())
            .map(|failure| {
                Problem::new(
                    poem::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    failure.detail,
                )
                .body(&operation.id.to_string(), &instance)
            });
        let result = (operation.status == OperationStatus::Succeeded).then(|| OperationResult {
            file_url: format!("/{}/exports/{}/file", operation.api_version, operation.id),
            count: operation.result_count.unwrap_or(0),
        });
        Self {
            id: operation.id,
            kind: OperationKind::Export,
            status: operation.status.into(),
            percent_complete: operation.percent_complete,
            created_at: operation.created_at,
            updated_at: operation.updated_at,
            error,
            result,
        }
    }
}

fn retry_after(operation: &Operation) -> Option<u64> {
    (!operation.status.is_finished()).then_some(POLL_AFTER_SECONDS)
}

#[derive(ApiResponse)]
pub enum StartExportResponse {
    /// The export is queued; poll `Operation-Location`.
    #[oai(status = 202)]
    Accepted(
        JsonBytes<OperationBody>,
        /// `/v{n}/operations/{id}`: poll it.
        #[oai(header = "Operation-Location")]
        String,
        /// Seconds to wait before polling.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

#[derive(ApiResponse)]
pub enum OperationResponse {
    /// The operation.
    #[oai(status = 200)]
    Ok(
        JsonBytes<OperationBody>,
        /// Seconds to wait before polling again; absent once the operation is finished.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
}

#[derive(ApiResponse)]
pub enum CancelOperationResponse {
    /// Canceled (or already finished: it is returned as it is).
    #[oai(status = 200)]
    Ok(JsonBytes<OperationBody>),
    /// No such operation.
    #[oai(status = 204)]
    Absent,
}

#[derive(ApiResponse)]
pub enum ExportFileResponse {
    /// The file: one post a line, in the representation of the version that started the export.
    #[oai(status = 200)]
    Ok(Ndjson),
}

error_statuses!(StartExportErrors: 400, 401, 408, 409, 411, 413, 415, 422, 429);
error_statuses!(GetOperationErrors: 400, 401, 404, 429);
error_statuses!(CancelOperationErrors: 400, 401, 429);
error_statuses!(ExportFileErrors: 400, 401, 404, 409, 429);

/// Mounted once per API version.
pub struct ExportsApi<V>(PhantomData<V>);

impl<V> Default for ExportsApi<V> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn representation<V: ApiVersion>() -> Result<Representation, AppError> {
    Representation::parse(V::NAME)
        .ok_or_else(|| AppError::internal(format!("no representation for {}", V::NAME)))
}

#[OpenApi(tag = "ApiTags::Exports", prefix_path = V::PREFIX)]
impl<V: ApiVersion> ExportsApi<V> {
    /// Start an export
    ///
    /// Exports every post the caller authored, drafts included, to an NDJSON file in this
    /// version's representation. Answers at once with the operation to poll. With an
    /// `Idempotency-Key`, a retry gets the same operation instead of a second export.
    #[oai(
        path = "/exports",
        method = "post",
        operation_id = "create_export",
        transform = "idempotent"
    )]
    async fn start(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Makes retries safe: 1–255 visible ASCII characters, remembered for 24 hours per user.
        #[oai(name = "Idempotency-Key")]
        _idempotency_key: Header<Option<IdempotencyKey>>,
        body: JsonBody<ExportRequest>,
    ) -> Result<StartExportResponse, ApiError<StartExportErrors>> {
        let ExportFormat::Ndjson = body.0.format;
        let operation = service::start(&state, &auth.actor(), representation::<V>()?).await?;
        Ok(StartExportResponse::Accepted(
            JsonBytes::new(&OperationBody::of(&operation))?,
            format!("{}/operations/{}", V::PREFIX, operation.id),
            POLL_AFTER_SECONDS,
        ))
    }

    /// Get an operation
    ///
    /// Its owner or an ADMIN. Poll it after `Retry-After` seconds until `status` is
    /// `succeeded`, `failed` or `canceled`.
    #[oai(
        path = "/operations/:id",
        method = "get",
        operation_id = "get_operation"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The operation's id.
        id: Path<Uuid>,
    ) -> Result<OperationResponse, ApiError<GetOperationErrors>> {
        let operation = service::get(&state, &auth.actor(), id.0).await?;
        Ok(OperationResponse::Ok(
            JsonBytes::new(&OperationBody::of(&operation))?,
            retry_after(&operation),
        ))
    }

    /// Cancel an operation
    ///
    /// Its owner or an ADMIN. A running operation stops and its partial file is removed; a
    /// finished one is answered as it is; 204 when there is none.
    #[oai(
        path = "/operations/:id",
        method = "delete",
        operation_id = "cancel_operation"
    )]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The operation's id.
        id: Path<Uuid>,
    ) -> Result<CancelOperationResponse, ApiError<CancelOperationErrors>> {
        match service::cancel(&state, &auth.actor(), id.0).await? {
            Some(operation) => Ok(CancelOperationResponse::Ok(JsonBytes::new(
                &OperationBody::of(&operation),
            )?)),
            None => Ok(CancelOperationResponse::Absent),
        }
    }

    /// Download an export
    ///
    /// Its owner or an ADMIN, once the export succeeded (409 `OPERATION_NOT_FINISHED` before).
    /// Streamed: `application/x-ndjson`, one post a line.
    #[oai(
        path = "/exports/:id/file",
        method = "get",
        operation_id = "get_export_file"
    )]
    async fn file(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The export operation's id.
        id: Path<Uuid>,
    ) -> Result<ExportFileResponse, ApiError<ExportFileErrors>> {
        let stream = service::file(&state, &auth.actor(), id.0).await?;
        Ok(ExportFileResponse::Ok(Ndjson(Body::from_bytes_stream(
            stream,
        ))))
    }
}
