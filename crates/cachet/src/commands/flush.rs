//! `cachet flush`: uploads results that could not reach the server when they were compiled,
//! and sends the call reports waiting for the server's dashboard.
//!
//! Run it at the end of a CI job whose server was briefly unreachable, so nothing compiled
//! there is lost, and so the job's last calls show in the dashboard at once. The wrapper also
//! starts `cachet flush --quiet` in the background when reports have waited too long (a build
//! that hits the local cache for every crate talks to no server; see `reports.rs`). Exit code
//! 1 when some uploads or reports are still pending.

use std::process::ExitCode;

use anyhow::Context;
use cachet_wrapper::call::CallState;
use cachet_wrapper::config::Config;
use cachet_wrapper::remote::RemoteError;
use cachet_wrapper::reports::{self, Limits};
use cachet_wrapper::stats::{self, Delta};
use cachet_wrapper::tiers::Tiers;

/// Arguments of `cachet flush`.
#[derive(Debug, clap::Args)]
pub struct FlushArgs {
    /// Print nothing (for the wrapper's background flush); the exit code still tells.
    #[arg(long, short)]
    pub quiet: bool,
    /// Only send the call reports; leave pending uploads alone (the wrapper's background flush).
    #[arg(long)]
    pub reports_only: bool,
}

/// Uploads every pending object and sends every waiting call report.
pub fn run(args: &FlushArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    let state = CallState::default();
    let tiers = Tiers::new(&config, &state);
    let mut delta = Delta::default();
    let uploads = if args.reports_only {
        Ok((0, 0))
    } else {
        tiers.flush()
    };
    cachet_wrapper::count_events(&state, &mut delta);
    let sent = config
        .remote
        .as_ref()
        .filter(|_| reports::enabled(&config))
        .map(|rc| reports::drain(&config, &Limits::all(rc.timeout), &mut delta));
    let _ = stats::apply(&config.dir, &delta);
    let (uploaded, pending) = uploads.context("failed to flush pending uploads")?;
    let mut ok = pending == 0;
    if !args.quiet && !args.reports_only {
        outln!("uploaded {uploaded} pending objects; {pending} still pending")?;
    }
    match sent {
        None => {}
        // Someone else delivers them: not a failure.
        Some(Ok(d)) if d.busy && !args.quiet => {
            outln!("call reports: another cachet process is sending them now")?;
        }
        Some(Ok(d)) => {
            ok &= d.left == 0;
            if !args.quiet {
                let mut dropped = if d.dropped > 0 {
                    format!(" ({} dropped: see `cachet stats`)", d.dropped)
                } else {
                    String::new()
                };
                if let Some(wait) = d.retry_after {
                    dropped += &format!(
                        " (the server is over its report rate: they are kept and sent after {} s)",
                        wait.as_secs().max(1)
                    );
                }
                outln!(
                    "sent {} call reports to the dashboard; {} still waiting{dropped}",
                    d.sent,
                    d.left
                )?;
            }
        }
        Some(Err(e)) => {
            ok = false;
            if !args.quiet {
                // A token that may not report here cannot deliver them later either.
                let fate = match e {
                    RemoteError::Forbidden { .. } => {
                        "the waiting ones were dropped (see `cachet stats`)"
                    }
                    _ => "they are kept for the next try",
                };
                eprintln!("warning: cachet: call reports not sent: {e}; {fate}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
