//! Herald API v2: the client generated from the v2 document (`generated.rs`, `meta.rs`, both
//! written by `herald-client-codegen`), the merge-patch bodies, and the glue to the runtime.

#[allow(
    clippy::all,
    clippy::unwrap_used,
    unused_imports,
    dead_code,
    missing_docs,
    rustdoc::all
)]
mod generated;
mod meta;
pub mod patch;

use std::time::Duration;

pub use generated::*;
pub use meta::{API_VERSION, IDEMPOTENCY_KEY_OPERATIONS, ProblemCode, REFRESH_PATH};

use crate::runtime::{BuildError, Builder, RetryPolicy, Runtime, Session, Tokens, VersionClient};

impl progenitor_client::ClientHooks<Runtime> for Client {
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &progenitor_client::OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        self.inner
            .execute(&self.client, &self.baseurl, request, info.operation_id)
            .await
    }
}

impl VersionClient for Client {
    const IDEMPOTENCY_KEY_OPERATIONS: &'static [&'static str] = IDEMPOTENCY_KEY_OPERATIONS;
    const REFRESH_PATH: &'static str = REFRESH_PATH;

    fn from_parts(base_url: &str, http: reqwest::Client, runtime: Runtime) -> Self {
        Self::new_with_client(base_url, http, runtime)
    }
}

impl Client {
    /// Configure a client for the API at `base_url` (e.g. `https://api.example.com`).
    pub fn builder(base_url: &str) -> Builder<Self> {
        Builder::new(base_url)
    }

    /// A client with the defaults: 10 s per attempt, [`RetryPolicy::default`], telemetry on.
    pub fn connect(base_url: &str) -> Result<Self, BuildError> {
        Self::builder(base_url).build()
    }

    /// The tokens this client sends and refreshes (shared with clients made from it).
    pub fn session(&self) -> &Session {
        self.inner.session()
    }

    /// Sends `Authorization: Bearer <token>` from now on, without refreshing it (`None` to stop).
    pub fn set_token(&self, token: Option<String>) {
        self.session().set(token.map(Tokens::access));
    }

    /// This client (same session) with another per-attempt timeout, e.g. for one slow call.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self::new_with_client(
            &self.baseurl,
            self.client.clone(),
            self.inner.with_timeout(timeout),
        )
    }

    /// This client (same session) with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        Self::new_with_client(
            &self.baseurl,
            self.client.clone(),
            self.inner.with_retry(retry),
        )
    }
}
