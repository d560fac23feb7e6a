//! The rustc wrapper (being built: issue 2).
#![deny(missing_docs)]

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs one wrapped rustc invocation: `argv` is `[cachet, rustc, args...]`.
pub fn run(argv: Vec<OsString>) -> ExitCode {
    let status = std::process::Command::new(&argv[1]).args(&argv[2..]).status();
    match status {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1) as u8),
        Err(_) => ExitCode::FAILURE,
    }
}
