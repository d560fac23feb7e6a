//! The rustc wrapper: what runs when cargo calls `cachet RUSTC ARGS...`.
//!
//! Data flows one way: [`invocation`] reads the command line and decides whether it can be
//! cached; [`compiler`] and [`key`] compute the pre-key; [`manifest`] finds the entry for the
//! current source files in the [`local_store`]; [`restore`] writes its outputs and replays
//! rustc's output, or [`compile`] runs rustc and the result is stored. C, C++ and assembler
//! compiles (`cachet cc ARGS...`) take the same path through [`cc`].
//!
//! This crate is started for every rustc call, so it links no async runtime and initialises
//! nothing a hit does not need. A failure inside cachet never fails a build: it is counted in
//! [`stats`], logged, and rustc runs as if cachet were not there.
#![deny(missing_docs)]

pub mod absence;
pub mod call;
pub mod cc;
pub mod clock;
pub mod compile;
pub mod compiler;
pub mod config;
pub mod dep_info;
pub mod driver;
pub mod edit_loop;
pub mod env_proof;
pub mod explain;
pub mod file_hash;
pub mod fingerprint;
mod fsutil;
pub mod invocation;
pub mod journal;
pub mod key;
pub mod link;
pub mod local_store;
mod logging;
mod macro_proof;
pub mod manifest;
pub mod messages;
pub mod notice;
pub mod paths;
pub mod pipeline;
pub mod reason;
pub mod remote;
pub mod reports;
pub mod restore;
pub mod signing;
pub mod stats;
pub mod tiers;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use cachet_core::report::CallKind;
use call::{CallResult, CallState, Event, Notice, Skip};
use config::Config;
use invocation::Plan;
use stats::Delta;
use tiers::Source;

/// Runs one wrapped rustc invocation: `argv` is `[cachet, rustc, args...]`, or
/// `[cachet, driver, rustc, args...]` for a workspace member when cargo has a workspace
/// wrapper (`cargo clippy`; see `driver.rs`).
pub fn run(argv: &[OsString]) -> ExitCode {
    if cc::is_c_compiler(&argv[1]) {
        return run_cc(argv);
    }
    let programs = driver::Programs::split(argv);
    let args = programs.args;
    let config = Config::from_env();
    if config.disable {
        return exec(&programs, args);
    }
    logging::init(&config);
    let plan = invocation::plan(args);
    // cargo discards the stderr of its version and print queries, so a warning shown there
    // would be lost (and its marker would hide it from the real compiles).
    let quiet = matches!(plan, Plan::PassThrough(invocation::PassReason::Query, _));
    if !quiet {
        for w in &config.warnings {
            notice::warn_once(&config.dir, w, w);
        }
    }
    let state = CallState::default();
    let (result, remap_linked) = match &plan {
        Plan::PassThrough(reason, parsed) => {
            tracing::debug!(%reason, "pass-through");
            let linked = parsed.crate_types.iter().any(|t| t.is_linked());
            let result = CallResult::PassThrough(Skip::Rustc(reason.clone()));
            (result, reason.understood() && linked)
        }
        Plan::Cache(cache) => {
            let result = guarded(&state, || {
                pipeline::serve(&config, &programs, cache, &state)
            });
            (result, cache.links)
        }
    };
    let call = Finished {
        language: "rust",
        krate: plan.args().crate_name.clone(),
        kind: reports::rustc_kind(plan.args()),
        quiet,
    };
    match finish(&config, result, &state, &call) {
        Some(code) => ExitCode::from(code),
        None if remap_linked => exec_remapped(&programs, plan.args()),
        None => exec(&programs, args),
    }
}

/// Runs one wrapped C, C++ or assembler call: `argv` is `[cachet, compiler, args...]` (see
/// `cc/mod.rs`).
fn run_cc(argv: &[OsString]) -> ExitCode {
    let cc_call = cc::CcCall::read(argv);
    let config = Config::from_env();
    if config.disable {
        return cc_call.exec();
    }
    logging::init(&config);
    let state = CallState::default();
    let result = guarded(&state, || cc_call.serve(&config, &state));
    let language = cc_call.language();
    let call = Finished {
        language,
        krate: cc_call.source(),
        kind: reports::cc_kind(language),
        quiet: false,
    };
    match finish(&config, result, &state, &call) {
        Some(code) => ExitCode::from(code),
        None => cc_call.exec(),
    }
}

/// Runs `serve`, turning a panic into [`CallResult::Internal`]: a failure inside cachet never
/// fails the build.
fn guarded(state: &CallState, serve: impl FnOnce() -> CallResult) -> CallResult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(serve)).unwrap_or_else(|_| {
        CallResult::Internal {
            after_output: state.output_started(),
        }
    })
}

/// What the caller knows about a call besides its result.
struct Finished {
    /// The language counted in the statistics: `rust`, `c`, `c++`, `asm`.
    language: &'static str,
    /// The crate (or source file) for the journal.
    krate: Option<String>,
    /// The kind of compile, for the dashboard.
    kind: CallKind,
    /// Show no warnings (cargo discards this call's stderr) and send no call report.
    quiet: bool,
}

/// Everything a call's result means, in one place: its statistics, journal record, call
/// report and warnings. Returns the exit code, or `None` to run the compiler unchanged.
fn finish(config: &Config, result: CallResult, state: &CallState, call: &Finished) -> Option<u8> {
    let mut delta = Delta {
        calls: 1,
        ..Delta::default()
    };
    let mut record = journal::Record {
        time_ms: journal::now_ms(),
        parent: std::os::unix::process::parent_id(),
        krate: call.krate.clone(),
        outcome: journal::Outcome::PassThrough,
        reason: None,
        pre_key: None,
        changes: None,
        compile_ms: None,
        saved_ms: None,
    };
    let mut notices = Vec::new();
    let exit = match result {
        CallResult::Hit(hit) => {
            delta.cacheable_calls += 1;
            match hit.source {
                Source::Local => delta.hits_local += 1,
                Source::Remote => delta.hits_remote += 1,
            }
            let saved = hit.stored_compile_ms.saturating_sub(hit.restore_ms);
            delta.bytes_read += hit.bytes;
            delta.hit_millis += hit.restore_ms;
            delta.saved_millis += saved;
            record.saved_ms = Some(saved);
            record.outcome = match hit.source {
                Source::Local => journal::Outcome::HitLocal,
                Source::Remote => journal::Outcome::HitRemote,
            };
            record.pre_key = Some(hit.pre_key.to_hex());
            Some(0)
        }
        CallResult::Miss(miss) => {
            delta.count_lookup(&miss.lookup);
            delta.compile_millis += miss.compile_ms;
            record.compile_ms = Some(miss.compile_ms);
            record.pre_key = Some(miss.lookup.pre_key.to_hex());
            record.changes = miss.changes;
            match miss.stored {
                Ok(stored) => {
                    delta.entries_written += 1;
                    delta.bytes_written += stored.bytes;
                    record.outcome = journal::Outcome::Miss;
                    if let Some(p) = stored.per_checkout {
                        delta.count_per_checkout(p.label);
                        record.reason = Some(p.reason);
                    } else if !miss.lookup.looked_up {
                        record.reason = Some("CACHET_RECACHE".into());
                    }
                }
                Err(why) => {
                    record.outcome = journal::Outcome::MissNotStored;
                    record.reason = Some(why.journal_reason().into());
                    match why {
                        call::NotStored::Refused(reason) => delta.count_not_stored(reason),
                        call::NotStored::CacheWrite(e) => {
                            delta.count_problem(call::Problem::CacheWrite);
                            notices.push(Notice::CacheUnwritable(e));
                        }
                    }
                }
            }
            Some(0)
        }
        CallResult::PassThrough(skip) => {
            let reason = match &skip {
                Skip::Rustc(r) => delta.count_pass_through(r),
                Skip::Cc(r) => delta.count_pass_through(r),
                Skip::Driver(r) => delta.count_pass_through(r),
                Skip::NotCacheable(r) => {
                    delta.count_not_stored(*r);
                    r.to_string()
                }
                Skip::Problem(p) => {
                    delta.count_problem(*p);
                    p.journal_reason().into()
                }
            };
            record.reason = Some(reason);
            None
        }
        CallResult::CompileFailed {
            lookup,
            compile_ms,
            code,
        } => {
            // Counted as a compile failure, not also as a miss: the journal records it so,
            // and `cachet stats` agrees with it (build scripts' feature probes fail on purpose).
            delta.cacheable_calls += 1;
            delta.compile_failures += 1;
            delta.compile_millis += compile_ms;
            record.compile_ms = Some(compile_ms);
            record.outcome = journal::Outcome::CompileFailed;
            record.pre_key = Some(lookup.pre_key.to_hex());
            Some(code)
        }
        CallResult::NotStarted { lookup } => {
            delta.count_lookup(&lookup);
            record.pre_key = Some(lookup.pre_key.to_hex());
            Some(1)
        }
        CallResult::Internal { after_output } => {
            record.reason = Some(call::Problem::Internal.as_str().into());
            if after_output {
                Some(101)
            } else {
                delta.count_problem(call::Problem::Internal);
                None
            }
        }
    };
    for event in state.take_events() {
        match event {
            Event::Problem(problem, notice) => {
                delta.count_problem(problem);
                notices.extend(notice);
            }
            Event::Notice(notice) => notices.push(notice),
            Event::Downloaded(n) => delta.bytes_downloaded += n,
            Event::Uploaded(n) => {
                delta.uploads += 1;
                delta.bytes_uploaded += n;
            }
            Event::UploadQueued => delta.upload_failures += 1,
        }
    }
    if !call.quiet {
        for n in &notices {
            notice::show(&config.dir, n);
        }
    }
    journal::append(&config.dir, &record);
    if !call.quiet {
        reports::call_done(config, &record, call.kind, &mut delta);
    }
    delta.tally_language(call.language);
    if let Err(e) = stats::apply(&config.dir, &delta) {
        tracing::warn!(error = %e, "cannot update statistics");
        if !call.quiet {
            notice::warn_cache_unwritable(&config.dir, &e);
        }
    }
    exit
}

/// Counts the tiers' events of a command that is not a wrapper call (`cachet flush`).
pub fn count_events(state: &CallState, delta: &mut Delta) {
    for event in state.take_events() {
        match event {
            Event::Problem(problem, _) => delta.count_problem(problem),
            Event::Notice(_) => {}
            Event::Downloaded(n) => delta.bytes_downloaded += n,
            Event::Uploaded(n) => {
                delta.uploads += 1;
                delta.bytes_uploaded += n;
            }
            Event::UploadQueued => delta.upload_failures += 1,
        }
    }
}

/// Runs a linked crate that cachet does not cache (a binary, build script or proc-macro) with
/// the same path remapping as cached crates, so that a proc-macro built in two checkouts is
/// the same file, and crates using it can share entries (see `paths.rs`). rustc runs as a
/// child rather than in this process, so its messages can name real files (`messages.rs`).
fn exec_remapped(programs: &driver::Programs<'_>, parsed: &invocation::RustcArgs) -> ExitCode {
    let args = programs.args;
    let Ok(cwd) = std::env::current_dir() else {
        return exec(programs, args);
    };
    let mut anchors =
        paths::Anchors::discover(&cwd, parsed.out_dir.as_deref(), |k| std::env::var(k).ok());
    if let [input] = parsed.inputs.as_slice() {
        anchors = anchors.for_input(&cwd, input);
    }
    let mut all = anchors.remap_args();
    all.extend_from_slice(args);
    let (program, prefix) = programs.command_prefix();
    let unmap = messages::Unmap::new(&anchors);
    match compile::run(
        std::path::Path::new(program),
        &[prefix, all].concat(),
        &unmap,
    ) {
        Ok(compiled) => ExitCode::from(pipeline::exit_code(&compiled.status)),
        Err(e) => {
            eprintln!(
                "error: cachet: failed to run {}: {e}",
                program.to_string_lossy()
            );
            ExitCode::from(1)
        }
    }
}

/// Replaces this process with `rustc args` (or `driver rustc args`).
fn exec(programs: &driver::Programs<'_>, args: &[OsString]) -> ExitCode {
    let (program, prefix) = programs.command_prefix();
    let err = Command::new(program).args(prefix).args(args).exec();
    eprintln!(
        "error: cachet: failed to run {}: {err}",
        program.to_string_lossy()
    );
    ExitCode::from(1)
}
