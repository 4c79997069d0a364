//! Users: `/v1/users`.

pub mod api;
pub mod model;
pub mod repo;
pub mod schema;
pub mod service;
