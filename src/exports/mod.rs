//! Exports: long-running operations that write every post a user authored (drafts included)
//! to an NDJSON file, in the representation of the API version that asked.
//!
//! Invariants, in one place:
//! - `POST /exports` writes the operation and its job in one transaction (`service::start`);
//!   the job (`job::run`) does the work on whichever instance claims it.
//! - The file is stored as ordered chunks in `export_chunks`; memory stays bounded by one batch
//!   of posts plus one chunk, whatever the number of posts, when writing and when serving.
//! - A job that runs again (its instance died) starts the file over: it deletes the chunks it
//!   finds and writes them anew, so a file is never a mix of two runs.
//! - Cancelling marks the operation `canceled`; the job checks between batches, stops and
//!   removes what it wrote. A finished operation never changes again.
//! - Operations and their files are removed `OPERATION_RETENTION` (24 h) after creation.

pub mod api;
pub mod job;
pub mod model;
pub mod repo;
pub mod service;
