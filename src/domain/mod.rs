//! Resource-free building blocks of the domain, usable from every layer: validated text
//! (`text`), keyset paging (`paging`), optimistic concurrency (`preconditions`: entity tags
//! and the caller's expectations), and the API version stored work renders in
//! (`representation`). No HTTP, SQL or Redis here: the API layer turns these into
//! headers, parameters and schemas.

pub mod paging;
pub mod preconditions;
pub mod representation;
pub mod text;
