//! The dashboard's history: what clients reported and what the server saw, bounded in time and
//! size, kept where a restart keeps it.
//!
//! Why this shape:
//! - A year of a hundred clients is millions of calls; the dashboard needs sums, not calls. So
//!   every record is added at once to a per-**hour** rollup (per namespace: totals, per crate,
//!   per client), and hours older than [`Limits::hours_kept`] are folded into per-**day**
//!   rollups, kept for [`Limits::days_kept`]. Hours and days hold disjoint data, so a range
//!   query adds both without counting anything twice, and rendering a year reads ~400 buckets.
//! - Only calls worth reading one by one (misses, pass-throughs, failures: "each miss and what
//!   differed") are also kept in **detail**, newest [`Limits::max_records`] of them. Hits are
//!   only counted.
//! - Every map that a client's input can grow (namespaces, crates, clients, reasons) is capped
//!   per bucket (past the cap, names fold into `(other)`), and the number of rollup entries as
//!   a whole is capped by [`Limits::max_entries`] (the oldest buckets go first): a flood of
//!   records with made-up names cannot grow the history past its caps.
//! - Persistence is one JSON document ([`file`]), written at most every [`SAVE_PERIOD`] while
//!   something changed and once at shutdown: for a `dir:` store to a file beside the objects
//!   (`<dir>/dashboard-v1.json`, outside `objects-v1/`, so the LRU never evicts it), and with a
//!   shared Redis or S3 tier also as this replica's **shard** in the shared store ([`shared`]).
//!   Each replica writes only its own shard and reads the others': since every number is a
//!   sum, a query adds this replica's data and the other shards, and replicas sharing a store
//!   show one history without ever writing the same document.
//! - The server's own view (object GETs that hit or missed, per namespace; evictions of its
//!   disk store with bytes and age) is added to the same hourly buckets, so unmodified sccache
//!   and ccache clients show up too.

mod file;
pub mod shared;
mod stats;

pub use stats::*;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachet_core::report::{CallReport, REPORT_VERSION};
use serde::{Deserialize, Serialize};

/// Version of the history file's format.
pub const FILE_VERSION: u32 = 1;
/// Name of the history file in a `dir:` store's root.
pub const FILE_NAME: &str = "dashboard-v1.json";
/// How often a changed history is written to its file.
pub const SAVE_PERIOD: Duration = Duration::from_secs(10);
/// Milliseconds in an hour.
pub const HOUR_MS: u64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// How much history is kept.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Hourly buckets younger than this many hours stay hourly; older ones become daily.
    pub hours_kept: u64,
    /// Daily buckets older than this many days are dropped.
    pub days_kept: u64,
    /// Detailed records (misses, pass-throughs, failures) kept, newest first.
    pub max_records: usize,
    /// Distinct namespaces, crates or clients per bucket and namespace before `(other)`.
    pub max_names: usize,
    /// Rollup entries (a namespace's, crate's or client's numbers in one bucket) in total.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hours_kept: 8 * 24,
            days_kept: 400,
            max_records: 20_000,
            max_names: 1_000,
            max_entries: 400_000,
        }
    }
}

/// What the file (and a replica's shard) holds. Buckets and records are shared (`Arc`), so a
/// save copies the whole of it under the lock in well under a millisecond and writes the copy
/// outside (a year for 100 clients is tens of megabytes of JSON); the next change to a bucket
/// the copy still holds copies that one bucket ([`Arc::make_mut`]).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Data {
    version: u32,
    /// Detailed records, oldest first.
    details: VecDeque<Arc<Detail>>,
    /// Hour start (unix ms) → bucket.
    hours: BTreeMap<u64, Arc<Bucket>>,
    /// Day start (unix ms, UTC) → bucket.
    days: BTreeMap<u64, Arc<Bucket>>,
    /// Reports refused as malformed or of an unknown version.
    #[serde(default)]
    skipped: u64,
    /// Reports dated before the window kept (their own time is older than `days_kept`).
    #[serde(default)]
    too_old: u64,
    /// The replica that wrote it, once it shares a store: a restart keeps its name, so its
    /// shard is overwritten, never left beside a copy of the same numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<String>,
    /// Rollup entries in `hours` and `days` (kept up to date, not saved).
    #[serde(skip)]
    entries: usize,
}

impl Data {
    fn new() -> Data {
        Data {
            version: FILE_VERSION,
            ..Data::default()
        }
    }

    fn count_entries(&mut self) {
        self.entries = self
            .hours
            .values()
            .chain(self.days.values())
            .map(|b| b.entries())
            .sum();
    }

    /// Adds the buckets overlapping `q` to `out` (a day bucket counts whole).
    fn add_range(&self, q: &Query, names: bool, out: &mut Range) {
        let buckets = self
            .days
            .iter()
            .map(|(start, b)| (*start, DAY_MS, b))
            .chain(self.hours.iter().map(|(start, b)| (*start, HOUR_MS, b)));
        for (start, len, bucket) in buckets {
            if start + len <= q.since_ms || start >= q.until_ms {
                continue;
            }
            let mut totals = BTreeMap::new();
            for (ns, nb) in &bucket.namespaces {
                if !q.wants(ns) {
                    continue;
                }
                out.namespaces
                    .entry(ns.clone())
                    .or_default()
                    .merge_with(nb, names);
                totals.insert(ns.clone(), nb.total.clone());
            }
            out.evictions.merge(&bucket.evictions);
            out.series.push((start, len, totals, bucket.evictions));
        }
    }

    /// Detailed records in the range that `keep` accepts, newest first, at most `limit`.
    fn add_details(
        &self,
        q: &Query,
        limit: usize,
        keep: &mut dyn FnMut(&Detail) -> bool,
        out: &mut Vec<Detail>,
    ) {
        out.extend(
            self.details
                .iter()
                .rev()
                .filter(|r| {
                    r.report.time_ms >= q.since_ms
                        && r.report.time_ms < q.until_ms
                        && q.wants(&r.namespace)
                        && keep(r)
                })
                .take(limit)
                .map(|r| Detail::clone(r)),
        );
    }

    fn namespaces(&self, out: &mut BTreeSet<String>) {
        for b in self.hours.values().chain(self.days.values()) {
            out.extend(b.namespaces.keys().cloned());
        }
    }
}

/// A time range and the namespaces to read.
#[derive(Debug, Clone)]
pub struct Query {
    /// Start, unix ms (inclusive).
    pub since_ms: u64,
    /// End, unix ms (exclusive).
    pub until_ms: u64,
    /// Namespaces to include; `None` = all.
    pub namespaces: Option<BTreeSet<String>>,
}

impl Query {
    fn wants(&self, ns: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|set| set.contains(ns))
    }
}

/// A range's numbers per namespace, and the buckets they came from (for time series).
#[derive(Debug, Default)]
pub struct Range {
    /// Everything in the range, by namespace.
    pub namespaces: BTreeMap<String, NsBucket>,
    /// Evictions in the range.
    pub evictions: Evictions,
    /// Per bucket (start ms, length ms): namespace totals and evictions, oldest first. With
    /// other replicas' shards, several entries may share a start.
    pub series: Vec<(u64, u64, BTreeMap<String, Stats>, Evictions)>,
}

/// Facts about the history itself.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryInfo {
    /// Detailed records kept (by this replica).
    pub records: usize,
    /// Their cap.
    pub max_records: usize,
    /// Rollup entries kept (by this replica).
    pub entries: usize,
    /// Their cap.
    pub max_entries: usize,
    /// Start of the oldest bucket (unix ms), if any.
    pub oldest_ms: Option<u64>,
    /// Reports refused (malformed or an unknown version) since the history began.
    pub skipped: u64,
    /// Reports dated before the kept window, not counted.
    pub too_old: u64,
    /// Where it is saved on local disk; `None` = not on local disk.
    pub file: Option<String>,
    /// Whether this history is shared with replicas through a Redis or S3 store.
    pub shared: bool,
    /// This replica's name in the shared store (with `shared`).
    pub replica: Option<String>,
    /// Other replicas whose shards this history adds in.
    pub other_replicas: Vec<String>,
}

/// The history: thread-safe, cheap to add to.
pub struct History {
    /// This replica's data. A std mutex: held only for in-memory updates, never across an
    /// await or I/O.
    data: Mutex<Data>,
    /// Other replicas' shards, by replica name, as last read from the shared store.
    others: Mutex<BTreeMap<String, Arc<Data>>>,
    /// Where it is saved, if anywhere.
    path: Option<PathBuf>,
    /// The caps.
    limits: Limits,
    /// Set by every change, cleared by a save to the file.
    dirty: AtomicBool,
    /// Set by every change, cleared by a write of the shard.
    shard_dirty: AtomicBool,
    /// Whether it syncs with a shared store.
    shared: AtomicBool,
    /// The store's eviction counters (count, bytes, age sum) already added to the history.
    eviction_mark: Mutex<(u64, u64, u64)>,
}

/// Now, in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl History {
    /// A history kept in memory only (until [`shared`] gives it a shard).
    pub fn in_memory(limits: Limits) -> History {
        History::with(Data::new(), None, limits)
    }

    fn with(mut data: Data, path: Option<PathBuf>, limits: Limits) -> History {
        data.count_entries();
        enforce(&mut data, &limits, now_ms());
        History {
            data: Mutex::new(data),
            others: Mutex::new(BTreeMap::new()),
            path,
            limits,
            dirty: AtomicBool::new(false),
            shard_dirty: AtomicBool::new(false),
            shared: AtomicBool::new(false),
            eviction_mark: Mutex::new((0, 0, 0)),
        }
    }

    /// The caps.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn with_data<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        f(&mut lock(&self.data))
    }

    fn changed(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        self.shard_dirty.store(true, Ordering::Relaxed);
    }

    /// This replica's data, then each other replica's shard.
    fn each_data(&self, mut f: impl FnMut(&Data)) {
        let others: Vec<Arc<Data>> = lock(&self.others).values().cloned().collect();
        f(&lock(&self.data));
        for d in &others {
            f(d);
        }
    }

    /// Adds a batch of reports to `namespace`'s history; returns how many were kept.
    /// Reports of another version count as skipped. A report is counted at its own time (a
    /// late one, sent days after the call, in the day it happened), except one dated in the
    /// future, which counts now; one older than the window is dropped and counted as such.
    pub fn add(&self, namespace: &str, reports: Vec<CallReport>, skipped: u64) -> usize {
        let now = now_ms();
        let limits = self.limits;
        let kept = self.with_data(|d| {
            d.skipped += skipped;
            let mut kept = 0;
            for mut r in reports {
                if r.v != REPORT_VERSION {
                    d.skipped += 1;
                    continue;
                }
                clamp(&mut r);
                if r.time_ms > now + HOUR_MS || r.time_ms == 0 {
                    r.time_ms = now;
                }
                let hour = r.time_ms / HOUR_MS * HOUR_MS;
                let day = r.time_ms / DAY_MS * DAY_MS;
                let bucket = if now.saturating_sub(hour) / HOUR_MS < limits.hours_kept {
                    Arc::make_mut(d.hours.entry(hour).or_default())
                } else if now.saturating_sub(day) / DAY_MS < limits.days_kept {
                    Arc::make_mut(d.days.entry(day).or_default())
                } else {
                    d.too_old += 1;
                    continue;
                };
                let before = bucket.entries();
                let nsb = named(&mut bucket.namespaces, namespace, limits.max_names);
                nsb.total.add_report(&r, limits.max_names);
                named(&mut nsb.crates, &r.krate, limits.max_names).add_report(&r, limits.max_names);
                named(&mut nsb.clients, &r.client, limits.max_names)
                    .add_report(&r, limits.max_names);
                d.entries = d.entries + bucket.entries() - before;
                if !r.outcome.is_hit() {
                    d.details.push_back(Arc::new(Detail {
                        namespace: namespace.to_string(),
                        report: r,
                    }));
                }
                kept += 1;
            }
            enforce(d, &limits, now);
            kept
        });
        self.changed();
        kept
    }

    /// Counts an object GET the server answered (`hit`) or not.
    pub fn server_get(&self, namespace: &str, hit: bool, bytes: u64) {
        let hour = now_ms() / HOUR_MS * HOUR_MS;
        let max_names = self.limits.max_names;
        self.with_data(|d| {
            let bucket = Arc::make_mut(d.hours.entry(hour).or_default());
            let before = bucket.entries();
            let s = &mut named(&mut bucket.namespaces, namespace, max_names).server;
            if hit {
                s.hits += 1;
                s.bytes_out += bytes;
            } else {
                s.misses += 1;
            }
            d.entries = d.entries + bucket.entries() - before;
        });
        self.changed();
    }

    /// Adds what the store's eviction counters (which only grow) gained since the last call:
    /// called periodically and before any answer that shows evictions, so they are current.
    pub fn note_usage(&self, usage: &crate::storage::Usage) {
        let now = (usage.evictions, usage.evicted_bytes, usage.evicted_age_ms);
        let before = std::mem::replace(&mut *lock(&self.eviction_mark), now);
        self.evicted(Evictions {
            count: now.0.saturating_sub(before.0),
            bytes: now.1.saturating_sub(before.1),
            age_ms_total: now.2.saturating_sub(before.2),
        });
    }

    /// Adds evictions the disk store made.
    pub fn evicted(&self, e: Evictions) {
        if e.count == 0 {
            return;
        }
        let hour = now_ms() / HOUR_MS * HOUR_MS;
        self.with_data(|d| {
            let bucket = Arc::make_mut(d.hours.entry(hour).or_default());
            if bucket.namespaces.is_empty() && bucket.evictions.count == 0 {
                d.entries += 1;
            }
            bucket.evictions.merge(&e);
        });
        self.changed();
    }

    /// The names of every namespace in the history.
    pub fn namespaces(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.each_data(|d| d.namespaces(&mut out));
        out
    }

    /// The numbers of a range: buckets that overlap it (a day bucket counts whole).
    pub fn range(&self, q: &Query) -> Range {
        self.range_with(q, true)
    }

    /// [`History::range`]; without `names`, per-crate numbers are left out and clients are
    /// only named.
    pub fn range_with(&self, q: &Query, names: bool) -> Range {
        let mut out = Range::default();
        self.each_data(|d| d.add_range(q, names, &mut out));
        out.series.sort_by_key(|s| s.0);
        out
    }

    /// Detailed records in the range, newest first, that `keep` accepts, at most `limit`.
    pub fn details(
        &self,
        q: &Query,
        limit: usize,
        mut keep: impl FnMut(&Detail) -> bool,
    ) -> Vec<Detail> {
        let mut out = Vec::new();
        self.each_data(|d| d.add_details(q, limit, &mut keep, &mut out));
        out.sort_by_key(|d| std::cmp::Reverse(d.report.time_ms));
        out.truncate(limit);
        out
    }

    /// Facts about the history.
    pub fn info(&self) -> HistoryInfo {
        let other_replicas = lock(&self.others).keys().cloned().collect();
        let shared = !lock(&self.others).is_empty() || self.shared.load(Ordering::Relaxed);
        self.with_data(|d| HistoryInfo {
            records: d.details.len(),
            max_records: self.limits.max_records,
            entries: d.entries,
            max_entries: self.limits.max_entries,
            oldest_ms: d.days.keys().next().or(d.hours.keys().next()).copied(),
            skipped: d.skipped,
            too_old: d.too_old,
            file: self.path.as_ref().map(|p| p.display().to_string()),
            shared,
            replica: d.replica.clone().filter(|_| shared),
            other_replicas,
        })
    }

    /// Folds old hours into days and drops what is past the caps (also done by every `add`).
    pub fn maintain(&self) {
        let limits = self.limits;
        self.with_data(|d| enforce(d, &limits, now_ms()));
    }

    /// Test hook: puts a pre-built hourly or daily bucket in place (generated data for the
    /// render-time check).
    #[doc(hidden)]
    pub fn insert_bucket(&self, start_ms: u64, daily: bool, bucket: Bucket) {
        self.with_data(|d| {
            d.entries += bucket.entries();
            if daily {
                d.days.insert(start_ms, Arc::new(bucket));
            } else {
                d.hours.insert(start_ms, Arc::new(bucket));
            }
        });
    }
}

/// The entry for `name` in a capped map: past `max` names, `(other)`.
fn named<'a, V: Default>(map: &'a mut BTreeMap<String, V>, name: &str, max: usize) -> &'a mut V {
    let key = if map.len() < max || map.contains_key(name) {
        name
    } else {
        OTHER
    };
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("just inserted")
}

fn clamp(r: &mut CallReport) {
    use cachet_core::report::clamp_field;
    r.client = clamp_field(&r.client);
    r.build = clamp_field(&r.build);
    r.krate = clamp_field(&r.krate);
    r.version = r.version.as_deref().map(clamp_field);
    r.reason = r.reason.as_deref().map(clamp_field);
}

/// Folds hours past the hourly window into days, drops days past the window, and holds the
/// caps on detailed records and rollup entries.
fn enforce(d: &mut Data, limits: &Limits, now: u64) {
    let hour_cutoff = (now / HOUR_MS).saturating_sub(limits.hours_kept) * HOUR_MS;
    while let Some((&start, _)) = d.hours.first_key_value() {
        if start >= hour_cutoff {
            break;
        }
        let bucket = d.hours.remove(&start).expect("first key");
        d.entries -= bucket.entries().min(d.entries);
        let day = Arc::make_mut(d.days.entry(start / DAY_MS * DAY_MS).or_default());
        let before = day.entries();
        day.merge(&bucket);
        d.entries += day.entries() - before;
    }
    let day_cutoff = (now / DAY_MS).saturating_sub(limits.days_kept) * DAY_MS;
    while let Some((&start, _)) = d.days.first_key_value() {
        if start >= day_cutoff && d.entries <= limits.max_entries {
            break;
        }
        let bucket = d.days.remove(&start).expect("first key");
        d.entries -= bucket.entries().min(d.entries);
    }
    // Still over (a flood within the hourly window): the oldest hours go too, but never the
    // current one.
    while d.entries > limits.max_entries && d.hours.len() > 1 {
        let (_, bucket) = d.hours.pop_first().expect("non-empty");
        d.entries -= bucket.entries().min(d.entries);
    }
    let day_cutoff_ms = now.saturating_sub(limits.days_kept * DAY_MS);
    while d
        .details
        .front()
        .is_some_and(|r| r.report.time_ms < day_cutoff_ms)
        || d.details.len() > limits.max_records
    {
        d.details.pop_front();
    }
}

#[cfg(test)]
pub(crate) mod tests;
