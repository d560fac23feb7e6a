//! `cachet docker stop`: stops the server container gracefully (SIGTERM, up to 30 s for
//! in-flight requests) and removes it with its anonymous volume. An ephemeral store goes with
//! it; a persistent data directory on the host is kept for the next `cachet docker start`.

use std::process::ExitCode;

use super::{docker_ok, require_container, DEFAULT_NAME};

/// Arguments of `cachet docker stop`.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Container name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

/// Stops and removes the container.
pub fn run(args: &StopArgs) -> anyhow::Result<ExitCode> {
    let state = require_container(&args.name)?;
    eprintln!("stopping {} (SIGTERM, up to 30 s)", args.name);
    docker_ok(&["stop", "--time", "30", &args.name])?;
    docker_ok(&["rm", "--volumes", &args.name])?;
    match state.data_dir {
        Some(dir) => outln!("stopped {}; the store is kept in {dir}", args.name)?,
        None => outln!("stopped {}; its ephemeral store is removed", args.name)?,
    }
    Ok(ExitCode::SUCCESS)
}
