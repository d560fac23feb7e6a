//! One cacheable C, C++ or assembler compile: key → lookup → restore, or compile → store.
//!
//! The same L1, server, manifests, entries and statistics as rustc calls. An entry holds the
//! object (`out.o`), the user's dependency file when one was asked for (`out.d`), and the
//! compiler's stdout and stderr byte for byte, so warnings are replayed exactly; paths of the
//! recorded checkout are moved to this one's in the dependency file and in the diagnostics.
//! A hit is streamed from the entry to the output files, as rustc's are (`restore.rs`).
//! A failed compile is passed through and never stored.

use std::ffi::OsString;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cachet_core::entry::{Compression, EntryError, EntryMeta, EntryWriter};
use cachet_core::Digest;
use tracing::{debug, info, warn};

use crate::call::{CallResult, CallState, Lookup, Miss, NotStored, Problem, Skip, Stored};
use crate::clock::ClockMarker;
use crate::compile;
use crate::config::Config;
use crate::dep_info;
use crate::file_hash::{now_ns, FileHasher, Fingerprint};
use crate::journal;
use crate::key::{self, KeyInputs};
use crate::manifest::{Candidate, InputPolicy};
use crate::paths::{absolute, replace_path, Anchors};
use crate::pipeline::exit_code;
use crate::reason::NotStoredReason;
use crate::tiers::{Found, Tiers};

use super::args::{CcPlan, SearchKind};
use super::depfile;
use super::identity::{self, CcCompiler};
use super::inputs;
use super::key::pre_key;

/// The entry's name for the object file.
const OBJECT: &str = "out.o";
/// The entry's name for the user's dependency file.
const DEPFILE: &str = "out.d";

/// Everything one call works with, gathered once.
struct Call<'a> {
    config: &'a Config,
    plan: &'a CcPlan,
    args: &'a [String],
    /// The compiler file that runs.
    path: PathBuf,
    compiler: CcCompiler,
    tiers: Tiers<'a>,
    /// Hashes inputs for the lookup (a miss makes its own, with a clock marker).
    hasher: FileHasher,
    anchors: Anchors,
    cwd: PathBuf,
    /// What the journal and `explain` call this compile: the source, anchored.
    name: String,
    /// What the caller holds: output started, the tiers' events.
    state: &'a CallState,
}

/// The compiler `invoked` resolved to a file, for running it unchanged.
pub fn resolve(invoked: &str) -> PathBuf {
    identity::resolve(invoked).unwrap_or_else(|_| PathBuf::from(invoked))
}

/// Serves one cacheable compile.
pub fn serve(
    config: &Config,
    invoked: &str,
    args: &[String],
    plan: &CcPlan,
    state: &CallState,
) -> CallResult {
    let t0 = Instant::now();
    let Ok(cwd) = std::env::current_dir() else {
        return CallResult::PassThrough(Skip::Problem(Problem::NoWorkingDirectory));
    };
    let path = match identity::resolve(invoked) {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "cannot find the C compiler; running it uncached");
            return CallResult::PassThrough(Skip::Problem(Problem::CCompilerNotFound));
        }
    };
    let tiers = Tiers::new(config, state);
    let out_path = cwd.join(&plan.output);
    let out_dir = out_path.parent().unwrap_or(&cwd).to_path_buf();
    // No clock marker yet: a hit needs none (creating one costs a file's creation and
    // removal); a miss creates it before the compile starts.
    let hasher = FileHasher::new(Some(tiers.local.hash_records()), None);
    let records = tiers.local.compiler_records();
    let compiler = match identity::identify(&path, Some(&records)) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot identify the C compiler; running it uncached");
            return CallResult::PassThrough(Skip::Problem(Problem::CompilerIdentification));
        }
    };
    let anchors = Anchors::discover(&cwd, Some(&out_dir), |k| std::env::var(k).ok());
    let name = anchors.normalize(&plan.source);
    let call = Call {
        config,
        plan,
        args,
        path,
        compiler,
        tiers,
        hasher,
        anchors,
        cwd,
        name,
        state,
    };
    let env = |k: &str| std::env::var(k).ok();
    let remap = call.compiler.prefix_map;
    let pre_inputs = pre_key(
        plan,
        &call.compiler,
        invoked,
        &call.cwd,
        &call.anchors,
        remap,
        &env,
    );
    let pre = pre_inputs.digest();
    debug!(source = %call.name, key_us = t0.elapsed().as_micros() as u64, "c pre-key");
    if !config.recache {
        let started = Instant::now();
        if let Some((found, candidate)) = lookup(&call, &pre) {
            match restore(&call, &found) {
                Ok(texts) => {
                    state.start_output();
                    let meta = &found.head.meta;
                    let _ = replay(&call, meta, texts);
                    let dir = &config.dir;
                    crate::explain::remember_hit(dir, &call.name, &pre, &pre_inputs, candidate);
                    let millis = started.elapsed().as_millis() as u64;
                    debug!(source = %call.name, millis, "c hit");
                    return CallResult::Hit(found.hit(pre, millis));
                }
                Err(e) => {
                    warn!(source = %call.name, error = %e, "restoring a hit failed; compiling");
                    call.tiers.restore_failed(&found, &e);
                }
            }
        }
    }
    let lookup = Lookup {
        pre_key: pre,
        looked_up: !config.recache,
        remote_answered: call.tiers.remote_answered(),
    };
    compile_and_store(&call, lookup, &pre_inputs)
}

/// A clock marker in the object's directory, strictly newer than the source: a build script
/// that wrote the source moments ago would otherwise see it as "modified during compile".
fn settled_marker(out_dir: &Path, source: &Path) -> Option<ClockMarker> {
    let mut marker = ClockMarker::create(out_dir)?;
    let Ok(meta) = fs::metadata(source) else {
        return Some(marker);
    };
    let fp = Fingerprint::of(&meta);
    for _ in 0..20 {
        if fp.dev() != marker.dev() || marker.is_after(&fp) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        marker = ClockMarker::create(out_dir)?;
    }
    Some(marker)
}

/// Which files a manifest candidate may name for this compile (see `manifest.rs`): the
/// checkout, `CARGO_HOME`, the target directory, the source's directory and the include
/// directories the command names, and the system's headers and libraries.
fn input_policy(call: &Call<'_>) -> InputPolicy {
    let anchored = |name: &str| call.anchors.paths_named(name);
    let mut sources = anchored("WORKSPACE");
    sources.extend(anchored("CARGO_HOME"));
    sources.push(call.cwd.clone());
    let source = call.cwd.join(&call.plan.source);
    sources.extend(source.parent().map(Path::to_path_buf));
    sources.extend(call.plan.include_dirs.iter().map(|(_, d)| call.cwd.join(d)));
    let mut built = anchored("TARGET");
    built.extend(std::env::var_os("OUT_DIR").map(PathBuf::from));
    InputPolicy::new(&call.cwd, &call.anchors, &sources, &built, true)
}

/// The entry for the current inputs: L1's manifest first, the server's when L1 has none.
fn lookup(call: &Call<'_>, pre: &Digest) -> Option<(Found, Candidate)> {
    let env = |name: &str| inputs::anchor_value(&call.anchors, name);
    let policy = input_policy(call);
    let pick = |m: &crate::manifest::Manifest| m.find_match(&policy, &call.hasher, &env).cloned();
    let mut expected = vec![OBJECT.to_string()];
    if call.plan.user_depfile.is_some() {
        expected.push(DEPFILE.to_string());
    }
    call.tiers.find(pre, &policy, pick, &expected)
}

/// Writes the object (and the user's dependency file, moved to this checkout's paths),
/// streamed from the entry as rustc's outputs are (see `restore.rs`): nothing is held whole.
/// Returns the recorded stdout and stderr.
fn restore(call: &Call<'_>, found: &Found) -> Result<(Vec<u8>, Vec<u8>), EntryError> {
    let meta = &found.head.meta;
    let mut dests = Vec::with_capacity(meta.files.len());
    for file in &meta.files {
        // The tiers checked that the entry holds exactly the files this compile writes.
        let dest = match (file.name.as_str(), &call.plan.user_depfile) {
            (OBJECT, _) => &call.plan.output,
            (DEPFILE, Some(target)) => target,
            _ => {
                return Err(EntryError::BadMeta(format!(
                    "unexpected file {:?}",
                    file.name
                )))
            }
        };
        dests.push(call.cwd.join(dest));
    }
    let moves = call.anchors.moves_from(&meta.anchors);
    crate::restore::write_files(found, &dests, Some(DEPFILE), |bytes| {
        dep_info::move_paths(&String::from_utf8_lossy(bytes), &moves).into_bytes()
    })
}

/// Replays the compiler's output, with the recorded checkout's paths moved to this one's.
fn replay(
    call: &Call<'_>,
    meta: &EntryMeta,
    (stdout, stderr): (Vec<u8>, Vec<u8>),
) -> std::io::Result<()> {
    let moves = call.anchors.moves_from(&meta.anchors);
    let mut stderr = stderr;
    if !moves.is_empty() {
        let mut text = String::from_utf8_lossy(&stderr).into_owned();
        for (old, new) in &moves {
            text = replace_path(&text, old, new);
        }
        stderr = text.into_bytes();
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&stdout)?;
    out.flush()?;
    let mut err = std::io::stderr().lock();
    err.write_all(&stderr)?;
    err.flush()
}

/// `-ffile-prefix-map` arguments for the anchors, shortest path first so that the more
/// specific map, given later, wins (gcc and clang both apply the last matching one).
fn prefix_map_args(anchors: &Anchors) -> Vec<OsString> {
    let mut list: Vec<_> = anchors.0.iter().collect();
    list.sort_by_key(|a| a.path.len());
    list.iter()
        .map(|a| {
            let to = match a.name {
                "WORKSPACE" => ".",
                "CARGO_HOME" => "/cargo-home",
                _ => "/target",
            };
            OsString::from(format!("-ffile-prefix-map={}={to}", a.path))
        })
        .collect()
}

fn compile_and_store(call: &Call<'_>, lookup: Lookup, pre_inputs: &KeyInputs) -> CallResult {
    let plan = call.plan;
    let out_dir = call.cwd.join(&plan.output);
    let out_dir = out_dir.parent().unwrap_or(&call.cwd);
    let marker = settled_marker(out_dir, &call.cwd.join(&plan.source));
    let hasher = FileHasher::new(Some(call.tiers.local.hash_records()), marker);
    let start_ns = now_ns();
    call.state.start_output();
    let mut args: Vec<OsString> = if call.compiler.prefix_map {
        prefix_map_args(&call.anchors)
    } else {
        Vec::new()
    };
    // `-MMD` runs as `-MD`: the key needs the system headers too (see `depfile.rs`).
    let mmd = plan.user_depfile_without_system;
    args.extend(call.args.iter().map(|a| match a.as_str() {
        "-MMD" if mmd => OsString::from("-MD"),
        _ => OsString::from(a),
    }));
    let out_path = call.cwd.join(&plan.output);
    let temp_depfile = (plan.user_depfile.is_none() && plan.language.preprocessed()).then(|| {
        out_path.parent().unwrap_or(&call.cwd).join(format!(
            ".cachet-{}-{}.d",
            std::process::id(),
            now_ns()
        ))
    });
    if let Some(t) = &temp_depfile {
        args.extend(["-MD".into(), "-MF".into(), t.clone().into_os_string()]);
    }
    let compiled = match compile::run(&call.path, &args, &crate::messages::Unmap::default()) {
        Ok(c) => c,
        Err(e) => {
            if let Some(t) = &temp_depfile {
                let _ = fs::remove_file(t);
            }
            eprintln!(
                "error: cachet: failed to run {}: {e}",
                call.path.to_string_lossy()
            );
            call.state.problem(Problem::CompilerFailedToStart);
            return CallResult::NotStarted { lookup };
        }
    };
    let depfile_text = match (&temp_depfile, &plan.user_depfile) {
        (Some(t), _) => {
            let text = fs::read_to_string(t);
            let _ = fs::remove_file(t);
            text.ok()
        }
        (None, Some(d)) => fs::read_to_string(call.cwd.join(d)).ok(),
        (None, None) => Some(String::new()),
    };
    // The user's `-MMD` file, written over the full one whether or not the compile succeeded
    // (`None` when it cannot be: then nothing is stored).
    let depfile_text = match (&plan.user_depfile, depfile_text) {
        (Some(d), Some(full)) if mmd => {
            let user =
                depfile::without_system(&full, |p| is_system_header(call, p), plan.phony_targets);
            match user {
                Some(u) if fs::write(call.cwd.join(d), &u).is_ok() => Some((full, Some(u))),
                _ => None,
            }
        }
        (_, text) => text.map(|full| (full, None)),
    };
    if !compiled.status.success() {
        return CallResult::CompileFailed {
            lookup,
            compile_ms: compiled.millis,
            code: exit_code(&compiled.status),
        };
    }
    let mut changes = None;
    let stored = store(
        call,
        &lookup.pre_key,
        (pre_inputs, &mut changes),
        &compiled,
        depfile_text,
        (start_ns, &hasher, marker.as_ref()),
    );
    match &stored {
        Ok(_) => {}
        Err(NotStored::Refused(reason)) => info!(source = %call.name, %reason, "not stored"),
        Err(NotStored::CacheWrite(e)) => warn!(error = %e, "cannot write the local cache"),
    }
    CallResult::Miss(Miss {
        lookup,
        compile_ms: compiled.millis,
        stored,
        changes,
    })
}

/// True when a `-MMD` dependency file leaves `path` out: a header under a built-in system
/// directory or an `-isystem`/`-idirafter` one, and under no `-I`/`-iquote` directory (see
/// `depfile.rs`: when unsure, the header is listed).
fn is_system_header(call: &Call<'_>, path: &str) -> bool {
    let abs = absolute(&call.cwd.join(path));
    let dirs = |system: bool| {
        let listed = call.plan.include_dirs.iter();
        let listed = listed
            .filter(move |(k, _)| matches!(k, SearchKind::System | SearchKind::After) == system);
        listed.map(|(_, d)| absolute(&call.cwd.join(d)))
    };
    let mut system = call.compiler.system_dirs.iter().cloned().chain(dirs(true));
    system.any(|d| inputs::is_under(&abs, &d)) && !dirs(false).any(|d| inputs::is_under(&abs, &d))
}

/// Keys and stores a successful compile; `Ok` holds the entry written, `Err` why it was not
/// stored. `changes` receives what differs from the nearest earlier entry of the same source
/// (for `explain`): compared with the collected inputs, or, for a compile refused before they
/// are, with the source's records as the disk is now.
fn store(
    call: &Call<'_>,
    pre: &Digest,
    (pre_inputs, changes): (&KeyInputs, &mut Option<Vec<crate::explain::Change>>),
    compiled: &compile::Compiled,
    depfile_text: Option<(String, Option<String>)>,
    (start_ns, hasher, marker): (i64, &FileHasher, Option<&ClockMarker>),
) -> Result<Stored, NotStored> {
    let plan = call.plan;
    let mut refuse = |reason: NotStoredReason| {
        let env = |name: &str| inputs::anchor_value(&call.anchors, name);
        let (dir, policy) = (&call.config.dir, input_policy(call));
        *changes =
            crate::explain::unstored_changes(dir, &call.name, pre_inputs, &policy, hasher, &env);
        Err(NotStored::Refused(reason))
    };
    let Some((depfile_text, user_text)) = depfile_text else {
        return refuse(NotStoredReason::DepfileUnreadable);
    };
    let deps = inputs::depfile_files(&depfile_text);
    let out_path = call.cwd.join(&plan.output);
    // The object is read twice in chunks (scanned for anchors, then compressed into the
    // entry), never whole; its fingerprint before and after proves both reads saw one file.
    let Ok(mut object) = fs::File::open(&out_path) else {
        return refuse(NotStoredReason::OutputMissing);
    };
    let Ok(before) = object.metadata() else {
        return refuse(NotStoredReason::OutputMissing);
    };
    let ctx = inputs::Context {
        plan,
        compiler: &call.compiler,
        cwd: &call.cwd,
        anchors: &call.anchors,
        hasher,
        marker,
        start_ns,
    };
    let candidate = match inputs::collect(&ctx, &deps, &mut object) {
        Ok(c) => c,
        Err(reason) => return refuse(reason),
    };
    if object.seek(SeekFrom::Start(0)).is_err() {
        return refuse(NotStoredReason::OutputMissing);
    }
    let key = key::entry_key(pre, &candidate.files, &candidate.env);
    *changes = crate::explain::record_and_diff(
        &call.config.dir,
        &call.name,
        pre_inputs,
        &candidate,
        journal::now_ms(),
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = before.permissions().mode() & 0o7777;
    let meta = EntryMeta {
        crate_name: call.name.clone(),
        out_dir: call.cwd.to_string_lossy().into_owned(),
        anchors: call.anchors.pairs(),
        compile_millis: compiled.millis,
        stdout_len: 0,
        stderr_len: 0,
        files: Vec::new(),
    };
    let user_text = user_text.as_deref().unwrap_or(&depfile_text);
    let user_depfile = plan.user_depfile.as_ref().map(|_| user_text.as_bytes());
    let write = |file: &mut fs::File| -> Result<u64, NotStored> {
        let to_io = |e: EntryError| match e {
            EntryError::Compress(io) => NotStored::CacheWrite(io),
            _ => NotStored::Refused(NotStoredReason::EntryNotEncodable),
        };
        let payload = before.len();
        let mut w = EntryWriter::new(
            file,
            &key,
            Compression::None,
            &compiled.stdout,
            &compiled.stderr,
            payload,
        )
        .map_err(to_io)?;
        let stored = w.add_file(OBJECT, mode, &mut object).map_err(to_io)?.size;
        let unchanged =
            fs::metadata(&out_path).is_ok_and(|m| Fingerprint::of(&m) == Fingerprint::of(&before));
        if !unchanged || stored != before.len() {
            return Err(NotStored::Refused(
                NotStoredReason::OutputModifiedWhileStored,
            ));
        }
        if let Some(d) = user_depfile {
            w.add_file(DEPFILE, 0o644, &mut &d[..]).map_err(to_io)?;
        }
        w.finish(meta).map_err(to_io)
    };
    let bytes = call.tiers.store(pre, &key, write, candidate)?;
    debug!(source = %call.name, %key, "c stored");
    let stored = Stored {
        bytes,
        per_checkout: None,
    };
    Ok(stored)
}
