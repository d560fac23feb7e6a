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

use crate::storage::Usage;

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

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
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
    /// The store's sizes and counters.
    #[serde(flatten)]
    pub usage: Usage,
}

impl Metrics {
    fn labelled(&self) -> std::sync::MutexGuard<'_, Labelled> {
        self.labelled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one answered request.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut l = self.labelled();
        *l.requests.entry((method, route, status)).or_default() += 1;
        let h = l.latency.entry((method, route)).or_default();
        h.count += 1;
        h.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
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

    /// Zeroes every counter (the admin API's "zero stats"). Uptime and store sizes stay.
    pub fn zero(&self) {
        *self.labelled() = Labelled::default();
        for c in [
            &self.hits,
            &self.misses,
            &self.bytes_in,
            &self.bytes_out,
            &self.stalled_writes,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The `/stats` document.
    pub fn stats(&self, usage: Usage) -> Stats {
        Stats {
            uptime_seconds: self.started.elapsed().as_secs(),
            requests: self.labelled().requests.values().sum(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            usage,
        }
    }

    /// The `/metrics` document.
    pub fn render(&self, usage: Usage) -> String {
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
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "cachet_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{bound}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "cachet_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(
                out,
                "cachet_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "cachet_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {}",
                h.count
            );
        }
        drop(l);
        let simple: [(&str, &str, &str, f64); 13] = [
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
        out
    }
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
        let text = m.render(Usage::default());
        assert!(text.contains(
            "cachet_requests_total{method=\"GET\",route=\"/{namespace}/{key}\",status=\"200\"} 1"
        ));
        assert!(text.contains("cachet_request_duration_seconds_bucket{method=\"GET\",route=\"/{namespace}/{key}\",le=\"0.0025\"} 1"));
        assert!(text.contains("cachet_cache_hits_total 1"));
        m.zero();
        assert!(m
            .render(Usage::default())
            .contains("cachet_cache_hits_total 0"));
    }
}
