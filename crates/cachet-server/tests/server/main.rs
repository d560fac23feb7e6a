//! The server's integration tests: real servers on loopback ports, real HTTP clients, and the
//! real peers it must work with (sccache, ccache, Prometheus). One binary, one module per area,
//! shared helpers in `util`.

mod api;
mod auth;
mod bad_input;
mod ccache;
mod concurrency;
mod connections;
mod dashboard;
mod dashboard_replicas;
mod durability;
mod eviction;
mod full_disk;
mod limits;
mod prometheus;
mod reload;
mod report_limits;
mod s3_auth;
mod sccache;
mod soak;
mod tiers;
mod tls;
mod ui;
mod util;
mod webdav_props;
