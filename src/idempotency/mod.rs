//! `Idempotency-Key`: the rules (`service`: ownership, replay, retention) and the stored records
//! (`repo`, PostgreSQL, per user). The HTTP side — reading the key, fingerprinting the request,
//! turning a stored response into a response — is `http::idempotency`.

pub mod repo;
pub mod service;
