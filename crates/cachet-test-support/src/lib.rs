//! Helpers shared by the integration tests of `cachet` (the wrapper's real cargo builds) and
//! `cachet-server` (the server's HTTP tests), so that both start the real server and the real
//! storage peers the same way and fix a helper once.
//!
//! Two rules run through it:
//! - **No test hands a port to another process.** A port that was free when the test looked
//!   may be taken by the other test thread before the child binds it. The cachet server binds
//!   port 0 and reports the port it got (`--port-file`); a peer that must be told a port up
//!   front is started through [`ports::bind_with_retry`], which tries again with a fresh port
//!   when the child says the address was in use, and believes it bound only when the child
//!   itself says so.
//! - **A child that died is reported at once, with its log.** Every child writes its stderr
//!   to a file; a start-up that fails shows the exit status and the end of that log, and a test
//!   that panics while holding a [`ServerProcess`] prints the server's log.
//!
//! Only std, `tempfile` and `rcgen`: the helpers start real programs and speak plain HTTP/1.1,
//! so this crate builds before (and without) the crates it tests.

pub mod backends;
pub mod binary;
pub mod http;
pub mod mount;
pub mod ports;
pub mod process;
pub mod server;
pub mod tls;
pub mod tools;
pub mod wait;

pub use binary::cachet_bin;
pub use http::http;
pub use mount::Mount;
pub use ports::closed_port;
pub use process::run_ok;
pub use server::{
    spawn_server, spawn_server_env, spawn_server_logged, spawn_server_under, ServerBuilder,
    ServerProcess,
};
pub use tls::{issue_cert, TestCert};
pub use tools::{ci_cache, require_tool};
pub use wait::{log_tail, wait_for};
