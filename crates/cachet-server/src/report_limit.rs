//! Bounds on call-report ingestion: token buckets per client and one for the whole server.
//!
//! Reports are cheap for a client to send and cost the server CPU to parse and add to the
//! history: unbounded, a few clients posting batches as fast as the server takes them (a
//! runaway script, a misconfigured fleet) took the CPU that object requests need (GETs of
//! 4 KiB objects at 0.38x their rate on 2 cores). So, as proxies and other caches do, each
//! client has a bucket of records and one of requests that refill at a fixed rate, and the
//! server has one bucket of records that bounds them all. A batch over any of them is refused
//! with `429` and `Retry-After` (the seconds until the bucket that refused holds enough)
//! **before its body is parsed**: the decision is made from the headers alone, from the
//! record count the wrapper sends ([`RECORDS_HEADER`]), or, from a client that does not send
//! it, an estimate from the body's length. Once a batch is parsed, the bucket is corrected to
//! the records it held, so a client that under-declares pays for it on its next batch.
//!
//! A client is the token it presents together with the name it gives ([`CLIENT_HEADER`],
//! the wrapper's `CACHET_CLIENT_NAME`), else its address: a CI fleet usually shares one
//! token, and keying by the token alone would give a few hundred runners one client's rate.
//! A client that makes up names gets a bucket per name, which the server-wide bucket still
//! bounds; the table of clients is capped ([`MAX_CLIENTS`]), idle (full) buckets are dropped
//! first, and past the cap new names share one bucket.
//!
//! Why the defaults (`docs/dashboard.md`, "Ingestion limits"): a large workspace build is
//! about 1,500 rustc calls, a CI job runs a few passes over it (check, clippy, test: ~6,000
//! records), and a fully warm pass finishes in ~15 s (~100 records/s). A client may send
//! [`BURST_SECONDS`] of its rate at once (a whole job's records after an outage) and 200
//! records/s after that; a fleet of 400 such runners averages well under 10,000 records/s,
//! half the server-wide 20,000 records/s, which costs the server about a fifth of one core.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use cachet_core::report::{CLIENT_HEADER, RECORDS_HEADER};
use http::{header, Request};

/// Seconds of its rate a client's buckets hold when full (what it may send at once).
pub const BURST_SECONDS: f64 = 60.0;
/// Seconds of its rate the server-wide bucket holds when full.
pub const SERVER_BURST_SECONDS: f64 = 5.0;
/// Clients whose buckets are kept; past it, idle buckets are dropped, then new clients share one.
pub const MAX_CLIENTS: usize = 10_000;
/// Bytes per record assumed for a batch that does not say how many records it holds (a
/// record is 200-300 bytes of JSON; smaller is the cautious side).
pub const ASSUMED_RECORD_BYTES: u64 = 128;

/// The peer address of a request's connection, put into the request's extensions by the
/// server (a client without a name is known by it).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

/// The rates, each per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Records one client may send per second.
    pub client_records: u64,
    /// Report requests one client may send per second.
    pub client_requests: u64,
    /// Records all clients together may send per second.
    pub server_records: u64,
}

/// Which bucket refused a batch (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client's records.
    ClientRecords,
    /// The client's requests.
    ClientRequests,
    /// The server-wide records.
    ServerRecords,
}

impl Refusal {
    /// Every refusal, in the order the metrics show them.
    pub const ALL: [Refusal; 3] = [
        Refusal::ClientRecords,
        Refusal::ClientRequests,
        Refusal::ServerRecords,
    ];

    /// Its label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::ClientRecords => "client_records",
            Refusal::ClientRequests => "client_requests",
            Refusal::ServerRecords => "server_records",
        }
    }
}

/// A token bucket: `level` tokens, refilled at a rate up to a cap. The level may go below zero
/// when a batch turns out larger than declared (a debt the refill pays back).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn full(cap: f64, now: Instant) -> Bucket {
        Bucket {
            level: cap,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, cap: f64) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + secs * rate).min(cap);
        self.at = now;
    }

    /// `None` when `want` tokens are there; else how long until they are.
    fn wait(&self, want: f64, rate: f64) -> Option<Duration> {
        (self.level < want).then(|| Duration::from_secs_f64((want - self.level) / rate))
    }
}

/// One client's buckets.
#[derive(Debug, Clone, Copy)]
struct Client {
    records: Bucket,
    requests: Bucket,
}

/// What the mutex guards: every client's buckets and the server's.
struct Buckets {
    clients: HashMap<[u8; 16], Client>,
    server: Bucket,
    /// When the table of clients was last swept for idle buckets (at most once a second).
    swept: Instant,
}

/// A batch let through: settle it with [`ReportLimits::settle`] once parsed.
#[derive(Debug)]
pub struct Admitted {
    key: [u8; 16],
    charged: u64,
}

/// A batch refused: which bucket, and after how long it would be let through.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    /// The bucket that refused.
    pub by: Refusal,
    /// Whole seconds to wait (at least 1), for `Retry-After`.
    pub retry_after: u64,
}

/// Counters of what was let through and refused (for `/metrics` and the dashboard).
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    /// Report requests let through.
    pub accepted_requests: u64,
    /// Records in them (as parsed).
    pub accepted_records: u64,
    /// Report requests refused by a client's record bucket.
    pub refused_client_records: u64,
    /// ... by a client's request bucket.
    pub refused_client_requests: u64,
    /// ... by the server-wide record bucket.
    pub refused_server_records: u64,
    /// Records in refused requests (as declared).
    pub refused_records: u64,
}

/// The limits and their state. Shared by every request; one short mutex per report request
/// (a hash lookup and a few floating-point operations), never held across an await.
pub struct ReportLimits {
    rates: Rates,
    buckets: Mutex<Buckets>,
    accepted_requests: AtomicU64,
    accepted_records: AtomicU64,
    refused: [AtomicU64; 3],
    refused_records: AtomicU64,
}

/// The number of records a request declares: its [`RECORDS_HEADER`], else its length over
/// [`ASSUMED_RECORD_BYTES`], else as many as the largest batch could hold.
pub fn declared_records<B>(req: &Request<B>) -> u64 {
    let number =
        |name| -> Option<u64> { req.headers().get(name)?.to_str().ok()?.trim().parse().ok() };
    number(RECORDS_HEADER)
        .or_else(|| number(header::CONTENT_LENGTH.as_str()).map(|n| n / ASSUMED_RECORD_BYTES))
        .unwrap_or(cachet_core::report::MAX_BATCH_BYTES as u64 / ASSUMED_RECORD_BYTES)
        .max(1)
}

/// Who sent a request: the credentials it presents and the client name it gives, else its
/// peer address (hashed: the table holds no token).
pub fn client_key<B>(req: &Request<B>) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    let creds = req.headers().get(header::AUTHORIZATION);
    h.update(creds.map_or(&b""[..], |v| v.as_bytes()));
    h.update(b"\0");
    match req.headers().get(CLIENT_HEADER) {
        Some(name) if !name.is_empty() => {
            h.update(b"name:");
            h.update(name.as_bytes());
        }
        _ => {
            let peer = req.extensions().get::<Peer>().map(|p| p.0.to_string());
            h.update(b"peer:");
            h.update(peer.unwrap_or_default().as_bytes());
        }
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    key
}

impl ReportLimits {
    /// Limits at these rates, every bucket full.
    pub fn new(rates: Rates) -> ReportLimits {
        let now = Instant::now();
        let rates = Rates {
            client_records: rates.client_records.max(1),
            client_requests: rates.client_requests.max(1),
            server_records: rates.server_records.max(1),
        };
        ReportLimits {
            buckets: Mutex::new(Buckets {
                clients: HashMap::new(),
                server: Bucket::full(rates.server_records as f64 * SERVER_BURST_SECONDS, now),
                swept: now,
            }),
            rates,
            accepted_requests: AtomicU64::new(0),
            accepted_records: AtomicU64::new(0),
            refused: Default::default(),
            refused_records: AtomicU64::new(0),
        }
    }

    /// The rates in force.
    pub fn rates(&self) -> Rates {
        self.rates
    }

    fn caps(&self) -> (f64, f64, f64) {
        let r = self.rates;
        (
            r.client_records as f64 * BURST_SECONDS,
            r.client_requests as f64 * BURST_SECONDS,
            r.server_records as f64 * SERVER_BURST_SECONDS,
        )
    }

    /// Lets a batch of `records` from client `key` through (taking its tokens from the
    /// client's buckets and the server's), or says which bucket refuses it and for how long.
    /// A refused batch takes nothing. A batch larger than a full bucket needs the bucket full.
    pub fn admit(&self, key: [u8; 16], records: u64) -> Result<Admitted, Refused> {
        let now = Instant::now();
        let r = self.rates;
        let (rec_cap, req_cap, server_cap) = self.caps();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !b.clients.contains_key(&key) && b.clients.len() >= MAX_CLIENTS {
            self.sweep(&mut b, now);
        }
        let key = if b.clients.contains_key(&key) || b.clients.len() < MAX_CLIENTS {
            key
        } else {
            [0xff; 16]
        };
        let client = b.clients.entry(key).or_insert(Client {
            records: Bucket::full(rec_cap, now),
            requests: Bucket::full(req_cap, now),
        });
        client.records.refill(now, r.client_records as f64, rec_cap);
        client
            .requests
            .refill(now, r.client_requests as f64, req_cap);
        let n = records as f64;
        let client_wait = client
            .requests
            .wait(1.0, r.client_requests as f64)
            .map(|w| (Refusal::ClientRequests, w))
            .or_else(|| {
                client
                    .records
                    .wait(n.min(rec_cap), r.client_records as f64)
                    .map(|w| (Refusal::ClientRecords, w))
            });
        let client = *client;
        b.server.refill(now, r.server_records as f64, server_cap);
        let refused = client_wait.or_else(|| {
            b.server
                .wait(n.min(server_cap), r.server_records as f64)
                .map(|w| (Refusal::ServerRecords, w))
        });
        if let Some((by, wait)) = refused {
            drop(b);
            self.refused[by as usize].fetch_add(1, Ordering::Relaxed);
            self.refused_records.fetch_add(records, Ordering::Relaxed);
            return Err(Refused {
                by,
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        b.server.level -= n;
        let c = b.clients.get_mut(&key).expect("inserted above");
        c.records.level = client.records.level - n;
        c.requests.level = client.requests.level - 1.0;
        drop(b);
        self.accepted_requests.fetch_add(1, Ordering::Relaxed);
        Ok(Admitted {
            key,
            charged: records,
        })
    }

    /// Corrects an admitted batch's charge to the records it held once parsed.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "taken, so an admitted batch is settled once"
    )]
    pub fn settle(&self, admitted: Admitted, records: u64) {
        self.accepted_records.fetch_add(records, Ordering::Relaxed);
        if records == admitted.charged {
            return;
        }
        let diff = admitted.charged as f64 - records as f64;
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Refunds never fill a bucket past its cap; the next refill clamps anyway.
        b.server.level += diff;
        if let Some(c) = b.clients.get_mut(&admitted.key) {
            c.records.level += diff;
        }
    }

    /// Drops the buckets of clients that are full again (as a new client's would be), so a
    /// flood of made-up names cannot keep the table at its cap for long.
    fn sweep(&self, b: &mut Buckets, now: Instant) {
        if now.saturating_duration_since(b.swept) < Duration::from_secs(1) {
            return;
        }
        b.swept = now;
        let r = self.rates;
        let (rec_cap, req_cap, _) = self.caps();
        b.clients.retain(|_, c| {
            let mut c = *c;
            c.records.refill(now, r.client_records as f64, rec_cap);
            c.requests.refill(now, r.client_requests as f64, req_cap);
            c.records.level < rec_cap || c.requests.level < req_cap
        });
    }

    /// What was let through and refused since start.
    pub fn counts(&self) -> Counts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            accepted_requests: get(&self.accepted_requests),
            accepted_records: get(&self.accepted_records),
            refused_client_records: get(&self.refused[Refusal::ClientRecords as usize]),
            refused_client_requests: get(&self.refused[Refusal::ClientRequests as usize]),
            refused_server_records: get(&self.refused[Refusal::ServerRecords as usize]),
            refused_records: get(&self.refused_records),
        }
    }

    /// Zeroes the counters (the admin API's "zero stats"); the buckets stay.
    pub fn zero(&self) {
        for a in self.refused.iter().chain([
            &self.accepted_requests,
            &self.accepted_records,
            &self.refused_records,
        ]) {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// The counters in OpenMetrics text (no `# EOF`), appended to `/metrics`.
    pub fn render(&self) -> String {
        let c = self.counts();
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, series: &[(&str, u64)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (labels, v) in series {
                out.push_str(&format!("{name}_total{labels} {v}\n"));
            }
        };
        counter(
            "cachet_report_requests",
            "Call-report requests let through.",
            &[("", c.accepted_requests)],
        );
        counter(
            "cachet_report_records",
            "Call records let through (as parsed).",
            &[("", c.accepted_records)],
        );
        let refused: Vec<(String, u64)> = Refusal::ALL
            .iter()
            .map(|r| {
                let v = match r {
                    Refusal::ClientRecords => c.refused_client_records,
                    Refusal::ClientRequests => c.refused_client_requests,
                    Refusal::ServerRecords => c.refused_server_records,
                };
                (format!("{{reason=\"{}\"}}", r.label()), v)
            })
            .collect();
        let refused: Vec<(&str, u64)> = refused.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "cachet_report_requests_refused",
            "Call-report requests refused with 429 before their body was read, by the bucket \
             that refused them: client_records (--report-rate), client_requests \
             (--report-requests), server_records (--report-ceiling).",
            &refused,
        );
        counter(
            "cachet_report_records_refused",
            "Call records in refused requests (as the requests declared them).",
            &[("", c.refused_records)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(client: u64, requests: u64, server: u64) -> ReportLimits {
        ReportLimits::new(Rates {
            client_records: client,
            client_requests: requests,
            server_records: server,
        })
    }

    #[test]
    fn a_client_over_its_records_is_refused_until_its_bucket_refills() {
        let l = limits(10, 1000, 1_000_000);
        // A full bucket holds a minute of the rate.
        let a = l.admit([1; 16], 600).expect("a full bucket");
        l.settle(a, 600);
        let refused = l.admit([1; 16], 100).expect_err("an empty bucket");
        assert_eq!(refused.by, Refusal::ClientRecords);
        assert!((9..=11).contains(&refused.retry_after), "{refused:?}");
        // Another client is not affected.
        assert!(l.admit([2; 16], 100).is_ok());
        assert_eq!(l.counts().refused_client_records, 1);
        assert_eq!(l.counts().refused_records, 100);
    }

    #[test]
    fn the_server_ceiling_bounds_every_client_together() {
        let l = limits(1_000_000, 1000, 100);
        assert!(l.admit([1; 16], 500).is_ok());
        let refused = l.admit([2; 16], 10).expect_err("the ceiling is spent");
        assert_eq!(refused.by, Refusal::ServerRecords);
    }

    #[test]
    fn an_under_declared_batch_is_paid_for_by_the_next() {
        let l = limits(10, 1000, 1_000_000);
        let a = l.admit([1; 16], 1).expect("full");
        l.settle(a, 1200);
        let refused = l.admit([1; 16], 1).expect_err("in debt");
        assert!(refused.retry_after >= 60, "{refused:?}");
    }

    #[test]
    fn made_up_names_past_the_cap_share_one_bucket() {
        let l = limits(1, 1000, 1_000_000);
        for i in 0..MAX_CLIENTS as u32 {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&i.to_le_bytes());
            let a = l.admit(key, 60).expect("a new client's full bucket");
            l.settle(a, 60);
        }
        assert!(l.admit([0xee; 16], 60).is_ok());
        assert!(
            l.admit([0xdd; 16], 60).is_err(),
            "the shared bucket is spent"
        );
    }
}
