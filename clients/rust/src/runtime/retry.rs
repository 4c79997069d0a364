//! When to retry and how long to wait: jittered exponential backoff, `Retry-After`, and the
//! bounds on attempts and on total time. Pure functions, unit-tested below.

use std::time::{Duration, SystemTime};

/// How a client retries. Every call is bounded by both `max_attempts` and `max_elapsed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// No retry starts after this much time since the call began.
    pub max_elapsed: Duration,
    /// The first backoff; each retry doubles it, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts within 30 s, backoff from 250 ms up to 5 s.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            max_elapsed: Duration::from_secs(30),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// The wait before retry number `retry` (1 for the first): "equal jitter", uniformly in
/// `[d/2, d]` where `d = min(max_delay, base_delay * 2^(retry-1))`. `random` is in `[0, 1)`.
pub fn backoff(retry: u32, policy: &RetryPolicy, random: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let ceiling = policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay);
    ceiling / 2 + ceiling.mul_f64(random.clamp(0.0, 1.0) / 2.0)
}

/// `Retry-After`: delay-seconds (`120`) or an HTTP-date relative to `now`. `None` when
/// malformed; a date in the past is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How safe a request is to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// GET, HEAD, OPTIONS, PUT, DELETE, and POSTs to operations that honour the
    /// `Idempotency-Key` the SDK sent: any failure may be retried.
    Idempotent,
    /// Other POSTs, and PATCH: retried only when the server surely did not act on them (the
    /// connection was never made, 429, 503). A token refresh is one: sent twice it would be
    /// taken for a stolen token.
    Unsafe,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    Response {
        status: u16,
        code: Option<&'a str>,
    },
    /// The request failed on the network; `sent` is false when no connection was made.
    Network {
        sent: bool,
    },
}

/// Whether an attempt that ended with `outcome` may be retried.
pub fn retryable(outcome: Outcome<'_>, safety: Safety) -> bool {
    let idempotent = safety == Safety::Idempotent;
    match outcome {
        Outcome::Network { sent } => !sent || idempotent,
        Outcome::Response {
            status: 429 | 503, ..
        } => true,
        Outcome::Response {
            status: 409,
            code: Some("IDEMPOTENCY_KEY_IN_PROGRESS"),
        } => idempotent,
        Outcome::Response { status, .. } => {
            idempotent && (500..600).contains(&status) && status != 501 && status != 505
        }
    }
}

/// The wait before the next attempt, or `None` to stop: the attempts are used up, or the wait
/// (the server's `Retry-After` when it gave one, else the backoff) would end past the budget.
pub fn next_delay(
    attempt: u32,
    elapsed: Duration,
    retry_after: Option<Duration>,
    policy: &RetryPolicy,
    random: f64,
) -> Option<Duration> {
    if attempt >= policy.max_attempts {
        return None;
    }
    let delay = retry_after.unwrap_or_else(|| backoff(attempt, policy, random));
    (elapsed + delay < policy.max_elapsed).then_some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(1),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        }
    }

    #[test]
    fn backoff_doubles_with_equal_jitter_and_a_cap() {
        let p = policy();
        for (retry, ceiling) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let ceiling = Duration::from_millis(ceiling);
            assert_eq!(backoff(retry, &p, 0.0), ceiling / 2, "retry {retry}");
            assert_eq!(backoff(retry, &p, 1.0), ceiling, "retry {retry}");
            for _ in 0..200 {
                let d = backoff(retry, &p, fastrand::f64());
                assert!(d >= ceiling / 2 && d <= ceiling, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "soon", "-1", "1.5", "2026-01-01T00:00:07Z"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn what_is_retried() {
        use Outcome::*;
        use Safety::*;
        assert!(retryable(Network { sent: false }, Unsafe));
        assert!(!retryable(Network { sent: true }, Unsafe));
        assert!(retryable(Network { sent: true }, Idempotent));
        for safety in [Unsafe, Idempotent] {
            let response = |status| Response { status, code: None };
            assert!(retryable(response(429), safety));
            assert!(retryable(response(503), safety));
            assert_eq!(retryable(response(500), safety), safety == Idempotent);
            assert_eq!(retryable(response(502), safety), safety == Idempotent);
            assert!(!retryable(response(501), safety));
            for status in [200, 201, 204, 304, 400, 401, 404, 409, 412, 422] {
                assert!(!retryable(response(status), safety), "{status}");
            }
        }
        let in_progress = Response {
            status: 409,
            code: Some("IDEMPOTENCY_KEY_IN_PROGRESS"),
        };
        assert!(retryable(in_progress, Idempotent));
        assert!(!retryable(in_progress, Unsafe));
    }

    #[test]
    fn attempts_and_time_are_bounded() {
        let p = policy();
        let ms = Duration::from_millis;
        assert!(next_delay(1, ms(0), None, &p, 0.5).is_some());
        assert!(next_delay(2, ms(0), None, &p, 0.5).is_some());
        assert_eq!(
            next_delay(3, ms(0), None, &p, 0.5),
            None,
            "attempts used up"
        );
        assert_eq!(
            next_delay(1, ms(950), None, &p, 1.0),
            None,
            "950 + 100 > 1000"
        );
        assert_eq!(next_delay(1, ms(0), Some(ms(2000)), &p, 0.5), None);
        assert_eq!(next_delay(1, ms(0), Some(ms(300)), &p, 0.5), Some(ms(300)));
    }
}
