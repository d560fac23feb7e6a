//! The disk store: one file per object, an in-memory LRU index, atomic writes. The index is
//! in `index`, the store's shared state and file work in `inner` (a leaf the others use), the
//! start-up scan in `scan`, uploads in `upload`, streamed reads in `read`; this file holds
//! the store itself.
//!
//! Layout under the storage root (versioned, so a future layout never misreads this one):
//!
//! ```text
//! VERSION                      "cachet-disk-store 1"
//! LOCK                         locked shared by running servers, exclusively by `server prune`
//! objects-v1/<ns>/<hh>/<hash>  one object; <hash> = blake3(key) in hex, <hh> its first 2 chars
//! tmp/                         uploads in progress, renamed into objects-v1 on commit
//! trash/                       purged namespaces, stale uploads, evicted objects being deleted
//! ```
//!
//! Why this shape:
//! - The key never becomes a path: it is hashed, so no key can name a file outside the store,
//!   and namespaces (validated, one directory each) can be purged with one `rename`.
//! - Uploads stream into `tmp/` and are renamed into place: a server killed mid-upload leaves
//!   only a temporary file (moved to the trash at the next start), never a partial object.
//! - The index (size and last use per object, in LRU order) lives in memory and is rebuilt by
//!   a background scan at start-up, so a store with a million objects serves at once: a read
//!   goes to the file system, not the index. Until the scan ends, eviction only sees objects
//!   the index already knows. Last use is not written back to disk; after a restart the order
//!   comes from the files' modification times.
//! - The index (`index::Index`) is pure data with reservations: an upload reserves its bytes
//!   before writing them, so `--max-size` holds with concurrent writers. Its lock is held for
//!   map updates and renames, never for deleting: victims are renamed into `trash/` under the
//!   lock (a commit landing meanwhile cannot lose its file to a late delete) and deleted after.
//! - The index counts exactly the files in `objects-v1/`: whatever learns of a file outside the
//!   lock (the start-up scan, a read of an object not indexed yet) looks at it again under the
//!   lock before indexing it (`Inner::index_if_present`), since it may have been evicted in
//!   between. What a killed server leaves behind and what the scan makes of it: `scan`.
//! - A full disk is an operating condition: a write that finds no space evicts what it needs
//!   and retries, as long as the store itself uses the space it frees; once others take it
//!   (`room`: half of what the store held when the disk filled), or evicting frees nothing, the
//!   store is marked full (uploads get [`StoreError::Full`], a 507, without evicting more)
//!   until a write succeeds or the disk has room again, so a foreign writer that keeps filling
//!   the disk does not empty the cache.
//! - Data is not fsynced: a killed process loses nothing (the page cache survives it); a power
//!   loss may lose recent objects, which a cache can afford.

mod index;
mod inner;
mod read;
mod room;
mod scan;
#[cfg(test)]
mod tests;
mod upload;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use self::index::{now_millis, Index, Slot};
use self::inner::{available_space, delete_files, io_err, lock_store, store_err, Inner};
pub use self::upload::WRITE_BUFFER;
use self::upload::{DiskUpload, TmpFile};
use super::{
    BoxFuture, Object, ObjectBody, ObjectId, ObjectMeta, Store, StoreError, Upload, Usage,
};

/// Objects pruned per lock acquisition, so reads never wait long behind a prune.
const PRUNE_BATCH: usize = 1024;
/// A store marked full is ready again once the disk has this much free.
const READY_FREE_SPACE: u64 = 2 << 20;

/// A store of objects in a directory.
#[derive(Clone)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

impl DiskStore {
    /// Opens (creating if needed) a store in `root`, or in a new private temporary directory
    /// when `root` is `None`. Starts the background scan of existing objects.
    pub fn open(root: Option<&Path>, max_size: u64) -> Result<DiskStore, StoreError> {
        Self::open_with(root, max_size, true)
    }

    /// [`DiskStore::open`], or with `server` false for `cachet server prune`: then `tmp/` is
    /// left alone, and the store is locked exclusively, refused with [`StoreError::InUse`]
    /// while a server runs on it (see `inner::lock_store`).
    pub fn open_with(
        root: Option<&Path>,
        max_size: u64,
        server: bool,
    ) -> Result<DiskStore, StoreError> {
        let (root, ephemeral) = match root {
            Some(r) => (r.to_path_buf(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("cachet-server-")
                    .tempdir()
                    .map_err(io_err(
                        "create a temporary directory in",
                        &std::env::temp_dir(),
                    ))?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        fs::create_dir_all(&root).map_err(io_err("create", &root))?;
        scan::check_version(&root)?;
        let lock = lock_store(&root, server)?;
        let objects = root.join("objects-v1");
        let tmp = root.join("tmp");
        let trash = root.join("trash");
        fs::create_dir_all(&objects).map_err(io_err("create", &objects))?;
        fs::create_dir_all(&trash).map_err(io_err("create", &trash))?;
        // Uploads interrupted by a crash: never objects, set aside for deletion.
        if server && tmp.exists() {
            let dest = trash.join(format!("tmp-{}-{}", std::process::id(), now_millis()));
            fs::rename(&tmp, &dest).map_err(io_err("move stale uploads from", &tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        scan::empty_trash_in_background(trash.clone());

        let inner = Arc::new(Inner {
            root,
            objects,
            tmp,
            trash,
            index: Mutex::new(Index::default()),
            max_size,
            evictions: AtomicU64::new(0),
            pruned: AtomicU64::new(0),
            index_ready: AtomicBool::new(false),
            stop: Arc::new(AtomicBool::new(false)),
            tmp_counter: AtomicU64::new(0),
            disk_full: AtomicBool::new(false),
            committed_bytes: AtomicU64::new(0),
            _lock: lock,
            _ephemeral: ephemeral,
        });
        let weak = Arc::downgrade(&inner);
        let stop = inner.stop.clone();
        let objects = inner.objects.clone();
        std::thread::Builder::new()
            .name("cachet-index-scan".into())
            .spawn(move || scan::scan(&objects, &weak, &stop))
            .map_err(io_err("start the index scan of", &inner.root))?;
        Ok(DiskStore { inner })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

impl Store for DiskStore {
    fn head(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<ObjectMeta>, StoreError>> {
        let path = self.inner.path(id);
        Box::pin(async move {
            match tokio::fs::metadata(&path).await {
                Ok(m) => Ok(Some(ObjectMeta {
                    size: m.len(),
                    modified: m.modified().unwrap_or(UNIX_EPOCH),
                })),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(io_err("stat", &path)(err)),
            }
        })
    }

    fn get(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<Object>, StoreError>> {
        let inner = self.inner.clone();
        let id = id.clone();
        Box::pin(async move {
            let (meta, body) = match read::open(inner.path(&id)).await? {
                read::Opened::Missing => return Ok(None),
                read::Opened::Whole(meta, bytes) => (meta, ObjectBody::Full(bytes)),
                read::Opened::Large(meta, file) => {
                    (meta, ObjectBody::Stream(read::chunks(file, meta.size)))
                }
            };
            inner.note_read_soon(id);
            Ok(Some(Object { meta, body }))
        })
    }

    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let upload = DiskUpload {
            inner: self.inner.clone(),
            id: id.clone(),
            tmp: Some(TmpFile::new(self.inner.clone())),
            buf: Vec::new(),
        };
        Box::pin(async move { Ok(Box::new(upload) as Box<dyn Upload>) })
    }
    fn delete(&self, id: &ObjectId) -> BoxFuture<'_, Result<bool, StoreError>> {
        let inner = self.inner.clone();
        let id = id.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let path = inner.path(&id);
                let mut idx = inner.lock_index();
                let slot = inner.slot(&mut idx, &id);
                idx.remove(&slot);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(true),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(err) => Err(io_err("remove", &path)(err)),
                }
            })
            .await?
        })
    }

    fn purge_namespace(&self, namespace: &str) -> BoxFuture<'_, Result<u64, StoreError>> {
        let inner = self.inner.clone();
        let ns = namespace.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let dir = inner.objects.join(&ns);
                let mut idx = inner.lock_index();
                let doomed: Vec<Slot> = idx.map.keys().filter(|s| *s.ns == *ns).cloned().collect();
                for slot in &doomed {
                    idx.remove(slot);
                }
                let dest = inner
                    .trash
                    .join(format!("{ns}-{}-{}", now_millis(), idx.seq));
                match fs::rename(&dir, &dest) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(io_err("move to the trash", &dir)(err)),
                }
                drop(idx);
                scan::empty_trash_in_background(inner.trash.clone());
                Ok(doomed.len() as u64)
            })
            .await?
        })
    }

    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let available = available_space(&inner.tmp).unwrap_or(0);
                let written = inner.committed_bytes.load(Ordering::Relaxed);
                inner
                    .lock_index()
                    .room
                    .seen_free(available, written, READY_FREE_SPACE);
                if inner.disk_full.load(Ordering::Relaxed) {
                    if available < READY_FREE_SPACE {
                        return Err(StoreError::Full {
                            path: inner.root.clone(),
                            reason: "the disk holding the store is full",
                        });
                    }
                    inner.disk_full.store(false, Ordering::Relaxed);
                }
                // Create (writing nothing) and remove: a probe leaves no file behind, even
                // when the disk is full.
                let path = inner.tmp_path();
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(store_err(&inner, "create", &path))?;
                fs::remove_file(&path).map_err(io_err("remove", &path))
            })
            .await?
        })
    }

    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let cutoff = now_millis().saturating_sub(older_than.as_millis() as u64);
                let mut n = 0;
                loop {
                    // A batch at a time: the lock is held for index updates and renames only,
                    // and the files are deleted after it is released.
                    let retired = {
                        let mut idx = inner.lock_index();
                        let victims = idx.take_older_than(cutoff, PRUNE_BATCH);
                        if victims.is_empty() {
                            break;
                        }
                        n += victims.len() as u64;
                        inner.retire(&victims)
                    };
                    delete_files(&retired);
                }
                inner.pruned.fetch_add(n, Ordering::Relaxed);
                Ok(n)
            })
            .await?
        })
    }

    fn usage(&self) -> Usage {
        let (stored_bytes, objects, evicted_bytes, evicted_age_ms) = {
            let idx = self.inner.lock_index();
            (
                idx.total,
                idx.map.len() as u64,
                idx.evicted_bytes,
                idx.evicted_age_ms,
            )
        };
        Usage {
            stored_bytes,
            objects,
            max_size: self.inner.max_size,
            evictions: self.inner.evictions.load(Ordering::Relaxed),
            evicted_bytes,
            evicted_age_ms,
            pruned: self.inner.pruned.load(Ordering::Relaxed),
            index_ready: self.inner.index_ready.load(Ordering::Acquire),
        }
    }
}
