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
pub mod depfile;
pub mod identity;
pub mod inputs;
pub mod key;
pub mod serve;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use crate::call::{CallResult, CallState, Skip};
use crate::config::Config;

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

/// One C, C++ or assembler call, read from `[cachet, compiler, args...]`.
pub struct CcCall<'a> {
    /// The compiler as named (argv\[1\]).
    pub invoked: String,
    /// Its arguments as given.
    pub raw_args: &'a [OsString],
    /// The arguments, when all are UTF-8.
    args: Option<Vec<String>>,
    /// What to do: compile through the cache, or run unchanged for this reason.
    plan: Result<args::CcPlan, args::PassReason>,
}

impl<'a> CcCall<'a> {
    /// Reads the call.
    pub fn read(argv: &'a [OsString]) -> CcCall<'a> {
        let invoked = argv[1].to_string_lossy().into_owned();
        let raw_args = &argv[2..];
        let args: Option<Vec<String>> = raw_args
            .iter()
            .map(|a| a.to_str().map(str::to_string))
            .collect();
        let env = |k: &str| std::env::var(k).ok();
        let plan = match &args {
            Some(a) => args::plan(&invoked, a, &env),
            None => Err(args::PassReason::UnknownOption),
        };
        CcCall {
            invoked,
            raw_args,
            args,
            plan,
        }
    }

    /// The language counted in the statistics (`c` when the call is not cached).
    pub fn language(&self) -> &'static str {
        self.plan.as_ref().map_or("c", |p| p.language.label())
    }

    /// The source file, for the journal (none when the call is not cached).
    pub fn source(&self) -> Option<String> {
        self.plan.as_ref().ok().map(|p| p.source.clone())
    }

    /// Serves the call (see [`serve::serve`]), or says why it runs unchanged.
    pub fn serve(&self, config: &Config, state: &CallState) -> CallResult {
        match &self.plan {
            Err(reason) => {
                tracing::debug!(%reason, "pass-through");
                CallResult::PassThrough(Skip::Cc(*reason))
            }
            Ok(plan) => {
                let args = self.args.as_deref().unwrap_or_default();
                serve::serve(config, &self.invoked, args, plan, state)
            }
        }
    }

    /// Replaces this process with the compiler, run unchanged.
    pub fn exec(&self) -> ExitCode {
        exec(&self.invoked, self.raw_args)
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
