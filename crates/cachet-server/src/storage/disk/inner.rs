//! The disk store's shared state ([`Inner`]) and the file work every part of the store uses
//! (`disk.rs`, `scan`, `upload`): a leaf below them, so that none of them imports another's
//! parent and the store's modules form no import cycle.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cachet_core::Digest;

use super::index::{now_millis, Index, Reservation, Slot};
use crate::storage::{ObjectId, StoreError};

/// Content of the `VERSION` file.
pub(super) const VERSION: &str = "cachet-disk-store 1";
/// When the disk is full, an upload evicts what its pending write needs plus this much (within
/// the bound of `room`: when other files fill the disk, evicting more would only empty the
/// cache).
pub(super) const NO_SPACE_SLACK: u64 = 1 << 20;

pub(super) struct Inner {
    /// The storage root; kept for messages.
    pub(super) root: PathBuf,
    /// `root/objects-v1`.
    pub(super) objects: PathBuf,
    /// `root/tmp`: uploads in progress.
    pub(super) tmp: PathBuf,
    /// `root/trash`: directories waiting to be deleted in the background.
    pub(super) trash: PathBuf,
    /// Size and last use of every known object, and reservations. A std mutex: it is held for
    /// map updates and renames (a commit's, evicted objects' into the trash), never for a
    /// deletion and never across an await.
    pub(super) index: Mutex<Index>,
    /// Evict least recently used objects past this many bytes.
    pub(super) max_size: u64,
    /// Objects evicted for size, reported by `usage`.
    pub(super) evictions: AtomicU64,
    /// Objects pruned for age, reported by `usage`.
    pub(super) pruned: AtomicU64,
    /// Set when the start-up scan has finished.
    pub(super) index_ready: AtomicBool,
    /// Tells the scan thread to stop early when the store is dropped.
    pub(super) stop: Arc<AtomicBool>,
    /// Makes temporary file names unique within this process.
    pub(super) tmp_counter: AtomicU64,
    /// Set when a write found the disk full and evicting did not help (other files fill it):
    /// uploads then fail fast without evicting, and `/readyz` says so, until a write succeeds
    /// or the disk has room again.
    pub(super) disk_full: AtomicBool,
    /// Bytes of the objects committed since the store opened: what the store made of the
    /// space it freed (see `room`; an upload that fails spends nothing, so one larger than the
    /// disk does not empty the cache chasing space).
    pub(super) committed_bytes: AtomicU64,
    /// The open `LOCK` file: a running server holds a shared lock on it, `cachet server prune`
    /// an exclusive one (see [`lock_store`]); released when the store is dropped.
    pub(super) _lock: fs::File,
    /// Owns the directory of an `ephemeral` store: dropping it removes everything.
    pub(super) _ephemeral: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Deletes files already moved out of the store (evicted or pruned objects).
pub(super) fn delete_files(paths: &[PathBuf]) {
    for path in paths {
        if let Err(err) = fs::remove_file(path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), cause = %err, "failed to delete");
            }
        }
    }
}

/// True for "no space left on device" and "disk quota exceeded".
pub(super) fn is_no_space(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Like [`io_err`], but a full disk becomes [`StoreError::Full`].
pub(super) fn store_err<'a>(
    inner: &'a Inner,
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| {
        if is_no_space(&source) {
            inner.disk_full_error()
        } else {
            io_err(op, path)(source)
        }
    }
}

/// Locks the store in `root` through its `LOCK` file: shared for a server (several servers on
/// one directory stay possible, as before), exclusive and without waiting for `cachet server
/// prune`, which is refused with [`StoreError::InUse`] while a server runs: it would delete
/// files that the server's index still counts. The lock is the kernel's (`flock`), so a
/// killed server never leaves it behind.
pub(super) fn lock_store(root: &Path, server: bool) -> Result<fs::File, StoreError> {
    use rustix::fs::{flock, FlockOperation};
    let path = root.join("LOCK");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    let op = if server {
        FlockOperation::LockShared
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    match flock(&file, op) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::InUse {
            path: root.to_path_buf(),
        }),
        Err(err) => Err(io_err("lock", &path)(err.into())),
    }
}

/// Bytes free for unprivileged writers on the file system holding `path`.
pub(super) fn available_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Inner {
    pub(super) fn lock_index(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves a consistent-enough index for a cache.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn hash(id: &ObjectId) -> [u8; 32] {
        Digest::of(id.key.as_bytes()).0
    }

    pub(super) fn path_of(&self, ns: &str, hash: &[u8; 32]) -> PathBuf {
        let hex = Digest(*hash).to_hex();
        // One allocation per GET, not one per `join`.
        let mut path = PathBuf::with_capacity(self.objects.as_os_str().len() + ns.len() + 70);
        path.push(&self.objects);
        path.push(ns);
        path.push(&hex[..2]);
        path.push(&hex);
        path
    }

    pub(super) fn path(&self, id: &ObjectId) -> PathBuf {
        self.path_of(&id.namespace, &Self::hash(id))
    }

    pub(super) fn slot(&self, idx: &mut Index, id: &ObjectId) -> Slot {
        Slot {
            ns: idx.intern(&id.namespace),
            hash: Self::hash(id),
        }
    }

    /// Indexes the object `ns`/`hash` if the index does not know it and its file is there now
    /// (with the file's size now); `idx` is the locked index. For whoever saw the file before
    /// taking the lock (the start-up scan, a read): since then it may have been evicted,
    /// pruned or deleted (all move the file under this lock), and indexing it again would
    /// count an object that is gone, for good (the soak test's count mismatch). A file
    /// committed meanwhile is already indexed.
    pub(super) fn index_if_present(&self, idx: &mut Index, ns: &str, hash: [u8; 32], millis: u64) {
        let ns = idx.intern(ns);
        let slot = Slot { ns, hash };
        if idx.map.contains_key(&slot) {
            return;
        }
        if let Ok(meta) = fs::symlink_metadata(self.path_of(&slot.ns, &hash)) {
            idx.upsert(slot, meta.len(), millis);
        }
    }

    /// Marks the object `id`, just opened for a read, used now; indexes it if the index does
    /// not know it yet (the scan has not reached it) and it is still there.
    pub(super) fn note_read(&self, id: &ObjectId) {
        let now = now_millis();
        let mut idx = self.lock_index();
        let slot = self.slot(&mut idx, id);
        if !idx.touch(&slot, now) {
            self.index_if_present(&mut idx, &id.namespace, slot.hash, now);
        }
    }

    /// [`Inner::note_read`] from an async worker: at once if the index lock is free, else on a
    /// blocking thread, so a GET never waits for an eviction's renames under the lock.
    pub(super) fn note_read_soon(self: &Arc<Self>, id: ObjectId) {
        let now = now_millis();
        match self.index.try_lock() {
            Ok(mut idx) => {
                let slot = self.slot(&mut idx, &id);
                if !idx.touch(&slot, now) {
                    // Not indexed yet (the start-up scan has not reached it): a stat of the
                    // file just opened, answered from the inode cache.
                    self.index_if_present(&mut idx, &id.namespace, slot.hash, now);
                }
            }
            Err(_) => {
                let inner = self.clone();
                tokio::task::spawn_blocking(move || inner.note_read(&id));
            }
        }
    }

    /// Moves the files of objects just removed from the index into the trash. Called with the
    /// lock held, so no commit can land between choosing a victim and moving its file (a
    /// rename, cheap next to deleting a large file); the caller deletes the returned paths
    /// after releasing the lock, so reads never wait for that.
    pub(super) fn retire(&self, victims: &[Slot]) -> Vec<PathBuf> {
        let mut retired = Vec::with_capacity(victims.len());
        for slot in victims {
            let path = self.path_of(&slot.ns, &slot.hash);
            let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
            let dest = self
                .trash
                .join(format!("retired-{}-{n}", std::process::id()));
            match fs::rename(&path, &dest) {
                Ok(()) => retired.push(dest),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), cause = %err, "failed to evict")
                }
            }
        }
        retired
    }

    /// Evicts least recently used objects until the store fits `--max-size`; returns the
    /// files to delete once the lock is released.
    pub(super) fn evict_over_limit(&self, idx: &mut Index) -> Vec<PathBuf> {
        let victims = idx.evict_over(self.max_size);
        self.evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        self.retire(&victims)
    }

    /// Reserves `n` bytes of `--max-size` for an upload, evicting as needed.
    pub(super) fn reserve(&self, n: u64) -> Result<(), StoreError> {
        let mut idx = self.lock_index();
        let victims = match idx.reserve(n, self.max_size) {
            Reservation::Granted(victims) => victims,
            Reservation::Refused => {
                return Err(StoreError::Full {
                    path: self.root.clone(),
                    reason: "uploads in progress already reserve the whole size limit; retry later",
                })
            }
        };
        self.evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        let retired = self.retire(&victims);
        drop(idx);
        delete_files(&retired);
        Ok(())
    }

    /// Gives back `n` reserved bytes.
    pub(super) fn release(&self, n: u64) {
        if n > 0 {
            self.lock_index().release(n);
        }
    }

    /// The error for a write that found no space, marking the store full.
    pub(super) fn disk_full_error(&self) -> StoreError {
        if !self.disk_full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                root = %self.root.display(),
                "the disk holding the store is full and evicting did not free enough: uploads \
                 get 507 until there is room (reads still work)"
            );
        }
        StoreError::Full {
            path: self.root.clone(),
            reason: "the disk holding the store is full",
        }
    }

    pub(super) fn tmp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.tmp
            .join(format!("{}-{n}-{}", std::process::id(), now_millis()))
    }
}
