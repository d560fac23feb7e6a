//! The C, C++ and assembler wrapper: what runs for `cachet cc ARGS...`, `cachet c++ ...`,
//! `cachet /usr/bin/clang ...` or `cachet x86_64-linux-musl-gcc ...`, the command-line shape
//! of ccache and sccache that the `cc` crate, CMake (`CMAKE_C_COMPILER_LAUNCHER`), autotools
//! and Meson use.
//!
//! [`is_c_compiler`] tells a C compiler from rustc by the name cachet is given: a driver of
//! the gcc or clang family (`cc`, `c++`, `gcc`, `g++`, `clang`, `clang++`, with a target
//! prefix such as `aarch64-linux-gnu-` or `musl-` and an optional version suffix such as
//! `-12`). Anything else (`rustc`, `clippy-driver`, a rustup proxy) is a rustc call.
//!
//! Data flows as for rustc: [`args`] decides whether the call can be cached, [`identity`] and
//! [`key`] compute the pre-key, [`serve`] looks it up (manifest, entry) and restores, or
//! compiles and stores what [`inputs`] proves the compile read. Anything else runs unchanged
//! with the reason counted; a failure inside cachet never fails the compile.

pub mod args;
pub mod identity;
pub mod inputs;
pub mod key;
pub mod serve;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;

use crate::config::Config;
use crate::journal;
use crate::pipeline::{Outcome, Report};
use crate::stats::{self, Delta, Stats};

/// Compiler drivers cachet wraps, without prefix or version suffix.
const DRIVERS: &[&str] = &["cc", "c++", "gcc", "g++", "clang", "clang++"];

/// True when `name` (argv\[1\]) names a C or C++ compiler of the gcc or clang family.
pub fn is_c_compiler(name: &std::ffi::OsStr) -> bool {
    let Some(file) = Path::new(name).file_name().and_then(|f| f.to_str()) else {
        return false;
    };
    // `gcc-12`, `clang-17`, `clang++-17`: drop a numeric version suffix.
    let base = match file.rsplit_once('-') {
        Some((head, tail))
            if !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            head
        }
        _ => file,
    };
    DRIVERS
        .iter()
        .any(|d| base == *d || base.ends_with(&format!("-{d}")))
}

/// Runs one wrapped compiler call: `argv` is `[cachet, compiler, args...]`.
pub fn run(argv: &[OsString]) -> ExitCode {
    let invoked = argv[1].to_string_lossy().into_owned();
    let raw_args = &argv[2..];
    let config = Config::from_env();
    if config.disable {
        return exec(&invoked, raw_args);
    }
    crate::logging::init(&config);
    let mut delta = Delta {
        calls: 1,
        ..Delta::default()
    };
    let mut report = Report::default();
    let args: Option<Vec<String>> = raw_args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect();
    let env = |k: &str| std::env::var(k).ok();
    let plan = match &args {
        Some(a) => args::plan(&invoked, a, &env),
        None => Err(args::PassReason::UnknownOption),
    };
    let mut language = "c";
    let mut name = None;
    let outcome = match plan {
        Err(reason) => {
            tracing::debug!(%reason, "pass-through");
            Stats::bump(&mut delta.pass_through, reason.label());
            report.reason = Some(reason.label().to_string());
            Outcome::RunUnchanged
        }
        Ok(plan) => {
            language = plan.language.label();
            name = Some(plan.source.clone());
            let args = args.as_deref().unwrap_or_default();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve::serve(&config, &invoked, args, &plan, &mut delta, &mut report)
            }));
            match result {
                Ok(o) => o,
                Err(_) if crate::OUTPUT_STARTED.load(Ordering::SeqCst) => Outcome::Exit(101),
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
        krate: name,
        outcome: report.outcome,
        reason: report.reason,
        pre_key: report.pre_key.map(|k| k.to_hex()),
        changes: report.changes,
    };
    journal::append(&config.dir, &record);
    crate::reports::cc_call_done(&config, &record, language, &mut delta);
    delta.tally_language(language);
    if let Err(e) = stats::apply(&config.dir, &delta) {
        tracing::warn!(error = %e, "cannot update statistics");
    }
    match outcome {
        Outcome::Exit(code) => ExitCode::from(code),
        Outcome::RunUnchanged => exec(&invoked, raw_args),
    }
}

/// Replaces this process with the compiler.
fn exec(invoked: &str, args: &[OsString]) -> ExitCode {
    let path = serve::resolve(invoked);
    let err = Command::new(&path).args(args).exec();
    eprintln!("error: cachet: failed to run {invoked}: {err}");
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_c_compilers_from_rustc() {
        for yes in [
            "cc",
            "c++",
            "/usr/bin/gcc",
            "g++-12",
            "clang",
            "clang++-17",
            "x86_64-linux-musl-gcc",
            "musl-gcc",
            "aarch64-linux-gnu-gcc",
            "x86_64-linux-gnu-gcc-12",
            "/usr/lib/ccache/cc",
        ] {
            assert!(is_c_compiler(yes.as_ref()), "{yes}");
        }
        for no in [
            "rustc",
            "/home/u/.rustup/toolchains/stable/bin/rustc",
            "clippy-driver",
            "stats",
            "gccrs",
        ] {
            assert!(!is_c_compiler(no.as_ref()), "{no}");
        }
    }
}
