//! How much the disk store may evict to free disk space when the disk is full: pure data, no
//! files, so the rule is unit-tested without a file system.
//!
//! Why a bound: evicting to make room is right when the store itself fills the disk (its own
//! uploads then reuse the space at once), but when another program keeps filling the disk each
//! eviction's space is taken by that program and the next upload evicts again, until the cache
//! is empty (issue 15: one eviction per upload drained the whole cache under a foreign writer).
//!
//! The rule: an *episode* starts when the disk is found full with nothing freed and not yet
//! written back. Bytes evicted for disk space during it, minus the bytes of the objects the
//! store has committed since it started, are space freed that the store has not used itself
//! ("unspent"; an upload that fails, e.g. one larger than the disk, spends nothing). While the
//! store uses what it frees, unspent stays near zero and eviction goes on for ever (normal LRU churn
//! on a disk smaller than `--max-size`). When others take the freed space, unspent grows; once
//! it reaches half of what the store held when the episode started, no more is evicted for
//! disk space: uploads get 507 and the cache keeps at least half of its bytes (less at most one
//! eviction's worth). The episode ends (eviction resumes with a new base) when the store has
//! written back everything it freed, or when the disk is seen with room for all of it again.

/// Evictions for disk space in one episode may free at most `1 / SHARE_DIVISOR` of the bytes
/// the store held when it started, beyond what the store wrote back since.
pub(super) const SHARE_DIVISOR: u64 = 2;

/// See the module docs. `written` is a running total the caller keeps (an atomic counter of
/// the bytes of every object committed), so that commits need no extra bookkeeping here.
#[derive(Debug, Default)]
pub(super) struct DiskRoom {
    /// Bytes evicted for disk space in this episode.
    evicted: u64,
    /// The running total of bytes written when the episode started.
    written_at_start: u64,
    /// Bytes the store held when the episode started.
    base: u64,
}

impl DiskRoom {
    /// Bytes freed in this episode that the store has not written back, given the running
    /// total of bytes written.
    pub(super) fn unspent(&self, written: u64) -> u64 {
        self.evicted
            .saturating_sub(written.saturating_sub(self.written_at_start))
    }

    /// Whether the store, holding `stored` bytes, may evict more for disk space now; starts an
    /// episode if none is under way.
    pub(super) fn may_evict(&mut self, stored: u64, written: u64) -> bool {
        if self.unspent(written) == 0 {
            *self = DiskRoom {
                evicted: 0,
                written_at_start: written,
                base: stored,
            };
        }
        self.unspent(written) < self.base / SHARE_DIVISOR
    }

    /// Counts `bytes` evicted for disk space.
    pub(super) fn evicted(&mut self, bytes: u64) {
        self.evicted += bytes;
    }

    /// The disk was seen with `available` bytes free: if that covers everything unspent (and
    /// at least `min_room`), nobody took the freed space and the episode ends.
    pub(super) fn seen_free(&mut self, available: u64, written: u64, min_room: u64) {
        if available >= self.unspent(written).max(min_room) {
            *self = DiskRoom::default();
        }
    }
}
