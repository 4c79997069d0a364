//! Herald's Rust SDK: a progenitor client generated at build time from the committed
//! `openapi/openapi.json`, plus what a generator cannot know:
//!
//! - [`Session`]: the bearer token every request carries once set ([`Client::set_token`]);
//! - [`hooks`]: PATCH bodies go out as `application/merge-patch+json`;
//! - [`patch`]: patch bodies that can say "set to null" as well as "leave alone";
//! - [`ok_or_absent`] and [`not_modified`]: 204 and 304 as values, not errors;
//! - [`problem`]: every error of the API as a typed [`types::Problem`].
//!
//! ```no_run
//! # async fn run() -> Result<(), herald_client::Error<herald_client::types::Problem>> {
//! let client = herald_client::Client::connect("http://localhost:3000");
//! let page = client.list_posts().limit(std::num::NonZeroU64::new(10).unwrap()).send().await?;
//! for post in &page.data {
//!     println!("{} by {}", post.title, post.author.username);
//! }
//! # Ok(())
//! # }
//! ```

pub mod hooks;
pub mod patch;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

mod generated {
    #![allow(
        clippy::all,
        clippy::unwrap_used,
        unused_imports,
        dead_code,
        missing_docs
    )]
    include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
}

pub use generated::*;
pub use progenitor_client::{Error, ResponseValue};

/// Per-client state shared by every request: the bearer token.
#[derive(Debug, Clone, Default)]
pub struct Session {
    token: Arc<RwLock<Option<String>>>,
}

impl Session {
    pub fn token(&self) -> Option<String> {
        self.token.read().ok().and_then(|t| t.clone())
    }
}

impl Client {
    /// A client for `base_url` with a 10 s request timeout (set your own with
    /// [`Client::with_timeout`]); the API guide recommends clients always time out.
    pub fn connect(base_url: &str) -> Self {
        Self::with_timeout(base_url, Duration::from_secs(10))
    }

    pub fn with_timeout(base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("herald-client-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self::new_with_client(base_url, http, Session::default())
    }

    /// Sends `Authorization: Bearer <token>` from now on (`None` to stop).
    pub fn set_token(&self, token: Option<String>) {
        if let Ok(mut slot) = self.inner().token.write() {
            *slot = token;
        }
    }
}

/// The `Problem` of an error response, if the error is one.
pub fn problem<T>(error: &Error<T>) -> Option<&T> {
    match error {
        Error::ErrorResponse(response) => Some(response.as_ref()),
        _ => None,
    }
}

/// For operations that answer 204 when there is nothing (DELETE): `Ok(None)` instead of an
/// "unexpected response" error.
// The error type is progenitor's, as every generated method returns it.
#[allow(clippy::result_large_err)]
pub fn ok_or_absent<T, E>(
    result: Result<ResponseValue<T>, Error<E>>,
) -> Result<Option<ResponseValue<T>>, Error<E>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(Error::UnexpectedResponse(response))
            if response.status() == reqwest::StatusCode::NO_CONTENT =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Whether a conditional GET (`If-None-Match`) answered 304.
pub fn not_modified<E>(error: &Error<E>) -> bool {
    matches!(error, Error::UnexpectedResponse(response) if response.status() == reqwest::StatusCode::NOT_MODIFIED)
}

/// The `ETag` header of a response.
pub fn etag<T>(response: &ResponseValue<T>) -> Option<String> {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
