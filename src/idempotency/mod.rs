//! Stored `Idempotency-Key` records (PostgreSQL, per user, 24 hours). The HTTP side — reading
//! the key, fingerprinting the request, replaying the stored response — is
//! `http::idempotency`.

pub mod repo;
