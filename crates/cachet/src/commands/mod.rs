//! One module per subcommand of the `cachet` tool.

pub mod explain;
pub mod flush;
pub mod server;
pub mod stats;
pub mod status;
pub mod zero_stats;
