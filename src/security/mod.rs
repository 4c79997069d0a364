//! Security primitives every layer may use, resource-free: access tokens (`jwt`), password
//! hashing (`password`, argon2) and roles and permissions (`rbac`). The HTTP kit reads tokens
//! through them; the auth resource (`auth/`) builds sessions on them.

pub mod jwt;
pub mod password;
pub mod rbac;
