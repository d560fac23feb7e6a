//! A store seen as one tier of the server's storage: per-tier counters and latency for
//! `/metrics` and `/stats`, and, for a shared tier (Redis, S3), a timeout on every call and a
//! circuit breaker.
//!
//! Why a breaker: when Redis or S3 goes away, every call would otherwise wait for a connect or
//! response timeout, and a build of a few hundred crates would wait that long hundreds of
//! times. After a failure the tier is skipped (calls fail at once with
//! [`StoreError::Unavailable`]) for a back-off that doubles from [`MIN_BACKOFF`] to
//! [`MAX_BACKOFF`]; the first call after the back-off probes the tier again, and one success
//! closes the breaker. Nothing needs a restart: the Redis connection manager reconnects by
//! itself, and S3 calls are independent HTTP requests.
//!
//! A "not found" is a miss, not an error, and an object refused for its size
//! ([`StoreError::TooLarge`]) is counted as refused without opening the breaker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::report::{StoreReport, TierReport};
use super::{BoxFuture, Object, ObjectId, ObjectMeta, Store, StoreError, Upload, Usage};
use crate::histogram::Histogram;

/// Longest wait for one call to a shared tier (a GET until the body starts, a chunk of an
/// upload, a commit).
pub const SHARED_TIMEOUT: Duration = Duration::from_secs(10);
/// First back-off after a shared tier fails.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest back-off: a tier that comes back is used again within this time.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The operations whose latency is recorded, indexed by [`GET`], [`HEAD`], [`PUT`], [`DELETE`].
pub const OPS: [&str; 4] = ["get", "head", "put", "delete"];
const GET: usize = 0;
const HEAD: usize = 1;
const PUT: usize = 2;
const DELETE: usize = 3;

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    writes: AtomicU64,
    refused: AtomicU64,
    /// Indexed like [`OPS`]. A std mutex held only to add a sample.
    latency: Mutex<[Histogram; OPS.len()]>,
}

impl Counters {
    fn observe(&self, op: usize, took: Duration) {
        self.latency.lock().unwrap_or_else(|e| e.into_inner())[op].observe(took);
    }
}

/// The breaker of a shared tier.
#[derive(Default)]
struct Breaker {
    state: Mutex<BreakerState>,
}

#[derive(Default)]
struct BreakerState {
    /// Failures in a row.
    failures: u32,
    /// Calls are skipped until then.
    open_until: Option<Instant>,
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn allows(&self) -> bool {
        self.lock().open_until.is_none_or(|t| Instant::now() >= t)
    }

    fn is_closed(&self) -> bool {
        self.lock().failures == 0
    }

    fn success(&self, backend: &str) {
        let mut s = self.lock();
        if s.failures > 0 {
            tracing::info!(
                backend,
                "the shared storage tier answers again: using it again"
            );
        }
        s.failures = 0;
        s.open_until = None;
    }

    fn failure(&self, backend: &str, err: &StoreError) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        let backoff = MIN_BACKOFF
            .saturating_mul(1 << (s.failures - 1).min(8))
            .min(MAX_BACKOFF);
        s.open_until = Some(Instant::now() + backoff);
        if s.failures == 1 {
            tracing::warn!(
                backend,
                cause = %crate::cause::chain(err),
                "the shared storage tier failed: skipping it (a local tier in front keeps serving), retrying it every few seconds"
            );
        } else {
            tracing::debug!(backend, cause = %crate::cause::chain(err), failures = s.failures, "shared tier still failing");
        }
    }
}

/// A store with per-tier counters; with a breaker and timeouts for a shared tier.
pub struct Tier {
    inner: Arc<dyn Store>,
    tier: &'static str,
    backend: &'static str,
    /// Shared with uploads in progress, which outlive the call that started them.
    counters: Arc<Counters>,
    /// Only for shared tiers: skips a failing backend.
    breaker: Option<Arc<Breaker>>,
}

impl Tier {
    /// The local tier (a directory): counters only.
    pub fn local(inner: Arc<dyn Store>, backend: &'static str) -> Tier {
        Tier {
            inner,
            tier: "local",
            backend,
            counters: Arc::default(),
            breaker: None,
        }
    }

    /// A shared tier (Redis, S3): counters, timeouts and a breaker.
    pub fn shared(inner: Arc<dyn Store>, backend: &'static str) -> Tier {
        Tier {
            inner,
            tier: "shared",
            backend,
            counters: Arc::default(),
            breaker: Some(Arc::default()),
        }
    }

    /// True unless the breaker is open.
    pub fn available(&self) -> bool {
        self.breaker.as_ref().is_none_or(|b| b.is_closed())
    }

    /// Runs one call: skipped while the breaker is open, bounded by [`SHARED_TIMEOUT`] for a
    /// shared tier, and counted.
    async fn call<T>(
        &self,
        op: usize,
        fut: BoxFuture<'_, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(breaker) = &self.breaker else {
            let started = Instant::now();
            let result = fut.await;
            self.counters.observe(op, started.elapsed());
            if result.is_err() {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            return result;
        };
        if !breaker.allows() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable { tier: self.backend });
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(SHARED_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Backend {
                backend: self.backend,
                op: OPS[op],
                message: format!("no answer within {SHARED_TIMEOUT:?}"),
            }),
        };
        self.counters.observe(op, started.elapsed());
        settle(&self.counters, breaker, self.backend, &result);
        result
    }
}

/// Feeds a call's result to the breaker and the error counters.
fn settle<T>(
    counters: &Counters,
    breaker: &Breaker,
    backend: &'static str,
    result: &Result<T, StoreError>,
) {
    match result {
        Ok(_) => breaker.success(backend),
        // The backend answered: it is reachable, only full (reads go on).
        Err(StoreError::TooLarge { .. } | StoreError::Full { .. }) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            breaker.failure(backend, err);
        }
    }
}

/// An upload into a tier: counts the write, its latency, refusals and failures.
struct TierUpload {
    inner: Box<dyn Upload>,
    counters: Arc<Counters>,
    breaker: Option<Arc<Breaker>>,
    backend: &'static str,
    started: Instant,
}

/// Runs one step of an upload: bounded by [`SHARED_TIMEOUT`] on a shared tier; a failure
/// (or refusal) is counted, and opens the breaker of a shared tier.
async fn upload_step<T>(
    counters: &Counters,
    breaker: Option<&Breaker>,
    backend: &'static str,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let result = match breaker {
        Some(_) => match tokio::time::timeout(SHARED_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Backend {
                backend,
                op: "put",
                message: format!("no answer within {SHARED_TIMEOUT:?}"),
            }),
        },
        None => fut.await,
    };
    match (breaker, &result) {
        (_, Ok(_)) => {}
        (Some(b), Err(_)) => settle(counters, b, backend, &result),
        (None, Err(StoreError::TooLarge { .. } | StoreError::Full { .. })) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
        }
        (None, Err(_)) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

impl Upload for TierUpload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let fut = self.inner.write(chunk);
            upload_step(&self.counters, self.breaker.as_deref(), self.backend, fut).await
        })
    }

    fn buffered(&self) -> u64 {
        self.inner.buffered()
    }

    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async move {
            let TierUpload {
                inner,
                counters,
                breaker,
                backend,
                started,
            } = *self;
            let result = upload_step(&counters, breaker.as_deref(), backend, inner.commit()).await;
            counters.observe(PUT, started.elapsed());
            if result.is_ok() {
                counters.writes.fetch_add(1, Ordering::Relaxed);
                if let Some(b) = &breaker {
                    b.success(backend);
                }
            }
            result
        })
    }
}

impl Store for Tier {
    fn head(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<ObjectMeta>, StoreError>> {
        let id = id.clone();
        Box::pin(async move { self.call(HEAD, self.inner.head(&id)).await })
    }

    fn get(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<Object>, StoreError>> {
        let id = id.clone();
        Box::pin(async move {
            let found = self.call(GET, self.inner.get(&id)).await?;
            let counter = if found.is_some() {
                &self.counters.hits
            } else {
                &self.counters.misses
            };
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(found)
        })
    }

    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let id = id.clone();
        Box::pin(async move {
            let started = Instant::now();
            let inner = self.call(PUT, self.inner.put(&id)).await?;
            Ok(Box::new(TierUpload {
                inner,
                counters: self.counters.clone(),
                breaker: self.breaker.clone(),
                backend: self.backend,
                started,
            }) as Box<dyn Upload>)
        })
    }

    fn delete(&self, id: &ObjectId) -> BoxFuture<'_, Result<bool, StoreError>> {
        let id = id.clone();
        Box::pin(async move { self.call(DELETE, self.inner.delete(&id)).await })
    }

    fn purge_namespace(&self, namespace: &str) -> BoxFuture<'_, Result<u64, StoreError>> {
        // Not timed out: a purge of a large namespace legitimately takes long.
        self.inner.purge_namespace(namespace)
    }

    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match &self.breaker {
                None => self.inner.check_writable().await,
                Some(breaker) => {
                    let result =
                        match tokio::time::timeout(SHARED_TIMEOUT, self.inner.check_writable())
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => Err(StoreError::Unavailable { tier: self.backend }),
                        };
                    settle(&self.counters, breaker, self.backend, &result);
                    result
                }
            }
        })
    }

    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.prune(older_than)
    }

    fn max_upload(&self) -> Option<(&'static str, u64)> {
        self.inner.max_upload()
    }

    fn usage(&self) -> Usage {
        self.inner.usage()
    }

    fn report(&self) -> StoreReport {
        let mut report = self.inner.report();
        report.tiers.insert(0, self.tier_report());
        report
    }
}

impl Tier {
    /// This tier's counters and latency.
    fn tier_report(&self) -> TierReport {
        let c = &self.counters;
        let latency: Vec<(&'static str, Histogram)> = {
            let h = c.latency.lock().unwrap_or_else(|e| e.into_inner());
            OPS.iter().copied().zip(h.iter().cloned()).collect()
        };
        let latency_ms = latency
            .iter()
            .filter(|(_, h)| h.count() > 0)
            .map(|(op, h)| (*op, 1000.0 * h.sum() / h.count() as f64))
            .collect();
        TierReport {
            tier: self.tier,
            backend: self.backend,
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            available: self.available(),
            latency,
            latency_ms,
        }
    }
}
