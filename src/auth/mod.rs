//! Authentication: access tokens (`jwt`), password hashing (`password`), roles and permissions
//! (`rbac`), refresh-token sessions (`service`, `repo`) and the `/v1/auth` endpoints (`api`).

pub mod api;
pub mod jwt;
pub mod password;
pub mod rbac;
pub mod repo;
pub mod service;
