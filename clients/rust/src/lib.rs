//! Herald's Rust SDK: a client generated from the API's OpenAPI document by progenitor (one
//! module per API version, [`v1`]; the current version is also at the crate root), over a small
//! hand-written [`runtime`]:
//!
//! - retries of network failures, 429 and 503 (honouring `Retry-After`) and, for idempotent
//!   requests, other 5xx, with jittered exponential backoff, bounded in attempts and time;
//! - an `Idempotency-Key` on every POST, kept across its retries (POSTs are retried only where
//!   the server honours the key);
//! - the access token refreshed before it expires and after a 401, one refresh at a time, with
//!   a hook when the tokens change ([`Builder::on_tokens`]);
//! - timeouts per client and per call ([`Client::with_timeout`]);
//! - `X-Telemetry` (opt out with [`Builder::telemetry`]);
//! - lists as [`Stream`](futures_core::Stream)s that follow `nextLink` ([`Paginated::stream`]);
//! - problem codes as the [`ProblemCode`] enum; 204 and 304 as values ([`StatusResults`]);
//! - HTTPS with rustls (`ring`) by default, or the platform's TLS (`native-tls` feature);
//! - [`webhooks::verify`] for the signed deliveries Herald sends to webhook endpoints.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use herald_client::{Client, Paginated};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("https://api.example.com")
//!     .timeout(std::time::Duration::from_secs(5))
//!     .build()?;
//! client
//!     .login_user()
//!     .body_map(|b| b.email("user1@example.com").password("user123"))
//!     .send()
//!     .await?; // the client keeps the tokens and refreshes them
//! let posts: Vec<_> = client.list_posts().limit(100u32).stream().try_collect().await?;
//! println!("{} posts", posts.len());
//! # Ok(())
//! # }
//! ```

pub mod runtime;
pub mod v1;
pub mod v2;
pub mod webhooks;

pub use runtime::{
    BuildError, Builder, Conditional, Paginated, RetryPolicy, Session, StatusResults, Tokens, etag,
    problem,
};
pub use v1::*;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
