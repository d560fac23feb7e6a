//! Statistics of the local cache, shared by every wrapper process.
//!
//! Each wrapper call accumulates a [`Delta`] and applies it once at the end, under a short
//! lock on `stats.lock`, to `stats.json` in the cache directory. One read-modify-write per
//! call keeps the counts exact with any number of concurrent builds.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::call::{Lookup, Problem};
use crate::fsutil;
use crate::local_store::lock;
use crate::reason::{NotStoredReason, PassThroughReason, PerCheckoutReason};

/// Version of the statistics file.
const STATS_VERSION: u32 = 1;

/// The counters, as stored and as shown by `cachet stats --json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Stats {
    /// Format version.
    pub version: u32,
    /// Unix time when counting started (creation or the last `zero-stats`).
    pub since_unix: u64,
    /// Every wrapper call.
    pub calls: u64,
    /// Calls looked up in the cache: each is a hit, a miss or a compile failure (as in the
    /// journal: `hit-*`, `miss*`, `compile-failed` among the records with a pre-key).
    pub cacheable_calls: u64,
    /// Hits in the local cache.
    pub hits_local: u64,
    /// Hits on the shared server.
    pub hits_remote: u64,
    /// Lookups that found nothing, then compiled (a failed compile counts under
    /// `compile_failures` only).
    pub misses: u64,
    /// Misses that the shared server answered without a usable entry (a skipped or
    /// unreachable server counts under `errors`, not here).
    pub misses_remote: u64,
    /// Calls run unchanged, by reason.
    pub pass_through: BTreeMap<String, u64>,
    /// Compiles whose result was not stored, by reason.
    pub not_stored: BTreeMap<String, u64>,
    /// Compiles stored under a key that holds this checkout's location, so that they hit
    /// only here (an input whose path independence could not be proven), by reason.
    pub stored_per_checkout: BTreeMap<String, u64>,
    /// rustc exited with an error (nothing stored).
    pub compile_failures: u64,
    /// Problems inside cachet (the build went on), by kind.
    pub errors: BTreeMap<String, u64>,
    /// Entries written.
    pub entries_written: u64,
    /// Bytes of entries read on hits.
    pub bytes_read: u64,
    /// Bytes of entries written.
    pub bytes_written: u64,
    /// Objects uploaded to the shared server.
    pub uploads: u64,
    /// Uploads that failed and were queued for a retry.
    pub upload_failures: u64,
    /// Bytes uploaded to the shared server.
    pub bytes_uploaded: u64,
    /// Bytes downloaded from the shared server.
    pub bytes_downloaded: u64,
    /// Milliseconds spent in rustc on misses.
    pub compile_millis: u64,
    /// Milliseconds spent serving hits.
    pub hit_millis: u64,
    /// Compile time avoided, in milliseconds: over hits, the compile time recorded when the
    /// entry was stored minus the time to serve it (at least 0), summed per crate: the sum of
    /// the journal's `saved_ms`. Compiler time, not wall-clock time: see `docs/dashboard.md`.
    pub saved_millis: u64,
    /// Call reports delivered to the server's dashboard.
    pub reports_sent: u64,
    /// Call reports dropped, by reason (server unreachable too long, spool full, refused).
    pub reports_dropped: BTreeMap<String, u64>,
    /// The calls again, by language: `rust`, `c`, `c++`, `asm`.
    pub languages: BTreeMap<String, LanguageStats>,
}

/// Why call reports were dropped, as counted in `reports_dropped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The spool reached the spool's cap (`reports.rs`) (the server was unreachable for long).
    SpoolFull,
    /// The outbox reached the outbox's cap; the oldest records went.
    OutboxFull,
    /// Older than the records' maximum age.
    TooOld,
    /// A line that is not a record (a torn write, a newer format).
    Unreadable,
    /// The server answered 404: it has no reports endpoint.
    Unsupported,
    /// The server answered 401 or 403.
    Refused,
    /// The server answered 413 or another 4xx.
    Rejected,
}

impl Dropped {
    /// The key in the statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::SpoolFull => "spool full",
            Dropped::OutboxFull => "undelivered records over the size cap",
            Dropped::TooOld => "older than 7 days",
            Dropped::Unreadable => "unreadable record",
            Dropped::Unsupported => "server has no reports endpoint",
            Dropped::Refused => "token may not report",
            Dropped::Rejected => "batch rejected by the server",
        }
    }
}

/// Counts of one language's calls.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LanguageStats {
    /// Wrapper calls.
    pub calls: u64,
    /// Hits, local or on the server.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Calls run unchanged.
    pub pass_through: u64,
    /// Compiles whose result was not stored.
    pub not_stored: u64,
    /// The compiler exited with an error.
    pub compile_failures: u64,
}

impl LanguageStats {
    fn add(&mut self, d: &LanguageStats) {
        self.calls += d.calls;
        self.hits += d.hits;
        self.misses += d.misses;
        self.pass_through += d.pass_through;
        self.not_stored += d.not_stored;
        self.compile_failures += d.compile_failures;
    }
}

/// Counts from one call, applied at its end.
pub type Delta = Stats;

impl Stats {
    /// Adds every counter of `d`.
    pub fn add(&mut self, d: &Delta) {
        self.calls += d.calls;
        self.cacheable_calls += d.cacheable_calls;
        self.hits_local += d.hits_local;
        self.hits_remote += d.hits_remote;
        self.misses += d.misses;
        self.misses_remote += d.misses_remote;
        self.compile_failures += d.compile_failures;
        self.entries_written += d.entries_written;
        self.bytes_read += d.bytes_read;
        self.bytes_written += d.bytes_written;
        self.uploads += d.uploads;
        self.upload_failures += d.upload_failures;
        self.bytes_uploaded += d.bytes_uploaded;
        self.bytes_downloaded += d.bytes_downloaded;
        self.compile_millis += d.compile_millis;
        self.hit_millis += d.hit_millis;
        self.saved_millis += d.saved_millis;
        self.reports_sent += d.reports_sent;
        for (lang, counts) in &d.languages {
            self.languages.entry(lang.clone()).or_default().add(counts);
        }
        for (map, other) in [
            (&mut self.pass_through, &d.pass_through),
            (&mut self.not_stored, &d.not_stored),
            (&mut self.stored_per_checkout, &d.stored_per_checkout),
            (&mut self.errors, &d.errors),
            (&mut self.reports_dropped, &d.reports_dropped),
        ] {
            for (k, v) in other {
                *map.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// Counts one occurrence under `key` in `map`. Private: each map is reached through the
    /// method for its kind of reason, so a reason cannot land in the wrong map.
    fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
        match map.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                map.insert(key.to_string(), 1);
            }
        }
    }

    /// Counts a problem inside cachet (`errors`).
    pub fn count_problem(&mut self, problem: Problem) {
        Self::bump(&mut self.errors, problem.as_str());
    }

    /// Counts a call run unchanged (`pass_through`), by its reason's label, and returns the
    /// label (what the journal shows).
    pub fn count_pass_through(&mut self, reason: &impl PassThroughReason) -> String {
        let label = reason.label();
        Self::bump(&mut self.pass_through, &label);
        label.into_owned()
    }

    /// Counts a result not stored, or a call whose key could not be computed (`not_stored`).
    pub fn count_not_stored(&mut self, reason: NotStoredReason) {
        Self::bump(&mut self.not_stored, reason.as_str());
    }

    /// Counts an entry stored for this checkout only (`stored_per_checkout`).
    pub fn count_per_checkout(&mut self, reason: PerCheckoutReason) {
        Self::bump(&mut self.stored_per_checkout, reason.as_str());
    }

    /// Counts `n` call reports dropped (`reports_dropped`).
    pub fn count_dropped(&mut self, why: Dropped, n: u64) {
        if n > 0 {
            *self
                .reports_dropped
                .entry(why.as_str().to_string())
                .or_default() += n;
        }
    }

    /// Counts a cacheable call that compiled: a miss, unless nothing was looked up
    /// (`CACHET_RECACHE`), and a miss on the server when the server answered.
    pub fn count_lookup(&mut self, lookup: &Lookup) {
        self.cacheable_calls += 1;
        if lookup.looked_up {
            self.misses += 1;
            if lookup.remote_answered {
                self.misses_remote += 1;
            }
        }
    }

    /// All hits.
    pub fn hits(&self) -> u64 {
        self.hits_local + self.hits_remote
    }

    /// Calls run unchanged.
    pub fn pass_through_total(&self) -> u64 {
        self.pass_through.values().sum()
    }

    /// Files this call's counts under `language` too (called once, before [`apply`]).
    pub fn tally_language(&mut self, language: &str) {
        let counts = LanguageStats {
            calls: self.calls,
            hits: self.hits(),
            misses: self.misses,
            pass_through: self.pass_through_total(),
            not_stored: self.not_stored.values().sum(),
            compile_failures: self.compile_failures,
        };
        self.languages.insert(language.to_string(), counts);
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join("stats.json")
}

/// Reads the statistics (zero when there are none yet).
pub fn read(dir: &Path) -> Stats {
    let Some(bytes) = fs::read(path(dir)).ok() else {
        return Stats::default();
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        // Written in place (see `apply`): a read that met a write half way through is read
        // again once the writer is done.
        let _guard = lock(dir, "stats").ok();
        read_unlocked(dir).unwrap_or_default()
    })
}

/// The statistics as the file holds them now (`None`: no file, or one that does not parse).
fn read_unlocked(dir: &Path) -> Option<Stats> {
    serde_json::from_slice(&fs::read(path(dir)).ok()?).ok()
}

/// Adds `delta` to the stored statistics.
pub fn apply(dir: &Path, delta: &Delta) -> io::Result<()> {
    let _guard = lock(dir, "stats")?;
    let mut s = read_unlocked(dir).unwrap_or_default();
    if s.version == 0 {
        s.version = STATS_VERSION;
        s.since_unix = now_unix();
    }
    s.add(delta);
    // Every call rewrites the file: in place, not by a rename (see `overwrite_in_place`); the
    // lock keeps writers apart.
    fsutil::overwrite_in_place(
        &path(dir),
        &serde_json::to_vec_pretty(&s).unwrap_or_default(),
    )
}

/// Resets the statistics to zero.
pub fn zero(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let _guard = lock(dir, "stats")?;
    let s = Stats {
        version: STATS_VERSION,
        since_unix: now_unix(),
        ..Stats::default()
    };
    fsutil::write_atomic(
        &path(dir),
        &serde_json::to_vec_pretty(&s).unwrap_or_default(),
    )
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::DriverReason;

    #[test]
    fn concurrent_applies_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mut delta = Delta {
                            calls: 1,
                            ..Delta::default()
                        };
                        delta.count_pass_through(&DriverReason::NotClippy);
                        apply(&d, &delta).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = read(dir.path());
        assert_eq!(s.calls, 200);
        assert_eq!(s.pass_through["workspace wrapper not clippy-driver"], 200);
    }
}
