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
//! - Persistence is one JSON file, written atomically (temporary file, rename) at most every
//!   [`SAVE_PERIOD`] while something changed and once at shutdown. For a `dir:` store it lives
//!   beside the objects (`<dir>/dashboard-v1.json`, outside `objects-v1/`, so the LRU never
//!   evicts it); an ephemeral or shared-only store keeps it in memory (see `docs/dashboard.md`
//!   for what replicas sharing Redis or S3 do and do not share).
//! - The server's own view (object GETs that hit or missed, per namespace; evictions of its
//!   disk store with bytes and age) is added to the same hourly buckets, so unmodified sccache
//!   and ccache clients show up too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachet_core::report::{CallReport, MissCause, Outcome, REPORT_VERSION};
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
/// The name distinct names fold into once a bucket holds its cap of them.
pub const OTHER: &str = "(other)";

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

    fn add_report(&mut self, r: &CallReport, max_names: usize) {
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
        self.calls += other.calls;
        self.hits_local += other.hits_local;
        self.hits_remote += other.hits_remote;
        self.misses += other.misses;
        self.misses_not_stored += other.misses_not_stored;
        self.pass_through += other.pass_through;
        self.compile_failed += other.compile_failed;
        self.saved_ms += other.saved_ms;
        self.compile_ms += other.compile_ms;
        self.lost_ms += other.lost_ms;
        self.restore_ms += other.restore_ms;
        self.bytes += other.bytes;
        self.last_ms = self.last_ms.max(other.last_ms);
        for (cause, c) in &other.causes {
            let mine = self.causes.entry(*cause).or_default();
            mine.count += c.count;
            mine.compile_ms += c.compile_ms;
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
    fn merge(&mut self, o: &Evictions) {
        self.count += o.count;
        self.bytes += o.bytes;
        self.age_ms_total += o.age_ms_total;
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
    fn entries(&self) -> usize {
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
        self.server.hits += other.server.hits;
        self.server.misses += other.server.misses;
        self.server.bytes_out += other.server.bytes_out;
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
    fn entries(&self) -> usize {
        1 + self
            .namespaces
            .values()
            .map(NsBucket::entries)
            .sum::<usize>()
    }

    fn merge(&mut self, other: &Bucket) {
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

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    version: u32,
    /// Detailed records, oldest first.
    details: VecDeque<Detail>,
    /// Hour start (unix ms) → bucket.
    hours: BTreeMap<u64, Bucket>,
    /// Day start (unix ms, UTC) → bucket.
    days: BTreeMap<u64, Bucket>,
    /// Reports refused as malformed or of an unknown version.
    #[serde(default)]
    skipped: u64,
    /// Rollup entries in `hours` and `days` (kept up to date, not saved).
    #[serde(skip)]
    entries: usize,
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
    /// Per bucket (start ms, length ms): namespace totals and evictions, oldest first.
    pub series: Vec<(u64, u64, BTreeMap<String, Stats>, Evictions)>,
}

/// Facts about the history itself.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryInfo {
    /// Detailed records kept.
    pub records: usize,
    /// Their cap.
    pub max_records: usize,
    /// Rollup entries kept.
    pub entries: usize,
    /// Their cap.
    pub max_entries: usize,
    /// Start of the oldest bucket (unix ms), if any.
    pub oldest_ms: Option<u64>,
    /// Reports refused (malformed or an unknown version) since the history began.
    pub skipped: u64,
    /// Where it is saved; `None` = in memory only.
    pub file: Option<String>,
    /// Whether replicas sharing a store see one history (they do not: see docs/dashboard.md).
    pub shared: bool,
}

/// The history: thread-safe, cheap to add to.
pub struct History {
    /// The data. A std mutex: held only for in-memory updates, never across an await or I/O.
    data: Mutex<Data>,
    /// Where it is saved, if anywhere.
    path: Option<PathBuf>,
    /// The caps.
    limits: Limits,
    /// Set by every change, cleared by a save.
    dirty: AtomicBool,
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

impl History {
    /// A history kept in memory only.
    pub fn in_memory(limits: Limits) -> History {
        History {
            data: Mutex::new(Data {
                version: FILE_VERSION,
                ..Data::default()
            }),
            path: None,
            limits,
            dirty: AtomicBool::new(false),
            eviction_mark: Mutex::new((0, 0, 0)),
        }
    }

    /// A history saved at `path`, starting from what the file holds. A file that cannot be
    /// read (corrupt, another version) is logged and set aside: the dashboard starts empty
    /// rather than the server not starting.
    pub fn open(path: PathBuf, limits: Limits) -> History {
        let data = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Data>(&bytes) {
                Ok(d) if d.version == FILE_VERSION => Some(d),
                Ok(d) => {
                    tracing::warn!(path = %path.display(), version = d.version, "dashboard history of another version: starting a new one");
                    None
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), cause = %err, "failed to read the dashboard history: starting a new one");
                    let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                    None
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                tracing::warn!(path = %path.display(), cause = %err, "failed to read the dashboard history: starting a new one");
                None
            }
        };
        let mut data = data.unwrap_or(Data {
            version: FILE_VERSION,
            ..Data::default()
        });
        data.entries = data
            .hours
            .values()
            .chain(data.days.values())
            .map(Bucket::entries)
            .sum();
        let history = History {
            data: Mutex::new(data),
            path: Some(path),
            limits,
            dirty: AtomicBool::new(false),
            eviction_mark: Mutex::new((0, 0, 0)),
        };
        history.with_data(|d| enforce(d, &history.limits, now_ms()));
        history
    }

    /// The caps.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn with_data<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut d)
    }

    /// Adds a batch of reports to `namespace`'s history; returns how many were kept.
    /// Reports of another version count as skipped.
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
                // A clock far off (or a spool replayed much later) must not land in the
                // future or before the window: such a call counts now.
                if r.time_ms > now + HOUR_MS || r.time_ms == 0 {
                    r.time_ms = now;
                }
                let hour = r.time_ms / HOUR_MS * HOUR_MS;
                if now.saturating_sub(hour) / HOUR_MS >= limits.hours_kept {
                    r.time_ms = now;
                }
                let hour = r.time_ms / HOUR_MS * HOUR_MS;
                let bucket = d.hours.entry(hour).or_default();
                let before = bucket.entries();
                let nsb = named(&mut bucket.namespaces, namespace, limits.max_names);
                nsb.total.add_report(&r, limits.max_names);
                named(&mut nsb.crates, &r.krate, limits.max_names).add_report(&r, limits.max_names);
                named(&mut nsb.clients, &r.client, limits.max_names)
                    .add_report(&r, limits.max_names);
                d.entries = d.entries + bucket.entries() - before;
                if !r.outcome.is_hit() {
                    d.details.push_back(Detail {
                        namespace: namespace.to_string(),
                        report: r,
                    });
                }
                kept += 1;
            }
            enforce(d, &limits, now);
            kept
        });
        self.dirty.store(true, Ordering::Relaxed);
        kept
    }

    /// Counts an object GET the server answered (`hit`) or not.
    pub fn server_get(&self, namespace: &str, hit: bool, bytes: u64) {
        let hour = now_ms() / HOUR_MS * HOUR_MS;
        let max_names = self.limits.max_names;
        self.with_data(|d| {
            let bucket = d.hours.entry(hour).or_default();
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
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Adds what the store's eviction counters (which only grow) gained since the last call:
    /// called periodically and before any answer that shows evictions, so they are current.
    pub fn note_usage(&self, usage: &crate::storage::Usage) {
        let now = (usage.evictions, usage.evicted_bytes, usage.evicted_age_ms);
        let before = {
            let mut mark = self.eviction_mark.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *mark, now)
        };
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
            let bucket = d.hours.entry(hour).or_default();
            if bucket.namespaces.is_empty() && bucket.evictions.count == 0 {
                d.entries += 1;
            }
            bucket.evictions.merge(&e);
        });
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The names of every namespace in the history.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.with_data(|d| {
            d.hours
                .values()
                .chain(d.days.values())
                .flat_map(|b| b.namespaces.keys().cloned())
                .collect()
        })
    }

    /// The numbers of a range: buckets that overlap it (a day bucket counts whole).
    pub fn range(&self, q: &Query) -> Range {
        self.range_with(q, true)
    }

    /// [`History::range`]; without `names`, per-crate numbers are left out and clients are
    /// only named.
    pub fn range_with(&self, q: &Query, names: bool) -> Range {
        self.with_data(|d| {
            let mut out = Range::default();
            let buckets = d
                .days
                .iter()
                .map(|(start, b)| (*start, DAY_MS, b))
                .chain(d.hours.iter().map(|(start, b)| (*start, HOUR_MS, b)));
            let mut series: Vec<_> = Vec::new();
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
                series.push((start, len, totals, bucket.evictions));
            }
            series.sort_by_key(|s| s.0);
            out.series = series;
            out
        })
    }

    /// Detailed records in the range, newest first, that `keep` accepts, at most `limit`.
    pub fn details(
        &self,
        q: &Query,
        limit: usize,
        mut keep: impl FnMut(&Detail) -> bool,
    ) -> Vec<Detail> {
        self.with_data(|d| {
            d.details
                .iter()
                .rev()
                .filter(|r| {
                    r.report.time_ms >= q.since_ms
                        && r.report.time_ms < q.until_ms
                        && q.wants(&r.namespace)
                        && keep(r)
                })
                .take(limit)
                .cloned()
                .collect()
        })
    }

    /// Facts about the history.
    pub fn info(&self) -> HistoryInfo {
        self.with_data(|d| HistoryInfo {
            records: d.details.len(),
            max_records: self.limits.max_records,
            entries: d.entries,
            max_entries: self.limits.max_entries,
            oldest_ms: d.days.keys().next().or(d.hours.keys().next()).copied(),
            skipped: d.skipped,
            file: self.path.as_ref().map(|p| p.display().to_string()),
            shared: false,
        })
    }

    /// Folds old hours into days and drops what is past the caps (also done by every `add`).
    pub fn maintain(&self) {
        let limits = self.limits;
        self.with_data(|d| enforce(d, &limits, now_ms()));
    }

    /// Writes the history to its file if it changed since the last save.
    pub fn save_if_dirty(&self) {
        let Some(path) = &self.path else { return };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let bytes = self.with_data(|d| serde_json::to_vec(&*d));
        let result = bytes
            .map_err(std::io::Error::other)
            .and_then(|b| write_atomically(path, &b));
        if let Err(err) = result {
            self.dirty.store(true, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), cause = %err, "failed to save the dashboard history");
        }
    }

    /// Test hook: puts a pre-built hourly or daily bucket in place (generated data for the
    /// render-time check).
    #[doc(hidden)]
    pub fn insert_bucket(&self, start_ms: u64, daily: bool, bucket: Bucket) {
        self.with_data(|d| {
            d.entries += bucket.entries();
            if daily {
                d.days.insert(start_ms, bucket);
            } else {
                d.hours.insert(start_ms, bucket);
            }
        });
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
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
        let day = d.days.entry(start / DAY_MS * DAY_MS).or_default();
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
mod tests {
    use super::*;
    use cachet_core::report::CallKind;

    fn report(krate: &str, client: &str, outcome: Outcome, time_ms: u64) -> CallReport {
        CallReport {
            v: REPORT_VERSION,
            time_ms,
            client: client.into(),
            build: "b".into(),
            krate: krate.into(),
            version: None,
            kind: CallKind::Lib,
            outcome,
            reason: None,
            cause: outcome.is_miss().then_some(MissCause::SourceFile),
            compile_ms: if outcome.is_hit() { 0 } else { 1000 },
            restore_ms: if outcome.is_hit() { 100 } else { 0 },
            stored_compile_ms: if outcome.is_hit() { 900 } else { 0 },
            bytes: 10,
        }
    }

    fn all() -> Query {
        Query {
            since_ms: 0,
            until_ms: u64::MAX,
            namespaces: None,
        }
    }

    #[test]
    fn time_saved_is_stored_compile_time_minus_restore_time() {
        let h = History::in_memory(Limits::default());
        let now = now_ms();
        h.add(
            "ns",
            vec![
                report("a", "c1", Outcome::HitRemote, now),
                report("a", "c1", Outcome::Miss, now),
            ],
            0,
        );
        let r = h.range(&all());
        let s = &r.namespaces["ns"].total;
        assert_eq!(s.saved_ms, 800);
        assert_eq!(s.lost_ms, 1000);
        assert_eq!(s.hit_rate(), Some(0.5));
        assert_eq!(s.causes[&MissCause::SourceFile].count, 1);
        // Only the miss is kept in detail.
        assert_eq!(h.info().records, 1);
    }

    #[test]
    fn made_up_names_fold_into_other_and_records_stay_capped() {
        let limits = Limits {
            max_records: 50,
            max_names: 10,
            ..Limits::default()
        };
        let h = History::in_memory(limits);
        let now = now_ms();
        let flood: Vec<_> = (0..500)
            .map(|i| report(&format!("crate{i}"), &format!("c{i}"), Outcome::Miss, now))
            .collect();
        h.add("ns", flood, 0);
        let info = h.info();
        assert_eq!(info.records, 50);
        let r = h.range(&all());
        assert_eq!(r.namespaces["ns"].crates.len(), 11);
        assert_eq!(r.namespaces["ns"].crates[OTHER].calls, 490);
        assert_eq!(r.namespaces["ns"].total.calls, 500);
    }

    #[test]
    fn old_hours_fold_into_days_without_counting_twice() {
        let h = History::in_memory(Limits::default());
        let now = now_ms();
        let mut b = Bucket::default();
        let nb = b.namespaces.entry("ns".into()).or_default();
        nb.total.add_report(&report("a", "c", Outcome::Miss, 0), 10);
        h.insert_bucket((now / HOUR_MS - 500) * HOUR_MS, false, b.clone());
        h.insert_bucket((now / HOUR_MS - 501) * HOUR_MS, false, b);
        h.maintain();
        let r = h.range(&all());
        assert_eq!(r.namespaces["ns"].total.calls, 2);
        assert!(r.series.iter().all(|s| s.1 == DAY_MS));
    }

    #[test]
    fn the_history_survives_a_save_and_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let h = History::open(path.clone(), Limits::default());
        h.add("ns", vec![report("a", "c", Outcome::Miss, now_ms())], 0);
        h.server_get("ns", true, 5);
        h.save_if_dirty();
        let h = History::open(path, Limits::default());
        let r = h.range(&all());
        assert_eq!(r.namespaces["ns"].total.misses, 1);
        assert_eq!(r.namespaces["ns"].server.hits, 1);
        assert_eq!(h.info().records, 1);
    }
}
