//! Webhook endpoint rules: ADMIN only; URLs checked against the SSRF rules when saved; the
//! secret made here and shown once; rotation keeps the previous secret signing for 24 hours;
//! a test send records a `webhook.test` event delivered to one endpoint only.

use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::{
    model::{DeliveryRow, EndpointRow, NewEndpointRow, PREVIOUS_SECRET_GRACE},
    repo::{self, EndpointChanges},
    signing, ssrf,
};
use crate::{
    domain::preconditions::{Preconditions, etag_of},
    domain::representation::Representation,
    error::{AppError, AppResult, Resource},
    events::{
        model::{Event, EventType},
        repo as events_repo,
    },
    jobs::{
        JobKind,
        repo::{NewJob, enqueue},
    },
    security::rbac::{Actor, Permission},
    state::AppState,
};

/// A new endpoint, validated at the edge.
#[derive(Debug)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub api_version: Representation,
}

/// A merge-patch of an endpoint: `None` leaves a field alone; `Some(None)` clears the
/// description.
#[derive(Debug, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub api_version: Option<Representation>,
}

impl WebhookPatch {
    fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.event_types.is_none()
            && self.description.is_none()
            && self.enabled.is_none()
            && self.api_version.is_none()
    }
}

fn authorize(actor: &Actor) -> AppResult<()> {
    if actor.can(Permission::ManageWebhooks) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// The SSRF rules at save time. Nothing is resolved when private targets are allowed (the
/// receiver of a development setup may not be up yet).
async fn check_url(state: &AppState, url: &str) -> AppResult<()> {
    let settings = &state.settings;
    let allow_private = settings.webhook_allow_private;
    let parsed = ssrf::parse(url, settings.is_production() && !allow_private)
        .map_err(AppError::WebhookUrlForbidden)?;
    if !allow_private {
        ssrf::resolve(&parsed, false)
            .await
            .map_err(AppError::WebhookUrlForbidden)?;
    }
    Ok(())
}

fn type_names(types: &[EventType]) -> Vec<String> {
    let mut names: Vec<String> = types.iter().map(|t| t.as_str().to_string()).collect();
    names.sort();
    names.dedup();
    names
}

/// Creates an endpoint; the returned row carries the secret (shown only in this answer).
pub async fn create(state: &AppState, actor: &Actor, new: NewWebhook) -> AppResult<EndpointRow> {
    authorize(actor)?;
    check_url(state, &new.url).await?;
    let now = Utc::now();
    let row = NewEndpointRow {
        id: Uuid::now_v7(),
        url: new.url,
        description: new.description,
        event_types: type_names(&new.event_types),
        enabled: true,
        api_version: new.api_version.as_str().to_string(),
        secret: signing::new_secret(),
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.conn().await?;
    let created = repo::insert(&mut conn, &row).await?;
    tracing::info!(event = "webhooks.created", webhook.id = %created.id, by = %actor.id, "webhook endpoint created");
    Ok(created)
}

pub async fn list(
    state: &AppState,
    actor: &Actor,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<EndpointRow>> {
    authorize(actor)?;
    let mut conn = state.db.conn().await?;
    repo::list(&mut conn, before, limit).await
}

pub async fn get(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<EndpointRow> {
    authorize(actor)?;
    let mut conn = state.db.conn().await?;
    repo::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound(Resource::Webhook))
}

pub async fn patch(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    patch: WebhookPatch,
    preconditions: &Preconditions,
) -> AppResult<EndpointRow> {
    authorize(actor)?;
    if let Some(url) = &patch.url {
        // Before the transaction: resolving a name must not hold a connection.
        check_url(state, url).await?;
    }
    let changes = EndpointChanges {
        url: patch.url.clone(),
        description: patch.description.clone(),
        event_types: patch.event_types.as_deref().map(type_names),
        enabled: patch.enabled,
        api_version: patch.api_version.map(|v| v.as_str().to_string()),
    };
    let mut conn = state.db.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let current = repo::lock(conn, id)
            .await?
            .ok_or(AppError::NotFound(Resource::Webhook))?;
        if !preconditions.allow(Some(&etag_of(current.version, current.updated_at))) {
            return Err(AppError::PreconditionFailed);
        }
        if patch.is_empty() {
            return Ok(current);
        }
        repo::update(conn, id, &changes, Utc::now()).await
    })
    .await
}

/// The deleted endpoint, or `None` when there was none.
pub async fn delete(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Option<EndpointRow>> {
    authorize(actor)?;
    let mut conn = state.db.conn().await?;
    let deleted = repo::delete(&mut conn, id).await?;
    if deleted.is_some() {
        tracing::info!(event = "webhooks.deleted", webhook.id = %id, by = %actor.id, "webhook endpoint deleted");
    }
    Ok(deleted)
}

/// A new secret; the current one keeps signing for `PREVIOUS_SECRET_GRACE`.
pub async fn rotate_secret(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<String> {
    authorize(actor)?;
    let secret = signing::new_secret();
    let mut conn = state.db.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let current = repo::lock(conn, id)
            .await?
            .ok_or(AppError::NotFound(Resource::Webhook))?;
        let now = Utc::now();
        repo::rotate(conn, &current, &secret, now + PREVIOUS_SECRET_GRACE, now).await
    })
    .await?;
    tracing::info!(event = "webhooks.secret_rotated", webhook.id = %id, by = %actor.id, "webhook secret rotated");
    Ok(secret)
}

/// Records a `webhook.test` event and its delivery to this endpoint only; returns the event.
pub async fn test(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Event> {
    authorize(actor)?;
    let mut conn = state.db.conn().await?;
    let event = conn
        .transaction::<_, AppError, _>(async |conn| {
            repo::find(conn, id)
                .await?
                .ok_or(AppError::NotFound(Resource::Webhook))?;
            let event = Event {
                id: Uuid::now_v7(),
                event_type: EventType::WebhookTest,
                occurred_at: Utc::now(),
                post: None,
            };
            // Not `events::service::record`: that fans out to every subscriber.
            events_repo::insert(conn, &event).await?;
            schedule_delivery(conn, event.id, id, None).await?;
            Ok(event)
        })
        .await?;
    drop(conn);
    state.jobs_wake.wake();
    Ok(event)
}

/// Writes attempt 1 of (event, endpoint) and its delivery job, unless already written.
pub async fn schedule_delivery(
    conn: &mut diesel_async::AsyncPgConnection,
    event_id: Uuid,
    endpoint_id: Uuid,
    traceparent: Option<String>,
) -> AppResult<bool> {
    let now = Utc::now();
    if !repo::insert_pending(conn, event_id, endpoint_id, 1, now).await? {
        return Ok(false);
    }
    enqueue(
        conn,
        NewJob {
            kind: JobKind::WebhookDelivery,
            payload: serde_json::json!({ "eventId": event_id, "endpointId": endpoint_id }),
            run_at: now,
            traceparent,
        },
    )
    .await?;
    Ok(true)
}

/// An endpoint's delivery attempts, newest first.
pub async fn deliveries(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<DeliveryRow>> {
    authorize(actor)?;
    let mut conn = state.db.conn().await?;
    repo::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound(Resource::Webhook))?;
    repo::deliveries(&mut conn, id, before, limit).await
}
