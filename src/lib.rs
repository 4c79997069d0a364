//! Herald: a code-first OpenAPI REST service.
//!
//! A request flows one way: `http` (the edge: poem + poem-openapi) → a resource's `api.rs`
//! (thin handlers) → its `service.rs` (rules, authorization, cache policy) → its `repo.rs`
//! (diesel-async) → PostgreSQL. Only `http` knows HTTP, only repos know SQL, only `cache` knows
//! Redis. `config`, `error`, `telemetry` and `metrics` are shared by everyone.

pub mod airports;
pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod exports;
pub mod health;
pub mod housekeeping;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod log_files;
pub mod metrics;
pub mod posts;
pub mod security;
pub mod seed;
pub mod state;
pub mod telemetry;
pub mod users;
pub mod webhooks;
