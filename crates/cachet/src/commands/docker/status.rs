//! `cachet docker status`: the container's state and health as Docker sees them, and the
//! server's `/stats` as the host sees them. Exit 1 when the container is not running or not
//! healthy, so scripts and monitors can use it directly.

use std::process::ExitCode;
use std::time::Duration;

use super::{host_address, inspect, DEFAULT_NAME};
use crate::commands::healthcheck::http_request;

/// Arguments of `cachet docker status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Container name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

/// Prints the status; exit 1 unless running and healthy.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let Some(state) = inspect(&args.name)? else {
        outln!("container:  {} does not exist", args.name)?;
        eprintln!("start it with `cachet docker start --name {}`", args.name);
        return Ok(ExitCode::FAILURE);
    };
    let health = if state.health.is_empty() {
        "none"
    } else {
        &state.health
    };
    outln!("container:  {} ({})", args.name, state.image)?;
    outln!("state:      {}", state.status)?;
    outln!("health:     {health}")?;
    if state.oom_killed {
        outln!("oom-killed: yes (raise --memory)")?;
    }
    outln!(
        "mode:       {}",
        if state.mode.is_empty() {
            "unknown"
        } else {
            &state.mode
        }
    )?;
    if let Some(dir) = &state.data_dir {
        outln!("data dir:   {dir}")?;
    }
    let healthy = state.status == "running" && state.health == "healthy";
    if state.status == "running" {
        match host_address(&args.name, &state).and_then(|addr| {
            http_request(&addr, "GET", "/stats", None, Duration::from_secs(3)).map(|r| (addr, r))
        }) {
            Ok((addr, (200, body))) => {
                outln!("url:        http://{addr}")?;
                match serde_json::from_str::<serde_json::Value>(&body) {
                    Ok(stats) => outln!(
                        "stats:      {}",
                        serde_json::to_string_pretty(&stats).unwrap_or(body)
                    )?,
                    Err(_) => outln!("stats:      {}", body.trim())?,
                }
            }
            Ok((addr, (code, _))) => outln!("stats:      {addr} answered /stats with {code}")?,
            Err(e) => outln!("stats:      unavailable: {e:#}")?,
        }
    }
    if healthy {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} is not healthy: see `cachet docker logs --name {}`",
            args.name, args.name
        );
        Ok(ExitCode::FAILURE)
    }
}
