//! Per-request facts every middleware and extractor shares: the request id, the client's
//! address, the bearer token (decoded at most once) and the rate limit the response describes.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, OnceLock},
};

use poem::{
    Request,
    http::{HeaderMap, header},
};
use uuid::Uuid;

use crate::{cache::ratelimit::Decision, security::jwt::Claims, state::AppState};

/// Per-request facts shared by the middlewares and extractors (`req.data::<Arc<RequestContext>>`).
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub client_ip: IpAddr,
    /// The bearer token, decoded at most once per request.
    bearer: OnceLock<Bearer>,
    /// The rate limit the response's `RateLimit-*` headers describe.
    rate_limit: Mutex<Option<Decision>>,
}

/// What the `Authorization` header held.
#[derive(Debug, Clone)]
pub enum Bearer {
    Absent,
    Invalid,
    Valid(Claims),
}

impl RequestContext {
    pub(super) fn new(req: &Request, trust_proxy: bool) -> Self {
        Self {
            request_id: request_id_of(req.headers()).into(),
            client_ip: client_ip_of(req, trust_proxy),
            bearer: OnceLock::new(),
            rate_limit: Mutex::new(None),
        }
    }

    /// Decodes the bearer token once; later calls reuse the result.
    pub fn bearer(&self, headers: &HeaderMap, state: &AppState) -> &Bearer {
        self.bearer.get_or_init(|| {
            let Some(value) = headers.get(header::AUTHORIZATION) else {
                return Bearer::Absent;
            };
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            match token.map(|t| state.jwt.verify(t)) {
                Some(Ok(claims)) => Bearer::Valid(claims),
                _ => Bearer::Invalid,
            }
        })
    }

    /// The authenticated user, if a valid token was presented and decoded.
    pub fn user_id(&self) -> Option<Uuid> {
        match self.bearer.get() {
            Some(Bearer::Valid(claims)) => Some(claims.sub),
            _ => None,
        }
    }

    pub fn set_rate_limit(&self, decision: Decision) {
        if let Ok(mut slot) = self.rate_limit.lock() {
            *slot = Some(decision);
        }
    }

    pub(super) fn rate_limit(&self) -> Option<Decision> {
        self.rate_limit.lock().ok().and_then(|slot| *slot)
    }
}

pub(super) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect())
}

/// The caller's id if it is at most 128 characters of `[A-Za-z0-9._-]`, else a fresh UUID.
fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

/// The socket's peer, or with `TRUST_PROXY` the left-most address of `X-Forwarded-For` (the
/// client as the first trusted proxy saw it).
fn client_ip_of(req: &Request, trust_proxy: bool) -> IpAddr {
    if trust_proxy
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_canonical())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

#[cfg(test)]
mod tests {
    use super::{super::test_headers as headers, *};

    #[test]
    fn sane_request_ids_are_kept_and_others_replaced() {
        assert_eq!(
            request_id_of(&headers(&[("x-request-id", "abc-1.2_3")])),
            "abc-1.2_3"
        );
        for bad in ["has space", "semi;colon", &"x".repeat(129), ""] {
            let id = request_id_of(&headers(&[("x-request-id", bad)]));
            assert_ne!(id, bad);
            assert!(Uuid::parse_str(&id).is_ok());
        }
        assert!(Uuid::parse_str(&request_id_of(&HeaderMap::new())).is_ok());
    }
}
