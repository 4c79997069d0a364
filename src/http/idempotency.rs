//! `Idempotency-Key` for POST, with Stripe's semantics: the first request with a key runs and
//! its response is stored (PostgreSQL, per user, 24 hours); a retry with the same key and body
//! gets those bytes again with `Idempotent-Replayed: true`; the same key with another body is
//! 422 `IDEMPOTENCY_KEY_REUSED`; a retry while the first still runs is 409
//! `IDEMPOTENCY_KEY_IN_PROGRESS`. Only successful (2xx) responses are stored: after an error
//! the key is released, so the client can fix and retry with the same key.
//!
//! Adopting it is one line on an operation: `#[oai(..., transform = "idempotent")]`.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use poem::{
    Body, Endpoint, IntoResponse, Request, Response,
    http::{HeaderName, HeaderValue, StatusCode},
};
use sha2::{Digest, Sha256};

use super::{
    body::read_limited,
    edge::{Bearer, RequestContext},
    problem::{FieldError, Problem},
    types::{DomainString, openapi_string},
};
use crate::{error::AppError, idempotency::repo, state::AppState};

pub const HEADER: &str = "idempotency-key";
/// How long a stored response is replayed.
const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an owner may take before its key counts as abandoned (a crash mid-request).
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// Response headers stored and replayed with the body.
const REPLAYED_HEADERS: &[&str] = &["content-type", "location", "etag"];

/// 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl DomainString for IdempotencyKey {
    fn parse(text: &str) -> Result<Self, String> {
        if (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(text.to_string()))
        } else {
            Err("must be 1 to 255 visible ASCII characters".into())
        }
    }
    fn as_str(&self) -> &str {
        &self.0
    }
}

openapi_string!(IdempotencyKey, "idempotency_key", |schema| {
    schema.min_length = Some(1);
    schema.max_length = Some(255);
    schema.pattern = Some("^[\\x21-\\x7E]{1,255}$".into());
});

/// The `transform` for an idempotent operation.
pub fn idempotent<E: Endpoint>(inner: E) -> Idempotent<E> {
    Idempotent { inner }
}

pub struct Idempotent<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for Idempotent<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some(raw_key) = req.headers().get(HEADER) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let key = raw_key
            .to_str()
            .map_err(|_| "not visible ASCII".to_string())
            .and_then(IdempotencyKey::parse)
            .map_err(|reason| {
                Problem::bad_request("INVALID_PARAMETER", "Invalid `Idempotency-Key` header.")
                    .with_errors(vec![FieldError::new("Idempotency-Key", reason)])
            })?;
        let (Some(state), Some(ctx)) = (
            req.data::<AppState>().cloned(),
            req.data::<Arc<RequestContext>>().cloned(),
        ) else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        // Keys are per user; without a valid token the operation itself answers 401.
        let Bearer::Valid(claims) = ctx.bearer(req.headers(), &state).clone() else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let user_id = claims.sub;

        let mut body = poem::RequestBody::new(req.take_body());
        let bytes = read_limited(&req, &mut body).await?;
        let fingerprint = fingerprint(&req, &bytes);
        req.set_body(bytes);

        let now = Utc::now();
        let to_chrono =
            |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        let claimed = {
            let mut conn = state.db.conn().await.map_err(Problem::from)?;
            repo::claim(
                &mut conn,
                user_id,
                key.as_str(),
                &fingerprint,
                now,
                now + to_chrono(LOCK_TIMEOUT),
                now + to_chrono(RETENTION),
            )
            .await
            .map_err(Problem::from)?
        };
        if !claimed {
            return replay_or_refuse(&state, user_id, &key, &fingerprint).await;
        }

        match self.inner.call(req).await.map(IntoResponse::into_response) {
            Ok(response) if response.status().is_success() => {
                store(&state, user_id, &key, response).await
            }
            outcome => {
                // Not stored: release the key so a corrected retry can use it.
                if let Ok(mut conn) = state.db.conn().await
                    && let Err(err) = repo::release(&mut conn, user_id, key.as_str()).await
                {
                    tracing::warn!(error = %err, "could not release an idempotency key");
                }
                outcome
            }
        }
    }
}

/// Hash of what makes two requests "the same": method, path and body bytes.
fn fingerprint(req: &Request, body: &[u8]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(req.method().as_str().as_bytes());
    hash.update(b" ");
    hash.update(req.uri().path().as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().to_vec()
}

async fn replay_or_refuse(
    state: &AppState,
    user_id: uuid::Uuid,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> poem::Result<Response> {
    let record = {
        let mut conn = state.db.conn().await.map_err(Problem::from)?;
        repo::find(&mut conn, user_id, key.as_str())
            .await
            .map_err(Problem::from)?
    };
    // Gone between our claim and this read: it expired or its owner released it just now.
    let Some(record) = record else {
        return Err(Problem::from(AppError::IdempotencyKeyInProgress).into());
    };
    if record.request_hash != fingerprint {
        return Err(Problem::from(AppError::IdempotencyKeyReused).into());
    }
    let (Some(status), Some(body)) = (record.response_status, record.response_body) else {
        return Err(Problem::from(AppError::IdempotencyKeyInProgress).into());
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK))
        .header("idempotent-replayed", "true")
        .body(Body::from(body));
    let headers: Vec<(String, String)> = record
        .response_headers
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

/// Stores the owner's response and returns it unchanged.
async fn store(
    state: &AppState,
    user_id: uuid::Uuid,
    key: &IdempotencyKey,
    response: Response,
) -> poem::Result<Response> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .into_bytes()
        .await
        .map_err(|e| Problem::from(AppError::internal(format!("reading a response: {e}"))))?;
    let headers: Vec<(&str, &str)> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            parts
                .headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (*name, v))
        })
        .collect();
    let headers_json = serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into());
    let stored = async {
        let mut conn = state.db.conn().await?;
        repo::complete(
            &mut conn,
            user_id,
            key.as_str(),
            parts.status.as_u16() as i16,
            &headers_json,
            &bytes,
        )
        .await
    }
    .await;
    if let Err(err) = stored {
        // The work is done; the client gets its answer. A retry would find the key abandoned
        // after the lock timeout and run again, so say so loudly.
        tracing::error!(error = %err, "could not store an idempotent response");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("tab\t").is_err());
    }
}
