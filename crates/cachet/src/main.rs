//! The `cachet` binary: a rustc wrapper when cargo runs it as `cachet RUSTC ARGS...`, and a
//! command-line tool (`cachet stats`, `cachet server`, ...) otherwise.
//!
//! The wrapper check comes first and touches nothing but argv, so a rustc call never pays for
//! parsing the tool's command line.

#[macro_use]
mod output;
mod cli;
mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if cli::is_wrapper_invocation(&args) {
        return cachet_wrapper::run(&args);
    }
    cli::run()
}
