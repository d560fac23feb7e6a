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
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use cachet_core::report::{clamp_field, CallKind, CallReport, MissCause, REPORT_VERSION};
use cachet_core::Digest;

use crate::config::Config;
use crate::explain::Change;
use crate::journal;
use crate::remote::Breaker;
use crate::stats::Delta;

mod send;

use send::maybe_start_flush;
pub use send::{
    client_name, dir, drain, spool_path, Drained, Limits, DRAIN_BATCHES, DRAIN_BUDGET, FLUSH_AFTER,
    MAX_AGE, OUTBOX_CAP, SPOOL_CAP, UNSUPPORTED_BACKOFF,
};

pub use crate::stats::Dropped;

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
/// entry; [`MissCause::FirstBuild`] for a miss with no earlier entry;
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
        // Every miss, stored or not, compares with the crate's earlier records: none existed.
        (journal::Outcome::Miss | journal::Outcome::MissNotStored, None) => {
            Some(MissCause::FirstBuild)
        }
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
        delta.count_dropped(Dropped::SpoolFull, 1);
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
/// records have waited long enough. Does nothing unless [`enabled`]. A C, C++ or assembler
/// call's record names the source file without its directories; such calls with no source
/// file (links, probes) are not reported.
pub fn call_done(config: &Config, record: &journal::Record, kind: CallKind, delta: &mut Delta) {
    if !enabled(config) {
        return;
    }
    let mut facts = CallFacts::of(record, kind);
    if matches!(kind, CallKind::C | CallKind::Cxx | CallKind::Asm) {
        let Some(source) = record.krate.as_deref() else {
            return;
        };
        facts.krate = Some(source.rsplit('/').next().unwrap_or(source));
    }
    let report = build(config, &facts, delta);
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

/// The kind of a C, C++ or assembler call, from its language as counted in the statistics.
pub fn cc_kind(language: &str) -> CallKind {
    match language {
        "c" => CallKind::C,
        "c++" => CallKind::Cxx,
        "asm" => CallKind::Asm,
        _ => CallKind::Other,
    }
}

#[cfg(test)]
mod tests;
