//! Verifying Herald webhook deliveries (Standard Webhooks): `webhook-signature` holds one or
//! more space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the base64
//! part of the endpoint's `whsec_` secret. For 24 hours after a rotation two signatures arrive;
//! either one verifying is enough.
//!
//! ```
//! # fn handle(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> Result<(), herald_client::webhooks::WebhookError> {
//! // `body` is the raw request body, exactly as received.
//! herald_client::webhooks::verify(secret, headers, body)?;
//! let event: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
//! # Ok(()) }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far `webhook-timestamp` may be from now (replay protection) in [`verify`].
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is not `whsec_` + base64.
    InvalidSecret,
    /// `webhook-id`, `webhook-timestamp` or `webhook-signature` is missing or unreadable.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not unix seconds.
    InvalidTimestamp,
    /// `webhook-timestamp` is further from now than the tolerance.
    TimestampOutOfTolerance,
    /// No signature matches the secret.
    NoMatchingSignature,
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidSecret => f.write_str("the secret is not whsec_ + base64"),
            Self::MissingHeader(name) => write!(f, "missing or unreadable {name} header"),
            Self::InvalidTimestamp => f.write_str("webhook-timestamp is not unix seconds"),
            Self::TimestampOutOfTolerance => f.write_str("webhook-timestamp is too far from now"),
            Self::NoMatchingSignature => f.write_str("no signature matches the secret"),
        }
    }
}

impl std::error::Error for WebhookError {}

fn mac(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, WebhookError> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .ok_or(WebhookError::InvalidSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| WebhookError::InvalidSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(mac)
}

/// The `v1,<base64>` signature of one message under one `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let mac = mac(secret, id, timestamp, body)?;
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks a delivery's signature, and that its timestamp is within [`DEFAULT_TOLERANCE`] of now.
pub fn verify(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    verify_at(secret, headers, body, now, DEFAULT_TOLERANCE)
}

/// [`verify`] at a given time (unix seconds) and tolerance.
pub fn verify_at(
    secret: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingHeader(name))
    };
    let id = header("webhook-id")?;
    let timestamp: i64 = header("webhook-timestamp")?
        .trim()
        .parse()
        .map_err(|_| WebhookError::InvalidTimestamp)?;
    let signatures = header("webhook-signature")?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(WebhookError::TimestampOutOfTolerance);
    }
    let expected = mac(secret, id, timestamp, body)?;
    let matches = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        // `verify_slice` compares in constant time.
        .any(|candidate| expected.clone().verify_slice(&candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(WebhookError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(signature: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", ID.parse().unwrap());
        headers.insert("webhook-timestamp", TIMESTAMP.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY).unwrap(), SIGNATURE);
        verify_at(
            SECRET,
            &headers(SIGNATURE),
            BODY,
            TIMESTAMP,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }

    #[test]
    fn any_one_of_several_signatures_is_enough() {
        let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let theirs = sign(&other, ID, TIMESTAMP, BODY).unwrap();
        let both = headers(&format!("{theirs} {SIGNATURE}"));
        verify_at(SECRET, &both, BODY, TIMESTAMP, DEFAULT_TOLERANCE).unwrap();
        verify_at(&other, &both, BODY, TIMESTAMP, DEFAULT_TOLERANCE).unwrap();
    }

    #[test]
    fn rejects_tampering_wrong_secrets_stale_timestamps_and_missing_headers() {
        let at = |h: &http::HeaderMap, body: &[u8], now| {
            verify_at(SECRET, h, body, now, DEFAULT_TOLERANCE)
        };
        assert_eq!(
            at(&headers(SIGNATURE), b"{}", TIMESTAMP),
            Err(WebhookError::NoMatchingSignature)
        );
        assert_eq!(
            at(&headers(SIGNATURE), BODY, TIMESTAMP + 301),
            Err(WebhookError::TimestampOutOfTolerance)
        );
        assert_eq!(
            at(&headers("v1,AAAA"), BODY, TIMESTAMP),
            Err(WebhookError::NoMatchingSignature)
        );
        let mut missing = headers(SIGNATURE);
        missing.remove("webhook-id");
        assert_eq!(
            at(&missing, BODY, TIMESTAMP),
            Err(WebhookError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify_at(
                "nope",
                &headers(SIGNATURE),
                BODY,
                TIMESTAMP,
                DEFAULT_TOLERANCE
            ),
            Err(WebhookError::InvalidSecret)
        );
    }
}
