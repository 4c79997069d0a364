//! Tests written separately.
