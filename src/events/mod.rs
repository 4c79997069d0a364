//! Events: one per committed post change, recorded in the change's own transaction
//! (`service::record`), read by ADMINs (`GET /v{n}/events`) and delivered to webhooks, each in
//! the representation of the version it is read or delivered in (`EventView`).

pub mod api;
pub mod model;
pub mod repo;
pub mod service;
pub mod v1;
pub mod v2;
