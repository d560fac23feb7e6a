//! A bounded local tier in front of a shared one (`--storage dir:/var/cachet,s3://bucket/p`).
//!
//! - **Reads** try the local tier, then the shared one; a shared hit is copied into the local
//!   tier while it is sent to the client (a large object is teed chunk by chunk, never held
//!   whole in memory). A shared tier that fails is a miss, never an error: the server keeps
//!   answering from its local tier while Redis or S3 is down.
//! - **Writes** go to the local tier on the request path, then the object's *name* is queued
//!   (bounded, [`QUEUE_CAPACITY`]) for [`UPLOAD_WORKERS`] background workers that copy it from
//!   the local tier to the shared one. The client does not wait for Redis or S3. Nothing is
//!   lost silently: a full queue, an object evicted before its upload, an upload refused by
//!   the backend or failing after [`UPLOAD_ATTEMPTS`] tries each have a counter in `/metrics`
//!   and `/stats` and a log line. Uploads of one object never overlap: a write of an object
//!   already queued or uploading marks it to be uploaded once more afterwards (from the local
//!   tier's bytes at that time), so a retry of an older version cannot land after a newer one
//!   (a manifest, rewritten on every new compile of a crate, must not go back in time).
//!   The tries of one upload are spaced by `backon`'s exponential back-off ([`RETRY`]) rather
//!   than a loop of our own: the crate already carries the policy (factor, bound, which errors
//!   to retry) and opendal uses it too, so it costs no new dependency.
//! - **Memory.** A background copy holds the local object (read whole up to 1 MiB) and what the
//!   shared tier buffers (a whole Redis value, an S3 part): it takes those bytes from the same
//!   [`UploadBudget`] as client uploads (`--upload-memory`), waiting for room as long as it
//!   takes, so the upload queue cannot hold more memory than the setting allows. A copy that
//!   would need more than the whole budget is refused (counted, logged) rather than retried.
//! - Readiness (`/readyz`) is the local tier's: a replica whose shared tier is down still
//!   serves (its local tier, and misses), so it must not be taken out of a load balancer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::budget::UploadBudget;
use super::report::{StoreReport, UploadStats};
use super::{
    BoxFuture, Object, ObjectBody, ObjectId, ObjectMeta, Store, StoreError, Upload, Usage,
};

/// Object names waiting for upload to the shared tier (names only: the bytes are in the local
/// tier, so a full queue costs about 100 bytes per entry).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Uploads to the shared tier in parallel.
pub const UPLOAD_WORKERS: usize = 4;
/// Tries per upload before it is counted as failed.
pub const UPLOAD_ATTEMPTS: u32 = 4;
/// What a copy holds of the budget before it reads the local object: the disk store reads
/// objects up to 1 MiB whole, larger ones 256 KiB at a time.
const LOCAL_READ: u64 = 1 << 20;

#[derive(Default)]
struct UploadCounters {
    /// Objects queued or uploading, and whether each was written again meanwhile (then it is
    /// uploaded once more when the current upload ends). A std mutex held for map updates only.
    keys: Mutex<HashMap<ObjectId, bool>>,
    queued: AtomicU64,
    coalesced: AtomicU64,
    uploaded: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_evicted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    /// Queued and not yet finished (the channel does not say its length).
    pending: AtomicU64,
}

impl UploadCounters {
    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, bool>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A local tier in front of a shared one.
pub struct Tiered {
    local: Arc<dyn Store>,
    shared: Arc<dyn Store>,
    /// Names of objects to copy to the shared tier.
    queue: mpsc::Sender<ObjectId>,
    counters: Arc<UploadCounters>,
    /// Aborted on drop, so a stopped server does not keep uploading.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tiered {
    fn drop(&mut self) {
        let pending = self.counters.pending.load(Ordering::Relaxed);
        if pending > 0 {
            tracing::warn!(
                objects = pending,
                "stopping with uploads to the shared tier not done: those objects stay in the local tier only"
            );
        }
        for w in &self.workers {
            w.abort();
        }
    }
}

impl Tiered {
    /// Combines the tiers and starts the upload workers (needs a Tokio runtime); their buffers
    /// are taken from `budget`.
    pub fn new(
        local: Arc<dyn Store>,
        shared: Arc<dyn Store>,
        budget: &Arc<UploadBudget>,
    ) -> Tiered {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let counters = Arc::new(UploadCounters::default());
        let workers = (0..UPLOAD_WORKERS)
            .map(|_| {
                tokio::spawn(upload_worker(
                    rx.clone(),
                    local.clone(),
                    shared.clone(),
                    counters.clone(),
                    budget.clone(),
                ))
            })
            .collect();
        Tiered {
            local,
            shared,
            queue: tx,
            counters,
            workers,
        }
    }

    /// Copies a shared-tier hit into the local tier while it is sent on.
    async fn fill_local(&self, id: &ObjectId, object: Object) -> Object {
        let upload = match self.local.put(id).await {
            Ok(u) => u,
            Err(err) => {
                tracing::warn!(cause = %crate::cause::chain(&err), "failed to copy a shared hit into the local tier");
                return object;
            }
        };
        match object.body {
            ObjectBody::Full(bytes) => {
                let mut upload = upload;
                let result = async {
                    upload.write(bytes.clone()).await?;
                    upload.commit().await
                }
                .await;
                if let Err(err) = result {
                    tracing::warn!(cause = %crate::cause::chain(&err), "failed to copy a shared hit into the local tier");
                }
                Object {
                    meta: object.meta,
                    body: ObjectBody::Full(bytes),
                }
            }
            ObjectBody::Stream(stream) => Object {
                meta: object.meta,
                body: ObjectBody::Stream(tee(stream, upload)),
            },
        }
    }
}

/// Forwards a stream while writing each chunk into `upload`, committed only if the whole
/// stream arrived. The copy goes on if the client goes away (the bytes are on their way).
fn tee(
    mut stream: futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
    mut upload: Box<dyn Upload>,
) -> futures_util::stream::BoxStream<'static, std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let mut complete = true;
        let mut upload_ok = true;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => {
                    if upload_ok {
                        if let Err(err) = upload.write(chunk.clone()).await {
                            tracing::warn!(cause = %crate::cause::chain(&err), "failed to copy a shared hit into the local tier");
                            upload_ok = false;
                        }
                    }
                    let _ = tx.send(Ok(chunk)).await;
                }
                Err(err) => {
                    complete = false;
                    let _ = tx.send(Err(err)).await;
                    break;
                }
            }
        }
        if complete && upload_ok {
            if let Err(err) = upload.commit().await {
                tracing::warn!(cause = %crate::cause::chain(&err), "failed to copy a shared hit into the local tier");
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

async fn upload_worker(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<ObjectId>>>,
    local: Arc<dyn Store>,
    shared: Arc<dyn Store>,
    counters: Arc<UploadCounters>,
    budget: Arc<UploadBudget>,
) {
    loop {
        let next = rx.lock().await.recv().await;
        let Some(id) = next else { return };
        loop {
            let outcome = upload_one(&id, local.as_ref(), shared.as_ref(), &budget).await;
            record(&counters, &id, outcome);
            let mut keys = counters.keys();
            match keys.get_mut(&id) {
                Some(again) if *again => *again = false,
                _ => {
                    keys.remove(&id);
                    break;
                }
            }
        }
        counters.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts and logs how an upload ended.
fn record(counters: &UploadCounters, id: &ObjectId, outcome: UploadOutcome) {
    match outcome {
        UploadOutcome::Uploaded => {
            counters.uploaded.fetch_add(1, Ordering::Relaxed);
        }
        UploadOutcome::Evicted => {
            counters.dropped_evicted.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(namespace = %id.namespace, key = %id.key,
                "object left the local tier before its upload to the shared tier: not uploaded");
        }
        UploadOutcome::Refused(err) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(namespace = %id.namespace, key = %id.key, cause = %crate::cause::chain(&err),
                "the shared tier refused the object: it stays in the local tier only");
        }
        UploadOutcome::Failed(err) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(namespace = %id.namespace, key = %id.key, attempts = UPLOAD_ATTEMPTS,
                cause = %crate::cause::chain(&err),
                "failed to upload to the shared tier: the object stays in the local tier only");
        }
    }
}

enum UploadOutcome {
    Uploaded,
    Evicted,
    Refused(StoreError),
    Failed(StoreError),
}

/// The back-off between tries of an upload: 0.5 s, 2 s, 8 s, which outlasts the shared tier's
/// breaker (at most [`super::tier::MAX_BACKOFF`]), so a retry after a failure reaches the
/// backend rather than the open breaker.
const RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(500))
    .with_factor(4.0)
    .with_max_times(UPLOAD_ATTEMPTS as usize - 1);

/// Copies one object, with [`UPLOAD_ATTEMPTS`] tries spaced by [`RETRY`] (`backon`); an object
/// the shared tier refuses for its size is not retried.
async fn upload_one(
    id: &ObjectId,
    local: &dyn Store,
    shared: &dyn Store,
    budget: &Arc<UploadBudget>,
) -> UploadOutcome {
    let mut attempt = 0;
    let result = (|| {
        attempt += 1;
        copy_once(id, local, shared, budget, attempt)
    })
    .retry(RETRY)
    .sleep(tokio::time::sleep)
    .when(|err| !matches!(err, StoreError::TooLarge { .. }))
    .notify(|err, after| {
        tracing::debug!(?after, cause = %crate::cause::chain(err), "upload to the shared tier failed; will retry");
    })
    .await;
    match result {
        Ok(true) => UploadOutcome::Uploaded,
        Ok(false) => UploadOutcome::Evicted,
        Err(err @ StoreError::TooLarge { .. }) => UploadOutcome::Refused(err),
        Err(err) => UploadOutcome::Failed(err),
    }
}

/// One try of an upload: false if the object left the local tier before it. Its buffers are
/// counted in `budget` (see the module docs), checked after every chunk like a client upload's.
async fn copy_once(
    id: &ObjectId,
    local: &dyn Store,
    shared: &dyn Store,
    budget: &Arc<UploadBudget>,
    attempt: u32,
) -> Result<bool, StoreError> {
    let mut held = budget.share();
    let over = |size: u64| StoreError::TooLarge {
        backend: "--upload-memory",
        limit: budget.total(),
        size,
    };
    held.grow_to(LOCAL_READ.min(budget.total()), None)
        .await
        .map_err(|_| over(LOCAL_READ))?;
    let Some(object) = local.get(id).await? else {
        return Ok(false);
    };
    let size = object.meta.size;
    let mut upload = shared.put(id).await?;
    match object.body {
        ObjectBody::Full(bytes) => {
            let read = bytes.len() as u64;
            held.grow_to(read, None).await.map_err(|_| over(size))?;
            upload.write(bytes).await?;
            held.grow_to(read + upload.buffered(), None)
                .await
                .map_err(|_| over(size))?;
        }
        ObjectBody::Stream(mut s) => {
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|source| StoreError::Io {
                    op: "read for upload",
                    path: std::path::PathBuf::from(format!("{}/{}", id.namespace, id.key)),
                    source,
                })?;
                upload.write(chunk).await?;
                held.grow_to(LOCAL_READ + upload.buffered(), None)
                    .await
                    .map_err(|_| over(size))?;
            }
        }
    }
    upload.commit().await?;
    drop(held);
    tracing::debug!(namespace = %id.namespace, key = %id.key, size, attempt, "uploaded to the shared tier");
    Ok(true)
}

/// Queues an object's name for upload (or marks an object already queued or uploading to be
/// uploaded once more); a full queue is counted and logged.
fn enqueue(queue: &mpsc::Sender<ObjectId>, counters: &UploadCounters, id: ObjectId) {
    let mut keys = counters.keys();
    counters.queued.fetch_add(1, Ordering::Relaxed);
    if let Some(again) = keys.get_mut(&id) {
        *again = true;
        counters.coalesced.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match queue.try_send(id.clone()) {
        Ok(()) => {
            keys.insert(id, false);
            counters.pending.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => {
            counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            let id = err.into_inner();
            tracing::warn!(
                namespace = %id.namespace,
                key = %id.key,
                capacity = QUEUE_CAPACITY,
                "upload queue to the shared tier is full: this object stays in the local tier only"
            );
        }
    }
}

/// An upload into the local tier that queues the object for the shared tier on commit.
struct TieredUpload {
    local: Box<dyn Upload>,
    queue: mpsc::Sender<ObjectId>,
    counters: Arc<UploadCounters>,
    id: ObjectId,
}

impl Upload for TieredUpload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        self.local.write(chunk)
    }

    fn buffered(&self) -> u64 {
        self.local.buffered()
    }

    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async move {
            let TieredUpload {
                local,
                queue,
                counters,
                id,
            } = *self;
            local.commit().await?;
            enqueue(&queue, &counters, id);
            Ok(())
        })
    }
}

impl Store for Tiered {
    fn head(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<ObjectMeta>, StoreError>> {
        let id = id.clone();
        Box::pin(async move {
            if let Some(meta) = self.local.head(&id).await? {
                return Ok(Some(meta));
            }
            // A shared tier that fails is a miss (counted and logged by its Tier wrapper).
            Ok(self.shared.head(&id).await.unwrap_or(None))
        })
    }

    fn get(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<Object>, StoreError>> {
        let id = id.clone();
        Box::pin(async move {
            if let Some(object) = self.local.get(&id).await? {
                return Ok(Some(object));
            }
            match self.shared.get(&id).await {
                Ok(Some(object)) => Ok(Some(self.fill_local(&id, object).await)),
                Ok(None) | Err(_) => Ok(None),
            }
        })
    }

    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let id = id.clone();
        Box::pin(async move {
            let local = self.local.put(&id).await?;
            Ok(Box::new(TieredUpload {
                local,
                queue: self.queue.clone(),
                counters: self.counters.clone(),
                id,
            }) as Box<dyn Upload>)
        })
    }

    fn delete(&self, id: &ObjectId) -> BoxFuture<'_, Result<bool, StoreError>> {
        let id = id.clone();
        Box::pin(async move {
            let local = self.local.delete(&id).await?;
            let shared = self.shared.delete(&id).await?;
            Ok(local || shared)
        })
    }

    fn purge_namespace(&self, namespace: &str) -> BoxFuture<'_, Result<u64, StoreError>> {
        let ns = namespace.to_string();
        Box::pin(async move {
            let local = self.local.purge_namespace(&ns).await?;
            let shared = self.shared.purge_namespace(&ns).await?;
            Ok(local + shared)
        })
    }

    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.local.check_writable()
    }

    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let local = self.local.prune(older_than).await?;
            let shared = self.shared.prune(older_than).await?;
            Ok(local + shared)
        })
    }

    fn max_upload(&self) -> Option<(&'static str, u64)> {
        // Uploads go to the local tier; the shared one refuses what it cannot take later.
        self.local.max_upload()
    }

    fn usage(&self) -> Usage {
        self.local.usage()
    }

    fn report(&self) -> StoreReport {
        let mut report = self.local.report();
        report.tiers.extend(self.shared.report().tiers);
        let c = &self.counters;
        report.uploads = Some(UploadStats {
            queued: c.queued.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            uploaded: c.uploaded.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_evicted: c.dropped_evicted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
        });
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::DiskStore;
    use crate::storage::tier::Tier;

    fn id(key: &str) -> ObjectId {
        ObjectId {
            namespace: "ns".into(),
            key: key.into(),
        }
    }

    async fn put(store: &dyn Store, key: &str, data: &[u8]) {
        let mut up = store.put(&id(key)).await.expect("put");
        up.write(Bytes::copy_from_slice(data)).await.expect("write");
        up.commit().await.expect("commit");
    }

    async fn read(store: &dyn Store, key: &str) -> Option<Vec<u8>> {
        let object = store.get(&id(key)).await.expect("get")?;
        Some(object.body.into_vec().await.expect("body"))
    }

    async fn settled(t: &Tiered) -> UploadStats {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let u = t.report().uploads.expect("a chain reports uploads");
            if u.pending == 0 {
                return u;
            }
            assert!(std::time::Instant::now() < deadline, "uploads never ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Writes reach the shared tier, the last version of an object written many times wins,
    /// and a shared hit (large, streamed) is teed into the local tier of another server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_version_reaches_the_shared_tier_and_hits_fill_the_local_tier() {
        let shared: Arc<dyn Store> = Arc::new(Tier::shared(
            Arc::new(DiskStore::open(None, 1 << 30).expect("open")),
            "dir",
        ));
        let local = || -> Arc<dyn Store> {
            Arc::new(Tier::local(
                Arc::new(DiskStore::open(None, 1 << 30).expect("open")),
                "dir",
            ))
        };
        let budget = UploadBudget::new(64 << 20);
        let a = Tiered::new(local(), shared.clone(), &budget);
        for v in 0..50u8 {
            put(&a, "m", &[v; 100]).await;
        }
        let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
        put(&a, "big", &big).await;
        let u = settled(&a).await;
        assert_eq!(u.queued, 51);
        // Each write was uploaded, or merged into a later upload of the same object.
        assert!(
            u.uploaded >= u.queued - u.coalesced && u.uploaded <= u.queued,
            "{u:?}"
        );
        assert_eq!(u.failed + u.dropped_evicted + u.dropped_queue_full, 0);
        assert_eq!(read(shared.as_ref(), "m").await, Some(vec![49; 100]));

        let b = Tiered::new(local(), shared.clone(), &budget);
        assert_eq!(read(&b, "big").await.as_deref(), Some(&big[..]));
        let reports = b.report().tiers;
        // The shared tier also answered the read of "m" above.
        assert_eq!((reports[0].misses, reports[1].hits), (1, 2));
        // The copy into b's local tier finishes in the background.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while b.local.head(&id("big")).await.expect("head").is_none() {
            assert!(std::time::Instant::now() < deadline, "never filled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            read(b.local.as_ref(), "big").await.as_deref(),
            Some(&big[..])
        );
    }
}
