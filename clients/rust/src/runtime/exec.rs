//! Every request of the generated client goes through [`Runtime::execute`] (progenitor's
//! `ClientHooks::exec`), which makes the attempts. Per attempt: a copy of the request, the
//! session's bearer token, a timeout. Per call: `X-Telemetry`, the merge-patch media type, one
//! `Idempotency-Key` for a POST (kept across its retries), retries with backoff and
//! `Retry-After` within the attempt and time bounds, one refresh-and-retry after a 401.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use reqwest::{
    Method, Request, Response, StatusCode,
    header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER},
};

use super::{
    auth::{Refreshed, Session, TokenResponse, Tokens},
    retry::{Outcome, RetryPolicy, Safety, next_delay, parse_retry_after, retryable},
};

/// Per-client settings (clients made with `with_timeout`/`with_retry` share the session, not
/// these).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub telemetry: Option<HeaderValue>,
    /// Operations that honour an `Idempotency-Key`.
    pub keyed: &'static [&'static str],
    pub refresh_path: &'static str,
}

/// The progenitor client's inner state: the shared session and this client's settings.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) session: Session,
    pub(crate) config: Arc<Config>,
}

const LOGIN: &str = "login_user";
const REFRESH: &str = "refresh_session";

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime {
    /// The session (tokens) this client sends and refreshes.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Sends `request` for `operation` with the runtime's retries, token and headers. A
    /// successful login or refresh leaves its tokens in the session.
    pub async fn execute(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        request: Request,
        operation: &str,
    ) -> reqwest::Result<Response> {
        let adopt = operation == LOGIN || operation == REFRESH;
        self.send(http, base_url, request, operation, adopt).await
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        mut request: Request,
        operation: &str,
        adopt: bool,
    ) -> reqwest::Result<Response> {
        let started = Instant::now();
        let method = request.method().clone();
        let headers = request.headers_mut();
        if let Some(telemetry) = &self.config.telemetry {
            headers.insert("x-telemetry", telemetry.clone());
        }
        if method == Method::PATCH && headers.contains_key(CONTENT_TYPE) {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/merge-patch+json"),
            );
        }
        // reqwest sends no `Content-Length` for a bodiless POST; Herald answers that with 411,
        // as the contract says. Send what a browser sends: `Content-Length: 0`.
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) && request.body().is_none()
        {
            request
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        let headers = request.headers_mut();
        let keyed = method == Method::POST && self.config.keyed.contains(&operation);
        if method == Method::POST
            && !headers.contains_key("idempotency-key")
            && let Ok(key) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        {
            headers.insert("idempotency-key", key);
        }
        let safety = if keyed
            || [
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::DELETE,
            ]
            .contains(&method)
        {
            Safety::Idempotent
        } else {
            Safety::Unsafe
        };
        let use_session = operation != REFRESH && !request.headers().contains_key(AUTHORIZATION);
        let mut refreshed = false;
        let mut attempt = 1;
        loop {
            // A body that cannot be copied (a stream) is sent once.
            let Some(mut copy) = request.try_clone() else {
                return http.execute(request).await;
            };
            let mut token = None;
            if use_session {
                token = self
                    .session
                    .access_token(|r| self.refresh(http, base_url, r))
                    .await;
                if let Some(value) = token
                    .as_deref()
                    .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
                {
                    copy.headers_mut().insert(AUTHORIZATION, value);
                }
            }
            if copy.timeout().is_none() {
                // A retry also ends with the call's time budget: a call takes at most
                // max(timeout, max_elapsed).
                let remaining = self
                    .config
                    .retry
                    .max_elapsed
                    .saturating_sub(started.elapsed());
                let timeout = match attempt {
                    1 => self.config.timeout,
                    _ => self.config.timeout.min(remaining),
                };
                *copy.timeout_mut() = Some(timeout);
            }
            let result = http.execute(copy).await;

            if let (Ok(response), Some(stale)) = (&result, &token)
                && response.status() == StatusCode::UNAUTHORIZED
                && !refreshed
            {
                refreshed = true;
                let outcome = self
                    .session
                    .refresh(stale, |r| self.refresh(http, base_url, r))
                    .await;
                if outcome == Refreshed::Yes {
                    continue; // the retry with the new token is not counted as an attempt
                }
            }

            let outcome = match &result {
                Ok(response) => Outcome::Response {
                    status: response.status().as_u16(),
                    code: response
                        .headers()
                        .get("x-error-code")
                        .and_then(|v| v.to_str().ok()),
                },
                Err(error) => Outcome::Network {
                    sent: !error.is_connect(),
                },
            };
            let retry_after = result.as_ref().ok().and_then(|r| {
                r.headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()))
            });
            let delay = if retryable(outcome, safety) {
                next_delay(
                    attempt,
                    started.elapsed(),
                    retry_after,
                    &self.config.retry,
                    fastrand::f64(),
                )
            } else {
                None
            };
            match delay {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None if adopt => return self.adopt(result?).await,
                None => return result,
            }
        }
    }

    /// Reads a successful login's tokens into the session, and hands the response on.
    async fn adopt(&self, response: Response) -> reqwest::Result<Response> {
        if !response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        if let Ok(tokens) = serde_json::from_slice::<TokenResponse>(&body) {
            self.session.set(Some(tokens.into()));
        }
        let mut rebuilt = http::Response::new(body);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok(Response::from(rebuilt))
    }

    /// One refresh request through [`Runtime::execute`] (so it gets the telemetry header and
    /// the retries that are safe for it): new tokens, `Ok(None)` if refused, `Err` if it failed.
    fn refresh<'a>(
        &'a self,
        http: &'a reqwest::Client,
        base_url: &'a str,
        refresh_token: String,
    ) -> Boxed<'a, Result<Option<Tokens>, ()>> {
        Box::pin(async move {
            let url = format!(
                "{}{}",
                base_url.trim_end_matches('/'),
                self.config.refresh_path
            );
            let body = serde_json::json!({ "refreshToken": refresh_token });
            let request = http.post(url).json(&body).build().map_err(|_| ())?;
            let response = self
                .send(http, base_url, request, REFRESH, false)
                .await
                .map_err(|_| ())?;
            match response.status() {
                status if status.is_success() => response
                    .json::<TokenResponse>()
                    .await
                    .map(|t| Some(t.into()))
                    .map_err(|_| ()),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(None),
                _ => Err(()),
            }
        })
    }
}
