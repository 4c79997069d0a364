//! The HTTP edge: the only layer that knows HTTP. Problem details, request bodies and
//! parameters, authentication extractors, conditional requests, pagination, idempotency keys,
//! rate limiting, the per-request middleware, and the OpenAPI document.

pub mod auth;
pub mod body;
pub mod edge;
pub mod idempotency;
pub mod json;
pub mod ndjson;
pub mod pagination;
pub mod problem;
pub mod problem_codes;
pub mod rate_limit;
pub mod routes;
pub mod server;
pub mod types;
pub mod version;

use poem_openapi::Tags;

/// The spec's tags, in the order the docs show them.
#[derive(Tags)]
pub enum ApiTags {
    /// Accounts and sessions: register, log in, refresh, log out.
    Auth,
    /// Accounts: the caller, and administration.
    Users,
    /// Posts: published to everyone, drafts to their author and moderators.
    Posts,
    /// Airports: a client-keyed resource that shows field mutability and upserts.
    Airports,
    /// The event log: one event per committed post change (ADMIN).
    Events,
    /// Webhook endpoints: events delivered to your URL, signed (ADMIN).
    Webhooks,
    /// Long-running operations: exports of your posts, and their status.
    Exports,
    /// Liveness, readiness and dependency health.
    Health,
}
