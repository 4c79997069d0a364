//! `/v{n}/webhooks`: endpoint CRUD, secret rotation, test sends and the delivery log (ADMIN).
//! The same in every version, mounted once per version.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};
use serde::Serialize;
use uuid::Uuid;

use super::{
    model::{DeliveryRow, EndpointRow},
    service::{self, NewWebhook, WebhookPatch},
    ssrf::MAX_URL_LEN,
};
use crate::{
    domain::representation::Representation,
    domain::{
        paging::decode_uuid_cursor,
        preconditions::{Preconditions, not_modified},
        text::{DomainString, bounded_text},
    },
    events::{api::EventTypeParam, model::EventType},
    http::{
        ApiTags,
        auth::Auth,
        body::{JsonBody, MergePatch, RequestFields},
        json::JsonBytes,
        pagination::{default_limit, finish_page, page_type},
        problem::{ApiError, error_statuses},
        types::{openapi_bounded_text, openapi_string},
        version::ApiVersion,
    },
    state::AppState,
};

/// The API version whose representation an endpoint receives events in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename = "WebhookApiVersion", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum WebhookApiVersion {
    V1,
    V2,
}

impl From<WebhookApiVersion> for Representation {
    fn from(version: WebhookApiVersion) -> Self {
        match version {
            WebhookApiVersion::V1 => Self::V1,
            WebhookApiVersion::V2 => Self::V2,
        }
    }
}

impl WebhookApiVersion {
    fn of_text(text: &str) -> Self {
        match text {
            "v2" => Self::V2,
            _ => Self::V1,
        }
    }
}

/// The URL events are POSTed to: absolute `http` or `https` (https in production), at most
/// 2048 characters, not resolving to a private address unless the service allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl DomainString for WebhookUrl {
    fn parse(text: &str) -> Result<Self, String> {
        let ok = text.len() <= MAX_URL_LEN
            && reqwest::Url::parse(text)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err("must be an absolute http or https URL of at most 2048 characters".into())
        }
    }
    fn as_str(&self) -> &str {
        &self.0
    }
}

openapi_string!(WebhookUrl, "webhook_url", |schema| {
    schema.format = Some("uri");
    schema.min_length = Some(1);
    schema.max_length = Some(MAX_URL_LEN);
    schema.example = Some("https://example.com/hooks/herald".into());
});

bounded_text!(
    /// What the endpoint is for: 1–500 characters.
    #[derive(Debug)]
    WebhookDescription, 1..=500
);
openapi_bounded_text!(WebhookDescription, "webhook_description");

/// A webhook endpoint (never its secret).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// What the endpoint is for.
    #[oai(nullable)]
    pub description: Option<String>,
    /// The event types delivered to this endpoint.
    pub event_types: Vec<EventTypeParam>,
    /// Disabled endpoints receive nothing (a receiver answering 410 disables its endpoint).
    pub enabled: bool,
    pub api_version: WebhookApiVersion,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this representation, quotes included (as in the `ETag` header).
    pub etag: String,
}

impl From<&EndpointRow> for Webhook {
    fn from(row: &EndpointRow) -> Self {
        Self {
            id: row.id,
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: row.event_types().into_iter().map(Into::into).collect(),
            enabled: row.enabled,
            api_version: WebhookApiVersion::of_text(&row.api_version),
            created_at: row.created_at,
            updated_at: row.updated_at,
            etag: row.etag(),
        }
    }
}

/// A webhook endpoint just created, with its signing secret: shown only in this answer.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// What the endpoint is for.
    #[oai(nullable)]
    pub description: Option<String>,
    /// The event types delivered to this endpoint.
    pub event_types: Vec<EventTypeParam>,
    /// Disabled endpoints receive nothing (a receiver answering 410 disables its endpoint).
    pub enabled: bool,
    pub api_version: WebhookApiVersion,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The strong ETag of this representation, quotes included (as in the `ETag` header).
    pub etag: String,
    /// `whsec_` + base64 of 32 random bytes: the HMAC-SHA256 key of `webhook-signature`.
    pub secret: String,
}

impl From<&EndpointRow> for CreatedWebhook {
    fn from(row: &EndpointRow) -> Self {
        let w = Webhook::from(row);
        Self {
            id: w.id,
            url: w.url,
            description: w.description,
            event_types: w.event_types,
            enabled: w.enabled,
            api_version: w.api_version,
            created_at: w.created_at,
            updated_at: w.updated_at,
            etag: w.etag,
            secret: row.secret.clone(),
        }
    }
}

/// A new signing secret.
#[derive(Debug, Clone, Object, Serialize)]
pub struct WebhookSecret {
    /// `whsec_` + base64 of 32 random bytes. The previous secret keeps signing (a second
    /// signature) for 24 hours.
    pub secret: String,
}

/// A test send was queued.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct WebhookTestAccepted {
    /// The `webhook.test` event that will be delivered (its `webhook-id`).
    pub event_id: Uuid,
}

/// The state of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename = "WebhookDeliveryStatus", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

/// One attempt to deliver one event to the endpoint.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: Uuid,
    /// The event delivered (the `webhook-id` header).
    pub event_id: Uuid,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub status: DeliveryStatus,
    /// The receiver's HTTP status, if it answered.
    #[oai(nullable)]
    pub response_status: Option<i32>,
    /// Why the attempt failed.
    #[oai(nullable)]
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    #[oai(nullable)]
    pub duration_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// When a pending attempt is due, or when a failed one is retried; `null` when none is.
    #[oai(nullable)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            attempt: row.attempt,
            status: match row.status.as_str() {
                "succeeded" => DeliveryStatus::Succeeded,
                "failed" => DeliveryStatus::Failed,
                _ => DeliveryStatus::Pending,
            },
            response_status: row.response_status,
            error: row.error,
            duration_ms: row.duration_ms,
            created_at: row.created_at,
            next_attempt_at: row.next_attempt_at,
        }
    }
}

page_type!(
    /// A page of webhook endpoints, newest first.
    WebhookPage,
    Webhook
);

page_type!(
    /// A page of delivery attempts, newest first.
    WebhookDeliveryPage,
    WebhookDelivery
);

/// A new webhook endpoint. `apiVersion` defaults to the version of the request's path.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    /// Where to POST events: http(s); https in production.
    pub url: WebhookUrl,
    /// The event types to deliver (at least one).
    #[oai(validator(min_items = 1, max_items = 4))]
    pub event_types: Vec<EventTypeParam>,
    /// What the endpoint is for.
    pub description: Option<WebhookDescription>,
    pub api_version: Option<WebhookApiVersion>,
}

/// Changes to a webhook endpoint (JSON merge-patch): absent fields stay, `null` clears the
/// description.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookPatchRequest {
    /// A new URL, checked like a new endpoint's.
    pub url: Option<WebhookUrl>,
    /// The event types delivered to this endpoint.
    #[oai(validator(min_items = 1, max_items = 4))]
    pub event_types: Option<Vec<EventTypeParam>>,
    /// `null` clears it.
    #[oai(nullable)]
    pub description: MaybeUndefined<WebhookDescription>,
    /// Enable or disable deliveries.
    pub enabled: Option<bool>,
    pub api_version: Option<WebhookApiVersion>,
}

const WEBHOOK_READ_ONLY: &[&str] = &["id", "createdAt", "updatedAt", "etag", "secret"];

impl RequestFields for CreateWebhookRequest {
    const READ_ONLY: &'static [&'static str] = WEBHOOK_READ_ONLY;
}

impl RequestFields for WebhookPatchRequest {
    const READ_ONLY: &'static [&'static str] = WEBHOOK_READ_ONLY;
}

fn event_types(types: Vec<EventTypeParam>) -> Vec<EventType> {
    types.into_iter().map(EventType::from).collect()
}

#[derive(ApiResponse)]
pub enum CreateWebhookResponse {
    /// The endpoint was created; its secret is shown only here.
    #[oai(status = 201)]
    Created(
        JsonBytes<CreatedWebhook>,
        /// `/v{n}/webhooks/{id}`
        #[oai(header = "Location")]
        String,
        #[oai(header = "ETag")] String,
    ),
}

#[derive(ApiResponse)]
pub enum WebhookResponse {
    /// The endpoint.
    #[oai(status = 200)]
    Ok(JsonBytes<Webhook>, #[oai(header = "ETag")] String),
    /// The client's copy (`If-None-Match`) is current.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum UpdateWebhookResponse {
    /// The updated endpoint.
    #[oai(status = 200)]
    Ok(JsonBytes<Webhook>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum DeleteWebhookResponse {
    /// The endpoint was deleted; here is what it was.
    #[oai(status = 200)]
    Deleted(JsonBytes<Webhook>),
    /// No such endpoint (already deleted or never existed).
    #[oai(status = 204)]
    Absent,
}

#[derive(ApiResponse)]
pub enum WebhookListResponse {
    /// A page of endpoints.
    #[oai(status = 200)]
    Ok(JsonBytes<WebhookPage>),
}

#[derive(ApiResponse)]
pub enum RotateSecretResponse {
    /// The new secret.
    #[oai(status = 200)]
    Ok(JsonBytes<WebhookSecret>),
}

#[derive(ApiResponse)]
pub enum TestWebhookResponse {
    /// A `webhook.test` event was recorded and will be delivered to this endpoint only.
    #[oai(status = 202)]
    Accepted(JsonBytes<WebhookTestAccepted>),
}

#[derive(ApiResponse)]
pub enum DeliveryListResponse {
    /// A page of delivery attempts.
    #[oai(status = 200)]
    Ok(JsonBytes<WebhookDeliveryPage>),
}

error_statuses!(CreateWebhookErrors: 400, 401, 403, 408, 411, 413, 415, 429);
error_statuses!(ListWebhooksErrors: 400, 401, 403, 429);
error_statuses!(GetWebhookErrors: 400, 401, 403, 404, 429);
error_statuses!(UpdateWebhookErrors: 400, 401, 403, 404, 408, 411, 412, 413, 415, 429);
error_statuses!(DeleteWebhookErrors: 400, 401, 403, 429);
error_statuses!(WebhookActionErrors: 400, 401, 403, 404, 411, 429);
error_statuses!(ListDeliveriesErrors: 400, 401, 403, 404, 429);

/// Mounted once per API version (`V::PREFIX`); the same in every version.
pub struct WebhooksApi<V>(PhantomData<V>);

impl<V> Default for WebhooksApi<V> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[OpenApi(tag = "ApiTags::Webhooks", prefix_path = V::PREFIX)]
impl<V: ApiVersion> WebhooksApi<V> {
    /// Create a webhook endpoint
    ///
    /// ADMIN only. The answer carries the signing secret, shown only here. The URL is refused
    /// (400 `WEBHOOK_URL_FORBIDDEN`) when it is not https in production or resolves to a
    /// loopback, private, link-local or metadata address (unless `WEBHOOK_ALLOW_PRIVATE`).
    #[oai(path = "/webhooks", method = "post", operation_id = "create_webhook")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        body: JsonBody<CreateWebhookRequest>,
    ) -> Result<CreateWebhookResponse, ApiError<CreateWebhookErrors>> {
        let request = body.0;
        let row = service::create(
            &state,
            &auth.actor(),
            NewWebhook {
                url: request.url.0,
                event_types: event_types(request.event_types),
                description: request.description.map(WebhookDescription::into_inner),
                api_version: request.api_version.map_or_else(
                    || Representation::parse(V::NAME).unwrap_or(Representation::V1),
                    Representation::from,
                ),
            },
        )
        .await?;
        Ok(CreateWebhookResponse::Created(
            JsonBytes::new(&CreatedWebhook::from(&row))?,
            format!("{}/webhooks/{}", V::PREFIX, row.id),
            row.etag(),
        ))
    }

    /// List webhook endpoints
    ///
    /// ADMIN only. Newest first, cursor-paginated.
    #[oai(path = "/webhooks", method = "get", operation_id = "list_webhooks")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// Page size (1–100).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Opaque cursor from a previous page's `nextLink`.
        #[oai(validator(min_length = 1, max_length = 512))]
        cursor: Query<Option<String>>,
    ) -> Result<WebhookListResponse, ApiError<ListWebhooksErrors>> {
        let before = decode_uuid_cursor("webhook", cursor.0.as_deref())?;
        let rows = service::list(&state, &auth.actor(), before, i64::from(limit.0) + 1).await?;
        let (rows, next_link) = finish_page(
            rows,
            limit.0,
            "webhook",
            &format!("{}/webhooks", V::PREFIX),
            &[],
            |w| w.id.to_string(),
        );
        let page = WebhookPage {
            data: rows.iter().map(Webhook::from).collect(),
            next_link,
        };
        Ok(WebhookListResponse::Ok(JsonBytes::new(&page)?))
    }

    /// Get a webhook endpoint
    ///
    /// ADMIN only. Never shows the secret.
    #[oai(path = "/webhooks/:id", method = "get", operation_id = "get_webhook")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The endpoint's id.
        id: Path<Uuid>,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<WebhookResponse, ApiError<GetWebhookErrors>> {
        let row = service::get(&state, &auth.actor(), id.0).await?;
        let etag = row.etag();
        if not_modified(if_none_match.0.as_deref(), &etag) {
            return Ok(WebhookResponse::NotModified(etag));
        }
        Ok(WebhookResponse::Ok(
            JsonBytes::new(&Webhook::from(&row))?,
            etag,
        ))
    }

    /// Update a webhook endpoint
    ///
    /// ADMIN only. JSON merge-patch of `url`, `eventTypes`, `description`, `enabled` and
    /// `apiVersion`; with `If-Match`, only to that version (412 otherwise).
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        operation_id = "update_webhook"
    )]
    async fn patch(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The endpoint's id.
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: MergePatch<WebhookPatchRequest>,
    ) -> Result<UpdateWebhookResponse, ApiError<UpdateWebhookErrors>> {
        let request = body.0;
        let patch = WebhookPatch {
            url: request.url.map(|u| u.0),
            event_types: request.event_types.map(event_types),
            description: match request.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d.into_inner())),
            },
            enabled: request.enabled,
            api_version: request.api_version.map(Representation::from),
        };
        let row = service::patch(
            &state,
            &auth.actor(),
            id.0,
            patch,
            &Preconditions::if_match(if_match.0),
        )
        .await?;
        Ok(UpdateWebhookResponse::Ok(
            JsonBytes::new(&Webhook::from(&row))?,
            row.etag(),
        ))
    }

    /// Delete a webhook endpoint
    ///
    /// ADMIN only. Answers the deleted endpoint, or 204 when there is none, so a retried
    /// DELETE never sees 404. Its delivery log goes with it.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "delete_webhook"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The endpoint's id.
        id: Path<Uuid>,
    ) -> Result<DeleteWebhookResponse, ApiError<DeleteWebhookErrors>> {
        match service::delete(&state, &auth.actor(), id.0).await? {
            Some(row) => Ok(DeleteWebhookResponse::Deleted(JsonBytes::new(
                &Webhook::from(&row),
            )?)),
            None => Ok(DeleteWebhookResponse::Absent),
        }
    }

    /// Rotate a webhook endpoint's secret
    ///
    /// ADMIN only. Answers the new secret; for 24 hours deliveries carry two signatures, one
    /// with the new secret and one with the previous.
    #[oai(
        path = "/webhooks/:id/rotate-secret",
        method = "post",
        operation_id = "rotate_webhook_secret"
    )]
    async fn rotate_secret(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The endpoint's id.
        id: Path<Uuid>,
    ) -> Result<RotateSecretResponse, ApiError<WebhookActionErrors>> {
        let secret = service::rotate_secret(&state, &auth.actor(), id.0).await?;
        Ok(RotateSecretResponse::Ok(JsonBytes::new(&WebhookSecret {
            secret,
        })?))
    }

    /// Send a test event
    ///
    /// ADMIN only. Records a `webhook.test` event and delivers it to this endpoint only (even
    /// when disabled), like any other delivery.
    #[oai(
        path = "/webhooks/:id/test",
        method = "post",
        operation_id = "test_webhook"
    )]
    async fn test(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The endpoint's id.
        id: Path<Uuid>,
    ) -> Result<TestWebhookResponse, ApiError<WebhookActionErrors>> {
        let event = service::test(&state, &auth.actor(), id.0).await?;
        Ok(TestWebhookResponse::Accepted(JsonBytes::new(
            &WebhookTestAccepted { event_id: event.id },
        )?))
    }

    /// List a webhook endpoint's deliveries
    ///
    /// ADMIN only. One entry per attempt, newest first, cursor-paginated.
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
    async fn deliveries(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The endpoint's id.
        id: Path<Uuid>,
        /// Page size (1–100).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u32>,
        /// Opaque cursor from a previous page's `nextLink`.
        #[oai(validator(min_length = 1, max_length = 512))]
        cursor: Query<Option<String>>,
    ) -> Result<DeliveryListResponse, ApiError<ListDeliveriesErrors>> {
        let before = decode_uuid_cursor("webhook_delivery", cursor.0.as_deref())?;
        let rows = service::deliveries(&state, &auth.actor(), id.0, before, i64::from(limit.0) + 1)
            .await?;
        let (rows, next_link) = finish_page(
            rows,
            limit.0,
            "webhook_delivery",
            &format!("{}/webhooks/{}/deliveries", V::PREFIX, id.0),
            &[],
            |d| d.id.to_string(),
        );
        let page = WebhookDeliveryPage {
            data: rows.into_iter().map(WebhookDelivery::from).collect(),
            next_link,
        };
        Ok(DeliveryListResponse::Ok(JsonBytes::new(&page)?))
    }
}
