//! Integration tests of the `cachet` binary: real cargo builds of real projects through the
//! wrapper, each in its own scratch directory with its own cache.

mod util;

mod clippy;
mod commands;
mod differential;
mod docker;
mod faults;
mod hits;
mod hostile;
mod incremental;
mod logging_driver;
mod messages;
mod mutation;
mod native;
mod native_tools;
mod paths;
mod remote;
mod reports;
mod restored;
mod soundness;
mod texts;
mod tiers;
mod workload;
