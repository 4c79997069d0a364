//! Posts: one domain (`model`, `repo`, `service`), one view per API version (`v1`: `published`;
//! `v2`: `status`, `publishedAt`, `tags`).

pub mod model;
pub mod repo;
pub mod schema;
pub mod service;
pub mod v1;
pub mod v2;
