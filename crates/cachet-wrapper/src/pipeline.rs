//! One cacheable rustc call: key → lookup → restore, or compile → store.
//!
//! Every failure inside cachet degrades to compiling normally: the function returns
//! [`Outcome::RunUnchanged`] before rustc has produced anything, or the real rustc exit code
//! after, and the problem is counted in the statistics and logged.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cachet_core::entry::{EntryError, EntryMeta, EntryWriter, Within};
use cachet_core::Digest;
use tracing::{debug, info, warn};

use crate::clock::ClockMarker;
use crate::compile;
use crate::compiler::{self, Compiler};
use crate::config::Config;
use crate::dep_info;
use crate::driver::{DriverError, Programs};
use crate::file_hash::{now_ns, FileHasher, Fingerprint};
use crate::invocation::CachePlan;
use crate::journal;
use crate::key::{self, KeyContext};
use crate::manifest::{Candidate, InputPolicy};
use crate::notice;
use crate::paths::Anchors;
use crate::stats::{Delta, Stats};
use crate::tiers::{Found, Source, Tiers};

/// On a filesystem without a clock marker, an input changed less than this before the compile
/// started cannot be proven unchanged during it: file timestamps come from the kernel's coarse
/// clock, which lags the precise one by up to a tick (10 ms at HZ=100).
const SETTLE_SLOP_NS: i64 = 10_000_000;

/// True when an input with this fingerprint may have changed after the compile started.
fn changed_since_start(fp: &Fingerprint, marker: Option<&ClockMarker>, start_ns: i64) -> bool {
    match marker {
        Some(m) if m.dev() == fp.dev() => !m.is_after(fp),
        _ => fp.changed_ns() >= start_ns - SETTLE_SLOP_NS,
    }
}

/// True when a link input may have changed after the linker read it. The files a link reads
/// are mostly outputs of the crate's dependencies, finished moments before this call started,
/// often in the marker's own clock tick; the linker runs at the end of the compile, many ticks
/// later, so only a change in a later tick than the marker's can be one it did not see.
fn link_input_changed(fp: &Fingerprint, marker: Option<&ClockMarker>, start_ns: i64) -> bool {
    match marker {
        Some(m) if m.dev() == fp.dev() => m.is_before(fp),
        _ => changed_since_start(fp, marker, start_ns),
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
    /// For a miss, what differs from the nearest earlier entry.
    pub changes: Option<Vec<crate::explain::Change>>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            outcome: journal::Outcome::PassThrough,
            reason: None,
            pre_key: None,
            changes: None,
        }
    }
}

impl Report {
    fn set(&mut self, outcome: journal::Outcome, reason: &str) {
        self.outcome = outcome;
        self.reason = Some(reason.to_string());
    }
}

/// Everything one cacheable call works with, gathered once.
struct Call<'a> {
    config: &'a Config,
    plan: &'a CachePlan,
    /// What cargo asked to run: rustc, or a workspace wrapper and rustc.
    programs: &'a Programs<'a>,
    args: &'a [OsString],
    /// The compiler's identity.
    compiler: &'a Compiler,
    /// L1 and L2.
    tiers: Tiers<'a>,
    /// Hashes inputs, remembering large settled files.
    hasher: FileHasher,
    /// The filesystem clock before anything was hashed or compiled.
    marker: Option<ClockMarker>,
    /// Directories written relative in keys and remapped in outputs.
    anchors: Anchors,
    cwd: PathBuf,
    out_dir: PathBuf,
}

/// Serves one cacheable invocation.
pub fn serve(
    config: &Config,
    programs: &Programs<'_>,
    plan: &CachePlan,
    delta: &mut Delta,
    report: &mut Report,
) -> Outcome {
    let t0 = Instant::now();
    let Ok(cwd) = std::env::current_dir() else {
        Stats::bump(&mut delta.errors, "no working directory");
        report.set(journal::Outcome::PassThrough, "no working directory");
        return Outcome::RunUnchanged;
    };
    let out_dir = plan.out_dir_in(&cwd);
    let tiers = Tiers::new(config);
    // One reading of the filesystem clock, taken before any input is hashed or rustc runs.
    let marker = ClockMarker::after_generated_files(&out_dir);
    let hasher = FileHasher::new(Some(tiers.local.hash_records()), marker);
    let compiler_records = tiers.local.compiler_records();
    let (rustc, args) = (programs.rustc, programs.args);
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
    // A workspace wrapper (clippy-driver) compiles instead of rustc; only a known one is cached.
    let driver = match programs.driver {
        None => None,
        Some(d) => match crate::driver::identify(d, Some(&compiler_records), &hasher) {
            Ok(driver) => Some(driver),
            Err(e) => {
                let reason = match e {
                    DriverError::Unsupported(_) => "workspace wrapper not clippy-driver",
                    DriverError::Identity(_) => "workspace wrapper identification failed",
                };
                info!(error = %e, "workspace wrapper runs uncached");
                Stats::bump(&mut delta.pass_through, reason);
                report.set(journal::Outcome::PassThrough, reason);
                return Outcome::RunUnchanged;
            }
        },
    };
    let call = Call {
        config,
        plan,
        programs,
        args,
        compiler: &compiler,
        hasher,
        tiers,
        marker,
        anchors: Anchors::discover(&cwd, Some(&out_dir), |k| std::env::var(k).ok())
            .for_input(&cwd, &plan.input),
        cwd,
        out_dir,
    };
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let ctx = KeyContext {
        compiler: call.compiler,
        cwd: &call.cwd,
        env: &env,
        hasher: &call.hasher,
        compiler_records: Some(&compiler_records),
        anchors: &call.anchors,
        extra: &config.extra_key,
    };
    let pre_inputs = match key::pre_key(plan, &ctx).and_then(|mut inputs| {
        if let Some(driver) = &driver {
            inputs.0.extend(driver_key(driver, &call, &env)?);
        }
        Ok(inputs)
    }) {
        Ok(inputs) => inputs,
        Err(e) => {
            info!(krate = %plan.crate_name, error = %e, "not cacheable");
            Stats::bump(&mut delta.not_stored, key_error_label(&e));
            report.set(journal::Outcome::PassThrough, key_error_label(&e));
            return Outcome::RunUnchanged;
        }
    };
    let pre = pre_inputs.digest();
    delta.cacheable_calls += 1;
    report.pre_key = Some(pre);
    debug!(krate = %plan.crate_name, key_us = t0.elapsed().as_micros() as u64, "pre-key");
    // A crate compiled incrementally may be the one being edited (see edit_loop.rs).
    let unit = plan.args.incremental.is_some().then(|| {
        crate::edit_loop::Unit::new(&config.dir, &call.out_dir, &plan.outputs, config.edit_loop)
    });
    if !config.recache {
        let started = Instant::now();
        let found = lookup(&call, &pre, delta);
        debug!(krate = %plan.crate_name, lookup_us = started.elapsed().as_micros() as u64, "lookup");
        if let Some(found) = found {
            match crate::restore::write_outputs(
                &found,
                &call.out_dir,
                &plan.dep_info,
                &call.anchors,
            ) {
                Ok((stdout, stderr)) => {
                    let meta = &found.head.meta;
                    crate::mark_output_started();
                    let texts = (&stdout[..], &stderr[..]);
                    let _ = crate::restore::replay(meta, texts, &call.out_dir, &call.anchors);
                    // rustc's incremental directory is left as it is: see docs/design.md,
                    // "Incremental compilation".
                    if let Some(unit) = &unit {
                        unit.hit();
                    }
                    let millis = started.elapsed().as_millis() as u64;
                    match found.source {
                        Source::Local => delta.hits_local += 1,
                        Source::Remote => delta.hits_remote += 1,
                    }
                    delta.bytes_read += found.head.len;
                    delta.hit_millis += millis;
                    delta.saved_millis += meta.compile_millis.saturating_sub(millis);
                    debug!(krate = %plan.crate_name, millis, "hit");
                    report.outcome = match found.source {
                        Source::Local => journal::Outcome::HitLocal,
                        Source::Remote => journal::Outcome::HitRemote,
                    };
                    return Outcome::Exit(0);
                }
                Err(e) => {
                    warn!(krate = %plan.crate_name, error = %e, "restoring a hit failed; compiling");
                    Stats::bump(&mut delta.errors, "restore failed");
                }
            }
        }
        delta.misses += 1;
        if call.tiers.remote_answered() {
            delta.misses_remote += 1;
        }
    }
    let store = unit.is_none_or(|u| u.miss(journal::now_ms()));
    let outcome = compile_and_store(&call, (&pre, &pre_inputs), store, delta, report);
    if config.recache && report.reason.is_none() && report.outcome == journal::Outcome::Miss {
        report.reason = Some("CACHET_RECACHE".into());
    }
    outcome
}

/// The key lines of a workspace wrapper: its identity, configuration files and variables.
fn driver_key(
    driver: &crate::driver::Driver,
    call: &Call<'_>,
    env: &[(String, String)],
) -> Result<Vec<(String, String)>, key::KeyError> {
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let shown = |p: &str| call.anchors.normalize(p);
    let mut lines = crate::driver::key_lines(driver, &call.cwd, var, &call.hasher, shown).map_err(
        |source| key::KeyError::Unreadable {
            path: call.cwd.clone(),
            source,
        },
    )?;
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| crate::driver::is_driver_env(k))
        .collect();
    vars.sort();
    lines.extend(
        vars.into_iter()
            .map(|(k, v)| (format!("env {k}"), call.anchors.normalize(v))),
    );
    Ok(lines)
}

fn key_error_label(e: &key::KeyError) -> &'static str {
    match e {
        key::KeyError::Unreadable { .. } => "unreadable input",
        key::KeyError::NativeLibNotFound { .. } => "native library not found",
        key::KeyError::BadGlob { .. } => "CACHET_KEY_FILES pattern not valid",
        key::KeyError::ThinArchive { .. } => "thin archive in a native search directory",
        key::KeyError::LinkerNotFound { .. } => "linker not found",
    }
}

/// Where this call's outputs go and its anchors are, as one value: a candidate whose outputs
/// embed the checkout's location records it under [`crate::manifest::LOCATION`], and matches
/// only where it is the same.
fn location(anchors: &Anchors, out_dir: &Path) -> String {
    let mut s = format!("out-dir={}", out_dir.display());
    for (name, path) in anchors.pairs() {
        s.push_str(&format!("\n{name}={path}"));
    }
    s
}

/// Which files a manifest candidate may name for this call (see `manifest.rs`).
fn input_policy(call: &Call<'_>) -> InputPolicy {
    let anchored = |name: &str| -> Vec<PathBuf> {
        let named = call.anchors.0.iter().filter(|a| a.name == name);
        named.map(|a| PathBuf::from(&a.path)).collect()
    };
    let mut sources = anchored("WORKSPACE");
    sources.extend(anchored("CARGO_HOME"));
    sources.push(call.cwd.clone());
    let mut built = anchored("TARGET");
    built.push(call.out_dir.clone());
    built.push(call.compiler.sysroot.clone());
    built.extend(call.plan.args.sysroot.iter().map(|s| call.cwd.join(s)));
    built.extend(
        call.plan
            .args
            .search_paths
            .iter()
            .map(|s| call.cwd.join(&s.path)),
    );
    built.extend(std::env::var_os("OUT_DIR").map(PathBuf::from));
    InputPolicy::new(&call.cwd, &call.anchors, &sources, &built, call.plan.links)
}

/// Finds the entry for the current inputs, if any: L1's manifest first, the server's only
/// when L1 has no matching candidate. An entry holding a file this compile would not write,
/// or lacking one it would, is refused (see `tiers.rs`).
fn lookup(call: &Call<'_>, pre: &Digest, delta: &mut Delta) -> Option<Found> {
    let here = location(&call.anchors, &call.out_dir);
    let env = |name: &str| {
        if name == crate::manifest::LOCATION {
            Some(here.clone())
        } else {
            std::env::var(name).ok()
        }
    };
    let policy = input_policy(call);
    let find = |m: &crate::manifest::Manifest| m.find_match(&policy, &call.hasher, &env).cloned();
    let candidate = match find(&call.tiers.manifest(pre, false, &policy, delta)) {
        Some(c) => c,
        None if call.tiers.has_remote() => find(&call.tiers.manifest(pre, true, &policy, delta))?,
        None => return None,
    };
    let entry_key = key::entry_key(pre, &candidate.files, &candidate.env);
    let found = call.tiers.entry(&entry_key, &call.plan.outputs, delta)?;
    Some(found)
}

/// Compiles, and stores the result when `store` is set (unset: the crate is being edited, see
/// `edit_loop.rs`).
fn compile_and_store(
    call: &Call<'_>,
    (pre, pre_inputs): (&Digest, &key::KeyInputs),
    store: bool,
    delta: &mut Delta,
    report: &mut Report,
) -> Outcome {
    let (config, plan) = (call.config, call.plan);
    let start_ns = now_ns();
    crate::mark_output_started();
    // Outputs must not depend on where the checkout is: see paths.rs.
    let mut args = call.anchors.remap_args();
    // A linked crate's key needs the link command; rustc writes it to a file for us.
    let link_args = plan.links.then(|| link_args_file(&call.out_dir));
    if let Some(file) = &link_args {
        args.push(crate::link::print_arg(file));
    }
    args.extend_from_slice(call.args);
    let (program, prefix) = call.programs.command_prefix();
    let unmap = crate::messages::Unmap::new(&call.anchors);
    let compiled = compile::run(Path::new(program), &[prefix, args].concat(), &unmap);
    let link_command = link_args.as_ref().and_then(|file| {
        let text = fs::read_to_string(file).ok();
        let _ = fs::remove_file(file);
        text
    });
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: cachet: failed to run {}: {e}",
                Path::new(program).display()
            );
            return Outcome::Exit(1);
        }
    };
    delta.compile_millis += compiled.millis;
    let after_compile = Instant::now();
    if !compiled.status.success() {
        delta.compile_failures += 1;
        // Counted as a compile failure, not also as a miss: the journal records it so, and
        // `cachet stats` agrees with it (build scripts' feature probes fail on purpose).
        delta.misses = 0;
        delta.misses_remote = 0;
        report.outcome = journal::Outcome::CompileFailed;
        return Outcome::Exit(exit_code(&compiled.status));
    }
    let compiled_millis = compiled.millis;
    if !store {
        let reason = crate::edit_loop::NOT_STORED;
        debug!(krate = %plan.crate_name, compile_ms = compiled_millis, reason, "not stored");
        Stats::bump(&mut delta.not_stored, reason);
        report.set(journal::Outcome::MissNotStored, reason);
        return Outcome::Exit(0);
    }
    match collect(call, start_ns, link_command.as_deref()) {
        Ok((candidate, mut outputs, per_checkout)) => {
            let key = key::entry_key(pre, &candidate.files, &candidate.env);
            report.changes = crate::explain::record_and_diff(
                &config.dir,
                &plan.crate_name,
                pre_inputs,
                &candidate,
                journal::now_ms(),
            );
            let meta = EntryMeta {
                crate_name: plan.crate_name.clone(),
                out_dir: call.out_dir.to_string_lossy().into_owned(),
                anchors: call.anchors.pairs(),
                compile_millis: compiled.millis,
                stdout_len: 0,
                stderr_len: 0,
                files: Vec::new(),
            };
            // Set when the entry is abandoned for a reason that is not the cache's fault.
            let mut refused = None;
            let stored = call.tiers.store(
                pre,
                &key,
                |file| {
                    let result = write_entry(file, &key, meta, &compiled, &mut outputs, config);
                    if let Err(StoreError::Refused(reason)) = &result {
                        refused = Some(*reason);
                    }
                    result.map_err(StoreError::into_io)
                },
                candidate,
                delta,
            );
            match (stored, refused) {
                (Ok(len), _) => {
                    delta.entries_written += 1;
                    report.outcome = journal::Outcome::Miss;
                    if let Some(p) = per_checkout {
                        Stats::bump(&mut delta.stored_per_checkout, p.label);
                        report.reason = Some(p.reason);
                    }
                    delta.bytes_written += len;
                    debug!(
                        krate = %plan.crate_name,
                        %key,
                        compile_ms = compiled_millis,
                        store_us = after_compile.elapsed().as_micros() as u64,
                        "stored"
                    );
                }
                (Err(_), Some(reason)) => {
                    info!(krate = %plan.crate_name, reason, "not stored");
                    Stats::bump(&mut delta.not_stored, reason);
                    report.set(journal::Outcome::MissNotStored, reason);
                }
                (Err(e), None) => {
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

/// A fresh file name for rustc's link command, in the out-dir: rustc writes its outputs and
/// temporary files there anyway, so this adds no new way to fail (a cache directory on a full
/// disk would make rustc, and the build, fail). Removed right after the compile.
fn link_args_file(out_dir: &Path) -> PathBuf {
    out_dir.join(format!(
        ".cachet-link-{}-{}.txt",
        std::process::id(),
        now_ns()
    ))
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

/// What the link read (see `link.rs`), checked like dep-info files on lookup.
fn link_inputs(
    call: &Call<'_>,
    link_command: Option<&str>,
) -> Result<crate::link::LinkInputs, &'static str> {
    let command = crate::link::parse_command(link_command.ok_or("link command unknown")?)
        .ok_or("link command unreadable")?;
    let path_env = std::env::var("PATH").ok();
    let linker = crate::link::resolve_linker(
        &call.plan.args,
        call.compiler,
        &call.cwd,
        path_env.as_deref(),
    )
    .ok_or("linker not found")?;
    let sysroot = call
        .plan
        .args
        .sysroot
        .as_ref()
        .map(|s| call.cwd.join(s))
        .unwrap_or_else(|| call.compiler.sysroot.clone());
    let extra = call.plan.args.codegen_value("extra-filename").unwrap_or("");
    let stem = format!("{}{extra}", call.plan.crate_name);
    let records = call.tiers.local.compiler_records();
    let ctx = crate::link::LinkContext {
        cwd: &call.cwd,
        out_dir: &call.out_dir,
        stem: &stem,
        compiler: call.compiler,
        sysroot: &sysroot,
        linker: &linker,
        anchors: &call.anchors,
        hasher: &call.hasher,
        records: Some(&records),
    };
    crate::link::link_inputs(&command, &ctx)
}

/// An output file of the compile, open since before the entry was keyed.
struct Output {
    name: String,
    mode: u32,
    file: fs::File,
    /// Its fingerprint when opened: the entry is abandoned if the file changes while read.
    fingerprint: Fingerprint,
}

/// Why writing an entry stopped.
enum StoreError {
    /// Storing would be unsound or pointless; the reason is counted in `not_stored`.
    Refused(&'static str),
    /// The cache could not be written.
    Io(std::io::Error),
}

impl StoreError {
    fn into_io(self) -> std::io::Error {
        match self {
            StoreError::Refused(reason) => std::io::Error::other(reason),
            StoreError::Io(e) => e,
        }
    }
}

/// Why an entry is stored under a key holding this checkout's location (it then hits only
/// here): a label counted in the statistics, and the reason shown by `cachet explain`.
struct PerCheckout {
    label: &'static str,
    reason: String,
}

/// What a compile read (the manifest candidate), what it wrote, and why its entry hits only
/// in this checkout, if it does.
type Collected = (Candidate, Vec<Output>, Option<PerCheckout>);

/// Collects what the compile read (the manifest candidate) and opens what it wrote.
/// `Err` carries the reason the result is not stored.
fn collect(
    call: &Call<'_>,
    start_ns: i64,
    link_command: Option<&str>,
) -> Result<Collected, &'static str> {
    let (plan, cwd, out_dir, hasher) = (call.plan, &call.cwd, &call.out_dir, &call.hasher);
    let marker = call.marker.as_ref();
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
        // A change while we were hashing would leave a hash of neither version.
        let after = fs::metadata(&path).map_err(|_| "input vanished")?;
        if Fingerprint::of(&after) != Fingerprint::of(&meta) {
            return Err("input modified during compile");
        }
        files.push((call.anchors.normalize(f), digest));
    }
    let mut location_dependent = false;
    if plan.links {
        let inputs = link_inputs(call, link_command)?;
        location_dependent = inputs.location_dependent;
        for (shown, digest) in inputs.files {
            if digest != crate::link::ABSENT {
                let path = cwd.join(call.anchors.denormalize(&shown));
                let meta = fs::metadata(&path).map_err(|_| "link input vanished")?;
                if link_input_changed(&Fingerprint::of(&meta), marker, start_ns) {
                    return Err("link input modified during compile");
                }
            }
            files.push((shown, digest));
        }
    }
    // A lookup hashes only files the input policy accepts (see manifest.rs): an entry naming
    // another one (`include_str!("/etc/…")`) could never be hit, only stored again.
    let policy = input_policy(call);
    for (shown, digest) in &files {
        if *digest != crate::link::ABSENT {
            policy
                .check(&policy.resolve(shown))
                .map_err(crate::manifest::Unsuitable::not_stored_reason)?;
        }
    }
    let mut outputs = Vec::with_capacity(plan.outputs.len());
    for name in &plan.outputs {
        let file = fs::File::open(out_dir.join(name)).map_err(|_| "expected output missing")?;
        let meta = file.metadata().map_err(|_| "expected output missing")?;
        outputs.push(Output {
            name: name.clone(),
            mode: meta.permissions().mode() & 0o7777,
            fingerprint: Fingerprint::of(&meta),
            file,
        });
    }
    // A variable read by `env!` whose value holds an anchored path is keyed relative to the
    // anchor only when every read of it is proven to be an `include!` of a file (see
    // env_proof.rs); otherwise its literal value is keyed and the crate is compiled per
    // checkout.
    let anchored: Vec<&str> = deps
        .env
        .iter()
        .filter(|(_, v)| v.as_ref().is_some_and(|v| call.anchors.normalize(v) != *v))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut per_checkout = None;
    let proven = !anchored.is_empty()
        && {
            let paths: Vec<PathBuf> = deps.files.iter().map(|f| cwd.join(f)).collect();
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let verdict =
                crate::env_proof::prove_only_included(&refs, &anchored, plan.args.loads_crates());
            if let Err(why) = verdict {
                info!(krate = %plan.crate_name, vars = ?anchored, why, "path-valued env! keyed literally");
                per_checkout = Some(PerCheckout {
                    label: "path-valued env! keyed literally",
                    reason: format!(
                        "env! {} keyed literally (hits only in this checkout): {why}",
                        anchored.join(", ")
                    ),
                });
            }
            verdict.is_ok()
        };
    let env: Vec<(String, Option<String>)> = deps
        .env
        .into_iter()
        .map(|(name, value)| {
            let value = value.map(|v| {
                if proven {
                    call.anchors.normalize(&v)
                } else {
                    v
                }
            });
            (name, value)
        })
        .collect();
    let mut env = env;
    if location_dependent {
        // The outputs name this checkout's directories: reuse them only here.
        env.push((
            crate::manifest::LOCATION.to_string(),
            Some(location(&call.anchors, out_dir)),
        ));
        per_checkout.get_or_insert(PerCheckout {
            label: "checkout path in the link output",
            reason: "the link output names this checkout's directories (rpath): hits only in \
                     this checkout"
                .to_string(),
        });
    }
    Ok((Candidate { files, env }, outputs, per_checkout))
}

/// The offset of the first `needle` in `file`, read in chunks.
fn find(file: &fs::File, needle: &[u8]) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    if needle.is_empty() {
        return Ok(Some(0));
    }
    let finder = memchr::memmem::Finder::new(needle);
    // Each read keeps the previous chunk's last `needle.len() - 1` bytes in front, so a match
    // across a chunk boundary is found.
    let keep = needle.len() - 1;
    let mut buf = vec![0u8; keep + CHUNK];
    // `start` is the file offset of `buf[0]`.
    let (mut held, mut start) = (0usize, 0u64);
    loop {
        let n = file.read_at(&mut buf[held..held + CHUNK], start + held as u64)?;
        if n == 0 {
            return Ok(None);
        }
        let filled = held + n;
        if let Some(i) = finder.find(&buf[..filled]) {
            return Ok(Some(start + i as u64));
        }
        let next = keep.min(filled);
        start += (filled - next) as u64;
        buf.copy_within(filled - next..filled, 0);
        held = next;
    }
}

/// Whether `file` holds exactly `bytes` at `offset`.
fn holds_at(file: &fs::File, offset: u64, bytes: &[u8]) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; bytes.len().min(1 << 20)];
    let mut done = 0;
    while done < bytes.len() {
        let want = (bytes.len() - done).min(buf.len());
        let n = file.read_at(&mut buf[..want], offset + done as u64)?;
        if n == 0 || buf[..n] != bytes[done..done + n] {
            return Ok(false);
        }
        done += n;
    }
    Ok(true)
}

/// For a crate's `.rmeta` whose bytes also sit inside its `.rlib` (rustc writes the same
/// metadata into both), where they are: the entry then stores them once. `None` whenever
/// that cannot be shown byte for byte.
fn rmeta_within_rlib(outputs: &[Output], rmeta: &Output) -> Option<(usize, u64, Vec<u8>)> {
    use std::io::Read;
    let stem = rmeta.name.strip_suffix(".rmeta")?;
    let rlib = outputs
        .iter()
        .position(|o| o.name.strip_suffix(".rlib") == Some(stem))?;
    let mut bytes = Vec::with_capacity(rmeta.fingerprint.size() as usize);
    (&rmeta.file).read_to_end(&mut bytes).ok()?;
    let probe = &bytes[..bytes.len().min(256)];
    if probe.len() < 64 {
        return None;
    }
    let offset = find(&outputs[rlib].file, probe).ok()??;
    holds_at(&outputs[rlib].file, offset, &bytes)
        .ok()?
        .then_some((rlib, offset, bytes))
}

/// Streams the entry into `file`: rustc's stdout and stderr, then each output read in chunks
/// (never whole in memory), then the metadata. An output that changes meanwhile abandons it.
fn write_entry(
    file: &mut fs::File,
    key: &Digest,
    meta: EntryMeta,
    compiled: &compile::Compiled,
    outputs: &mut [Output],
    config: &Config,
) -> Result<u64, StoreError> {
    use std::io::{Seek, SeekFrom};
    let payload: u64 = outputs.iter().map(|o| o.fingerprint.size()).sum();
    let entry_error = |e: EntryError| match e {
        EntryError::Compress(io) => StoreError::Io(io),
        _ => StoreError::Refused("entry could not be encoded"),
    };
    let mut writer = EntryWriter::new(
        file,
        key,
        config.compression_level,
        &compiled.stdout,
        &compiled.stderr,
        payload,
    )
    .map_err(entry_error)?;
    // Files stored in the body first, then those that are copies of a range of one of them.
    let mut copies = Vec::new();
    let mut index_in_entry = vec![usize::MAX; outputs.len()];
    for (i, o) in outputs.iter().enumerate() {
        if let Some((holder, offset, bytes)) = rmeta_within_rlib(outputs, o) {
            copies.push((i, holder, offset, bytes));
        }
    }
    for (i, o) in outputs.iter_mut().enumerate() {
        if copies.iter().any(|c| c.0 == i) {
            continue;
        }
        let unreadable = |_| StoreError::Refused("output unreadable");
        o.file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        // A read error of an output is not the cache's fault: tell the two apart.
        let mut reader = ReadErrors {
            inner: &o.file,
            failed: false,
        };
        let written = writer.add_file(&o.name, o.mode, &mut reader);
        if reader.failed {
            return Err(StoreError::Refused("output unreadable"));
        }
        let size = written.map_err(entry_error)?.size;
        index_in_entry[i] = writer.file_count() - 1;
        let now = o.file.metadata().map_err(unreadable)?;
        if size != o.fingerprint.size() || Fingerprint::of(&now) != o.fingerprint {
            return Err(StoreError::Refused("output modified while stored"));
        }
    }
    for (i, holder, offset, bytes) in copies {
        let o = &outputs[i];
        let within = Within {
            file: index_in_entry[holder],
            offset,
        };
        let hash = Digest::of(&bytes);
        writer
            .add_copy(&o.name, o.mode, within, bytes.len() as u64, hash)
            .map_err(entry_error)?;
        let now = o.file.metadata();
        if bytes.len() as u64 != o.fingerprint.size()
            || now.map(|m| Fingerprint::of(&m)).ok() != Some(o.fingerprint)
        {
            return Err(StoreError::Refused("output modified while stored"));
        }
    }
    writer.finish(meta).map_err(entry_error)
}

/// Remembers whether reading failed, so a read error is not taken for a cache write error.
struct ReadErrors<'f> {
    inner: &'f fs::File,
    failed: bool,
}

impl std::io::Read for ReadErrors<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::Interrupted) {
            self.failed = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_locates_a_value_across_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let needle = b"/home/dev/project/src";
        // Place the needle across the first and second 1 MiB boundaries, at the very end, and
        // nowhere.
        for at in [(1 << 20) - 7, (2 << 20) - 3, (3 << 20) - needle.len()] {
            let mut bytes = vec![b'x'; 3 << 20];
            bytes[at..at + needle.len()].copy_from_slice(needle);
            let path = dir.path().join(format!("out-{at}"));
            fs::write(&path, &bytes).unwrap();
            let file = fs::File::open(&path).unwrap();
            assert!(find(&file, needle).unwrap().is_some());
            assert_eq!(find(&file, needle).unwrap(), Some(at as u64));
            assert!(holds_at(&file, at as u64, needle).unwrap());
            assert!(!holds_at(&file, at as u64 + 1, needle).unwrap());
        }
        let path = dir.path().join("none");
        fs::write(&path, vec![b'x'; 3 << 20]).unwrap();
        assert!(find(&fs::File::open(&path).unwrap(), needle)
            .unwrap()
            .is_none());
        fs::write(&path, b"").unwrap();
        assert!(find(&fs::File::open(&path).unwrap(), needle)
            .unwrap()
            .is_none());
    }
}
