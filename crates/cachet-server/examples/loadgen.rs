//! A load generator for any server speaking `GET`/`PUT` of opaque objects (cachet, nginx's
//! WebDAV module, ...): N concurrent clients, fixed object size, fixed duration; prints
//! throughput, latency percentiles, and the peak RSS and CPU time per GiB moved of the server
//! processes given by `--pid`.
//!
//! ```text
//! cargo run --release -p cachet-server --example loadgen -- \
//!     --url http://127.0.0.1:4226/bench --clients 64 --size 1M --op get --seconds 10 --pid PID
//! ```
//!
//! Response bodies are counted frame by frame and dropped, so the generator's own memory stays
//! small even with 64 clients reading 50 MB objects. It is an example rather than a test: it
//! prints figures for `bench/server.sh`, it asserts nothing about time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Load generator for object servers.
#[derive(Parser)]
struct Args {
    /// Base URL; objects are `URL/obj-N`.
    #[arg(long)]
    url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Object size (K, M, G suffixes).
    #[arg(long, default_value = "1M")]
    size: String,
    /// `get` (objects are uploaded first) or `put`.
    #[arg(long, default_value = "get")]
    op: String,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct objects [default: one per client].
    #[arg(long)]
    objects: Option<usize>,
    /// Server process(es) whose peak RSS (VmHWM) to report, summed.
    #[arg(long)]
    pid: Vec<u32>,
    /// Label printed in the result line.
    #[arg(long, default_value = "server")]
    label: String,
    /// Bearer token.
    #[arg(long)]
    token: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = cachet_core::parse_size(&args.size)? as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args, size))
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn request(
    method: http::Method,
    url: &str,
    token: Option<&str>,
    body: Bytes,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let mut b = http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("Authorization", format!("Bearer {t}"));
    }
    Ok(b.body(Full::new(body))?)
}

/// Sends one request, drains the body; returns (status, body bytes).
async fn send(client: &HttpClient, req: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, u64)> {
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok((status, n))
}

async fn run(args: Args, size: usize) -> anyhow::Result<()> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.clients)
        .build_http();
    let objects = args.objects.unwrap_or(args.clients).max(1);
    let payload = Bytes::from(vec![0xA5u8; size]);
    let base = args.url.trim_end_matches('/').to_string();
    let token = args.token.clone();
    let get = match args.op.as_str() {
        "get" => true,
        "put" => false,
        other => anyhow::bail!("--op must be get or put, not {other}"),
    };
    if get {
        for i in 0..objects {
            let req = request(
                http::Method::PUT,
                &format!("{base}/obj-{i}"),
                token.as_deref(),
                payload.clone(),
            )?;
            let (status, _) = send(&client, req).await?;
            anyhow::ensure!(
                (200..300).contains(&status),
                "seeding obj-{i} failed: {status}"
            );
        }
    }

    let cpu_before: u64 = args.pid.iter().filter_map(|p| cpu_ticks(*p)).sum();
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, stop, bytes, errors) =
            (client.clone(), stop.clone(), bytes.clone(), errors.clone());
        let (base, token, payload) = (base.clone(), token.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let url = format!("{base}/obj-{}", i % objects);
                i += args.clients;
                let req = if get {
                    request(http::Method::GET, &url, token.as_deref(), Bytes::new())
                } else {
                    request(http::Method::PUT, &url, token.as_deref(), payload.clone())
                };
                let t = Instant::now();
                let result = match req {
                    Ok(req) => send(&client, req).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok((status, n)) if (200..300).contains(&status) => {
                        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        bytes.fetch_add(
                            if get { n } else { payload.len() as u64 },
                            Ordering::Relaxed,
                        );
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: u64 = args.pid.iter().filter_map(|p| cpu_ticks(*p)).sum();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let idx = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[idx] as f64 / 1000.0
    };
    let total = bytes.load(Ordering::Relaxed) as f64;
    let rss_kib: u64 = args.pid.iter().filter_map(|p| peak_rss_kib(*p)).sum();
    println!(
        "{:<8} op={:<3} size={:<5} clients={:<3} requests={:<7} errors={:<4} throughput={:>8.1} MiB/s ({:>7.0} req/s) p50={:>8.2} ms p99={:>8.2} ms peak_rss={} server_cpu={}",
        args.label,
        args.op,
        args.size,
        args.clients,
        all.len(),
        errors.load(Ordering::Relaxed),
        total / elapsed / (1024.0 * 1024.0),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        if args.pid.is_empty() { "n/a".to_string() } else { format!("{:.0} MiB", rss_kib as f64 / 1024.0) },
        // CPU time per GiB moved is what load on a shared machine changes least.
        if args.pid.is_empty() || total == 0.0 {
            "n/a".to_string()
        } else {
            let seconds = cpu_after.saturating_sub(cpu_before) as f64 / CLOCK_TICKS;
            format!("{:.2} s/GiB", seconds / (total / (1u64 << 30) as f64))
        },
    );
    Ok(())
}

/// Clock ticks per second of `/proc/PID/stat`'s times (USER_HZ, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// User plus system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
