//! Call reports for the server's dashboard: built beside the journal record, spooled locally,
//! delivered in batches off the hit path.
//!
//! The dashboard answers "is the cache paying off, what misses, why" across every client, so
//! each wrapper call tells the server what it did (one [`CallReport`], see
//! `cachet_core::report`). A hit must not wait for that: the call only appends one line to
//! `reports/spool.jsonl` with `O_APPEND` (like the journal). Delivery happens where it costs
//! nothing extra:
//!
//! 1. A call that has just talked to the server (a remote hit, a lookup that missed, an upload)
//!    drains the spool after its own work, bounded by [`DRAIN_BUDGET`] and [`DRAIN_BATCHES`].
//! 2. A build whose every crate hits the local cache talks to no server. So when a call did not
//!    talk to the server and the spool's oldest record has waited [`FLUSH_AFTER`], it starts a
//!    detached `cachet flush --quiet --reports-only` (at most one per [`FLUSH_AFTER`], and not while a sender
//!    holds the lock) and exits at once.
//! 3. `cachet flush` sends everything now.
//!
//! A sender takes the spool by renaming it under the `send` lock, so concurrent wrappers never
//! send a record twice; what it cannot deliver stays in `reports/outbox.jsonl` for the next
//! sender. Everything is bounded: the spool and the outbox are capped in size, records older
//! than [`MAX_AGE`] are dropped, and a server that is down is skipped through the same breaker
//! as object requests (`remote.rs`). Every dropped record is counted in the statistics
//! (`reports_dropped`, by reason). `CACHET_REPORTS=0` (or `reports = false` in the
//! configuration file) turns all of it off; with no server configured nothing is spooled.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cachet_core::report::{
    clamp_field, reports_path, CallKind, CallReport, MissCause, MAX_BATCH_BYTES, REPORT_VERSION,
};
use cachet_core::Digest;

use crate::config::Config;
use crate::explain::Change;
use crate::journal;
use crate::remote::{Breaker, Remote, RemoteError};
use crate::stats::{Delta, Stats};

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

/// Drop reasons, as counted in `reports_dropped`.
pub mod dropped {
    /// The spool reached [`super::SPOOL_CAP`] (the server was unreachable for long).
    pub const SPOOL_FULL: &str = "spool full";
    /// The outbox reached [`super::OUTBOX_CAP`]; the oldest records went.
    pub const OUTBOX_FULL: &str = "undelivered records over the size cap";
    /// Older than [`super::MAX_AGE`].
    pub const TOO_OLD: &str = "older than 7 days";
    /// A line that is not a record (a torn write, a newer format).
    pub const UNREADABLE: &str = "unreadable record";
    /// The server answered 404: it has no reports endpoint.
    pub const UNSUPPORTED: &str = "server has no reports endpoint";
    /// The server answered 401 or 403.
    pub const REFUSED: &str = "token may not report";
    /// The server answered 413 or another 4xx.
    pub const REJECTED: &str = "batch rejected by the server";
}

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

/// True when this configuration sends reports: a server is set and reporting is not off.
pub fn enabled(config: &Config) -> bool {
    config.reports && config.remote.is_some()
}

/// What one wrapper call did, as the journal has it, plus the call's counters.
pub struct CallFacts<'a> {
    /// The crate (or source file), when known.
    pub krate: Option<&'a str>,
    /// What was compiled.
    pub kind: CallKind,
    /// The outcome.
    pub outcome: journal::Outcome,
    /// The reason, for pass-throughs and results not stored.
    pub reason: Option<&'a str>,
    /// For a miss: what differs from the nearest earlier entry (`None`: not compared, or no
    /// earlier entry).
    pub changes: Option<&'a [Change]>,
}

impl<'a> CallFacts<'a> {
    /// The facts of a journal record.
    pub fn of(record: &'a journal::Record, kind: CallKind) -> CallFacts<'a> {
        CallFacts {
            krate: record.krate.as_deref(),
            kind,
            outcome: record.outcome,
            reason: record.reason.as_deref(),
            changes: record.changes.as_deref(),
        }
    }
}

/// The kind of a rustc call, from its arguments.
pub fn rustc_kind(args: &crate::invocation::RustcArgs) -> CallKind {
    use crate::invocation::CrateType;
    let types = &args.crate_types;
    if args.test {
        CallKind::Test
    } else if args
        .crate_name
        .as_deref()
        .is_some_and(|n| n.starts_with("build_script_"))
    {
        CallKind::BuildScript
    } else if types.contains(&CrateType::ProcMacro) {
        CallKind::ProcMacro
    } else if types.contains(&CrateType::Bin) {
        CallKind::Bin
    } else if types.is_empty() || args.query {
        CallKind::Other
    } else {
        CallKind::Lib
    }
}

/// The class of input that made a call miss: the most telling change of the nearest earlier
/// entry; [`MissCause::FirstBuild`] for a stored miss with no earlier entry;
/// [`MissCause::SameInputs`] when nothing differs (the entry was evicted or never uploaded).
pub fn cause(outcome: journal::Outcome, changes: Option<&[Change]>) -> Option<MissCause> {
    match (outcome, changes) {
        (journal::Outcome::Miss | journal::Outcome::MissNotStored, Some([])) => {
            Some(MissCause::SameInputs)
        }
        (journal::Outcome::Miss | journal::Outcome::MissNotStored, Some(changes)) => changes
            .iter()
            .map(|c| MissCause::from_change_kind(&c.kind))
            .min_by_key(|c| rank(*c)),
        // A stored miss always compares with the crate's earlier records: none existed.
        (journal::Outcome::Miss, None) => Some(MissCause::FirstBuild),
        _ => None,
    }
}

/// Which cause explains a miss best when several inputs differ: one that changes every crate
/// (the compiler, the target, cachet's key format, the flags) before one of this crate's own
/// inputs, and a crate's own source before its dependencies (which changed *because* some
/// source changed further down).
fn rank(c: MissCause) -> u8 {
    match c {
        MissCause::KeySchema => 0,
        MissCause::Compiler => 1,
        MissCause::Target => 2,
        MissCause::Argument => 3,
        MissCause::Environment => 4,
        MissCause::SourceFile => 5,
        MissCause::NativeLibrary => 6,
        MissCause::Dependency => 7,
        MissCause::Path => 8,
        MissCause::Other => 9,
        MissCause::FirstBuild | MissCause::SameInputs => 10,
    }
}

/// Builds the record of one call. Times and bytes come from the call's counters: a hit's
/// stored compile time is what it saved plus what it took (`saved_millis` is the stored
/// compile time minus the time to serve, floored at zero), so the dashboard's "time saved"
/// adds up to the local one.
pub fn build(config: &Config, facts: &CallFacts<'_>, d: &Delta) -> CallReport {
    let o = facts.outcome;
    CallReport {
        v: REPORT_VERSION,
        time_ms: journal::now_ms(),
        client: clamp_field(&client_name(config)),
        build: build_id(),
        krate: clamp_field(facts.krate.unwrap_or("(unknown)")),
        version: std::env::var("CARGO_PKG_VERSION")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| clamp_field(&v)),
        kind: facts.kind,
        outcome: o,
        reason: facts.reason.map(clamp_field),
        cause: cause(facts.outcome, facts.changes),
        compile_ms: d.compile_millis,
        restore_ms: if o.is_hit() { d.hit_millis } else { 0 },
        stored_compile_ms: if o.is_hit() {
            d.saved_millis + d.hit_millis
        } else {
            0
        },
        bytes: if o.is_hit() {
            d.bytes_read
        } else {
            d.bytes_written
        },
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

/// `(parent pid, start time in clock ticks since boot, command name)` of a process.
fn proc_stat(pid: u32) -> Option<(u32, u64, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // Fields after the name start at field 3 (state); ppid is field 4, starttime field 22.
    Some((
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
        comm,
    ))
}

/// An id shared by every call of one cargo invocation: a hash of cargo's pid and start time
/// (the parent of a rustc call; a C compile's parent is a build script, so the nearest
/// `cargo` up the tree is taken). Opaque, and says nothing about the machine's paths.
pub fn build_id() -> String {
    let parent = std::os::unix::process::parent_id();
    let mut pid = parent;
    let mut found = None;
    for _ in 0..4 {
        let Some((ppid, start, comm)) = proc_stat(pid) else {
            break;
        };
        if comm == "cargo" {
            found = Some((pid, start));
            break;
        }
        if ppid <= 1 {
            break;
        }
        pid = ppid;
    }
    let (pid, start) = found.unwrap_or_else(|| {
        (
            parent,
            proc_stat(parent).map(|(_, s, _)| s).unwrap_or_default(),
        )
    });
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    Digest::of(format!("{}:{pid}:{start}", boot.trim()).as_bytes()).to_hex()[..16].to_string()
}

/// Appends one record to the spool (best effort; a full spool drops it and counts that).
pub fn append(cache_dir: &Path, report: &CallReport, delta: &mut Delta) {
    let Ok(mut line) = serde_json::to_vec(report) else {
        return;
    };
    line.push(b'\n');
    let path = spool_path(cache_dir);
    if fs::metadata(&path).is_ok_and(|m| m.len() >= SPOOL_CAP) {
        Stats::bump(&mut delta.reports_dropped, dropped::SPOOL_FULL);
        return;
    }
    let open = || OpenOptions::new().create(true).append(true).open(&path);
    let file = open().or_else(|_| fs::create_dir_all(dir(cache_dir)).and_then(|()| open()));
    if let Ok(mut f) = file {
        // One write of a line this small is atomic with O_APPEND on local filesystems.
        let _ = f.write_all(&line);
    }
}

/// Records a finished call and moves reports along: appends its record, then either drains
/// the spool (the call has just talked to the server) or starts a background flush when
/// records have waited long enough. Does nothing unless [`enabled`].
pub fn call_done(config: &Config, facts: &CallFacts<'_>, delta: &mut Delta) {
    if !enabled(config) {
        return;
    }
    let report = build(config, facts, delta);
    append(&config.dir, &report, delta);
    let breaker = Breaker::new(&config.dir);
    let d = &*delta;
    let talked = d.hits_remote > 0 || d.uploads > 0 || (d.misses_remote > 0 && breaker.is_up());
    if talked && !breaker.is_down() {
        let limits = Limits {
            budget: DRAIN_BUDGET,
            batches: DRAIN_BATCHES,
            min_age: Some(Duration::from_secs(5)),
        };
        let _ = drain(config, &limits, delta);
    } else {
        maybe_start_flush(config, &breaker);
    }
}

/// [`call_done`] for a C, C++ or assembler call (`language` as in the statistics). The record
/// names the source file without its directories; calls with no source file (links, probes)
/// are not reported.
pub fn cc_call_done(config: &Config, record: &journal::Record, language: &str, delta: &mut Delta) {
    let Some(source) = record.krate.as_deref().filter(|_| enabled(config)) else {
        return;
    };
    let kind = match language {
        "c" => CallKind::C,
        "c++" => CallKind::Cxx,
        "asm" => CallKind::Asm,
        _ => CallKind::Other,
    };
    let file = source.rsplit('/').next().unwrap_or(source);
    let facts = CallFacts {
        krate: Some(file),
        ..CallFacts::of(record, kind)
    };
    call_done(config, &facts, delta);
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
fn maybe_start_flush(config: &Config, breaker: &Breaker) {
    let spool = spool_path(&config.dir);
    if !fs::metadata(&spool).is_ok_and(|m| m.len() > 0) {
        return;
    }
    if first_record_ms(&spool).is_some_and(|t| age_of(t) < FLUSH_AFTER) {
        return;
    }
    let dir = dir(&config.dir);
    let marker = dir.join("flush-started");
    if breaker.is_down()
        || recently_touched(&marker, FLUSH_AFTER)
        || recently_touched(&dir.join("unsupported"), UNSUPPORTED_BACKOFF)
    {
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
            None => Stats::bump(&mut delta.reports_dropped, dropped::UNREADABLE),
            Some(t) if t < oldest_kept => Stats::bump(&mut delta.reports_dropped, dropped::TOO_OLD),
            Some(_) => lines.push(line),
        }
    }
    // Over the cap, the oldest go.
    let mut total: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut skip = 0;
    while total > OUTBOX_CAP && skip < lines.len() {
        total -= lines[skip].len() + 1;
        skip += 1;
        Stats::bump(&mut delta.reports_dropped, dropped::OUTBOX_FULL);
    }
    let mut rest = &lines[skip..];
    let mut rc = rc;
    rc.timeout = rc.timeout.min(limits.budget);
    let result = Remote::new(rc).and_then(|remote| {
        let mut batches = 0;
        while !rest.is_empty() {
            if batches >= limits.batches || started.elapsed() >= limits.budget {
                break;
            }
            let (body, n) = batch(rest);
            let path = reports_path(&remote.config().namespace);
            let status = remote.post_path(&path, "application/x-ndjson", &body)?;
            batches += 1;
            match status {
                200..=299 => {
                    delta.reports_sent += n as u64;
                    out.sent += n as u64;
                }
                404 => {
                    // An older server: stop asking for a while; what waits is dropped.
                    let _ = fs::write(rdir.join("unsupported"), b"");
                    for _ in 0..rest.len() {
                        Stats::bump(&mut delta.reports_dropped, dropped::UNSUPPORTED);
                    }
                    rest = &[];
                    break;
                }
                401 | 403 => {
                    for _ in 0..n {
                        Stats::bump(&mut delta.reports_dropped, dropped::REFUSED);
                    }
                }
                s if s >= 500 => {
                    return Err(RemoteError::Status {
                        url: remote.config().url.clone(),
                        status: s,
                    })
                }
                _ => {
                    for _ in 0..n {
                        Stats::bump(&mut delta.reports_dropped, dropped::REJECTED);
                    }
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

/// The `time_ms` of a record line, or `None` when it is not a record of a known version.
fn first_time(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<CallReport>(line)
        .ok()
        .filter(|r| r.v == REPORT_VERSION)
        .map(|r| r.time_ms)
}

/// The first lines of `lines` that fit in one request body, and how many they are (at least
/// one: a record is far smaller than a batch).
fn batch(lines: &[&[u8]]) -> (Vec<u8>, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str) -> Change {
        Change {
            kind: kind.into(),
            name: "x".into(),
            before: None,
            after: None,
        }
    }

    #[test]
    fn a_miss_is_blamed_on_its_most_telling_change() {
        use journal::Outcome as J;
        let own_source = [change("extern crate"), change("source file")];
        assert_eq!(
            cause(J::Miss, Some(&own_source)),
            Some(MissCause::SourceFile)
        );
        let flags = [change("source file"), change("argument")];
        assert_eq!(cause(J::Miss, Some(&flags)), Some(MissCause::Argument));
        assert_eq!(
            cause(J::Miss, Some(&[change("env! variable")])),
            Some(MissCause::Environment)
        );
        assert_eq!(cause(J::Miss, Some(&[])), Some(MissCause::SameInputs));
        assert_eq!(cause(J::Miss, None), Some(MissCause::FirstBuild));
        // Not compared: no cause is claimed.
        assert_eq!(cause(J::MissNotStored, None), None);
        assert_eq!(cause(J::HitLocal, None), None);
    }

    #[test]
    fn batches_stay_under_the_limit() {
        let line = vec![b'x'; 1000];
        let lines: Vec<&[u8]> = (0..3000).map(|_| &line[..]).collect();
        let (body, n) = batch(&lines);
        assert!(body.len() <= MAX_BATCH_BYTES);
        assert_eq!(n, MAX_BATCH_BYTES / 1001);
        let (_, n) = batch(&lines[..3]);
        assert_eq!(n, 3);
    }

    #[test]
    fn the_build_id_is_stable_within_a_process_tree() {
        assert_eq!(build_id(), build_id());
        assert_eq!(build_id().len(), 16);
    }
}
