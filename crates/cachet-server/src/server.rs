//! The accept loop: connections, TLS, HTTP/1.1 and HTTP/2, graceful shutdown.
//!
//! [`run`] takes a bound listener and a shutdown future instead of an address and signal
//! handling of its own, so tests bind `127.0.0.1:0`, read the port, and stop the server by
//! resolving the future; the binary passes SIGTERM/SIGINT. Each connection is served by
//! hyper-util's `auto` builder, which speaks HTTP/1.1 or HTTP/2 (prior knowledge, "h2c") on a
//! plain socket and whatever ALPN chose on TLS. On shutdown the listener closes at once,
//! in-flight requests get up to [`DRAIN_TIMEOUT`] to finish, then the store is dropped (which
//! removes an `ephemeral` store's directory).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::api::{handle, AppState};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::stall::StallGuard;
use crate::storage::{Store, StoreError};
use crate::tls::{self, TlsError};

/// How long in-flight requests may take to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to finish a TLS handshake.
///
/// Stalled writes (a client that stops reading a response) are cut off after the body timeout
/// by [`StallGuard`].
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Opens the store a configuration asks for (needs a Tokio runtime).
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    crate::storage::open(&config.storage, config.max_size, config.max_age)
}

/// Serves on `listener` until `shutdown` resolves, then drains connections and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let store = open_store(&config)?;
    let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let local = listener.local_addr().map_err(ServerError::Listener)?;
    if config.tokens.is_empty() && !local.ip().is_loopback() {
        tracing::warn!(
            listen = %local,
            "NO TOKENS CONFIGURED on a non-loopback address: anyone who can reach this port can \
             read, overwrite and purge the cache. Set --token-file or CACHET_TOKENS."
        );
    }
    tracing::info!(
        listen = %local,
        storage = %config.storage,
        max_size = config.max_size,
        max_object_size = config.max_object_size,
        tokens = config.tokens.len(),
        tls = acceptor.is_some(),
        "cachet server listening"
    );
    let state = Arc::new(AppState {
        store,
        metrics: Metrics::default(),
        tokens: config.tokens.clone(),
        max_object_size: config.max_object_size,
        body_timeout: config.body_timeout,
    });
    let pruner = config
        .max_age
        .map(|age| tokio::spawn(prune_loop(state.store.clone(), age)));

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.body_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
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
        let _ = stream.set_nodelay(true);
        let on_stall = {
            let state = state.clone();
            Box::new(move || state.metrics.stalled_write()) as Box<dyn Fn() + Send + Sync>
        };
        let state = state.clone();
        let service = service_fn(move |req| handle(state.clone(), req));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let stream = StallGuard::new(stream, config.body_timeout, on_stall);
        tokio::spawn(async move {
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, cause = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, cause = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}: closing them");
    }
    if let Some(p) = pruner {
        p.abort();
    }
    tracing::info!("stopped");
    Ok(())
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
            Err(err) => tracing::warn!(cause = %crate::error::chain(&err), "failed to prune"),
        }
    }
}
