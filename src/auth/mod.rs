//! Authentication as a resource: refresh-token sessions (`service`, `repo`) and the
//! `/v{n}/auth` endpoints (`api`), on the primitives of `security` (tokens, passwords, roles).

pub mod api;
pub mod repo;
pub mod service;
