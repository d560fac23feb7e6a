//! One cacheable rustc call: key → lookup → restore, or compile → store.
//!
//! Every failure inside cachet degrades to compiling normally: the function returns
//! [`Outcome::RunUnchanged`] before rustc has produced anything, or the real rustc exit code
//! after, and the problem is counted in the statistics and logged.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cachet_core::entry::Entry;
use cachet_core::Digest;
use tracing::{debug, info, warn};

use crate::compile;
use crate::compiler;
use crate::config::Config;
use crate::dep_info;
use crate::file_hash::{now_ns, FileHasher, Fingerprint};
use crate::invocation::CachePlan;
use crate::journal;
use crate::key::{self, KeyContext};
use crate::local_store::{LocalStore, ObjectKind};
use crate::manifest::Candidate;
use crate::notice;
use crate::stats::{Delta, Stats};

/// On a filesystem without a clock marker, an input changed less than this before the compile
/// started cannot be proven unchanged during it: file timestamps come from the kernel's coarse
/// clock, which lags the precise one by up to a tick (10 ms at HZ=100).
const SETTLE_SLOP_NS: i64 = 10_000_000;

/// The filesystem clock just before rustc starts, read from a file created in the out-dir.
///
/// A file whose ctime is strictly older than the marker's, on the same device, was last
/// changed before the compile began; anything at or after it may have been changed while
/// rustc read it, and is not stored. Build scripts write generated sources into the target
/// directory moments before the compile, so comparing with the same clock keeps those
/// cacheable where a fixed slop would not.
struct ClockMarker {
    dev: u64,
    ctime_ns: i64,
}

impl ClockMarker {
    fn create(dir: &Path) -> Option<ClockMarker> {
        let path = dir.join(format!(".cachet-clock-{}", std::process::id()));
        let file = fs::File::create(&path).ok()?;
        let meta = file.metadata().ok();
        drop(file);
        let _ = fs::remove_file(&path);
        let fp = Fingerprint::of(&meta?);
        Some(ClockMarker {
            dev: fp.dev(),
            ctime_ns: fp.changed_ns(),
        })
    }
}

/// True when an input with this fingerprint may have changed after the compile started.
fn changed_since_start(fp: &Fingerprint, marker: Option<&ClockMarker>, start_ns: i64) -> bool {
    match marker {
        Some(m) if m.dev == fp.dev() => fp.changed_ns() >= m.ctime_ns,
        _ => fp.changed_ns() >= start_ns - SETTLE_SLOP_NS,
    }
}

/// How the call ends.
pub enum Outcome {
    /// Exit with this code (rustc ran, or a hit was restored).
    Exit(u8),
    /// Nothing has run yet: run rustc unchanged.
    RunUnchanged,
}

/// What a call did, for the journal.
#[derive(Debug)]
pub struct Report {
    /// The outcome.
    pub outcome: journal::Outcome,
    /// Why, when not a plain hit or miss.
    pub reason: Option<String>,
    /// The pre-key, once known.
    pub pre_key: Option<Digest>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            outcome: journal::Outcome::PassThrough,
            reason: None,
            pre_key: None,
        }
    }
}

impl Report {
    fn set(&mut self, outcome: journal::Outcome, reason: &str) {
        self.outcome = outcome;
        self.reason = Some(reason.to_string());
    }
}

/// Serves one cacheable invocation.
pub fn serve(
    config: &Config,
    rustc: &OsStr,
    args: &[OsString],
    plan: &CachePlan,
    delta: &mut Delta,
    report: &mut Report,
) -> Outcome {
    let t0 = Instant::now();
    let store = LocalStore::new(&config.dir, config.cache_size);
    let hasher = FileHasher::new(Some(store.hash_records()));
    let Ok(cwd) = std::env::current_dir() else {
        Stats::bump(&mut delta.errors, "no working directory");
        report.set(journal::Outcome::PassThrough, "no working directory");
        return Outcome::RunUnchanged;
    };
    let compiler_records = store.compiler_records();
    let compiler = match compiler::identify(rustc, Some(&compiler_records), &hasher) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot identify the compiler; running it uncached");
            Stats::bump(&mut delta.errors, "compiler identification");
            report.set(
                journal::Outcome::PassThrough,
                "compiler identification failed",
            );
            return Outcome::RunUnchanged;
        }
    };
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let ctx = KeyContext {
        compiler: &compiler,
        cwd: &cwd,
        env: &env,
        hasher: &hasher,
        compiler_records: Some(&compiler_records),
    };
    let pre = match key::pre_key(plan, &ctx) {
        Ok(inputs) => inputs.digest(),
        Err(e) => {
            info!(krate = %plan.crate_name, error = %e, "not cacheable");
            Stats::bump(&mut delta.not_stored, key_error_label(&e));
            report.set(journal::Outcome::PassThrough, key_error_label(&e));
            return Outcome::RunUnchanged;
        }
    };
    delta.cacheable_calls += 1;
    report.pre_key = Some(pre);
    debug!(krate = %plan.crate_name, identify_and_key_us = t0.elapsed().as_micros() as u64, "pre-key");
    let out_dir = plan.out_dir_in(&cwd);
    if !config.recache {
        let started = Instant::now();
        let found = lookup(&store, &pre, &cwd, &hasher, plan, delta);
        debug!(krate = %plan.crate_name, lookup_us = started.elapsed().as_micros() as u64, "lookup");
        if let Some((entry, size)) = found {
            match crate::restore::write_outputs(&entry, &out_dir, &plan.dep_info) {
                Ok(_) => {
                    crate::mark_output_started();
                    let _ = crate::restore::replay(&entry, &out_dir);
                    let millis = started.elapsed().as_millis() as u64;
                    delta.hits_local += 1;
                    delta.bytes_read += size;
                    delta.hit_millis += millis;
                    delta.saved_millis += entry.meta.compile_millis.saturating_sub(millis);
                    debug!(krate = %plan.crate_name, millis, "hit");
                    report.outcome = journal::Outcome::HitLocal;
                    return Outcome::Exit(0);
                }
                Err(e) => {
                    warn!(krate = %plan.crate_name, error = %e, "restoring a hit failed; compiling");
                    Stats::bump(&mut delta.errors, "restore failed");
                }
            }
        }
        delta.misses += 1;
    }
    let outcome = compile_and_store(
        config, &store, &hasher, rustc, args, plan, &cwd, &out_dir, &pre, delta, report,
    );
    if config.recache && report.reason.is_none() && report.outcome == journal::Outcome::Miss {
        report.reason = Some("CACHET_RECACHE".into());
    }
    outcome
}

fn key_error_label(e: &key::KeyError) -> &'static str {
    match e {
        key::KeyError::Unreadable { .. } => "unreadable input",
        key::KeyError::NativeLibNotFound { .. } => "native library not found",
    }
}

/// Finds and decodes the entry for the current inputs, if any.
fn lookup(
    store: &LocalStore,
    pre: &Digest,
    cwd: &Path,
    hasher: &FileHasher,
    plan: &CachePlan,
    delta: &mut Delta,
) -> Option<(Entry, u64)> {
    let manifest = match store.get(ObjectKind::Manifest, pre) {
        Ok(Some(bytes)) => crate::manifest::Manifest::decode(&bytes),
        Ok(None) => return None,
        Err(e) => {
            warn!(error = %e, "cannot read the local cache");
            Stats::bump(&mut delta.errors, "cache read");
            return None;
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let candidate = manifest.find_match(cwd, hasher, &env)?;
    let entry_key = key::entry_key(pre, &candidate.files, &candidate.env);
    let bytes = match store.get(ObjectKind::Entry, &entry_key) {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(e) => {
            warn!(error = %e, "cannot read the local cache");
            Stats::bump(&mut delta.errors, "cache read");
            return None;
        }
    };
    let entry = match Entry::decode(&bytes) {
        Ok(e) => e,
        Err(e) => {
            warn!(key = %entry_key, error = %e, "removing a corrupt entry");
            Stats::bump(&mut delta.errors, "corrupt entry removed");
            store.remove(ObjectKind::Entry, &entry_key);
            return None;
        }
    };
    let complete = plan
        .outputs
        .iter()
        .all(|o| entry.meta.files.iter().any(|f| &f.name == o));
    if !complete {
        Stats::bump(&mut delta.errors, "entry lacks an output");
        return None;
    }
    Some((entry, bytes.len() as u64))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the list"
)]
fn compile_and_store(
    config: &Config,
    store: &LocalStore,
    hasher: &FileHasher,
    rustc: &OsStr,
    args: &[OsString],
    plan: &CachePlan,
    cwd: &Path,
    out_dir: &Path,
    pre: &Digest,
    delta: &mut Delta,
    report: &mut Report,
) -> Outcome {
    let marker = ClockMarker::create(out_dir);
    let start_ns = now_ns();
    crate::mark_output_started();
    let compiled = match compile::run(Path::new(rustc), args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: cachet: failed to run {}: {e}",
                Path::new(rustc).display()
            );
            return Outcome::Exit(1);
        }
    };
    delta.compile_millis += compiled.millis;
    if !compiled.status.success() {
        delta.compile_failures += 1;
        report.outcome = journal::Outcome::CompileFailed;
        return Outcome::Exit(exit_code(&compiled.status));
    }
    match build_entry(
        config,
        hasher,
        plan,
        cwd,
        out_dir,
        (marker.as_ref(), start_ns),
        compiled,
    ) {
        Ok((entry_bytes, candidate)) => {
            let key = key::entry_key(pre, &candidate.files, &candidate.env);
            let stored = store
                .put(ObjectKind::Entry, &key, &entry_bytes)
                .and_then(|()| store.update_manifest(pre, |m| m.add(candidate)).map(|_| ()));
            match stored {
                Ok(()) => {
                    delta.entries_written += 1;
                    report.outcome = journal::Outcome::Miss;
                    delta.bytes_written += entry_bytes.len() as u64;
                    debug!(krate = %plan.crate_name, %key, "stored");
                }
                Err(e) => {
                    warn!(error = %e, "cannot write the local cache");
                    Stats::bump(&mut delta.errors, "cache write");
                    report.set(journal::Outcome::MissNotStored, "cache write failed");
                    notice::warn_cache_unwritable(&config.dir, &e);
                }
            }
        }
        Err(reason) => {
            info!(krate = %plan.crate_name, reason, "not stored");
            Stats::bump(&mut delta.not_stored, reason);
            report.set(journal::Outcome::MissNotStored, reason);
        }
    }
    Outcome::Exit(0)
}

/// Exit code of rustc, as a byte (a signal becomes 128 + signal, as shells report it).
pub fn exit_code(status: &std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => 1,
    }
}

/// Collects what the compile read and wrote into an encoded entry and a manifest candidate.
/// `Err` carries the reason the result is not stored.
fn build_entry(
    config: &Config,
    hasher: &FileHasher,
    plan: &CachePlan,
    cwd: &Path,
    out_dir: &Path,
    (marker, start_ns): (Option<&ClockMarker>, i64),
    compiled: compile::Compiled,
) -> Result<(Vec<u8>, Candidate), &'static str> {
    let dep_text =
        fs::read_to_string(out_dir.join(&plan.dep_info)).map_err(|_| "dep-info unreadable")?;
    let deps = dep_info::parse(&dep_text);
    let mut files = Vec::with_capacity(deps.files.len());
    for f in &deps.files {
        let path = cwd.join(f);
        let meta = fs::metadata(&path).map_err(|_| "input vanished")?;
        if !meta.is_file() {
            return Err("input is not a file");
        }
        if changed_since_start(&Fingerprint::of(&meta), marker, start_ns) {
            // rustc may have read the old contents; what we would hash now is not what it saw.
            return Err("input modified during compile");
        }
        let digest = hasher.hash(&path).map_err(|_| "input unreadable")?;
        files.push((f.clone(), digest));
    }
    let mut outputs = Vec::with_capacity(plan.outputs.len());
    for name in &plan.outputs {
        let path: PathBuf = out_dir.join(name);
        let bytes = fs::read(&path).map_err(|_| "expected output missing")?;
        let mode = fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        outputs.push((name.clone(), mode, bytes));
    }
    let entry = Entry::new(
        plan.crate_name.clone(),
        out_dir.to_string_lossy().into_owned(),
        compiled.millis,
        compiled.stdout,
        compiled.stderr,
        outputs,
    );
    let bytes = entry
        .encode(config.compression_level)
        .map_err(|_| "compression failed")?;
    Ok((
        bytes,
        Candidate {
            files,
            env: deps.env,
        },
    ))
}
