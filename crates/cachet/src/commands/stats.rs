//! `cachet stats`: the local cache's statistics.

use std::process::ExitCode;

/// Arguments of `cachet stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the statistics.
pub fn run(_args: &StatsArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
