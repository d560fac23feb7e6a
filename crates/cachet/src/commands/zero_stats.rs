//! `cachet zero-stats`: resets the statistics (the cached entries stay).

use std::process::ExitCode;

use anyhow::Context;
use cachet_wrapper::config::Config;

/// Resets the statistics of the local cache.
pub fn run() -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    cachet_wrapper::stats::zero(&config.dir)
        .with_context(|| format!("failed to reset the statistics in {}", config.dir.display()))?;
    outln!("statistics reset ({})", config.dir.display())?;
    Ok(ExitCode::SUCCESS)
}
