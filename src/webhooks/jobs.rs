//! The job handlers of webhooks: fan-out of an event to its endpoints, and one delivery (each
//! run is one attempt; a failed attempt re-queues the job on the retry schedule).
//!
//! Both are idempotent. Fan-out writes attempt 1 of each (event, endpoint) with
//! `ON CONFLICT DO NOTHING` and enqueues a delivery only for rows it wrote, in one transaction.
//! A delivery run acts only on the latest attempt while it is `pending`, and records its
//! result only if it still is; a run repeated after a crash may send twice (at least once),
//! never record twice. No connection is held while the receiver is called.

use std::time::Duration;

use chrono::Utc;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    delivery::{self, Attempt, Rules},
    model::{AttemptResult, AttemptStatus},
    repo, service,
    signing::signature_header,
};
use crate::{
    domain::representation::Representation,
    error::AppError,
    events::{model::EventType, repo as events_repo},
    jobs::{Job, Outcome},
    state::AppState,
};

/// The longest `Retry-After` honoured (a receiver cannot park a delivery for longer).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FanoutPayload {
    event_id: Uuid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryPayload {
    event_id: Uuid,
    endpoint_id: Uuid,
}

/// Turns one event into one delivery job per subscribed, enabled endpoint.
pub async fn fan_out(state: &AppState, job: &Job) -> Outcome {
    let Ok(payload) = serde_json::from_value::<FanoutPayload>(job.payload.clone()) else {
        return Outcome::Failed {
            error: format!("bad fan-out payload: {}", job.payload),
        };
    };
    let traceparent = job.traceparent.clone();
    let scheduled = async {
        let mut conn = state.db.conn().await?;
        conn.transaction::<_, AppError, _>(async |conn| {
            let Some(event) = events_repo::find(conn, payload.event_id).await? else {
                return Ok(0); // Purged by retention before it was fanned out.
            };
            let mut scheduled = 0;
            for endpoint in repo::subscribed(conn, event.event_type.as_str()).await? {
                if service::schedule_delivery(conn, event.id, endpoint.id, traceparent.clone())
                    .await?
                {
                    scheduled += 1;
                }
            }
            Ok(scheduled)
        })
        .await
    }
    .await;
    match scheduled {
        Ok(n) => {
            if n > 0 {
                state.jobs_wake.wake();
            }
            Outcome::Done
        }
        Err(err) => Outcome::transient(&err, job.attempts),
    }
}

/// What a delivery run needs, read in one short step.
struct Prepared {
    attempt_id: Uuid,
    attempt: i32,
    url: String,
    event_id: String,
    body: bytes::Bytes,
    signing_secrets: Vec<String>,
}

enum Step {
    Send(Box<Prepared>),
    /// Nothing to do (already delivered or given up, endpoint or event gone).
    Finished,
    /// The endpoint was disabled: the pending attempt is closed without a request.
    Disabled {
        attempt_id: Uuid,
    },
}

async fn prepare(state: &AppState, payload: &DeliveryPayload) -> Result<Step, AppError> {
    let mut conn = state.db.conn().await?;
    let Some(endpoint) = repo::find(&mut conn, payload.endpoint_id).await? else {
        return Ok(Step::Finished);
    };
    let Some(attempt) =
        repo::latest_attempt(&mut conn, payload.event_id, payload.endpoint_id).await?
    else {
        return Ok(Step::Finished);
    };
    if AttemptStatus::parse(&attempt.status) != AttemptStatus::Pending {
        return Ok(Step::Finished);
    }
    let Some(event) = events_repo::find(&mut conn, payload.event_id).await? else {
        return Ok(Step::Finished);
    };
    // A test send reaches a disabled endpoint too: it is how one checks it before enabling.
    if !endpoint.enabled && event.event_type != EventType::WebhookTest {
        return Ok(Step::Disabled {
            attempt_id: attempt.id,
        });
    }
    let representation = Representation::parse(&endpoint.api_version).unwrap_or(Representation::V1);
    let body = (state.renderers.event)(&event, representation)?;
    let now = Utc::now();
    Ok(Step::Send(Box::new(Prepared {
        attempt_id: attempt.id,
        attempt: attempt.attempt,
        url: endpoint.url.clone(),
        event_id: event.id.to_string(),
        body,
        signing_secrets: endpoint
            .signing_secrets(now)
            .into_iter()
            .map(str::to_string)
            .collect(),
    })))
}

/// One attempt of one delivery.
pub async fn deliver(state: &AppState, job: &Job) -> Outcome {
    let Ok(payload) = serde_json::from_value::<DeliveryPayload>(job.payload.clone()) else {
        return Outcome::Failed {
            error: format!("bad delivery payload: {}", job.payload),
        };
    };
    let prepared = match prepare(state, &payload).await {
        Ok(Step::Send(prepared)) => prepared,
        Ok(Step::Finished) => return Outcome::Done,
        Ok(Step::Disabled { attempt_id }) => {
            let result = AttemptResult {
                status: AttemptStatus::Failed,
                response_status: None,
                error: Some("the endpoint is disabled".into()),
                duration_ms: 0,
                next_attempt_at: None,
            };
            return match record(state, &payload, attempt_id, 0, &result, false).await {
                Ok(()) => Outcome::Done,
                Err(err) => Outcome::transient(&err, job.attempts),
            };
        }
        Err(err @ AppError::Internal { .. }) => {
            return Outcome::Failed { error: err.chain() };
        }
        Err(err) => return Outcome::transient(&err, job.attempts),
    };

    let timestamp = Utc::now().timestamp();
    let secrets: Vec<&str> = prepared
        .signing_secrets
        .iter()
        .map(String::as_str)
        .collect();
    let signature = signature_header(&secrets, &prepared.event_id, timestamp, &prepared.body);
    let settings = &state.settings;
    let rules = Rules {
        allow_private: settings.webhook_allow_private,
        https_only: settings.is_production() && !settings.webhook_allow_private,
        timeout: settings.webhook_timeout,
    };
    let sent = delivery::send(
        delivery::Request {
            url: &prepared.url,
            id: &prepared.event_id,
            timestamp,
            signature: &signature,
            body: prepared.body.clone(),
        },
        rules,
    )
    .await;

    let retry_in = next_delay(&sent, prepared.attempt, &settings.webhook_retry_schedule);
    let result = AttemptResult {
        status: if sent.succeeded() {
            AttemptStatus::Succeeded
        } else {
            AttemptStatus::Failed
        },
        response_status: sent.response_status.map(i32::from),
        error: sent.error.clone(),
        duration_ms: i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
        next_attempt_at: retry_in
            .map(|after| Utc::now() + chrono::Duration::from_std(after).unwrap_or_default()),
    };
    if let Err(err) = record(
        state,
        &payload,
        prepared.attempt_id,
        prepared.attempt,
        &result,
        sent.gone(),
    )
    .await
    {
        // The attempt stays pending: the job runs again and sends again (at least once).
        return Outcome::transient(&err, job.attempts);
    }
    if sent.gone() {
        tracing::info!(event = "webhooks.disabled", webhook.id = %payload.endpoint_id, "the receiver answered 410 Gone; endpoint disabled");
    }
    match retry_in {
        Some(after) => Outcome::RetryAfter {
            after,
            error: sent.error.unwrap_or_default(),
        },
        None if sent.succeeded() => Outcome::Done,
        None => Outcome::Failed {
            error: sent.error.unwrap_or_else(|| "delivery failed".into()),
        },
    }
}

/// When the next attempt is due after attempt `attempt` (1-based), if there is one: the
/// receiver's `Retry-After` on 429/503, else the schedule's entry for this attempt.
fn next_delay(sent: &Attempt, attempt: i32, schedule: &[Duration]) -> Option<Duration> {
    if sent.succeeded() || sent.gone() {
        return None;
    }
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let planned = *schedule.get(index)?;
    Some(sent.retry_after.map_or(planned, |d| d.min(MAX_RETRY_AFTER)))
}

/// Records an attempt's result and, when there is one, writes the next attempt as pending;
/// disables the endpoint on 410. One transaction.
async fn record(
    state: &AppState,
    payload: &DeliveryPayload,
    attempt_id: Uuid,
    attempt: i32,
    result: &AttemptResult,
    gone: bool,
) -> Result<(), AppError> {
    let mut conn = state.db.conn().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        if !repo::hold(conn, payload.endpoint_id).await? {
            return Ok(()); // The endpoint was deleted, and its delivery log with it.
        }
        if !repo::record(conn, attempt_id, result).await? {
            return Ok(()); // Recorded by another run already.
        }
        if gone {
            repo::disable(conn, payload.endpoint_id, Utc::now()).await?;
        }
        if let Some(due) = result.next_attempt_at {
            repo::insert_pending(
                conn,
                payload.event_id,
                payload.endpoint_id,
                attempt + 1,
                due,
            )
            .await?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(status: Option<u16>, retry_after: Option<u64>) -> Attempt {
        Attempt {
            response_status: status,
            error: None,
            retry_after: retry_after.map(Duration::from_secs),
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(
            next_delay(&sent(Some(500), None), 1, &schedule),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            next_delay(&sent(None, None), 2, &schedule),
            Some(Duration::from_secs(300))
        );
        assert_eq!(next_delay(&sent(Some(500), None), 3, &schedule), None);
        assert_eq!(next_delay(&sent(Some(204), None), 1, &schedule), None);
        assert_eq!(next_delay(&sent(Some(410), None), 1, &schedule), None);
        assert_eq!(
            next_delay(&sent(Some(429), Some(42)), 1, &schedule),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            next_delay(&sent(Some(503), Some(10 * 24 * 3600)), 1, &schedule),
            Some(MAX_RETRY_AFTER)
        );
    }
}
