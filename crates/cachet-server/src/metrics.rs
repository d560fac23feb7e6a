//! Counters and histograms for `/metrics` (OpenMetrics text, which Prometheus reads) and
//! `/stats` (JSON).
//!
//! The exposition is `prometheus-client`'s: it owns the text format (HELP/TYPE lines, label
//! escaping, `_total`/`_bucket`/`_sum`/`_count` suffixes, `+Inf`, number formatting, the
//! `# EOF` marker), which was about half of this file when written by hand. What the server
//! counts itself lives in the crate's types (counters, gauges, label families, request
//! histograms); what the store knows (sizes, tiers, the upload queue) is read once per
//! scrape from [`Store::report`] and encoded by a collector, so a scrape and `/stats` see the
//! same numbers. Labels are bounded by construction: `method` is one of a fixed list (else
//! `OTHER`), `route` is a route template from [`crate::route`], `status` a status code, and
//! `reason` a connection-close reason.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram as RequestHistogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::histogram::{Histogram, BUCKETS};
use crate::storage::{Store, StoreReport, TierReport, UploadStats, Usage};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

type Latency = Family<RouteLabels, RequestHistogram, fn() -> RequestHistogram>;

fn request_histogram() -> RequestHistogram {
    RequestHistogram::new(BUCKETS)
}

/// The server's counters. Shared by every request; atomics, except the labelled families,
/// which take a short read lock (a write lock the first time a label set is seen).
pub struct Metrics {
    /// When the server started, for `uptime_seconds`.
    started: Instant,
    /// Everything the server counts itself, in exposition order.
    registry: Registry,
    /// Requests answered (all labels), for `/stats`.
    answered: Counter,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    hits: Counter,
    misses: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    stalled_writes: Counter,
    /// Uploads refused with 503 because the upload memory budget stayed full.
    upload_busy: Counter,
    /// Connections open now.
    connections_open: Gauge,
    /// The connection cap (set once at start).
    max_connections: Gauge,
    /// Times the accept loop found the cap reached.
    connection_limit_reached: Counter,
    /// Connections the server closed on its own, by reason.
    connections_closed: Family<ReasonLabels, Counter>,
    /// The reasons given to [`Metrics::close_reasons`], shown at zero again after [`Metrics::zero`].
    reasons: std::sync::Mutex<Vec<&'static str>>,
}

/// Registers `metric` under `name` (a counter's without its `_total`, which the crate adds) with
/// `help` written as everywhere in this file, ending with a period (the crate adds its own).
fn register(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: impl prometheus_client::registry::Metric,
) {
    let help = help.strip_suffix('.').unwrap_or(help);
    registry.register(name, help, metric);
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            started: Instant::now(),
            registry: Registry::default(),
            answered: Counter::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(request_histogram),
            hits: Counter::default(),
            misses: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            stalled_writes: Counter::default(),
            upload_busy: Counter::default(),
            connections_open: Gauge::default(),
            max_connections: Gauge::default(),
            connection_limit_reached: Counter::default(),
            connections_closed: Family::default(),
            reasons: std::sync::Mutex::default(),
        };
        let mut r = Registry::default();
        register(
            &mut r,
            "cachet_requests",
            "Requests answered, by method, route template and status.",
            m.requests.clone(),
        );
        register(
            &mut r,
            "cachet_request_duration_seconds",
            "Time to answer a request (until the response headers), by method and route template.",
            m.latency.clone(),
        );
        register(
            &mut r,
            "cachet_connections_closed",
            "Connections the server closed on its own, by reason: header_timeout (no request \
             within --header-timeout of accept), idle_timeout, handshake_timeout, shed (closed \
             while idle to make room at --max-connections).",
            m.connections_closed.clone(),
        );
        register(
            &mut r,
            "cachet_uploads_busy",
            "Uploads refused with 503 because --upload-memory stayed taken by other uploads.",
            m.upload_busy.clone(),
        );
        register(
            &mut r,
            "cachet_connections_open",
            "Connections open now.",
            m.connections_open.clone(),
        );
        register(
            &mut r,
            "cachet_connections_max",
            "The connection cap (--max-connections).",
            m.max_connections.clone(),
        );
        register(
            &mut r,
            "cachet_connection_limit_reached",
            "Times a new connection had to wait because --max-connections were open.",
            m.connection_limit_reached.clone(),
        );
        register(&mut r, "cachet_stalled_connections", "Connections closed because the client stopped reading for longer than the body timeout.", m.stalled_writes.clone());
        register(
            &mut r,
            "cachet_cache_hits",
            "Object GETs answered from the store.",
            m.hits.clone(),
        );
        register(
            &mut r,
            "cachet_cache_misses",
            "Object GETs of objects not in the store.",
            m.misses.clone(),
        );
        register(
            &mut r,
            "cachet_received_bytes",
            "Object bytes received in uploads.",
            m.bytes_in.clone(),
        );
        register(
            &mut r,
            "cachet_sent_bytes",
            "Object bytes sent in downloads.",
            m.bytes_out.clone(),
        );
        register(
            &mut r,
            "cachet_build",
            "Always 1; the version label says which cachet this is.",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics { registry: r, ..m }
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
    /// Records one answered request.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        self.answered.inc();
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(took.as_secs_f64());
    }

    /// Records a GET hit.
    pub fn hit(&self) {
        self.hits.inc();
    }

    /// Records a GET miss.
    pub fn miss(&self) {
        self.misses.inc();
    }

    /// Records object bytes received.
    pub fn bytes_in(&self, n: u64) {
        self.bytes_in.inc_by(n);
    }

    /// Records object bytes sent.
    pub fn bytes_out(&self, n: u64) {
        self.bytes_out.inc_by(n);
    }

    /// Records a connection cut off because the client stopped reading.
    pub fn stalled_write(&self) {
        self.stalled_writes.inc();
    }

    /// Records an upload refused because the upload memory budget stayed full.
    pub fn upload_busy(&self) {
        self.upload_busy.inc();
    }

    /// Records the connection cap.
    pub fn set_max_connections(&self, n: usize) {
        self.max_connections
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records an accepted connection.
    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    /// Records a connection gone, for whatever reason.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// Records that the accept loop found the connection cap reached.
    pub fn connection_limit_reached(&self) {
        self.connection_limit_reached.inc();
    }

    /// Shows a zero for each of these close reasons until the first close of that kind (the
    /// server passes every reason it has at start, so a dashboard's `rate()` has a series).
    pub fn close_reasons(&self, reasons: impl IntoIterator<Item = &'static str>) {
        let mut known = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        for reason in reasons {
            drop(
                self.connections_closed
                    .get_or_create(&ReasonLabels { reason }),
            );
            if !known.contains(&reason) {
                known.push(reason);
            }
        }
    }

    /// Records a connection the server closed on its own, for `reason` (a metrics label).
    pub fn connection_closed_for(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Zeroes every counter (the admin API's "zero stats"). Uptime, store sizes and the gauges
    /// of open connections stay.
    pub fn zero(&self) {
        self.requests.clear();
        self.latency.clear();
        for c in [
            &self.answered,
            &self.hits,
            &self.misses,
            &self.bytes_in,
            &self.bytes_out,
            &self.stalled_writes,
            &self.connection_limit_reached,
            &self.upload_busy,
        ] {
            c.inner().store(0, Ordering::Relaxed);
        }
        // The reason series stay, at zero, as after start.
        self.connections_closed.clear();
        let reasons = self
            .reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.close_reasons(reasons);
    }

    /// The `/stats` document.
    pub fn stats(&self, store: &dyn Store) -> Stats {
        let report = store.report();
        Stats {
            uptime_seconds: self.started.elapsed().as_secs(),
            requests: self.answered.get(),
            hits: self.hits.get(),
            misses: self.misses.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            usage: report.usage,
            tiers: report.tiers,
            uploads: report.uploads,
        }
    }

    /// The `/metrics` document ([`CONTENT_TYPE`]).
    pub fn render(&self, store: &dyn Store) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(StoreCollector {
            report: store.report(),
            uptime: self.started.elapsed().as_secs_f64(),
        }));
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail; the encoders only report the writer's errors.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let _ = prometheus_client::encoding::text::encode(&mut out, &scrape);
        out
    }
}

/// What the store reports, read once per scrape.
#[derive(Debug)]
struct StoreCollector {
    report: StoreReport,
    uptime: f64,
}

/// One series without labels.
fn single(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> std::fmt::Result {
    metric.encode(enc.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A family of labelled series; nothing (not even HELP) when there is no series.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, M)>,
) -> std::fmt::Result {
    let series: Vec<(L, M)> = series.into_iter().collect();
    let Some((_, first)) = series.first() else {
        return Ok(());
    };
    let mut metric = enc.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, m) in &series {
        m.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// A tier's latency histogram, encoded by the crate.
struct TierLatency<'a>(&'a Histogram);

impl EncodeMetric for TierLatency<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(
            self.0.sum(),
            self.0.count(),
            &self.0.buckets(),
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge(v: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let u = &self.report.usage;
        let e = &mut enc;
        single(
            e,
            "cachet_stored_bytes",
            "Bytes of objects in the store.",
            &gauge(u.stored_bytes),
        )?;
        single(
            e,
            "cachet_objects",
            "Objects in the store.",
            &gauge(u.objects),
        )?;
        single(
            e,
            "cachet_max_size_bytes",
            "Size limit of the store.",
            &gauge(u.max_size),
        )?;
        single(
            e,
            "cachet_evictions",
            "Objects evicted to stay under the size limit.",
            &ConstCounter::new(u.evictions),
        )?;
        single(
            e,
            "cachet_pruned",
            "Objects pruned for exceeding the maximum age.",
            &ConstCounter::new(u.pruned),
        )?;
        single(
            e,
            "cachet_index_ready",
            "1 once the start-up scan of existing objects has finished.",
            &gauge(u64::from(u.index_ready)),
        )?;
        single(
            e,
            "cachet_uptime_seconds",
            "Seconds since the server started.",
            &ConstGauge::new(self.uptime),
        )?;
        self.encode_tiers(e)?;
        if let Some(u) = &self.report.uploads {
            encode_uploads(e, u)?;
        }
        Ok(())
    }
}

impl StoreCollector {
    /// Per-tier series, labelled `tier` (`local`, `shared`) and `backend` (`dir`, `redis`, `s3`).
    fn encode_tiers(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let tiers = &self.report.tiers;
        let labels = |t: &TierReport| [("tier", t.tier), ("backend", t.backend)];
        family(
            e,
            "cachet_tier_gets",
            "Object GETs per storage tier, by result (hit, miss, error).",
            tiers.iter().flat_map(|t| {
                let [tier, backend] = labels(t);
                [
                    (
                        [tier, backend, ("result", "hit")],
                        ConstCounter::new(t.hits),
                    ),
                    (
                        [tier, backend, ("result", "miss")],
                        ConstCounter::new(t.misses),
                    ),
                ]
            }),
        )?;
        type Field = fn(&TierReport) -> u64;
        let counters: [(&str, &str, Field); 3] = [
            (
                "cachet_tier_errors",
                "Failed calls per storage tier (timeouts and calls skipped while it was down included).",
                |t| t.errors,
            ),
            ("cachet_tier_writes", "Objects written per storage tier.", |t| t.writes),
            (
                "cachet_tier_refused",
                "Objects a storage tier refused for their size (Redis: over 512 MB).",
                |t| t.refused,
            ),
        ];
        for (name, help, field) in counters {
            family(
                e,
                name,
                help,
                tiers
                    .iter()
                    .map(|t| (labels(t), ConstCounter::new(field(t)))),
            )?;
        }
        family(
            e,
            "cachet_tier_available",
            "0 while a storage tier is skipped after a failure, else 1.",
            tiers
                .iter()
                .map(|t| (labels(t), gauge(u64::from(t.available)))),
        )?;
        family(
            e,
            "cachet_tier_duration_seconds",
            "Time of a call to a storage tier, by operation (get, head, put, delete).",
            tiers.iter().flat_map(|t| {
                let [tier, backend] = labels(t);
                t.latency
                    .iter()
                    .map(move |(op, h)| ([tier, backend, ("op", *op)], TierLatency(h)))
            }),
        )
    }
}

/// The upload queue of a chain.
fn encode_uploads(e: &mut DescriptorEncoder, u: &UploadStats) -> std::fmt::Result {
    family(
        e,
        "cachet_shared_uploads",
        "Writes queued for the shared tier, by outcome: queued, coalesced (merged into another \
         upload of the same object), uploaded, dropped_queue_full, dropped_evicted, refused, failed.",
        [
            ("queued", u.queued),
            ("coalesced", u.coalesced),
            ("uploaded", u.uploaded),
            ("dropped_queue_full", u.dropped_queue_full),
            ("dropped_evicted", u.dropped_evicted),
            ("refused", u.refused),
            ("failed", u.failed),
        ]
        .map(|(result, n)| ([("result", result)], ConstCounter::new(n))),
    )?;
    single(
        e,
        "cachet_shared_uploads_pending",
        "Objects waiting in the queue for the shared tier.",
        &gauge(u.pending),
    )
}

#[cfg(test)]
mod tests;
