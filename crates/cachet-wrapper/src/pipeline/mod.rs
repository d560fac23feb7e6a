//! One cacheable rustc call: key → lookup → restore, or compile → store.
//!
//! [`serve`] returns what happened as one [`CallResult`]; it counts nothing and prints no
//! warning itself (`lib.rs` does, from the result and the tiers' events in the
//! [`CallState`]). Every failure inside cachet degrades to compiling normally: before rustc
//! has produced anything the result says to run it unchanged, after that it carries rustc's
//! real exit code.
//!
//! The module is split by step: [`collect`] gathers what a finished compile read and wrote
//! (the manifest candidate and the open outputs), [`write`] streams them into an entry.

mod collect;
mod context;
#[cfg(test)]
mod tests;
mod write;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cachet_core::entry::EntryMeta;
use cachet_core::Digest;
use tracing::{debug, info, warn};

use crate::call::{CallResult, CallState, Lookup, Miss, NotStored, Problem, Skip, Stored};
use crate::clock::ClockMarker;
use crate::compile;
use crate::compiler;
use crate::config::Config;
use crate::driver::{DriverError, Programs};
use crate::explain;
use crate::file_hash::{now_ns, FileHasher};
use crate::invocation::CachePlan;
use crate::journal;
use crate::key::{self, KeyContext};
use crate::manifest::Candidate;
use crate::paths::Anchors;
use crate::reason::{DriverReason, NotStoredReason};
use crate::tiers::{Found, Tiers};
use context::{explain_name, input_policy, location, Call};

/// Serves one cacheable invocation; `state` learns when output starts and what the tiers saw.
pub fn serve(
    config: &Config,
    programs: &Programs<'_>,
    plan: &CachePlan,
    state: &CallState,
) -> CallResult {
    let t0 = Instant::now();
    let Ok(cwd) = std::env::current_dir() else {
        return CallResult::PassThrough(Skip::Problem(Problem::NoWorkingDirectory));
    };
    let out_dir = plan.out_dir_in(&cwd);
    let tiers = Tiers::new(config, state);
    // One reading of the filesystem clock, taken before any input is hashed or rustc runs.
    let marker = ClockMarker::after_generated_files(&out_dir);
    let hasher = FileHasher::new(Some(tiers.local.hash_records()), marker);
    let compiler_records = tiers.local.compiler_records();
    let (rustc, args) = (programs.rustc, programs.args);
    let compiler = match compiler::identify(rustc, Some(&compiler_records), &hasher) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot identify the compiler; running it uncached");
            return CallResult::PassThrough(Skip::Problem(Problem::CompilerIdentification));
        }
    };
    // A workspace wrapper (clippy-driver) compiles instead of rustc; only a known one is cached.
    let driver = match programs.driver {
        None => None,
        Some(d) => match crate::driver::identify(d, Some(&compiler_records), &hasher) {
            Ok(driver) => Some(driver),
            Err(e) => {
                let reason = match e {
                    DriverError::Unsupported(_) => DriverReason::NotClippy,
                    DriverError::Identity(_) => DriverReason::Unidentified,
                };
                info!(error = %e, "workspace wrapper runs uncached");
                return CallResult::PassThrough(Skip::Driver(reason));
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
        explain_name: explain_name(
            &plan.crate_name,
            std::env::var("CARGO_PKG_NAME").ok().as_deref(),
        ),
        state,
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
            return CallResult::PassThrough(Skip::NotCacheable(key_error_label(&e)));
        }
    };
    let pre = pre_inputs.digest();
    debug!(krate = %plan.crate_name, key_us = t0.elapsed().as_micros() as u64, "pre-key");
    // A crate compiled incrementally may be the one being edited (see edit_loop.rs).
    let unit = plan.args.incremental.is_some().then(|| {
        crate::edit_loop::Unit::new(&config.dir, &call.out_dir, &plan.outputs, config.edit_loop)
    });
    if !config.recache {
        let started = Instant::now();
        let found = lookup(&call, &pre);
        debug!(krate = %plan.crate_name, lookup_us = started.elapsed().as_micros() as u64, "lookup");
        if let Some((found, candidate)) = found {
            match crate::restore::write_outputs(
                &found,
                &call.out_dir,
                &plan.dep_info,
                &call.anchors,
            ) {
                Ok((stdout, stderr)) => {
                    let meta = &found.head.meta;
                    state.start_output();
                    let texts = (&stdout[..], &stderr[..]);
                    let _ = crate::restore::replay(meta, texts, &call.out_dir, &call.anchors);
                    // rustc's incremental directory is left as it is: see docs/design.md,
                    // "Incremental compilation".
                    if let Some(unit) = &unit {
                        unit.hit();
                    }
                    let dir = &config.dir;
                    explain::remember_hit(dir, &call.explain_name, &pre, &pre_inputs, candidate);
                    let millis = started.elapsed().as_millis() as u64;
                    debug!(krate = %plan.crate_name, millis, "hit");
                    return CallResult::Hit(found.hit(pre, millis));
                }
                Err(e) => {
                    warn!(krate = %plan.crate_name, error = %e, "restoring a hit failed; compiling");
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
    let store = unit.is_none_or(|u| u.miss(journal::now_ms()));
    compile_and_store(&call, lookup, &pre_inputs, store)
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

fn key_error_label(e: &key::KeyError) -> NotStoredReason {
    match e {
        key::KeyError::Unreadable { .. } => NotStoredReason::UnreadableKeyInput,
        key::KeyError::NativeLibNotFound { .. } => NotStoredReason::NativeLibNotFound,
        key::KeyError::BadGlob { .. } => NotStoredReason::BadKeyFilesPattern,
        key::KeyError::ThinArchive { .. } => NotStoredReason::ThinArchive,
        key::KeyError::LinkerNotFound { .. } => NotStoredReason::LinkerNotFound,
    }
}

/// Finds the entry for the current inputs, if any, with the manifest candidate that matched:
/// L1's manifest first, the server's only when L1 has no matching candidate. An entry holding
/// a file this compile would not write, or lacking one it would, is refused (see `tiers.rs`).
fn lookup(call: &Call<'_>, pre: &Digest) -> Option<(Found, Candidate)> {
    let env = env_now(call);
    let policy = input_policy(call);
    let pick = |m: &crate::manifest::Manifest| m.find_match(&policy, &call.hasher, &env).cloned();
    call.tiers.find(pre, &policy, pick, &call.plan.outputs)
}

/// A variable's value for this call, as manifest candidates record it: the call's location
/// under [`crate::manifest::LOCATION`], the environment's value otherwise.
fn env_now<'a>(call: &'a Call<'_>) -> impl Fn(&str) -> Option<String> + 'a {
    let here = location(&call.anchors, &call.out_dir);
    move |name: &str| {
        if name == crate::manifest::LOCATION {
            Some(here.clone())
        } else {
            std::env::var(name).ok()
        }
    }
}

/// What differs for a miss that is not stored (see `explain::unstored_changes`).
fn unstored_changes(call: &Call<'_>, pre_inputs: &key::KeyInputs) -> Option<Vec<explain::Change>> {
    unstored_changes_with(call, pre_inputs)()
}

/// [`unstored_changes`] as work that holds no reference to the call itself, so that it can run
/// on another thread.
fn unstored_changes_with<'a>(
    call: &'a Call<'_>,
    pre_inputs: &'a key::KeyInputs,
) -> impl FnOnce() -> Option<Vec<explain::Change>> + Send + 'a {
    let (policy, env) = (input_policy(call), env_now(call));
    let (dir, krate) = (&call.config.dir, &call.explain_name);
    // The same files are compared on every rebuild of the edit loop: remember small ones too.
    let hasher = call.hasher.remembering_every_size();
    move || explain::unstored_changes(dir, krate, pre_inputs, &policy, &hasher, &env)
}

/// Compiles, and stores the result when `store` is set (unset: the crate is being edited, see
/// `edit_loop.rs`).
fn compile_and_store(
    call: &Call<'_>,
    lookup: Lookup,
    pre_inputs: &key::KeyInputs,
    store: bool,
) -> CallResult {
    let plan = call.plan;
    let start_ns = now_ns();
    call.state.start_output();
    // Outputs must not depend on where the checkout is: see paths.rs.
    let mut args = call.anchors.remap_args();
    // A linked crate's key needs the link command; rustc writes it to a file for us. A miss
    // that is not stored has no key to make.
    let link_args = (plan.links && store).then(|| link_args_file(&call.out_dir));
    if let Some(file) = &link_args {
        args.push(crate::link::print_arg(file));
    }
    args.extend_from_slice(call.args);
    let (program, prefix) = call.programs.command_prefix();
    let unmap = crate::messages::Unmap::new(&call.anchors);
    // A miss of the crate being edited is not stored, and what changed since its last entry
    // (for `cachet explain` and the reports) is worked out while rustc runs, not after: it
    // hashes every input of the crate's nearest record (a program's link inputs are a hundred
    // files), which would otherwise lengthen every rebuild of the edit loop (see edit_loop.rs).
    // The thread starts once rustc has: started before, it competed with rustc's start for
    // the cores (a 2-core machine then started rustc up to 14 ms later).
    let (compiled, unstored) = std::thread::scope(|scope| {
        let running = compile::start(Path::new(program), &[prefix, args].concat(), &unmap);
        let unstored = (!store && running.is_ok())
            .then(|| scope.spawn(unstored_changes_with(call, pre_inputs)));
        let compiled = running.and_then(compile::Running::finish);
        (compiled, unstored.and_then(|h| h.join().ok().flatten()))
    });
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
            return CallResult::NotStarted { lookup };
        }
    };
    if !compiled.status.success() {
        return CallResult::CompileFailed {
            lookup,
            compile_ms: compiled.millis,
            code: exit_code(&compiled.status),
        };
    }
    let after_compile = Instant::now();
    let mut changes = None;
    let stored = if store {
        self::store(
            call,
            &lookup.pre_key,
            pre_inputs,
            &compiled,
            start_ns,
            link_command.as_deref(),
            &mut changes,
        )
    } else {
        changes = unstored;
        Err(NotStored::Refused(crate::edit_loop::NOT_STORED))
    };
    match &stored {
        Ok(s) => debug!(
            krate = %plan.crate_name,
            bytes = s.bytes,
            compile_ms = compiled.millis,
            store_us = after_compile.elapsed().as_micros() as u64,
            "stored"
        ),
        Err(NotStored::CacheWrite(e)) => warn!(error = %e, "cannot write the local cache"),
        Err(NotStored::Refused(reason)) => {
            info!(krate = %plan.crate_name, compile_ms = compiled.millis, %reason, "not stored")
        }
    }
    CallResult::Miss(Miss {
        lookup,
        compile_ms: compiled.millis,
        stored,
        changes,
    })
}

/// Keys and stores a successful compile. `changes` receives what differs from the nearest
/// earlier entry of the crate once the inputs are known (also when writing the entry fails),
/// or, when what the compile read cannot be collected, from the crate's records as the disk
/// is now.
fn store(
    call: &Call<'_>,
    pre: &Digest,
    pre_inputs: &key::KeyInputs,
    compiled: &compile::Compiled,
    start_ns: i64,
    link_command: Option<&str>,
    changes: &mut Option<Vec<explain::Change>>,
) -> Result<Stored, NotStored> {
    let (config, plan) = (call.config, call.plan);
    let (candidate, mut outputs, per_checkout) =
        match collect::collect(call, start_ns, link_command) {
            Ok(collected) => collected,
            Err(reason) => {
                // Not collected, so not compared below: compared with what is on disk now.
                *changes = unstored_changes(call, pre_inputs);
                return Err(NotStored::Refused(reason));
            }
        };
    let key = key::entry_key(pre, &candidate.files, &candidate.env);
    *changes = explain::record_and_diff(
        &config.dir,
        &call.explain_name,
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
    let bytes = call.tiers.store(
        pre,
        &key,
        |file| write::write_entry(file, &key, meta, compiled, &mut outputs),
        candidate,
    )?;
    Ok(Stored {
        bytes,
        per_checkout,
    })
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
