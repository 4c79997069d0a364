//! Posts: `/v1/posts`.

pub mod api;
pub mod model;
pub mod repo;
pub mod service;
