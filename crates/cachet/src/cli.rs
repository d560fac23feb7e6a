//! The command line of the `cachet` tool and the dispatch to one file per subcommand.
//!
//! Exit codes: 0 success, 1 the command failed (the message says why), 2 bad usage.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands;

/// A shared compiler cache for Rust builds.
///
/// Use it as cargo's rustc wrapper: `RUSTC_WRAPPER=cachet cargo build`, or
/// `build.rustc-wrapper = "cachet"` in `.cargo/config.toml`.
#[derive(Parser)]
#[command(name = "cachet", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the local cache's statistics: hits, misses, pass-throughs and why.
    Stats(commands::stats::StatsArgs),
    /// Reset the statistics to zero (the cache itself is kept).
    ZeroStats,
    /// Check the setup: the local cache, and the shared server as this client sees it.
    Status(commands::status::StatusArgs),
    /// Upload results that could not reach the server when they were compiled, and send the
    /// call reports waiting for the server's dashboard.
    Flush(commands::flush::FlushArgs),
    /// Explain the last build's misses and pass-throughs (or the last compile of a crate).
    Explain(commands::explain::ExplainArgs),
    /// Run the shared cache server.
    Server(Box<commands::server::ServerCommand>),
    /// Run the cache server in Docker: build the image, start, stop, status, purge, logs.
    #[command(subcommand)]
    Docker(commands::docker::DockerCommand),
    /// Make, show and rotate the ed25519 keys that sign entries (CACHET_SIGNING_KEY,
    /// CACHET_TRUSTED_KEYS).
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Probe a local server's /healthz (the container image's health check); exit 0 or 1.
    Healthcheck(commands::healthcheck::HealthcheckArgs),
    /// Send cargo builds through cachet, their C/C++/assembly too (writes cargo's config).
    Setup(commands::setup::SetupArgs),
}

/// The names of the subcommands; any other first argument means cargo is calling us as a
/// rustc wrapper, or a build system as a C compiler wrapper (`cachet cc ...`).
pub const SUBCOMMANDS: &[&str] = &[
    "stats",
    "zero-stats",
    "status",
    "flush",
    "explain",
    "server",
    "docker",
    "healthcheck",
    "setup",
    "key",
    "help",
];

/// True when argv looks like `cachet RUSTC ARGS...` rather than `cachet SUBCOMMAND ...`.
pub fn is_wrapper_invocation(args: &[OsString]) -> bool {
    match args.get(1).and_then(|a| a.to_str()) {
        None => args.len() > 1, // a non-UTF-8 compiler path
        Some(first) => !first.starts_with('-') && !SUBCOMMANDS.contains(&first),
    }
}

/// The list of `CACHET_*` variables shown under `--help`.
fn environment_help() -> String {
    let mut out = String::from("Environment:\n");
    for (name, doc) in cachet_core::env_vars::ALL {
        out.push_str(&format!("  {name:<26}{doc}\n"));
    }
    out
}

/// Parses the command line and runs the subcommand.
pub fn run() -> ExitCode {
    let cmd = Cli::command().after_help(environment_help());
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Stats(args) => commands::stats::run(&args),
        Command::ZeroStats => commands::zero_stats::run(),
        Command::Status(args) => commands::status::run(&args),
        Command::Flush(args) => commands::flush::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        // The arguments are checked; the server runs in its own executable (see server.rs).
        Command::Server(_) => commands::run_server::run(),
        Command::Docker(cmd) => commands::docker::run(cmd),
        Command::Healthcheck(args) => commands::healthcheck::run(&args),
        Command::Setup(args) => commands::setup::run(&args),
        Command::Key(cmd) => commands::key::run(cmd),
    };
    match result {
        Ok(code) => code,
        // The reader of our stdout went away (`cachet stats | head`): it has what it wanted.
        Err(err) if crate::output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommand_list_matches_clap() {
        let mut names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        names.push("help".into());
        names.sort();
        let mut listed: Vec<String> = SUBCOMMANDS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(names, listed);
    }

    #[test]
    fn compiler_paths_are_wrapper_calls() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_wrapper_invocation(&argv(&[
            "cachet",
            "/usr/bin/rustc",
            "-vV"
        ])));
        assert!(is_wrapper_invocation(&argv(&[
            "cachet",
            "rustc",
            "--crate-name",
            "x"
        ])));
        assert!(!is_wrapper_invocation(&argv(&["cachet", "stats"])));
        assert!(!is_wrapper_invocation(&argv(&["cachet", "--version"])));
        assert!(!is_wrapper_invocation(&argv(&["cachet"])));
    }
}
