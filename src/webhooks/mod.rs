//! Webhooks: endpoints that receive events, signed (Standard Webhooks), retried on a schedule.

pub mod jobs;
