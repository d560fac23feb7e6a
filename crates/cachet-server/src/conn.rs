//! The life cycle of a connection: how long it may stay silent, and how many may be open.
//!
//! hyper's own HTTP/1 header-read timeout starts only once hyper-util's `auto` builder has read
//! enough bytes to choose HTTP/1 or HTTP/2, so a socket that never sends a byte would stay open
//! forever, and HTTP/2 has no idle timeout at all. Instead of relying on protocol-specific
//! timers, each connection gets a [`watchdog`] that knows one thing: whether a request is in
//! progress ([`Activity`], updated when hyper calls the service and when the response body is
//! dropped). With no request in progress, a connection that has not yet sent a request is
//! closed [`Limits::header_timeout`] after it was accepted (after its TLS handshake, which has
//! its own timeout), and one that has, [`Limits::idle_timeout`] after its last response. While
//! a request runs, the body timeout and the [`crate::stall::StallGuard`] bound it instead.
//!
//! [`Connections`] caps how many connections are open (each costs a file descriptor, and
//! about two while it streams a file). At the cap the accept loop stops accepting (new
//! connections wait in the kernel's backlog) and asks the connection idle for longest to
//! close: first those that never sent a request (what a flood of silent sockets looks like),
//! then idle keep-alive ones. So a flood of idle sockets can delay but not lock out a client
//! that has a request to send, whatever the open-file limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
// Tokio's clock, so a test with paused time can run a watchdog through hours in a moment.
use tokio::time::Instant;

use crate::http_util::Body;
use crate::metrics::Metrics;

/// Connections kept below the open-file limit for everything else (listener, store files, logs).
const RESERVED_FILES: u64 = 64;
/// Upper bound of the default connection cap.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Lower bound of the default connection cap (a tiny open-file limit still serves someone).
const MIN_CONNECTIONS: u64 = 16;
/// How long a connection closed for idleness may take to say goodbye (an HTTP/2 GOAWAY)
/// before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// At most one "connection limit reached" log line per this period.
const LIMIT_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The timeouts a connection lives by.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept (or the end of the TLS handshake) until the first request's headers.
    pub header_timeout: Duration,
    /// From the end of a response until the next request's headers.
    pub idle_timeout: Duration,
}

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No request within the header timeout of accept.
    HeaderTimeout,
    /// No request within the idle timeout of the last response.
    IdleTimeout,
    /// The TLS handshake did not finish in time.
    HandshakeTimeout,
    /// Closed while idle to make room at the connection cap.
    Shed,
}

impl CloseReason {
    /// Every reason, in the order of [`CloseReason::index`].
    pub const ALL: [CloseReason; 4] = [
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
        CloseReason::HandshakeTimeout,
        CloseReason::Shed,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::Shed => "shed",
        }
    }

    /// Position in [`CloseReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The default connection cap for an open-file soft limit of `nofile`.
pub fn default_max_connections(nofile: Option<u64>) -> usize {
    let derived = nofile
        .map(|n| n.saturating_sub(RESERVED_FILES) / 2)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    derived.clamp(MIN_CONNECTIONS, DEFAULT_MAX_CONNECTIONS) as usize
}

#[derive(Debug)]
struct ActivityState {
    /// Requests whose response has not been dropped yet.
    in_flight: usize,
    /// Requests started on this connection.
    requests: u64,
    /// When the connection last became idle (accepted, or its last response ended).
    idle_since: Instant,
}

/// What the watchdog knows about one connection. Shared by the connection's service (which
/// starts requests), response bodies (which end them) and the [`Connections`] registry.
#[derive(Debug)]
pub struct Activity {
    /// A std mutex: held for a few field updates, never across an await, and contended only by
    /// the requests of one connection.
    state: Mutex<ActivityState>,
    /// Woken to close an idle connection early (shed at the connection cap).
    shed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                requests: 0,
                idle_since: Instant::now(),
            }),
            shed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Restarts the idle clock (a TLS connection once its handshake is done).
    pub fn reset(&self) {
        self.lock().idle_since = Instant::now();
    }

    /// A request starts; it ends when the returned guard is dropped (with its response body).
    pub fn start_request(self: &Arc<Self>) -> RequestGuard {
        let mut s = self.lock();
        s.in_flight += 1;
        s.requests += 1;
        RequestGuard(self.clone())
    }

    /// True once the connection has sent a request (it may deserve a goodbye, an HTTP/2
    /// GOAWAY, before it is closed).
    pub fn served(&self) -> bool {
        self.lock().requests > 0
    }

    /// How eager to shed this connection: `None` while a request runs; else never-used ones
    /// first (`false` sorts first), then the longest idle.
    fn shed_rank(&self) -> Option<(bool, Instant)> {
        let s = self.lock();
        (s.in_flight == 0).then_some((s.requests > 0, s.idle_since))
    }
}

/// Ends a request on drop: travels with the response body, so a response still streaming
/// counts as in progress.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.idle_since = Instant::now();
    }
}

/// A response body that ends its request when dropped.
pub struct TrackedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl TrackedBody {
    /// Ties `inner` to the request `guard` stands for.
    pub fn new(inner: Body, guard: RequestGuard) -> TrackedBody {
        TrackedBody {
            inner,
            _guard: guard,
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Resolves when the connection should be closed: silent past its header timeout, idle past
/// its idle timeout, or shed. Never while a request is in progress.
pub async fn watchdog(activity: &Activity, limits: Limits) -> CloseReason {
    loop {
        let (deadline, reason) = {
            let s = activity.lock();
            if s.in_flight > 0 {
                // Nothing to enforce; look again later (the request's end moves idle_since).
                (Instant::now() + limits.idle_timeout, None)
            } else if s.requests == 0 {
                (
                    s.idle_since + limits.header_timeout,
                    Some(CloseReason::HeaderTimeout),
                )
            } else {
                (
                    s.idle_since + limits.idle_timeout,
                    Some(CloseReason::IdleTimeout),
                )
            }
        };
        if let Some(reason) = reason.filter(|_| Instant::now() >= deadline) {
            return reason;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = activity.shed.notified() => {
                if activity.shed_rank().is_some() {
                    return CloseReason::Shed;
                }
            }
        }
    }
}

/// The open connections and the cap on their number.
pub struct Connections {
    /// One permit per connection that may be open.
    slots: Arc<Semaphore>,
    /// The cap.
    max: usize,
    /// Every open connection, so the accept loop can pick one to shed at the cap.
    live: Mutex<HashMap<u64, Arc<Activity>>>,
    /// Names connections in `live`.
    next_id: AtomicU64,
    /// When the last "limit reached" line was logged (ms since `started`), to rate-limit it.
    last_limit_log: AtomicU64,
    /// Origin of `last_limit_log`.
    started: Instant,
}

/// One connection's place under the cap: its permit and its entry in the registry, both
/// given back on drop.
pub struct Slot {
    connections: Arc<Connections>,
    id: u64,
    activity: Arc<Activity>,
    metrics: Arc<Metrics>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// The connection's activity, for its service and watchdog.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock_live().remove(&self.id);
        self.metrics.connection_closed();
    }
}

impl Connections {
    /// A cap of `max` connections.
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            slots: Arc::new(Semaphore::new(max)),
            max,
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            last_limit_log: AtomicU64::new(u64::MAX),
            started: Instant::now(),
        })
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for room for one more connection. At the cap, logs (at most every 10 s), counts,
    /// and sheds the idle connection that matters least, until a slot frees up.
    pub async fn admit(self: &Arc<Self>, metrics: &Arc<Metrics>) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return permit;
        }
        metrics.connection_limit_reached();
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_limit_log.load(Ordering::Relaxed);
        if last == u64::MAX || now.saturating_sub(last) >= LIMIT_LOG_PERIOD.as_millis() as u64 {
            self.last_limit_log.store(now, Ordering::Relaxed);
            tracing::warn!(
                max_connections = self.max,
                "connection limit reached: closing idle connections, new connections wait \
                 (raise --max-connections and the open-file limit if this is real load)"
            );
        }
        loop {
            self.shed_one();
            match tokio::time::timeout(Duration::from_secs(1), self.slots.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => return permit,
                Ok(Err(_closed)) => unreachable!("the connection semaphore is never closed"),
                Err(_elapsed) => continue,
            }
        }
    }

    /// Registers an accepted connection under `permit`.
    pub fn register(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        metrics: &Arc<Metrics>,
    ) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        self.lock_live().insert(id, activity.clone());
        metrics.connection_opened();
        Slot {
            connections: self.clone(),
            id,
            activity,
            metrics: metrics.clone(),
            _permit: permit,
        }
    }

    /// Asks the idle connection that matters least to close; false if none is idle.
    fn shed_one(&self) -> bool {
        let victim = self
            .lock_live()
            .values()
            .filter_map(|a| a.shed_rank().map(|rank| (rank, a.clone())))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, a)| a);
        match victim {
            Some(a) => {
                a.shed.notify_one();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cap_follows_the_open_file_limit() {
        assert_eq!(default_max_connections(Some(256)), 96);
        assert_eq!(default_max_connections(Some(20)), 16);
        assert_eq!(default_max_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_connections(None), 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_waits_for_requests_to_end() {
        let limits = Limits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        };
        let a = Arc::new(Activity::new());
        assert_eq!(watchdog(&a, limits).await, CloseReason::HeaderTimeout);
        let guard = a.start_request();
        let mut dog = Box::pin(watchdog(&a, limits));
        // A request in progress is never cut off, however long it takes.
        assert!(
            tokio::time::timeout(Duration::from_secs(600), &mut dog)
                .await
                .is_err(),
            "closed during a request"
        );
        drop(guard);
        let ended = Instant::now();
        assert_eq!(dog.await, CloseReason::IdleTimeout);
        assert!(ended.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn shedding_prefers_connections_that_never_sent_a_request() {
        let connections = Connections::new(2);
        let metrics = Arc::new(Metrics::default());
        let used = connections.register(connections.admit(&metrics).await, &metrics);
        drop(used.activity().start_request());
        let silent = connections.register(connections.admit(&metrics).await, &metrics);
        assert!(connections.shed_one());
        let limits = Limits {
            header_timeout: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(3600),
        };
        assert_eq!(watchdog(silent.activity(), limits).await, CloseReason::Shed);
    }
}
