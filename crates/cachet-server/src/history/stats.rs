//! The numbers the history adds up: a set of calls' [`Stats`], what the server itself saw
//! ([`ServerSeen`], [`Evictions`]), and the buckets that hold them per namespace, crate and
//! client ([`NsBucket`], [`Bucket`]). Every type here is a sum, so buckets of different hours,
//! days or replicas add up with `merge` and nothing is counted twice.

use std::collections::BTreeMap;

use cachet_core::report::{CallReport, MissCause, Outcome};
use serde::{Deserialize, Serialize};

/// The name distinct names fold into once a bucket holds its cap of them.
pub const OTHER: &str = "(other)";

/// `a.f += b.f` for each named counter: the sums below are all field by field.
macro_rules! add_fields {
    ($a:expr, $b:expr; $($f:ident),+ $(,)?) => { $( $a.$f += $b.$f; )+ };
}

/// Numbers for a set of calls (a namespace, crate or client in a bucket or a range).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Reports received.
    pub calls: u64,
    /// Served from a client's local cache.
    pub hits_local: u64,
    /// Served from the server.
    pub hits_remote: u64,
    /// Compiled and stored.
    pub misses: u64,
    /// Compiled, not stored.
    pub misses_not_stored: u64,
    /// Not cacheable, run unchanged.
    pub pass_through: u64,
    /// The compiler failed.
    pub compile_failed: u64,
    /// Time saved by hits: per hit, `stored_compile_ms - restore_ms` (at least 0).
    pub saved_ms: u64,
    /// Time spent compiling (every call).
    pub compile_ms: u64,
    /// Time spent compiling misses: what the cache did not save.
    pub lost_ms: u64,
    /// Time spent serving hits.
    pub restore_ms: u64,
    /// Bytes of outputs.
    pub bytes: u64,
    /// The latest call's time (unix ms).
    #[serde(default)]
    pub last_ms: u64,
    /// Misses by cause: count and compile time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub causes: BTreeMap<MissCause, CauseStats>,
    /// Pass-throughs (and results not stored) by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u64>,
}

/// Misses of one cause.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct CauseStats {
    /// How many.
    pub count: u64,
    /// Their compile time.
    pub compile_ms: u64,
}

impl Stats {
    /// Hits of either tier.
    pub fn hits(&self) -> u64 {
        self.hits_local + self.hits_remote
    }

    /// Hits over cacheable calls (hits and misses), or `None` with no cacheable call.
    pub fn hit_rate(&self) -> Option<f64> {
        let cacheable = self.hits() + self.misses + self.misses_not_stored;
        (cacheable > 0).then(|| self.hits() as f64 / cacheable as f64)
    }

    pub(crate) fn add_report(&mut self, r: &CallReport, max_names: usize) {
        self.calls += 1;
        self.last_ms = self.last_ms.max(r.time_ms);
        self.compile_ms += r.compile_ms;
        self.bytes += r.bytes;
        match r.outcome {
            Outcome::HitLocal => self.hits_local += 1,
            Outcome::HitRemote => self.hits_remote += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::MissNotStored => self.misses_not_stored += 1,
            Outcome::CompileFailed => self.compile_failed += 1,
            Outcome::PassThrough => self.pass_through += 1,
        }
        if r.outcome.is_hit() {
            self.saved_ms += saved_ms(r);
            self.restore_ms += r.restore_ms;
        }
        if r.outcome.is_miss() {
            self.lost_ms += r.compile_ms;
            let c = self
                .causes
                .entry(r.cause.unwrap_or(MissCause::Other))
                .or_default();
            c.count += 1;
            c.compile_ms += r.compile_ms;
        }
        if matches!(r.outcome, Outcome::PassThrough | Outcome::MissNotStored) {
            let reason = r.reason.as_deref().unwrap_or("unknown");
            let key = if self.reasons.len() < max_names || self.reasons.contains_key(reason) {
                reason
            } else {
                OTHER
            };
            *self.reasons.entry(key.to_string()).or_default() += 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        add_fields!(self, other; calls, hits_local, hits_remote, misses, misses_not_stored,
            pass_through, compile_failed, saved_ms, compile_ms, lost_ms, restore_ms, bytes);
        self.last_ms = self.last_ms.max(other.last_ms);
        for (cause, c) in &other.causes {
            let mine = self.causes.entry(*cause).or_default();
            add_fields!(mine, c; count, compile_ms);
        }
        for (reason, n) in &other.reasons {
            match self.reasons.get_mut(reason) {
                Some(mine) => *mine += n,
                None => {
                    self.reasons.insert(reason.clone(), *n);
                }
            }
        }
    }
}

/// Time a hit saved: the compile time stored with the entry minus the time to serve it.
pub fn saved_ms(r: &CallReport) -> u64 {
    r.stored_compile_ms.saturating_sub(r.restore_ms)
}

/// What the server itself saw of a namespace's objects.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerSeen {
    /// Object GETs answered with the object.
    pub hits: u64,
    /// Object GETs answered 404.
    pub misses: u64,
    /// Bytes sent by those hits.
    pub bytes_out: u64,
}

/// Objects the server's disk store evicted for size.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Evictions {
    /// How many.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Sum of their ages since last use, in milliseconds (divide by `count` for the mean).
    pub age_ms_total: u64,
}

impl Evictions {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &Evictions) {
        add_fields!(self, o; count, bytes, age_ms_total);
    }
}

/// One namespace in one bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NsBucket {
    /// Every reported call.
    pub total: Stats,
    /// By crate.
    #[serde(default)]
    pub crates: BTreeMap<String, Stats>,
    /// By client.
    #[serde(default)]
    pub clients: BTreeMap<String, Stats>,
    /// Object GETs the server answered.
    #[serde(default)]
    pub server: ServerSeen,
}

impl NsBucket {
    pub(crate) fn entries(&self) -> usize {
        1 + self.crates.len() + self.clients.len()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &NsBucket) {
        self.merge_with(other, true);
    }

    /// Adds `other` into `self`; without `names`, crates are skipped and clients only named
    /// (a page that shows totals needs no more, and a year of crates is most of the work).
    pub fn merge_with(&mut self, other: &NsBucket, names: bool) {
        self.total.merge(&other.total);
        if names {
            merge_named(&mut self.crates, &other.crates);
            merge_named(&mut self.clients, &other.clients);
        } else {
            for k in other.clients.keys() {
                if !self.clients.contains_key(k) {
                    self.clients.insert(k.clone(), Stats::default());
                }
            }
        }
        add_fields!(self.server, other.server; hits, misses, bytes_out);
    }
}

fn merge_named(mine: &mut BTreeMap<String, Stats>, other: &BTreeMap<String, Stats>) {
    for (k, s) in other {
        match mine.get_mut(k) {
            Some(m) => m.merge(s),
            None => {
                mine.insert(k.clone(), s.clone());
            }
        }
    }
}

/// An hour's or a day's numbers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bucket {
    /// By namespace.
    pub namespaces: BTreeMap<String, NsBucket>,
    /// The disk store's evictions (all namespaces).
    #[serde(default)]
    pub evictions: Evictions,
}

impl Bucket {
    pub(crate) fn entries(&self) -> usize {
        1 + self
            .namespaces
            .values()
            .map(NsBucket::entries)
            .sum::<usize>()
    }

    pub(crate) fn merge(&mut self, other: &Bucket) {
        for (ns, b) in &other.namespaces {
            self.namespaces.entry(ns.clone()).or_default().merge(b);
        }
        self.evictions.merge(&other.evictions);
    }
}

/// A detailed record: a call worth reading one by one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detail {
    /// The namespace it was reported to.
    pub namespace: String,
    /// The report.
    #[serde(flatten)]
    pub report: CallReport,
}
