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

pub mod cc;
pub mod clock;
pub mod compile;
pub mod compiler;
pub mod config;
pub mod dep_info;
pub mod edit_loop;
pub mod explain;
pub mod file_hash;
mod fsutil;
pub mod invocation;
pub mod journal;
pub mod key;
pub mod link;
pub mod local_store;
mod logging;
pub mod manifest;
pub mod notice;
pub mod paths;
pub mod pipeline;
pub mod remote;
pub mod restore;
pub mod signing;
pub mod stats;
pub mod tiers;

use std::ffi::{OsStr, OsString};
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

/// Runs one wrapped rustc invocation: `argv` is `[cachet, rustc, args...]`.
pub fn run(argv: &[OsString]) -> ExitCode {
    if cc::is_c_compiler(&argv[1]) {
        return cc::run(argv);
    }
    let rustc = argv[1].as_os_str();
    let args = &argv[2..];
    let config = Config::from_env();
    if config.disable {
        return exec(rustc, args);
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
                pipeline::serve(&config, rustc, args, &plan, &mut delta, &mut report)
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
    journal::append(
        &config.dir,
        &journal::Record {
            time_ms: journal::now_ms(),
            parent: std::os::unix::process::parent_id(),
            krate,
            outcome: report.outcome,
            reason: report.reason,
            pre_key: report.pre_key.map(|k| k.to_hex()),
            changes: report.changes,
        },
    );
    delta.tally_language("rust");
    if let Err(e) = stats::apply(&config.dir, &delta) {
        tracing::warn!(error = %e, "cannot update statistics");
        if !quiet {
            notice::warn_cache_unwritable(&config.dir, &e);
        }
    }
    match outcome {
        Outcome::Exit(code) => ExitCode::from(code),
        Outcome::RunUnchanged if remap_linked => exec_remapped(rustc, args),
        Outcome::RunUnchanged => exec(rustc, args),
    }
}

/// Runs a linked crate that cachet does not cache (a binary, build script or proc-macro) with
/// the same path remapping as cached crates, so that a proc-macro built in two checkouts is
/// the same file, and crates using it can share entries (see `paths.rs`).
fn exec_remapped(rustc: &OsStr, args: &[OsString]) -> ExitCode {
    let Ok(cwd) = std::env::current_dir() else {
        return exec(rustc, args);
    };
    let parsed = invocation::RustcArgs::parse(args);
    let anchors =
        paths::Anchors::discover(&cwd, parsed.out_dir.as_deref(), |k| std::env::var(k).ok());
    let mut all = anchors.remap_args();
    all.extend_from_slice(args);
    exec(rustc, &all)
}

/// The `--crate-name` of an invocation that is not cached, for the journal.
fn crate_name_of(args: &[OsString]) -> Option<String> {
    let pos = args.iter().position(|a| a == "--crate-name")?;
    args.get(pos + 1)?.to_str().map(str::to_string)
}

/// Replaces this process with `rustc args`.
fn exec(rustc: &OsStr, args: &[OsString]) -> ExitCode {
    let err = Command::new(rustc).args(args).exec();
    eprintln!(
        "error: cachet: failed to run {}: {err}",
        rustc.to_string_lossy()
    );
    ExitCode::from(1)
}
