//! `Idempotency-Key` for POST, with Stripe's semantics: the first request with a key runs and
//! its response is stored (PostgreSQL, per user, 24 hours); a retry with the same key and body
//! gets those bytes again with `Idempotent-Replayed: true`; the same key with another body is
//! 422 `IDEMPOTENCY_KEY_REUSED`; a retry while the first still runs is 409
//! `IDEMPOTENCY_KEY_IN_PROGRESS`. Only successful (2xx) responses are stored: after an error
//! the key is released, so the client can fix and retry with the same key.
//!
//! Adopting it is one line on an operation: `#[oai(..., transform = "idempotent")]`.

use std::sync::Arc;

use poem::{
    Body, Endpoint, IntoResponse, Request, Response,
    http::{HeaderName, HeaderValue, StatusCode},
};
use sha2::{Digest, Sha256};

use super::{
    body::read_limited,
    edge::{Bearer, RequestContext},
    problem::{FieldError, Problem},
    types::openapi_string,
};
use crate::{
    domain::text::DomainString,
    error::AppError,
    idempotency::service::{self, Begin, StoredResponse},
    state::AppState,
};

pub const HEADER: &str = "idempotency-key";
/// Response headers stored and replayed with the body.
const REPLAYED_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "etag",
    "operation-location",
    "retry-after",
];

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

        match service::begin(&state, user_id, key.as_str(), &fingerprint)
            .await
            .map_err(Problem::from)?
        {
            Begin::Owner => {}
            Begin::Replay(stored) => return Ok(replay(stored)),
        }

        match self.inner.call(req).await.map(IntoResponse::into_response) {
            Ok(response) if response.status().is_success() => {
                store(&state, user_id, &key, response).await
            }
            outcome => {
                // Not stored: release the key so a corrected retry can use it.
                if let Err(err) = service::release(&state, user_id, key.as_str()).await {
                    tracing::warn!(error = %err.chain(), "could not release an idempotency key");
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

/// A stored response, answered again.
fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .header("idempotent-replayed", "true")
        .body(Body::from(stored.body));
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
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
    let headers = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            parts
                .headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (name.to_string(), v.to_string()))
        })
        .collect();
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers,
        body: bytes.to_vec(),
    };
    if let Err(err) = service::complete(state, user_id, key.as_str(), &stored).await {
        // The work is done; the client gets its answer. A retry would find the key abandoned
        // after the lock timeout and run again, so say so loudly.
        tracing::error!(error = %err.chain(), "could not store an idempotent response");
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
