//! One module per subcommand of the `cachet` tool.

pub mod server;
pub mod stats;
pub mod zero_stats;
