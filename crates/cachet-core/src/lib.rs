//! Types shared by every part of cachet.
//!
//! This crate is deliberately small and free of I/O frameworks: the wrapper (started for every
//! rustc call) and the server both link it, so it holds only what both must agree on — the
//! digest type, the versioned cache-entry format, size parsing, the wire layout of keys, the call
//! reports clients send to the dashboard, and the one list of `CACHET_*` environment variables.
#![deny(missing_docs)]

pub mod digest;
pub mod entry;
pub mod env_vars;
pub mod report;
pub mod size;
pub mod wire;

pub use digest::{Digest, Hasher};
pub use size::{format_size, parse_size};
