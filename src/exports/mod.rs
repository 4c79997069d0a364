//! Exports: long-running operations that write a user's posts to an NDJSON file.

pub mod job;
