//! Rate limits on every API version (`/v1`, `/v2`): every request counts against its client IP; writes (POST, PUT, PATCH,
//! DELETE) by an authenticated caller also count against the user (auth endpoints excepted:
//! they fall under the IP and failed-login limits). The failed-login limit itself is applied by
//! the login service. Headers: express-rate-limit's `RateLimit-Limit/-Remaining/-Reset` and the
//! IETF draft's `RateLimit-Policy` and `RateLimit`, describing the most constrained limit (or the
//! one that refused the request).

use std::sync::Arc;

use poem::{
    Endpoint, Middleware, Request,
    http::{HeaderMap, HeaderName, HeaderValue, Method},
};

use super::{
    edge::{Bearer, RequestContext},
    problem::Problem,
    version::{is_auth_path, version_of},
};
use crate::{
    cache::ratelimit::{Bucket, Decision},
    error::AppError,
    state::AppState,
};

pub struct RateLimit;

impl<E: Endpoint> Middleware<E> for RateLimit {
    type Output = RateLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RateLimitEndpoint { inner }
    }
}

pub struct RateLimitEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RateLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> poem::Result<E::Output> {
        let (Some(state), Some(ctx)) = (
            req.data::<AppState>().cloned(),
            req.data::<Arc<RequestContext>>().cloned(),
        ) else {
            return self.inner.call(req).await;
        };
        // Health (in the same API service) is exempt; docs and metrics are routed elsewhere.
        if state.settings.rate_limit_enabled && version_of(req.uri().path()).is_some() {
            check(&state, &ctx, &req).await?;
        }
        self.inner.call(req).await
    }
}

async fn check(state: &AppState, ctx: &RequestContext, req: &Request) -> Result<(), Problem> {
    let settings = &state.settings;
    let ip = ctx.client_ip.to_string();
    let mut shown = state
        .limiter
        .hit(Bucket::Global, &ip, settings.rate_limit_global, 1)
        .await;
    let counts_as_write = is_write(req.method()) && !is_auth_path(req.uri().path());
    if shown.allowed
        && counts_as_write
        && let Bearer::Valid(claims) = ctx.bearer(req.headers(), state)
    {
        let user = claims.sub.to_string();
        let writes = state
            .limiter
            .hit(Bucket::Writes, &user, settings.rate_limit_writes, 1)
            .await;
        if !writes.allowed || writes.remaining < shown.remaining {
            shown = writes;
        }
    }
    ctx.set_rate_limit(shown);
    if shown.allowed {
        Ok(())
    } else {
        crate::metrics::record_rate_limited(shown.bucket.name());
        Err(Problem::from(AppError::RateLimited(shown)))
    }
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Writes the `RateLimit*` headers describing `decision`.
pub fn write_headers(headers: &mut HeaderMap, decision: &Decision) {
    let reset = decision.reset_secs();
    let name = decision.bucket.name();
    let window = decision.window.as_secs();
    headers.insert(LIMIT, HeaderValue::from(decision.limit));
    headers.insert(REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RESET, HeaderValue::from(reset));
    let structured = [
        (
            POLICY,
            format!("\"{name}\";q={};w={window}", decision.limit),
        ),
        (
            RATELIMIT,
            format!("\"{name}\";r={};t={reset}", decision.remaining),
        ),
    ];
    for (header, value) in structured {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(header, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn headers_follow_both_conventions() {
        let mut headers = HeaderMap::new();
        write_headers(
            &mut headers,
            &Decision {
                bucket: Bucket::Writes,
                allowed: true,
                limit: 30,
                remaining: 29,
                reset: Duration::from_millis(59_100),
                window: Duration::from_secs(60),
            },
        );
        assert_eq!(headers["ratelimit-limit"], "30");
        assert_eq!(headers["ratelimit-remaining"], "29");
        assert_eq!(headers["ratelimit-reset"], "60");
        assert_eq!(headers["ratelimit-policy"], "\"writes\";q=30;w=60");
        assert_eq!(headers["ratelimit"], "\"writes\";r=29;t=60");
    }
}
