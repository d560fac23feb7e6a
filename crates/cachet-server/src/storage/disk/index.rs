//! The disk store's index: the size and LRU order of every object, and the bytes reserved by
//! uploads in progress. Pure data, no files: the store renames and deletes files around it
//! (as bazel-remote keeps its LRU apart from `disk.go`), so every rule about what is counted
//! can be unit-tested without a file system.
//!
//! Invariant kept by [`Index::reserve`]: `total + reserved` never exceeds the limit it is
//! given, so `--max-size` holds with any number of concurrent writers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::room::DiskRoom;

/// An object's place in the index: its namespace (interned) and the digest of its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Slot {
    pub(super) ns: Arc<str>,
    pub(super) hash: [u8; 32],
}

/// Orders entries by last use: (milliseconds since the epoch, tie-breaking sequence number).
pub(super) type Stamp = (u64, u64);

#[derive(Clone, Copy)]
pub(super) struct Meta {
    pub(super) size: u64,
    pub(super) stamp: Stamp,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct Index {
    pub(super) map: HashMap<Slot, Meta>,
    lru: BTreeMap<Stamp, Slot>,
    names: HashSet<Arc<str>>,
    pub(super) seq: u64,
    /// Bytes of the objects in `map`.
    pub(super) total: u64,
    /// Bytes reserved by uploads in progress (written to `tmp/` or about to be).
    pub(super) reserved: u64,
    /// Bytes of objects evicted for size (for the dashboard).
    pub(super) evicted_bytes: u64,
    /// Sum of the ages since last use of objects evicted for size, in ms (for the dashboard).
    pub(super) evicted_age_ms: u64,
    /// How much more may be evicted to free disk space (see `room`).
    pub(super) room: DiskRoom,
}

/// What [`Index::reserve`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reservation {
    /// Reserved; these objects were removed from the index to make room (their files are the
    /// caller's to delete).
    Granted(Vec<Slot>),
    /// Uploads in progress alone already hold the limit: nothing was evicted.
    Refused,
}

impl Index {
    pub(super) fn intern(&mut self, ns: &str) -> Arc<str> {
        if let Some(n) = self.names.get(ns) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(ns);
        self.names.insert(n.clone());
        n
    }

    fn stamp(&mut self, millis: u64) -> Stamp {
        self.seq += 1;
        (millis, self.seq)
    }

    pub(super) fn upsert(&mut self, slot: Slot, size: u64, millis: u64) {
        self.remove(&slot);
        let stamp = self.stamp(millis);
        self.lru.insert(stamp, slot.clone());
        self.map.insert(slot, Meta { size, stamp });
        self.total += size;
    }

    /// Marks `slot` used at `millis`; false if the index does not know it.
    pub(super) fn touch(&mut self, slot: &Slot, millis: u64) -> bool {
        let stamp = self.stamp(millis);
        let Some(meta) = self.map.get_mut(slot) else {
            return false;
        };
        self.lru.remove(&meta.stamp);
        meta.stamp = stamp;
        self.lru.insert(stamp, slot.clone());
        true
    }

    /// [`Index::remove`] for an eviction: counts its bytes and age for the dashboard.
    fn evict(&mut self, slot: &Slot) -> Option<Meta> {
        let meta = self.remove(slot)?;
        self.evicted_bytes += meta.size;
        self.evicted_age_ms += now_millis().saturating_sub(meta.stamp.0);
        Some(meta)
    }

    pub(super) fn remove(&mut self, slot: &Slot) -> Option<Meta> {
        let meta = self.map.remove(slot)?;
        self.lru.remove(&meta.stamp);
        self.total -= meta.size;
        Some(meta)
    }

    /// Reserves `n` bytes for an upload under `limit`, evicting least recently used objects
    /// as needed; refuses (evicting nothing) when the reservations alone would pass it.
    pub(super) fn reserve(&mut self, n: u64, limit: u64) -> Reservation {
        if self.reserved.saturating_add(n) > limit {
            return Reservation::Refused;
        }
        let mut victims = Vec::new();
        while self.total + self.reserved + n > limit {
            let Some((_, slot)) = self.oldest() else {
                break;
            };
            self.evict(&slot);
            victims.push(slot);
        }
        self.reserved += n;
        Reservation::Granted(victims)
    }

    /// Gives back `n` reserved bytes (an upload abandoned, or committed: then
    /// [`Index::upsert`] counts the object).
    pub(super) fn release(&mut self, n: u64) {
        debug_assert!(
            n <= self.reserved,
            "releasing {n} of {} reserved",
            self.reserved
        );
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Removes least recently used objects until they add up to `bytes` (to free disk space
    /// that other files took); returns them.
    pub(super) fn evict_bytes(&mut self, bytes: u64) -> Vec<Slot> {
        let mut freed = 0;
        let mut victims = Vec::new();
        while freed < bytes {
            let Some((_, slot)) = self.oldest() else {
                break;
            };
            freed += self.evict(&slot).map_or(0, |m| m.size);
            victims.push(slot);
        }
        victims
    }

    /// Removes least recently used objects until `total` fits `limit`; returns them.
    pub(super) fn evict_over(&mut self, limit: u64) -> Vec<Slot> {
        let mut victims = Vec::new();
        while self.total > limit {
            let Some((_, slot)) = self.oldest() else {
                break;
            };
            self.evict(&slot);
            victims.push(slot);
        }
        victims
    }

    /// Removes up to `max` objects last used before `cutoff` (ms); returns them.
    pub(super) fn take_older_than(&mut self, cutoff: u64, max: usize) -> Vec<Slot> {
        let mut victims = Vec::new();
        while victims.len() < max {
            match self.oldest() {
                Some(((millis, _), slot)) if millis < cutoff => {
                    self.remove(&slot);
                    victims.push(slot);
                }
                _ => break,
            }
        }
        victims
    }

    fn oldest(&self) -> Option<(Stamp, Slot)> {
        self.lru
            .first_key_value()
            .map(|(s, slot)| (*s, slot.clone()))
    }
}

pub(super) fn now_millis() -> u64 {
    millis_of(SystemTime::now())
}

pub(super) fn millis_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
