//! The shared cachet cache server (to be built: issue 3).
#![deny(missing_docs)]

/// Command-line arguments of `cachet server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {}

/// Runs the server with the given arguments until shutdown.
pub fn run_from_args(_args: ServerArgs) -> anyhow::Result<()> {
    anyhow::bail!("the server is not built yet")
}
