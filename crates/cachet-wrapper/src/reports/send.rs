//! Delivering call reports: taking the spool under the `send` lock, sending it in bounded
//! batches, keeping what could not be delivered in the outbox, and backing off from a server
//! that has no reports endpoint (404) or does not let this token report (403); a rejected
//! token (401) trips the breaker, as it does for object requests. A server over its report
//! rate answers `429` with `Retry-After`: the batch and everything after it stay in the
//! outbox, automatic sends wait until then (the `retry-after` marker holds the time), and
//! `cachet flush` waits for it when its timeout allows. Each batch says how many records it
//! holds and which client sends them, so the server decides from the headers.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cachet_core::report::{
    clamp_field, reports_path, CallReport, CLIENT_HEADER, MAX_BATCH_BYTES, RECORDS_HEADER,
    REPORT_VERSION,
};

use crate::config::Config;
use crate::journal;
use crate::remote::{Breaker, Remote, RemoteError};
use crate::stats::{Delta, Dropped};

/// Size of the spool past which new records are dropped (and counted).
pub const SPOOL_CAP: u64 = 8 << 20;
/// Size of the outbox (records a sender could not deliver) past which the oldest are dropped.
pub const OUTBOX_CAP: usize = 8 << 20;
/// Records older than this are dropped instead of sent.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A call that did not talk to the server starts a background flush when the spool's oldest
/// record has waited this long (and no flush started within this time).
pub const FLUSH_AFTER: Duration = Duration::from_secs(30);
/// Time a call that talked to the server may spend delivering reports after its own work.
pub const DRAIN_BUDGET: Duration = Duration::from_millis(200);
/// Batches such a call sends at most.
pub const DRAIN_BATCHES: usize = 4;
/// How long a server without the reports endpoint (an older one) is not asked again.
pub const UNSUPPORTED_BACKOFF: Duration = Duration::from_secs(3600);

/// The reports directory in the cache directory.
pub fn dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("reports")
}

/// The spool: records waiting to be sent.
pub fn spool_path(cache_dir: &Path) -> PathBuf {
    dir(cache_dir).join("spool.jsonl")
}

fn outbox_path(cache_dir: &Path) -> PathBuf {
    dir(cache_dir).join("outbox.jsonl")
}

/// The marker of a server that answered 403 to a report: automatic sends stop for
/// [`UNSUPPORTED_BACKOFF`] (`cachet flush` still tries).
const REFUSED_MARKER: &str = "refused";
/// The marker of a server without the reports endpoint (404), with the same effect.
const UNSUPPORTED_MARKER: &str = "unsupported";

/// The marker of a server that answered 429: it holds the unix milliseconds before which no
/// batch is sent.
const RETRY_MARKER: &str = "retry-after";
/// The wait when a 429 names none.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long the server asked to wait from now (by its last 429), if that time is still ahead.
fn retry_wait(rdir: &Path) -> Option<Duration> {
    let at: u64 = fs::read_to_string(rdir.join(RETRY_MARKER))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = journal::now_ms();
    // A marker far in the future (a clock set back) is not obeyed past the longest wait.
    (at > now).then(|| Duration::from_millis(at - now).min(UNSUPPORTED_BACKOFF))
}

/// True while a recent 404 or 403 says automatic sends are pointless, or a 429 said to wait.
fn backed_off(rdir: &Path) -> bool {
    retry_wait(rdir).is_some()
        || [UNSUPPORTED_MARKER, REFUSED_MARKER]
            .iter()
            .any(|m| recently_touched(&rdir.join(m), UNSUPPORTED_BACKOFF))
}

/// Unix milliseconds of the first record in a file (the oldest), if it has one.
fn first_record_ms(path: &Path) -> Option<u64> {
    let mut buf = vec![0u8; 2048];
    let n = fs::File::open(path).ok()?.read(&mut buf).ok()?;
    let line = buf[..n].split(|&b| b == b'\n').next()?;
    #[derive(serde::Deserialize)]
    struct Time {
        time_ms: u64,
    }
    serde_json::from_slice::<Time>(line).ok().map(|t| t.time_ms)
}

fn age_of(time_ms: u64) -> Duration {
    Duration::from_millis(journal::now_ms().saturating_sub(time_ms))
}

fn recently_touched(path: &Path, within: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < within)
}

/// Starts `cachet flush --quiet --reports-only` in the background when the spool's oldest record has waited
/// [`FLUSH_AFTER`], the server is not known to be down, no sender is at work and no flush was
/// started within [`FLUSH_AFTER`]. Costs a `stat` when there is nothing to do.
pub(super) fn maybe_start_flush(config: &Config, breaker: &Breaker) {
    let spool = spool_path(&config.dir);
    if !fs::metadata(&spool).is_ok_and(|m| m.len() > 0) {
        return;
    }
    if first_record_ms(&spool).is_some_and(|t| age_of(t) < FLUSH_AFTER) {
        return;
    }
    let dir = dir(&config.dir);
    let marker = dir.join("flush-started");
    if breaker.is_down() || recently_touched(&marker, FLUSH_AFTER) || backed_off(&dir) {
        return;
    }
    match try_lock(&dir) {
        Some(guard) => drop(guard),
        None => return,
    }
    if fs::write(&marker, b"").is_err() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["flush", "--quiet", "--reports-only"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // The flush takes no part in cargo's jobserver.
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    // Its own process group: a Ctrl-C to the build does not cut a send in half.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // Not waited for: the child outlives this call (init reaps it).
    if let Ok(child) = cmd.spawn() {
        tracing::debug!(pid = child.id(), "background flush of call reports started");
    }
}

/// The `send` lock, if free: one sender at a time owns the spool and the outbox.
fn try_lock(dir: &Path) -> Option<fs::File> {
    fs::create_dir_all(dir).ok()?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("send.lock"))
        .ok()?;
    f.try_lock().ok()?;
    Some(f)
}

/// How much one drain may do.
pub struct Limits {
    /// Time for the whole drain (each request's deadline too).
    pub budget: Duration,
    /// Batches sent at most.
    pub batches: usize,
    /// Skip the drain when the oldest waiting record is younger than this (so a build's
    /// calls send a few larger batches, not one request each).
    pub min_age: Option<Duration>,
}

impl Limits {
    /// Everything, now (`cachet flush`).
    pub fn all(timeout: Duration) -> Limits {
        Limits {
            budget: timeout,
            batches: usize::MAX,
            min_age: None,
        }
    }
}

/// What a drain did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Records the server accepted.
    pub sent: u64,
    /// Records dropped (see the statistics for why).
    pub dropped: u64,
    /// Records still waiting.
    pub left: u64,
    /// Another sender was at work: nothing was done.
    pub busy: bool,
    /// The server asked to wait this long (a `429`) before the records `left` can be sent.
    pub retry_after: Option<Duration>,
}

/// Sends waiting records to the server's reports endpoint, oldest first, in batches of at
/// most [`MAX_BATCH_BYTES`], within `limits`. Counts what was sent and dropped in `delta`.
/// `Err` when the server could not be reached (the records stay for later).
pub fn drain(config: &Config, limits: &Limits, delta: &mut Delta) -> Result<Drained, RemoteError> {
    let mut out = Drained::default();
    let Some(rc) = config.remote.clone().filter(|_| config.reports) else {
        return Ok(out);
    };
    let started = Instant::now();
    let rdir = dir(&config.dir);
    let Some(_lock) = try_lock(&rdir) else {
        out.busy = true;
        return Ok(out);
    };
    let spool = spool_path(&config.dir);
    let outbox = outbox_path(&config.dir);
    if let Some(min_age) = limits.min_age {
        if backed_off(&rdir) {
            return Ok(out);
        }
        let oldest = [&outbox, &spool]
            .into_iter()
            .filter_map(|p| first_record_ms(p))
            .min();
        if oldest.is_none_or(|t| age_of(t) < min_age) {
            return Ok(out);
        }
    }
    // Take the spool: appends from now on start a new one.
    let taken = rdir.join("spool.taken");
    if fs::rename(&spool, &taken).is_err() && !taken.exists() && !outbox.exists() {
        return Ok(out);
    }
    let dropped_before: u64 = delta.reports_dropped.values().sum();
    let mut text = fs::read(&outbox).unwrap_or_default();
    text.extend(fs::read(&taken).unwrap_or_default());
    let mut lines: Vec<&[u8]> = Vec::new();
    let oldest_kept = journal::now_ms().saturating_sub(MAX_AGE.as_millis() as u64);
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match first_time(line) {
            None => delta.count_dropped(Dropped::Unreadable, 1),
            Some(t) if t < oldest_kept => delta.count_dropped(Dropped::TooOld, 1),
            Some(_) => lines.push(line),
        }
    }
    // Over the cap, the oldest go.
    let mut total: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut skip = 0;
    while total > OUTBOX_CAP && skip < lines.len() {
        total -= lines[skip].len() + 1;
        skip += 1;
        delta.count_dropped(Dropped::OutboxFull, 1);
    }
    let mut rest = &lines[skip..];
    let mut rc = rc;
    rc.timeout = rc.timeout.min(limits.budget);
    // A header carries visible ASCII only.
    let client: String = clamp_field(&client_name(config))
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let result = Remote::new(rc).and_then(|remote| -> Result<(), RemoteError> {
        let mut batches = 0;
        while !rest.is_empty() {
            // What the server's last 429 asked: `cachet flush` waits when its time allows.
            if let Some(wait) = retry_wait(&rdir) {
                if limits.min_age.is_some() || started.elapsed() + wait >= limits.budget {
                    out.retry_after = Some(wait);
                    break;
                }
                std::thread::sleep(wait);
                remote.new_phase();
            }
            if batches >= limits.batches || started.elapsed() >= limits.budget {
                break;
            }
            let (body, n) = batch(rest);
            let path = reports_path(&remote.config().namespace);
            let count = n.to_string();
            let headers = [
                ("Content-Type", "application/x-ndjson"),
                (RECORDS_HEADER, count.as_str()),
                (CLIENT_HEADER, client.as_str()),
            ];
            let answer = remote.post_path(&path, &headers, &body)?;
            batches += 1;
            match answer.status {
                429 => {
                    // Over the server's rate: this batch and the rest wait, none is dropped.
                    let wait = answer.retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    let at = journal::now_ms() + wait.as_millis() as u64;
                    let _ = fs::write(rdir.join(RETRY_MARKER), at.to_string());
                    continue;
                }
                200..=299 => {
                    delta.reports_sent += n as u64;
                    out.sent += n as u64;
                }
                404 => {
                    // An older server: stop asking for a while; what waits is dropped.
                    let _ = fs::write(rdir.join(UNSUPPORTED_MARKER), b"");
                    delta.count_dropped(Dropped::Unsupported, rest.len() as u64);
                    rest = &[];
                    break;
                }
                // An authentication failure, like one on an object request: stop at once. A
                // rejected token (401) trips the breaker (below), and the records wait for a
                // fixed token; a token that may not report here (403) cannot deliver them, so
                // they are dropped and automatic sends stop for a while.
                401 => {
                    return Err(RemoteError::Unauthorized {
                        url: remote.config().url.clone(),
                    })
                }
                403 => {
                    let _ = fs::write(rdir.join(REFUSED_MARKER), b"");
                    delta.count_dropped(Dropped::Refused, rest.len() as u64);
                    rest = &[];
                    return Err(RemoteError::Forbidden {
                        url: remote.config().url.clone(),
                        scope: "read",
                        namespace: remote.config().namespace.clone(),
                    });
                }
                s if s >= 500 => {
                    return Err(RemoteError::Status {
                        url: remote.config().url.clone(),
                        status: s,
                    })
                }
                _ => {
                    delta.count_dropped(Dropped::Rejected, n as u64);
                }
            }
            rest = &rest[n..];
        }
        Ok(())
    });
    // Whatever was not delivered waits in the outbox, oldest first.
    if rest.is_empty() {
        let _ = fs::remove_file(&outbox);
    } else {
        let mut keep = Vec::with_capacity(total);
        for l in rest {
            keep.extend_from_slice(l);
            keep.push(b'\n');
        }
        let _ = crate::fsutil::write_atomic(&outbox, &keep);
    }
    let _ = fs::remove_file(&taken);
    if out.sent > 0 {
        // The token may report again (a fixed token): automatic sends resume.
        let _ = fs::remove_file(rdir.join(REFUSED_MARKER));
    }
    out.left = rest.len() as u64;
    out.dropped = delta.reports_dropped.values().sum::<u64>() - dropped_before;
    match result {
        Ok(()) => Ok(out),
        Err(e) => {
            if e.trips_breaker() {
                let _ = Breaker::new(&config.dir).trip(&e);
            }
            Err(e)
        }
    }
}

/// This client's name: `CACHET_CLIENT_NAME`, else the host name.
pub fn client_name(config: &Config) -> String {
    config.client_name.clone().unwrap_or_else(host_name)
}

fn host_name() -> String {
    // The kernel's copy of what gethostname(2) answers, read without unsafe code.
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The `time_ms` of a record line, or `None` when it is not a record of a known version.
fn first_time(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<CallReport>(line)
        .ok()
        .filter(|r| r.v == REPORT_VERSION)
        .map(|r| r.time_ms)
}

/// The first lines of `lines` that fit in one request body, and how many they are (at least
/// one: a record is far smaller than a batch).
pub(super) fn batch(lines: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    let mut n = 0;
    for l in lines {
        if n > 0 && body.len() + l.len() + 1 > MAX_BATCH_BYTES {
            break;
        }
        body.extend_from_slice(l);
        body.push(b'\n');
        n += 1;
    }
    (body, n)
}
