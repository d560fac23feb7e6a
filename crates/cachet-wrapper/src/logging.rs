//! Debug logs of the wrapper, to a file and never to stderr (cargo parses rustc's stderr).
//!
//! Logging is off unless `CACHET_LOG` is set, and then costs one file open: the hit path
//! initialises nothing it does not need.

use std::fs::OpenOptions;
use std::sync::Mutex;

use crate::config::Config;

/// Starts logging to `config.log_file` when `config.log` is set. Problems are ignored: logs
/// are a diagnostic aid and never a reason to fail a build.
pub fn init(config: &Config) {
    let Some(filter) = &config.log else { return };
    let Ok(filter) = tracing_subscriber::EnvFilter::try_new(filter) else {
        return;
    };
    if let Some(parent) = config.log_file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let Ok(file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.log_file)
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init();
}
