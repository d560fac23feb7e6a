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
pub mod manifest;
pub mod messages;
pub mod notice;
pub mod paths;
pub mod pipeline;
pub mod remote;
pub mod reports;
pub mod restore;
pub mod signing;
pub mod stats;
pub mod tiers;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};

use config::Config;
use invocation::Plan;
use pipeline::Outcome;
use stats::{Delta, Stats};

static OUTPUT_STARTED: AtomicBool = AtomicBool::new(false);

/// Records that rustc's output (real or replayed) has begun, so an internal failure after this
/// point must not run rustc a second time.
pub(crate) fn mark_output_started() {
    OUTPUT_STARTED.store(true, Ordering::SeqCst);
}

/// Runs one wrapped rustc invocation: `argv` is `[cachet, rustc, args...]`, or
/// `[cachet, driver, rustc, args...]` for a workspace member when cargo has a workspace
/// wrapper (`cargo clippy`; see `driver.rs`).
pub fn run(argv: &[OsString]) -> ExitCode {
    if cc::is_c_compiler(&argv[1]) {
        return cc::run(argv);
    }
    let programs = driver::Programs::split(argv);
    let args = programs.args;
    let config = Config::from_env();
    if config.disable {
        return exec(&programs, args);
    }
    logging::init(&config);
    let mut delta = Delta {
        calls: 1,
        ..Delta::default()
    };
    let mut report = pipeline::Report::default();
    let krate: Option<String>;
    let remap_linked: bool;
    let plan = invocation::plan(args);
    // cargo discards the stderr of its version and print queries, so a warning shown there
    // would be lost (and its marker would hide it from the real compiles).
    let quiet = matches!(plan, Plan::PassThrough(invocation::PassReason::Query));
    if !quiet {
        for w in &config.warnings {
            notice::warn_once(&config.dir, w, w);
        }
    }
    let kind = reports::enabled(&config).then(|| match &plan {
        Plan::Cache(plan) => reports::rustc_kind(&plan.args),
        Plan::PassThrough(_) => reports::rustc_kind(&invocation::RustcArgs::parse(args)),
    });
    let outcome = match plan {
        Plan::PassThrough(reason) => {
            tracing::debug!(%reason, "pass-through");
            remap_linked = reason.understood()
                && invocation::RustcArgs::parse(args)
                    .crate_types
                    .iter()
                    .any(|t| t.is_linked());
            Stats::bump(&mut delta.pass_through, reason.label());
            report.reason = Some(reason.label());
            krate = crate_name_of(args);
            Outcome::RunUnchanged
        }
        Plan::Cache(plan) => {
            krate = Some(plan.crate_name.clone());
            remap_linked = plan.links;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pipeline::serve(&config, &programs, &plan, &mut delta, &mut report)
            }));
            match result {
                Ok(o) => o,
                Err(_) if OUTPUT_STARTED.load(Ordering::SeqCst) => Outcome::Exit(101),
                Err(_) => {
                    Stats::bump(&mut delta.errors, "internal error");
                    Outcome::RunUnchanged
                }
            }
        }
    };
    let record = journal::Record {
        time_ms: journal::now_ms(),
        parent: std::os::unix::process::parent_id(),
        krate,
        outcome: report.outcome,
        reason: report.reason,
        pre_key: report.pre_key.map(|k| k.to_hex()),
        changes: report.changes,
    };
    journal::append(&config.dir, &record);
    if let Some(kind) = kind.filter(|_| !quiet) {
        reports::call_done(&config, &reports::CallFacts::of(&record, kind), &mut delta);
    }
    delta.tally_language("rust");
    if let Err(e) = stats::apply(&config.dir, &delta) {
        tracing::warn!(error = %e, "cannot update statistics");
        if !quiet {
            notice::warn_cache_unwritable(&config.dir, &e);
        }
    }
    match outcome {
        Outcome::Exit(code) => ExitCode::from(code),
        Outcome::RunUnchanged if remap_linked => exec_remapped(&programs),
        Outcome::RunUnchanged => exec(&programs, args),
    }
}

/// Runs a linked crate that cachet does not cache (a binary, build script or proc-macro) with
/// the same path remapping as cached crates, so that a proc-macro built in two checkouts is
/// the same file, and crates using it can share entries (see `paths.rs`). rustc runs as a
/// child rather than in this process, so its messages can name real files (`messages.rs`).
fn exec_remapped(programs: &driver::Programs<'_>) -> ExitCode {
    let args = programs.args;
    let Ok(cwd) = std::env::current_dir() else {
        return exec(programs, args);
    };
    let parsed = invocation::RustcArgs::parse(args);
    let mut anchors =
        paths::Anchors::discover(&cwd, parsed.out_dir.as_deref(), |k| std::env::var(k).ok());
    if let [input] = parsed.inputs.as_slice() {
        anchors = anchors.for_input(&cwd, input);
    }
    let mut all = anchors.remap_args();
    all.extend_from_slice(args);
    let (program, prefix) = programs.command_prefix();
    mark_output_started();
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

/// The `--crate-name` of an invocation that is not cached, for the journal.
fn crate_name_of(args: &[OsString]) -> Option<String> {
    let pos = args.iter().position(|a| a == "--crate-name")?;
    args.get(pos + 1)?.to_str().map(str::to_string)
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
