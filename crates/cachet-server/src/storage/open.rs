//! Builds the store a `--storage` spec asks for: each backend wrapped in a [`Tier`] (counters;
//! timeouts and a breaker for a shared one), and a chain as a [`Tiered`] store around both.

use std::sync::Arc;
use std::time::Duration;

use super::budget::UploadBudget;
use super::disk::DiskStore;
use super::redis::RedisStore;
use super::s3::S3Store;
use super::spec::StorageSpec;
use super::tier::Tier;
use super::tiered::Tiered;
use super::{Store, StoreError};

/// Opens the storage. `max_size` bounds a local tier; `ttl` (the server's `--max-age`) is the
/// time-to-live of Redis values. Needs a Tokio runtime (a chain starts its upload workers).
/// A chain's copies to its shared tier get a budget of their own, [`OWN_BUDGET`] bytes: the
/// server shares its `--upload-memory` with them through [`open_with_budget`].
pub fn open(
    spec: &StorageSpec,
    max_size: u64,
    ttl: Option<Duration>,
) -> Result<Arc<dyn Store>, StoreError> {
    open_with_budget(spec, max_size, ttl, &UploadBudget::new(OWN_BUDGET))
}

/// The upload budget of a store opened by [`open`].
pub const OWN_BUDGET: u64 = 128 << 20;

/// [`open`], a chain's background copies taking their buffers from `budget`.
pub fn open_with_budget(
    spec: &StorageSpec,
    max_size: u64,
    ttl: Option<Duration>,
    budget: &Arc<UploadBudget>,
) -> Result<Arc<dyn Store>, StoreError> {
    open_inner(spec, max_size, ttl, true, budget)
}

/// Opens the storage for `cachet server prune`, alongside servers that may be running on it:
/// no size limit (nothing is evicted) and a local tier's uploads in progress left alone.
pub fn open_for_prune(spec: &StorageSpec) -> Result<Arc<dyn Store>, StoreError> {
    open_inner(spec, u64::MAX, None, false, &UploadBudget::new(OWN_BUDGET))
}

fn open_inner(
    spec: &StorageSpec,
    max_size: u64,
    ttl: Option<Duration>,
    server: bool,
    budget: &Arc<UploadBudget>,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match spec {
        StorageSpec::Dir(path) => Arc::new(Tier::local(
            Arc::new(DiskStore::open_with(Some(path), max_size, server)?),
            "dir",
        )),
        StorageSpec::Ephemeral => Arc::new(Tier::local(
            Arc::new(DiskStore::open(None, max_size)?),
            "dir",
        )),
        StorageSpec::Redis(r) => {
            Arc::new(Tier::shared(Arc::new(RedisStore::open(r, ttl)?), "redis"))
        }
        StorageSpec::S3(s) => Arc::new(Tier::shared(Arc::new(S3Store::open(s)?), "s3")),
        StorageSpec::Tiered { local, shared } => Arc::new(Tiered::new(
            open_inner(local, max_size, ttl, server, budget)?,
            open_inner(shared, max_size, ttl, server, budget)?,
            budget,
        )),
    })
}
