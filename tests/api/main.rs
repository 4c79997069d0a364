//! Integration tests: the real app on a random port, a fresh PostgreSQL database per test, real
//! Redis where a test needs it, HTTP in between. One binary, one module per area.

// A failed unwrap in a test is a failed test.
#![allow(clippy::unwrap_used)]

mod airports;
mod auth;
mod authorization;
mod cache;
mod concurrency;
mod connections;
mod errors;
mod events;
mod exports;
mod idempotency;
mod jobs;
mod operations;
mod posts;
mod rate_limits;
mod scale_out;
mod spec;
mod support;
mod trace_context;
mod users;
mod versions;
mod webhooks;
