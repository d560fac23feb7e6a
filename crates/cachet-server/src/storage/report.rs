//! What a store tells `/metrics`, `/stats` and the dashboard about itself: one
//! [`StoreReport`] from [`super::Store::report`], whatever the stack of stores. A plain-data
//! module that the stores fill and the metrics layer reads, so neither imports the other.

use std::collections::BTreeMap;

use crate::histogram::Histogram;

/// Everything a store reports: its sizes, one entry per tier, and the upload queue of a chain.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreReport {
    /// Sizes and counters of the store (of the local tier, for a chain).
    pub usage: Usage,
    /// Hits, misses, errors and latency of each tier, local first.
    pub tiers: Vec<TierReport>,
    /// The upload queue to the shared tier, for a chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploads: Option<UploadStats>,
}

impl StoreReport {
    /// The report of a store that is neither a tier nor a chain: its sizes only.
    pub fn of_usage(usage: Usage) -> StoreReport {
        StoreReport {
            usage,
            tiers: Vec::new(),
            uploads: None,
        }
    }
}

/// One tier's counters, as reported to `/metrics` and `/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TierReport {
    /// `local` (the bounded tier in front), or `shared` (Redis or S3).
    pub tier: &'static str,
    /// `dir`, `redis` or `s3`.
    pub backend: &'static str,
    /// GETs answered by this tier.
    pub hits: u64,
    /// GETs of objects this tier does not have.
    pub misses: u64,
    /// Calls that failed (including timeouts and calls skipped while the tier was down).
    pub errors: u64,
    /// Objects written.
    pub writes: u64,
    /// Objects refused for their size.
    pub refused: u64,
    /// False while the breaker is open (the tier failed recently).
    pub available: bool,
    /// Latency per operation (`get`, `head`, `put`, `delete`), as a histogram.
    #[serde(skip)]
    pub latency: Vec<(&'static str, Histogram)>,
    /// Average latency per operation in milliseconds, for `/stats`.
    pub latency_ms: BTreeMap<&'static str, f64>,
}

/// Counters of a chain's upload queue to its shared tier, for `/metrics` and `/stats`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct UploadStats {
    /// Writes accepted for upload (including coalesced ones).
    pub queued: u64,
    /// Writes of an object already waiting or uploading, merged into one more upload of it.
    pub coalesced: u64,
    /// Objects copied to the shared tier.
    pub uploaded: u64,
    /// Names dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Objects evicted from the local tier before their upload.
    pub dropped_evicted: u64,
    /// Objects the shared tier refused (too large for it).
    pub refused: u64,
    /// Uploads that failed every try.
    pub failed: u64,
    /// Names in the queue now.
    pub pending: u64,
}

/// Sizes and counters a store reports for `/metrics` and `/stats`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// Bytes stored (objects known to the index).
    pub stored_bytes: u64,
    /// Objects stored (known to the index).
    pub objects: u64,
    /// The size limit.
    pub max_size: u64,
    /// Objects evicted to stay under the size limit.
    pub evictions: u64,
    /// Bytes of those objects.
    pub evicted_bytes: u64,
    /// Sum of their ages since last use at eviction, in milliseconds (for the dashboard).
    pub evicted_age_ms: u64,
    /// Objects pruned for exceeding the maximum age.
    pub pruned: u64,
    /// True once the start-up scan of existing objects has finished.
    pub index_ready: bool,
}
