//! `cachet docker ...`: runs the cache server in Docker without a Docker SDK: every operation is
//! a call of the `docker` command line (so it honours `DOCKER_HOST`, contexts and the user's
//! permissions exactly as `docker` does). One file per subcommand; `engine.rs` holds the shared
//! pieces: the defaults, running `docker` and turning its failures into messages that say what
//! happened and what to do. This file only declares the subcommands and dispatches to them.

pub mod build;
mod engine;
pub mod logs;
pub mod purge;
pub mod start;
pub mod status;
pub mod stop;

use std::process::ExitCode;

pub use engine::{
    check_daemon, docker_ok, docker_output, host_address, inspect, require_container,
    CONTAINER_PORT, DEFAULT_IMAGE, DEFAULT_NAME, MODE_LABEL,
};

/// `cachet docker` subcommands.
#[derive(clap::Subcommand)]
pub enum DockerCommand {
    /// Build the server image from this checkout (no registry needed).
    Build(build::BuildArgs),
    /// Start the server container and wait until it is healthy.
    Start(start::StartArgs),
    /// Stop and remove the server container (a persistent data directory is kept).
    Stop(stop::StopArgs),
    /// Show the container's state, health and the server's statistics.
    Status(status::StatusArgs),
    /// Empty the cache through the server's admin API.
    Purge(purge::PurgeArgs),
    /// Show the server's logs.
    Logs(logs::LogsArgs),
}

/// Runs one `cachet docker` subcommand.
pub fn run(cmd: DockerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DockerCommand::Build(args) => build::run(&args),
        DockerCommand::Start(args) => start::run(&args),
        DockerCommand::Stop(args) => stop::run(&args),
        DockerCommand::Status(args) => status::run(&args),
        DockerCommand::Purge(args) => purge::run(&args),
        DockerCommand::Logs(args) => logs::run(&args),
    }
}
