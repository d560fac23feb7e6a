//! `cachet flush`: uploads results that could not reach the server when they were compiled.
//!
//! Run it at the end of a CI job whose server was briefly unreachable, so nothing compiled
//! there is lost. Exit code 1 when some uploads are still pending.

use std::process::ExitCode;

use anyhow::Context;
use cachet_wrapper::config::Config;
use cachet_wrapper::stats::{self, Delta};
use cachet_wrapper::tiers::Tiers;

/// Uploads every pending object.
pub fn run() -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    let tiers = Tiers::new(&config);
    let mut delta = Delta::default();
    let (uploaded, pending) = tiers
        .flush(&mut delta)
        .context("failed to flush pending uploads")?;
    let _ = stats::apply(&config.dir, &delta);
    outln!("uploaded {uploaded} pending objects; {pending} still pending")?;
    Ok(if pending == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
