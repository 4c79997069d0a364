//! Runs before every request the generated client sends.

use reqwest::{
    Method, Request,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue},
};

use crate::Session;

/// Adds the bearer token and gives PATCH bodies their real media type.
pub fn before_request(session: &Session, request: &mut Request) {
    if let Some(token) = session.token()
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    if request.method() == Method::PATCH && request.body().is_some() {
        request.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
    }
}
