//! Webhooks: endpoints that receive events, signed (Standard Webhooks), retried on a schedule.
//!
//! The delivery log (`webhook_deliveries`) has one row per attempt: fan-out writes attempt 1
//! as `pending`; each attempt records its result on its row and, when it will be retried,
//! writes the next attempt as `pending` with the time it is due.

pub mod api;
pub mod delivery;
pub mod jobs;
pub mod model;
pub mod repo;
pub mod service;
pub mod signing;
pub mod ssrf;
