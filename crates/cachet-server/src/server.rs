//! The accept loop: connections, TLS, HTTP/1.1 and HTTP/2, graceful shutdown.
//!
//! [`run`] takes a bound listener and a shutdown future instead of an address and signal
//! handling of its own, so tests bind `127.0.0.1:0`, read the port, and stop the server by
//! resolving the future; the binary passes SIGTERM/SIGINT. Each connection is served by
//! hyper-util's `auto` builder, which speaks HTTP/1.1 or HTTP/2 (prior knowledge, "h2c") on a
//! plain socket and whatever ALPN chose on TLS. How long a connection may stay silent or
//! idle, and how many may be open, is [`crate::conn`]'s business; stalled writes (a client
//! that stops reading a response) are cut off after the body timeout by [`StallGuard`]. On
//! shutdown the listener closes at once,
//! in-flight requests get up to [`DRAIN_TIMEOUT`] to finish, then the store is dropped (which
//! removes an `ephemeral` store's directory).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::api::{handle, AppState};
use crate::config::Config;
use crate::conn::{self, CloseReason, Connections, TrackedBody};
use crate::metrics::Metrics;
use crate::stall::StallGuard;
use crate::storage::budget::UploadBudget;
use crate::storage::{Store, StoreError};
use crate::tls::{self, TlsError};

/// How long in-flight requests may take to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened.
    #[error("failed to open the store")]
    Store(#[from] StoreError),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listener failed.
    #[error("failed to read the listening address")]
    Listener(#[source] std::io::Error),
}

/// Opens the store a configuration asks for (needs a Tokio runtime); a chain's copies to its
/// shared tier take their buffers from `budget`, the server's `--upload-memory`.
pub fn open_store(
    config: &Config,
    budget: &Arc<UploadBudget>,
) -> Result<Arc<dyn Store>, StoreError> {
    crate::storage::open::open_with_budget(&config.storage, config.max_size, config.max_age, budget)
}

/// Serves on `listener` until `shutdown` resolves, then drains connections and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    run_with_reload(listener, config, shutdown, None).await
}

/// [`run`], applying each configuration that arrives on `reloads` (the binary sends one per
/// SIGHUP): its tokens and TLS certificate replace the current ones for every request and
/// handshake from then on; connections already open keep going. A configuration whose
/// certificate cannot be loaded changes nothing, and the log says why.
pub async fn run_with_reload(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    mut reloads: Option<tokio::sync::mpsc::Receiver<Config>>,
) -> Result<(), ServerError> {
    let upload_memory = UploadBudget::new(config.upload_memory);
    let store = open_store(&config, &upload_memory)?;
    let mut acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let local = listener.local_addr().map_err(ServerError::Listener)?;
    if config.tokens.is_empty() && !local.ip().is_loopback() {
        tracing::warn!(
            listen = %local,
            "NO TOKENS CONFIGURED on a non-loopback address: anyone who can reach this port can \
             read, overwrite and purge the cache. Set --token-file or CACHET_TOKENS."
        );
    }
    let max_connections = config
        .max_connections
        .unwrap_or_else(|| conn::default_max_connections(open_file_limit()));
    tracing::info!(
        listen = %local,
        storage = %config.storage,
        max_size = config.max_size,
        max_object_size = config.max_object_size,
        tokens = config.tokens.len(),
        tls = acceptor.is_some(),
        max_connections,
        open_file_limit = open_file_limit(),
        "cachet server listening"
    );
    let shown = if local.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    tracing::info!("dashboard: {scheme}://{shown}/ui");
    let metrics = Arc::new(Metrics::default());
    metrics.set_max_connections(max_connections);
    metrics.close_reasons(CloseReason::ALL.map(CloseReason::label));
    let (history, history_upkeep) =
        crate::history::shared::start(&config.storage, local, store.clone()).await;
    let state = Arc::new(AppState {
        store,
        metrics: metrics.clone(),
        tokens: std::sync::RwLock::new(Arc::new(config.tokens.clone())),
        max_object_size: config.max_object_size,
        body_timeout: config.body_timeout,
        protect_stats: config.protect_stats,
        upload_memory,
        history,
        report_limits: crate::report_limit::ReportLimits::new(config.report_rates),
        secure_cookies: acceptor.is_some(),
    });
    let pruner = config
        .max_age
        .map(|age| tokio::spawn(prune_loop(state.store.clone(), age)));

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's header-read timer would also run while an HTTP/1 connection is idle between
    // requests, and only starts once the protocol is known: the watchdog (conn.rs) owns both.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    // A peer that stops acknowledging pings (or never reads) is dropped even mid-response,
    // where HTTP/2 flow control, not a stuck socket write, would hold the response.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(config.body_timeout)
        .keep_alive_timeout(config.body_timeout);
    let limits = conn::Limits {
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
    };
    let connections = Connections::new(max_connections);
    // Every connection task holds a receiver: the sender sees them all gone once drained.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.admit(&metrics) => permit,
            new = next_reload(&mut reloads) => {
                reload(&state, &mut acceptor, new);
                continue;
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            new = next_reload(&mut reloads) => {
                reload(&state, &mut acceptor, new);
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(cause = %err, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = connections.register(permit, &metrics);
        let _ = stream.set_nodelay(true);
        let on_stall = {
            let metrics = metrics.clone();
            Box::new(move || metrics.stalled_write()) as Box<dyn Fn() + Send + Sync>
        };
        let stream = StallGuard::new(stream, config.body_timeout, on_stall);
        let task = Connection {
            builder: builder.clone(),
            state: state.clone(),
            slot,
            limits,
            stop: stop_rx.clone(),
        };
        let acceptor = acceptor.clone();
        let handshake_timeout = config.handshake_timeout;
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return task.serve(stream, peer).await;
            };
            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, cause = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        task.state.metrics.connection_closed_for(CloseReason::HandshakeTimeout.label());
                        return;
                    }
                },
                reason = conn::watchdog(task.slot.activity(), task.limits) => {
                    // Only shedding: the handshake timeout is shorter than the header timeout
                    // in any sane configuration, and bounds the handshake either way.
                    task.state.metrics.connection_closed_for(reason.label());
                    return;
                }
            };
            task.slot.activity().reset();
            task.serve(tls, peer).await;
        });
    }
    drop(listener);
    drop(stop_rx);
    tracing::info!("shutting down: draining connections");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, stop_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}: closing them");
    }
    if let Some(p) = pruner {
        p.abort();
    }
    history_upkeep.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// The next configuration to apply; never resolves once there are no more.
async fn next_reload(reloads: &mut Option<tokio::sync::mpsc::Receiver<Config>>) -> Config {
    if let Some(rx) = reloads {
        if let Some(config) = rx.recv().await {
            return config;
        }
    }
    *reloads = None;
    std::future::pending().await
}

/// Applies the reloadable part of `new` (tokens, TLS certificate), or nothing if any of it
/// cannot be used.
fn reload(state: &AppState, acceptor: &mut Option<tokio_rustls::TlsAcceptor>, new: Config) {
    let new_acceptor = match (acceptor.is_some(), &new.tls) {
        (true, Some(paths)) => match tls::acceptor(paths) {
            Ok(a) => Some(a),
            Err(err) => {
                tracing::error!(
                    cause = %crate::cause::chain(&err),
                    "failed to reload: keeping the previous tokens and TLS certificate"
                );
                return;
            }
        },
        (false, None) => None,
        (had_tls, _) => {
            tracing::error!(
                "failed to reload: TLS cannot be turned {} by a reload (restart the server); \
                 keeping the previous tokens and TLS certificate",
                if had_tls { "off" } else { "on" }
            );
            return;
        }
    };
    let tokens = new.tokens.len();
    state.set_tokens(new.tokens);
    let tls = new_acceptor.is_some();
    if let Some(a) = new_acceptor {
        *acceptor = Some(a);
    }
    tracing::info!(
        tokens,
        tls,
        "reloaded the tokens and the TLS certificate (other settings apply at the next restart)"
    );
}

/// The current open-file soft limit, if there is one.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the open-file soft limit to the hard limit (each connection costs a descriptor, two
/// while it streams a file); returns the limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(cause = %err, "failed to raise the open-file limit");
        }
    }
    open_file_limit()
}

/// Resolves once the server shuts down (or is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// One accepted connection and what serving it needs.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    state: Arc<AppState>,
    /// Its place under the connection cap; given back when the task ends.
    slot: conn::Slot,
    limits: conn::Limits,
    /// Turns true when the server shuts down.
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    /// Serves HTTP on `io` until the client leaves, the watchdog closes it, or the server
    /// shuts down (then in-flight requests finish first).
    async fn serve<I>(mut self, io: I, peer: std::net::SocketAddr)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.slot.activity().clone();
        let service = {
            let state = self.state.clone();
            let activity = activity.clone();
            service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                // Who is calling, for the call-report rate of a client that gives no name.
                req.extensions_mut()
                    .insert(crate::report_limit::Peer(peer.ip()));
                let guard = activity.start_request();
                let state = state.clone();
                async move {
                    let response = handle(state, req).await?;
                    Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, guard)))
                }
            })
        };
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            reason = conn::watchdog(&activity, self.limits) => {
                self.state.metrics.connection_closed_for(reason.label());
                tracing::debug!(%peer, reason = reason.label(), "closing the connection");
                if activity.served() {
                    // Nothing is in flight: give a live HTTP/2 peer its GOAWAY, no more.
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(conn::CLOSE_GRACE, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                } else {
                    // Never said a word (or not a whole request): nobody to say goodbye to.
                    Ok(())
                }
            }
            () = stopped(&mut self.stop) => {
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    result = conn.as_mut() => result,
                    _ = conn::watchdog(&activity, self.limits) => Ok(()),
                }
            }
        };
        if let Err(err) = result {
            tracing::debug!(%peer, cause = %err, "connection ended with an error");
        }
    }
}

/// Prunes objects older than `max_age`, checking about ten times per `max_age` (at least
/// every second, at most every hour).
async fn prune_loop(store: Arc<dyn Store>, max_age: Duration) {
    let period = (max_age / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.prune(max_age).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(objects = n, "pruned objects past the maximum age"),
            Err(err) => tracing::warn!(cause = %crate::cause::chain(&err), "failed to prune"),
        }
    }
}
