//! `cachet server`: runs the shared cache server (see the `cachet-server` crate).

use std::process::ExitCode;

/// Arguments of `cachet server`.
pub type ServerCommand = cachet_server::ServerArgs;

/// Runs the server until it is told to stop.
pub fn run(args: ServerCommand) -> anyhow::Result<ExitCode> {
    cachet_server::run_from_args(args)?;
    Ok(ExitCode::SUCCESS)
}
