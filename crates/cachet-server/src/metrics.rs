//! Counters and histograms for `/metrics` (Prometheus text format 0.0.4) and `/stats` (JSON).
//!
//! Hand-written rather than a metrics crate: the set is small and fixed, the exposition format
//! is a few lines of text, and it keeps the dependency tree (and build time) lean. Labels are
//! bounded by construction: `method` is one of a fixed list (else `OTHER`), `route` is a route
//! template from [`crate::route`], `status` a status code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::conn::CloseReason;
use crate::storage::tiered::UploadStats;
use crate::storage::{Store, TierReport, Usage};

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// The methods counted by name; anything else is `OTHER`.
pub fn method_label(m: &http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "POST" => "POST",
        "PROPFIND" => "PROPFIND",
        "MKCOL" => "MKCOL",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// A latency histogram with the fixed [`BUCKETS`].
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Records one sample.
    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        self.count += 1;
        self.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the samples, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of `name` with `labels` (`k="v",...`).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Labelled {
    /// (method, route, status) -> count.
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    /// (method, route) -> latency.
    latency: BTreeMap<(&'static str, &'static str), Histogram>,
}

/// The server's counters. Shared by every request; cheap atomics except for the labelled
/// maps, behind one short-held mutex.
pub struct Metrics {
    /// When the server started, for `uptime_seconds`.
    started: Instant,
    labelled: Mutex<Labelled>,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    stalled_writes: AtomicU64,
    /// Uploads refused with 503 because the upload memory budget stayed full.
    upload_busy: AtomicU64,
    /// Connections open now.
    connections_open: AtomicU64,
    /// The connection cap (set once at start).
    max_connections: AtomicU64,
    /// Times the accept loop found the cap reached.
    connection_limit_reached: AtomicU64,
    /// Connections the server closed on its own, by [`CloseReason::index`].
    connections_closed: [AtomicU64; CloseReason::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            labelled: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            stalled_writes: AtomicU64::new(0),
            upload_busy: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            max_connections: AtomicU64::new(0),
            connection_limit_reached: AtomicU64::new(0),
            connections_closed: Default::default(),
        }
    }
}

/// The JSON body of `/stats`.
#[derive(Debug, serde::Serialize)]
pub struct Stats {
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Requests answered.
    pub requests: u64,
    /// GETs of objects that were found.
    pub hits: u64,
    /// GETs of objects that were not found.
    pub misses: u64,
    /// Bytes of object bodies received.
    pub bytes_in: u64,
    /// Bytes of object bodies sent.
    pub bytes_out: u64,
    /// The store's sizes and counters (of the local tier, for a chain).
    #[serde(flatten)]
    pub usage: Usage,
    /// Hits, misses, errors and latency of each storage tier.
    pub tiers: Vec<TierReport>,
    /// The upload queue to the shared tier, for a chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploads: Option<UploadStats>,
}

impl Metrics {
    fn labelled(&self) -> std::sync::MutexGuard<'_, Labelled> {
        self.labelled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one answered request.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        let mut l = self.labelled();
        *l.requests.entry((method, route, status)).or_default() += 1;
        l.latency.entry((method, route)).or_default().observe(took);
    }

    /// Records a GET hit.
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a GET miss.
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Records object bytes received.
    pub fn bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Records object bytes sent.
    pub fn bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Records a connection cut off because the client stopped reading.
    pub fn stalled_write(&self) {
        self.stalled_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an upload refused because the upload memory budget stayed full.
    pub fn upload_busy(&self) {
        self.upload_busy.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the connection cap.
    pub fn set_max_connections(&self, n: usize) {
        self.max_connections.store(n as u64, Ordering::Relaxed);
    }

    /// Records an accepted connection.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a connection gone, for whatever reason.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records that the accept loop found the connection cap reached.
    pub fn connection_limit_reached(&self) {
        self.connection_limit_reached
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Records a connection the server closed on its own.
    pub fn connection_closed_for(&self, reason: CloseReason) {
        self.connections_closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Zeroes every counter (the admin API's "zero stats"). Uptime and store sizes stay.
    pub fn zero(&self) {
        *self.labelled() = Labelled::default();
        for c in [
            &self.hits,
            &self.misses,
            &self.bytes_in,
            &self.bytes_out,
            &self.stalled_writes,
            &self.connection_limit_reached,
            &self.upload_busy,
        ]
        .into_iter()
        .chain(&self.connections_closed)
        {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The `/stats` document.
    pub fn stats(&self, store: &dyn Store) -> Stats {
        let mut tiers = Vec::new();
        store.tiers(&mut tiers);
        Stats {
            uptime_seconds: self.started.elapsed().as_secs(),
            requests: self.labelled().requests.values().sum(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            usage: store.usage(),
            tiers,
            uploads: store.uploads(),
        }
    }

    /// The `/metrics` document.
    pub fn render(&self, store: &dyn Store) -> String {
        let usage = store.usage();
        let mut out = String::with_capacity(4096);
        let l = self.labelled();
        header(
            &mut out,
            "cachet_requests_total",
            "counter",
            "Requests answered, by method, route template and status.",
        );
        for ((m, r, s), n) in &l.requests {
            let _ = writeln!(
                out,
                "cachet_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        header(
            &mut out,
            "cachet_request_duration_seconds",
            "histogram",
            "Time to answer a request (until the response headers), by method and route template.",
        );
        for ((m, r), h) in &l.latency {
            h.render(
                &mut out,
                "cachet_request_duration_seconds",
                &format!("method=\"{m}\",route=\"{r}\""),
            );
        }
        drop(l);
        header(
            &mut out,
            "cachet_connections_closed_total",
            "counter",
            "Connections the server closed on its own, by reason: header_timeout (no request \
             within --header-timeout of accept), idle_timeout, handshake_timeout, shed (closed \
             while idle to make room at --max-connections).",
        );
        for reason in CloseReason::ALL {
            let _ = writeln!(
                out,
                "cachet_connections_closed_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.connections_closed[reason.index()].load(Ordering::Relaxed)
            );
        }
        let simple: [(&str, &str, &str, f64); 17] = [
            (
                "cachet_uploads_busy_total",
                "counter",
                "Uploads refused with 503 because --upload-memory stayed taken by other uploads.",
                self.upload_busy.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_connections_open",
                "gauge",
                "Connections open now.",
                self.connections_open.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_connections_max",
                "gauge",
                "The connection cap (--max-connections).",
                self.max_connections.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_connection_limit_reached_total",
                "counter",
                "Times a new connection had to wait because --max-connections were open.",
                self.connection_limit_reached.load(Ordering::Relaxed) as f64,
            ),
            ("cachet_stalled_connections_total", "counter", "Connections closed because the client stopped reading for longer than the body timeout.", self.stalled_writes.load(Ordering::Relaxed) as f64),
            (
                "cachet_cache_hits_total",
                "counter",
                "Object GETs answered from the store.",
                self.hits.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_cache_misses_total",
                "counter",
                "Object GETs of objects not in the store.",
                self.misses.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_received_bytes_total",
                "counter",
                "Object bytes received in uploads.",
                self.bytes_in.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_sent_bytes_total",
                "counter",
                "Object bytes sent in downloads.",
                self.bytes_out.load(Ordering::Relaxed) as f64,
            ),
            (
                "cachet_stored_bytes",
                "gauge",
                "Bytes of objects in the store.",
                usage.stored_bytes as f64,
            ),
            (
                "cachet_objects",
                "gauge",
                "Objects in the store.",
                usage.objects as f64,
            ),
            (
                "cachet_max_size_bytes",
                "gauge",
                "Size limit of the store.",
                usage.max_size as f64,
            ),
            (
                "cachet_evictions_total",
                "counter",
                "Objects evicted to stay under the size limit.",
                usage.evictions as f64,
            ),
            (
                "cachet_pruned_total",
                "counter",
                "Objects pruned for exceeding the maximum age.",
                usage.pruned as f64,
            ),
            (
                "cachet_index_ready",
                "gauge",
                "1 once the start-up scan of existing objects has finished.",
                u8::from(usage.index_ready) as f64,
            ),
            (
                "cachet_uptime_seconds",
                "gauge",
                "Seconds since the server started.",
                self.started.elapsed().as_secs_f64(),
            ),
            (
                "cachet_build_info",
                "gauge",
                "Always 1; the version label says which cachet this is.",
                1.0,
            ),
        ];
        for (name, kind, help, value) in simple {
            header(&mut out, name, kind, help);
            if name == "cachet_build_info" {
                let _ = writeln!(
                    out,
                    "{name}{{version=\"{}\"}} {value}",
                    env!("CARGO_PKG_VERSION")
                );
            } else {
                let _ = writeln!(out, "{name} {value}");
            }
        }
        let mut tiers = Vec::new();
        store.tiers(&mut tiers);
        render_tiers(&mut out, &tiers);
        if let Some(u) = store.uploads() {
            render_uploads(&mut out, &u);
        }
        out
    }
}

/// Per-tier series, labelled `tier` (`local`, `shared`) and `backend` (`dir`, `redis`, `s3`).
fn render_tiers(out: &mut String, tiers: &[TierReport]) {
    header(
        out,
        "cachet_tier_gets_total",
        "counter",
        "Object GETs per storage tier, by result (hit, miss, error).",
    );
    for t in tiers {
        let l = format!("tier=\"{}\",backend=\"{}\"", t.tier, t.backend);
        let _ = writeln!(
            out,
            "cachet_tier_gets_total{{{l},result=\"hit\"}} {}",
            t.hits
        );
        let _ = writeln!(
            out,
            "cachet_tier_gets_total{{{l},result=\"miss\"}} {}",
            t.misses
        );
    }
    type Field = fn(&TierReport) -> u64;
    let simple: [(&str, &str, &str, Field); 4] = [
        (
            "cachet_tier_errors_total",
            "counter",
            "Failed calls per storage tier (timeouts and calls skipped while it was down included).",
            |t| t.errors,
        ),
        (
            "cachet_tier_writes_total",
            "counter",
            "Objects written per storage tier.",
            |t| t.writes,
        ),
        (
            "cachet_tier_refused_total",
            "counter",
            "Objects a storage tier refused for their size (Redis: over 512 MB).",
            |t| t.refused,
        ),
        (
            "cachet_tier_available",
            "gauge",
            "0 while a storage tier is skipped after a failure, else 1.",
            |t| u64::from(t.available),
        ),
    ];
    for (name, kind, help, field) in simple {
        header(out, name, kind, help);
        for t in tiers {
            let _ = writeln!(
                out,
                "{name}{{tier=\"{}\",backend=\"{}\"}} {}",
                t.tier,
                t.backend,
                field(t)
            );
        }
    }
    header(
        out,
        "cachet_tier_duration_seconds",
        "histogram",
        "Time of a call to a storage tier, by operation (get, head, put, delete).",
    );
    for t in tiers {
        for (op, h) in &t.latency {
            h.render(
                out,
                "cachet_tier_duration_seconds",
                &format!("tier=\"{}\",backend=\"{}\",op=\"{op}\"", t.tier, t.backend),
            );
        }
    }
}

/// The upload queue of a chain.
fn render_uploads(out: &mut String, u: &UploadStats) {
    header(
        out,
        "cachet_shared_uploads_total",
        "counter",
        "Writes queued for the shared tier, by outcome: queued, coalesced (merged into another \
         upload of the same object), uploaded, dropped_queue_full, dropped_evicted, refused, failed.",
    );
    for (result, n) in [
        ("queued", u.queued),
        ("coalesced", u.coalesced),
        ("uploaded", u.uploaded),
        ("dropped_queue_full", u.dropped_queue_full),
        ("dropped_evicted", u.dropped_evicted),
        ("refused", u.refused),
        ("failed", u.failed),
    ] {
        let _ = writeln!(
            out,
            "cachet_shared_uploads_total{{result=\"{result}\"}} {n}"
        );
    }
    header(
        out,
        "cachet_shared_uploads_pending",
        "gauge",
        "Objects waiting in the queue for the shared tier.",
    );
    let _ = writeln!(out, "cachet_shared_uploads_pending {}", u.pending);
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_labelled_series() {
        let m = Metrics::default();
        m.request("GET", "/{namespace}/{key}", 200, Duration::from_millis(2));
        m.hit();
        let store =
            crate::storage::open(&crate::StorageSpec::Ephemeral, 1 << 20, None).expect("store");
        let text = m.render(store.as_ref());
        assert!(text.contains(
            "cachet_requests_total{method=\"GET\",route=\"/{namespace}/{key}\",status=\"200\"} 1"
        ));
        assert!(text.contains("cachet_request_duration_seconds_bucket{method=\"GET\",route=\"/{namespace}/{key}\",le=\"0.0025\"} 1"));
        assert!(text.contains("cachet_cache_hits_total 1"));
        assert!(text
            .contains("cachet_tier_gets_total{tier=\"local\",backend=\"dir\",result=\"miss\"} 0"));
        m.zero();
        assert!(m
            .render(store.as_ref())
            .contains("cachet_cache_hits_total 0"));
    }
}
