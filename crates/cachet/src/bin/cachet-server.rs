//! The `cachet-server` binary: the shared cache server, also started as `cachet server`.
//!
//! It is apart from `cachet` so that the wrapper, started for every rustc call, does not load
//! the server's code (see `commands/server.rs`). Its flags are the ones `cachet server` shows.

#[path = "../output.rs"]
#[macro_use]
#[allow(unused_macros)]
mod output;
#[path = "../commands/server.rs"]
mod server;

use std::process::ExitCode;

use clap::Parser;

/// The shared cache server of cachet (also run as `cachet server`).
#[derive(Parser)]
#[command(name = "cachet-server", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    server: server::ServerCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cachet_server::run_from_args(cli.server.into()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our stdout went away (`--print-default-config | head`).
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
