//! Airports: `/v1/airports`.

pub mod api;
pub mod model;
pub mod repo;
pub mod schema;
pub mod service;
