//! The object store behind the HTTP API: one trait, [`Store`], with one file per backend
//! ([`disk`], [`redis`], [`s3`]) and wrappers that compose as stores around stores: [`tier`]
//! (per-tier counters and latency; for a shared tier also a timeout and a circuit breaker) and
//! [`tiered`] (a bounded local tier in front of a shared one). [`open`] builds the stack a
//! `--storage` spec asks for. See `docs/server.md` ("Storage tiers") for the reasoning.
//!
//! The HTTP layer owns the request (limits, timeouts, auth); a store only owns bytes. Uploads
//! are pushed chunk by chunk into an [`Upload`] and become visible only on
//! [`Upload::commit`]; dropping an upload abandons it. Reads return the size up front (for
//! `Content-Length`) and the bytes either whole (small objects, one system call) or as a
//! stream, so memory stays bounded whatever the object sizes and the number of clients.

pub mod budget;
pub mod disk;
pub mod open;
pub mod query;
pub mod redis;
pub mod report;
pub mod s3;
pub mod spec;
pub mod tier;
pub mod tiered;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use report::{StoreReport, TierReport, UploadStats, Usage};

/// The namespace the server keeps for itself in a shared store: the dashboard's history
/// shards and their registry (`history/shared.rs`). They are not cache objects: age-based
/// pruning (`--max-age`, `cachet server prune`) leaves them alone (the history has its own
/// retention), and no client can reach them (namespaces starting with `_` are refused).
pub const HISTORY_NAMESPACE: &str = "_dashboard";

/// A boxed future, so the trait stays object-safe (`Arc<dyn Store>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A validated object name: namespace and key, both checked by `cachet_core::wire`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// The namespace (first path segment).
    pub namespace: String,
    /// The key (the rest of the path).
    pub key: String,
}

/// What is known about a stored object.
#[derive(Debug, Clone, Copy)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// When it was written.
    pub modified: SystemTime,
}

/// The bytes of an object being read.
pub enum ObjectBody {
    /// The whole object, already in memory (small objects).
    Full(Bytes),
    /// Chunks read from the backend as the client consumes them.
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
}

#[cfg(test)]
impl ObjectBody {
    /// All the bytes, whichever form they came in (tests compare them whole).
    pub async fn into_vec(self) -> std::io::Result<Vec<u8>> {
        use futures_util::TryStreamExt;
        match self {
            ObjectBody::Full(b) => Ok(b.to_vec()),
            ObjectBody::Stream(s) => {
                s.try_fold(Vec::new(), |mut all, chunk| async move {
                    all.extend_from_slice(&chunk);
                    Ok(all)
                })
                .await
            }
        }
    }
}

/// An object found by [`Store::get`].
pub struct Object {
    /// Size and age.
    pub meta: ObjectMeta,
    /// The bytes.
    pub body: ObjectBody,
}

/// An upload in progress; nothing is visible to readers until [`Upload::commit`].
pub trait Upload: Send {
    /// Appends a chunk.
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Makes the object visible, replacing any previous version atomically.
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>>;
    /// Bytes this upload holds in memory now (the buffers it allocated). The HTTP layer counts
    /// them against `--upload-memory` after every chunk, so every store's buffering is bounded
    /// by the same budget: a disk write buffer, a Redis value assembled whole, an S3 part.
    fn buffered(&self) -> u64;
}

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done (`create`, `rename`, ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task died (panicked or was cancelled).
    #[error("failed to finish a storage task")]
    Task(#[from] tokio::task::JoinError),
    /// A Redis or S3 request failed.
    #[error("failed to {op} on {backend}: {message}")]
    Backend {
        /// `redis` or `s3`.
        backend: &'static str,
        /// What was being done (`get`, `put`, ...).
        op: &'static str,
        /// What the client library said (never contains credentials).
        message: String,
    },
    /// A shared tier failed recently and is skipped until it is probed again.
    #[error("the {tier} storage tier is unavailable (it failed recently; retried automatically)")]
    Unavailable {
        /// The tier's backend name.
        tier: &'static str,
    },
    /// No room for an upload: the disk is full (and evicting did not help), or uploads in
    /// progress already reserve the whole size limit.
    #[error("no room for the upload in {path}: {reason}")]
    Full {
        /// The store's root.
        path: PathBuf,
        /// Why, safe to show a client.
        reason: &'static str,
    },
    /// `cachet server prune` found a running server using the store: deleting its files
    /// behind its back would leave its index counting objects that are gone.
    #[error(
        "a running cachet server uses the store in {path}: prune through it \
         (`curl -X POST -H 'Authorization: Bearer ADMIN_TOKEN' SERVER/_admin/prune/30d`), \
         let its --max-age prune it, or stop it first"
    )]
    InUse {
        /// The store's root.
        path: PathBuf,
    },
    /// The object is larger than the backend can hold in one value.
    #[error("object of {size} bytes is larger than {backend}'s limit of {limit} bytes")]
    TooLarge {
        /// The backend (`redis`).
        backend: &'static str,
        /// Its limit.
        limit: u64,
        /// The object's size.
        size: u64,
    },
}

/// A place that stores objects by [`ObjectId`].
pub trait Store: Send + Sync + 'static {
    /// Size and age of an object, or `None`.
    fn head(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<ObjectMeta>, StoreError>>;
    /// The object, or `None`.
    fn get(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<Object>, StoreError>>;
    /// Starts an upload of `id`.
    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>>;
    /// Removes an object; true if it existed.
    fn delete(&self, id: &ObjectId) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Removes every object of a namespace; returns how many the index knew.
    fn purge_namespace(&self, namespace: &str) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Checks that the store can take writes (for `/readyz`).
    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Removes objects not used (or, where the backend cannot tell use, not written) for
    /// longer than `older_than`; returns how many. An object being read is never cut short:
    /// a disk reader keeps its open file, a Redis value is read in one command, and an S3 GET
    /// in progress is not affected by a delete.
    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Current sizes and counters (cheap: polled by `cachet server prune` and the history).
    fn usage(&self) -> Usage;
    /// Everything the store reports for `/metrics`, `/stats` and the dashboard: its sizes, and
    /// one entry per tier (only the [`tier::Tier`] wrapper and stores made of tiers have
    /// any), and a chain's upload queue.
    fn report(&self) -> StoreReport {
        StoreReport::of_usage(self.usage())
    }
    /// The largest object this store takes when it has a limit of its own (Redis's value
    /// size), with the backend's name: a larger upload is refused before its body is buffered.
    fn max_upload(&self) -> Option<(&'static str, u64)> {
        None
    }
}
