//! One module per subcommand of the `cachet` tool.

pub mod docker;
pub mod explain;
pub mod flush;
pub mod healthcheck;
pub mod key;
pub mod run_server;
pub mod server;
pub mod setup;
pub mod stats;
pub mod status;
pub mod zero_stats;
