//! `/health`, `/health/live`, `/health/ready` (in the spec) and `/metrics` (Prometheus text,
//! outside it).

pub mod api;
