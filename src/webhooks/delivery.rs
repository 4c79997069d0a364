//! One HTTP attempt of a delivery: the SSRF rules applied again, the connection pinned to the
//! addresses just checked, no redirects followed, bounded by `WEBHOOK_TIMEOUT`. No database
//! connection is held here.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::Utc;
use metrics::{counter, histogram};
use reqwest::{StatusCode, header};

use super::ssrf;

/// What the receiver did with one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub response_status: Option<u16>,
    pub error: Option<String>,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
    pub duration: Duration,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.response_status
            .is_some_and(|s| (200..300).contains(&s))
    }

    /// 410 Gone: the receiver asks never to be called again.
    pub fn gone(&self) -> bool {
        self.response_status == Some(410)
    }
}

/// The request an attempt sends.
pub struct Request<'a> {
    pub url: &'a str,
    pub id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub body: Bytes,
}

/// The rules an attempt applies.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub allow_private: bool,
    pub https_only: bool,
    pub timeout: Duration,
}

pub async fn send(request: Request<'_>, rules: Rules) -> Attempt {
    let started = Instant::now();
    let result = attempt(&request, rules).await;
    let duration = started.elapsed();
    let (outcome, attempt) = match result {
        Ok((status, retry_after)) => {
            let succeeded = status.is_success();
            let error = (!succeeded).then(|| {
                if status.is_redirection() {
                    format!("the receiver answered {status} (redirects are not followed)")
                } else {
                    format!("the receiver answered {status}")
                }
            });
            let outcome = if succeeded {
                "succeeded"
            } else if status.is_redirection() {
                "redirect"
            } else if status.is_client_error() {
                "client_error"
            } else {
                "server_error"
            };
            (
                outcome,
                Attempt {
                    response_status: Some(status.as_u16()),
                    error,
                    retry_after,
                    duration,
                },
            )
        }
        Err((outcome, error)) => (
            outcome,
            Attempt {
                response_status: None,
                error: Some(error),
                retry_after: None,
                duration,
            },
        ),
    };
    histogram!("herald_webhook_delivery_duration_seconds", "outcome" => outcome).record(duration);
    if outcome != "succeeded" {
        counter!("herald_webhook_delivery_failures_total", "reason" => outcome).increment(1);
    }
    attempt
}

type Failure = (&'static str, String);

async fn attempt(
    request: &Request<'_>,
    rules: Rules,
) -> Result<(StatusCode, Option<Duration>), Failure> {
    let forbidden = |e: String| ("forbidden", format!("URL refused: {e}"));
    let url = ssrf::parse(request.url, rules.https_only).map_err(forbidden)?;
    let addrs = ssrf::resolve(&url, rules.allow_private)
        .await
        .map_err(forbidden)?;
    let client = client(&url, &addrs, rules.timeout).map_err(|e| ("client", e))?;
    let mut post = client.post(url);
    // The delivery runs in the job's span, which continues the trace of the request that made
    // the change: the receiver can join that trace (W3C Trace Context).
    if let Some(traceparent) = crate::telemetry::trace::current_traceparent() {
        post = post.header("traceparent", traceparent);
    }
    let response = post
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "Herald-Webhooks/1")
        .header("webhook-id", request.id)
        .header("webhook-timestamp", request.timestamp.to_string())
        .header("webhook-signature", request.signature)
        .body(request.body.clone())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                ("timeout", format!("no answer within {:?}", rules.timeout))
            } else if e.is_connect() {
                ("connect", format!("could not connect: {e}"))
            } else {
                ("transport", format!("request failed: {e}"))
            }
        })?;
    let status = response.status();
    let retry_after = matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
    .then(|| retry_after(response.headers()))
    .flatten();
    // The body is not read: its content does not matter and it must not keep us waiting.
    Ok((status, retry_after))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let text = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// A client for one attempt: the name pinned to the addresses checked, no redirects, no
/// proxies (a proxy would resolve the name itself), no pooling (the next attempt checks again).
fn client(
    url: &reqwest::Url,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .pool_max_idle_per_host(0)
        .tls_backend_preconfigured(tls_config()?);
    if let Some(url::Host::Domain(name)) = url.host() {
        builder = builder.resolve_to_addrs(name, addrs);
    }
    builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// rustls with ring and the system's roots, made once.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("TLS verifier: {e}"))?;
            Ok(rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS config: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        headers.insert(header::RETRY_AFTER, later.parse().unwrap());
        let after = retry_after(&headers).unwrap();
        assert!(after > Duration::from_secs(100) && after <= Duration::from_secs(120));
        headers.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
