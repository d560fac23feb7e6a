//! Ports for the peers that must be told theirs up front.
//!
//! The cachet server binds port 0 and reports the port (see [`crate::server`]). Some peers
//! cannot: redis-server with `--port 0` does not listen on TCP at all, a Redis Cluster and
//! TLS need TCP, and `cachet docker start` publishes the port it is given. For them
//! [`bind_with_retry`] picks a port that is free now, starts the peer, and when the peer says
//! the address was taken meanwhile (by the other test thread, say), starts it again on a fresh
//! one, a bounded number of times. The peer counts as started only when it says it is
//! listening itself: a connect could reach whoever took the port.

/// How many ports [`bind_with_retry`] tries before it fails the test.
const ATTEMPTS: usize = 8;

/// What a start-up attempt on a port came to.
pub enum Bind<T> {
    /// The peer is listening on the port.
    Bound(T),
    /// The peer said the address was in use: try another port.
    Taken,
}

/// A loopback port nothing listened on a moment ago, for a peer that must be told its port.
/// Only [`bind_with_retry`] (which copes with losing it) and [`closed_port`] use it.
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `what` with `start(port)` on a port free a moment ago, and again on a fresh port
/// each time it reports [`Bind::Taken`]; fails the test after a bounded number of tries.
pub fn bind_with_retry<T>(what: &str, mut start: impl FnMut(u16) -> Bind<T>) -> T {
    for _ in 0..ATTEMPTS {
        if let Bind::Bound(t) = start(unused_port()) {
            return t;
        }
    }
    panic!("{what}: every one of {ATTEMPTS} free ports was taken before it could bind");
}

/// A loopback port where nothing listens, for a test of an unreachable server (the client
/// under test must fail to connect). Nothing is handed a port to bind: if another process
/// happens to bind it meanwhile, the client reaches that and the test fails loudly rather than
/// passing by chance.
pub fn closed_port() -> u16 {
    unused_port()
}
