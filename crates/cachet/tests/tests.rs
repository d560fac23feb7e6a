//! Integration tests of the `cachet` binary: real cargo builds of real projects through the
//! wrapper, each in its own scratch directory with its own cache.

mod util;

mod commands;
mod docker;
mod faults;
mod hits;
mod hostile;
mod incremental;
mod native;
mod paths;
mod remote;
mod soundness;
mod tiers;
mod workload;
