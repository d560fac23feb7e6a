//! The disk store: one file per object, an in-memory LRU index, atomic writes.
//!
//! Layout under the storage root (versioned, so a future layout never misreads this one):
//!
//! ```text
//! VERSION                      "cachet-disk-store 1"
//! objects-v1/<ns>/<hh>/<hash>  one object; <hash> = blake3(key) in hex, <hh> its first 2 chars
//! tmp/                         uploads in progress, renamed into objects-v1 on commit
//! trash/                       purged namespaces and stale uploads, deleted in the background
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
//! - Data is not fsynced: a killed process loses nothing (the page cache survives it); a power
//!   loss may lose recent objects, which a cache can afford.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cachet_core::Digest;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use super::{
    BoxFuture, Object, ObjectBody, ObjectId, ObjectMeta, Store, StoreError, Upload, Usage,
};

/// Content of the `VERSION` file.
const VERSION: &str = "cachet-disk-store 1";
/// Objects up to this size are read in one system call and sent as one chunk.
const FULL_READ_LIMIT: u64 = 1 << 20;
/// Chunk size when streaming larger objects.
const STREAM_CHUNK: usize = 256 << 10;
/// Uploads are buffered up to this size between writes to the temporary file.
const WRITE_BUFFER: usize = 1 << 20;
/// Index entries inserted per lock acquisition during the start-up scan.
const SCAN_BATCH: usize = 1024;

/// A store of objects in a directory.
#[derive(Clone)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The storage root; kept for messages.
    root: PathBuf,
    /// `root/objects-v1`.
    objects: PathBuf,
    /// `root/tmp`: uploads in progress.
    tmp: PathBuf,
    /// `root/trash`: directories waiting to be deleted in the background.
    trash: PathBuf,
    /// Size and last use of every known object. A std mutex: it is held only for map updates
    /// and, on commit, for the rename and any evictions, never across an await.
    index: Mutex<Index>,
    /// Evict least recently used objects past this many bytes.
    max_size: u64,
    /// Objects evicted for size, reported by `usage`.
    evictions: AtomicU64,
    /// Objects pruned for age, reported by `usage`.
    pruned: AtomicU64,
    /// Set when the start-up scan has finished.
    index_ready: AtomicBool,
    /// Tells the scan thread to stop early when the store is dropped.
    stop: Arc<AtomicBool>,
    /// Makes temporary file names unique within this process.
    tmp_counter: AtomicU64,
    /// Owns the directory of an `ephemeral` store: dropping it removes everything.
    _ephemeral: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An object's place in the index: its namespace (interned) and the digest of its key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Slot {
    ns: Arc<str>,
    hash: [u8; 32],
}

/// Orders entries by last use: (milliseconds since the epoch, tie-breaking sequence number).
type Stamp = (u64, u64);

#[derive(Clone, Copy)]
struct Meta {
    size: u64,
    stamp: Stamp,
}

#[derive(Default)]
struct Index {
    map: HashMap<Slot, Meta>,
    lru: BTreeMap<Stamp, Slot>,
    names: HashSet<Arc<str>>,
    seq: u64,
    total: u64,
}

impl Index {
    fn intern(&mut self, ns: &str) -> Arc<str> {
        if let Some(n) = self.names.get(ns) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(ns);
        self.names.insert(n.clone());
        n
    }

    fn stamp(&mut self, millis: u64) -> Stamp {
        self.seq += 1;
        (millis, self.seq)
    }

    fn upsert(&mut self, slot: Slot, size: u64, millis: u64) {
        self.remove(&slot);
        let stamp = self.stamp(millis);
        self.lru.insert(stamp, slot.clone());
        self.map.insert(slot, Meta { size, stamp });
        self.total += size;
    }

    fn insert_if_absent(&mut self, slot: Slot, size: u64, millis: u64) {
        if !self.map.contains_key(&slot) {
            self.upsert(slot, size, millis);
        }
    }

    fn touch(&mut self, slot: &Slot, millis: u64) {
        let stamp = self.stamp(millis);
        if let Some(meta) = self.map.get_mut(slot) {
            self.lru.remove(&meta.stamp);
            meta.stamp = stamp;
            self.lru.insert(stamp, slot.clone());
        }
    }

    fn remove(&mut self, slot: &Slot) -> Option<Meta> {
        let meta = self.map.remove(slot)?;
        self.lru.remove(&meta.stamp);
        self.total -= meta.size;
        Some(meta)
    }

    fn oldest(&self) -> Option<(Stamp, Slot)> {
        self.lru
            .first_key_value()
            .map(|(s, slot)| (*s, slot.clone()))
    }
}

fn now_millis() -> u64 {
    millis_of(SystemTime::now())
}

fn millis_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl DiskStore {
    /// Opens (creating if needed) a store in `root`, or in a new private temporary directory
    /// when `root` is `None`. Starts the background scan of existing objects.
    pub fn open(root: Option<&Path>, max_size: u64) -> Result<DiskStore, StoreError> {
        Self::open_with(root, max_size, true)
    }

    /// [`DiskStore::open`], optionally leaving `tmp/` alone: `cachet server prune` opens a
    /// store that a running server may be writing into, whose uploads in progress are not
    /// stale.
    pub fn open_with(
        root: Option<&Path>,
        max_size: u64,
        clean_uploads: bool,
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
        check_version(&root)?;
        let objects = root.join("objects-v1");
        let tmp = root.join("tmp");
        let trash = root.join("trash");
        fs::create_dir_all(&objects).map_err(io_err("create", &objects))?;
        fs::create_dir_all(&trash).map_err(io_err("create", &trash))?;
        // Uploads interrupted by a crash: never objects, set aside for deletion.
        if clean_uploads && tmp.exists() {
            let dest = trash.join(format!("tmp-{}", now_millis()));
            fs::rename(&tmp, &dest).map_err(io_err("move stale uploads from", &tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        empty_trash_in_background(trash.clone());

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
            _ephemeral: ephemeral,
        });
        let weak = Arc::downgrade(&inner);
        let stop = inner.stop.clone();
        let objects = inner.objects.clone();
        std::thread::Builder::new()
            .name("cachet-index-scan".into())
            .spawn(move || scan(&objects, &weak, &stop))
            .map_err(io_err("start the index scan of", &inner.root))?;
        Ok(DiskStore { inner })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

fn check_version(root: &Path) -> Result<(), StoreError> {
    let version_file = root.join("VERSION");
    match fs::read_to_string(&version_file) {
        Ok(v) if v.trim() == VERSION => Ok(()),
        Ok(v) => Err(StoreError::Io {
            op: "use the store (unsupported layout) at",
            path: root.to_path_buf(),
            source: std::io::Error::other(format!(
                "found {:?}, this server reads {VERSION:?}: use another directory",
                v.trim()
            )),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let empty = fs::read_dir(root)
                .map_err(io_err("list", root))?
                .next()
                .is_none();
            if !empty {
                return Err(StoreError::Io {
                    op: "use as a store the non-empty directory",
                    path: root.to_path_buf(),
                    source: std::io::Error::other(
                        "it has no VERSION file: point --storage at an empty or new directory",
                    ),
                });
            }
            fs::write(&version_file, format!("{VERSION}\n")).map_err(io_err("write", &version_file))
        }
        Err(err) => Err(io_err("read", &version_file)(err)),
    }
}

fn empty_trash_in_background(trash: PathBuf) {
    let _ = std::thread::Builder::new()
        .name("cachet-trash".into())
        .spawn(move || {
            if let Ok(entries) = fs::read_dir(&trash) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let result = if path.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    if let Err(err) = result {
                        tracing::warn!(path = %path.display(), cause = %err, "failed to empty the trash");
                    }
                }
            }
        });
}

/// Walks `objects-v1/<ns>/<hh>/<hash>` and feeds the index in batches.
fn scan(objects: &Path, inner: &std::sync::Weak<Inner>, stop: &AtomicBool) {
    let started = std::time::Instant::now();
    let mut batch: Vec<(String, [u8; 32], u64, u64)> = Vec::with_capacity(SCAN_BATCH);
    let flush = |batch: &mut Vec<(String, [u8; 32], u64, u64)>| -> bool {
        let Some(inner) = inner.upgrade() else {
            return false;
        };
        let mut idx = inner.lock_index();
        for (ns, hash, size, millis) in batch.drain(..) {
            let ns = idx.intern(&ns);
            idx.insert_if_absent(Slot { ns, hash }, size, millis);
        }
        true
    };
    let mut count = 0u64;
    for ns_entry in fs::read_dir(objects).into_iter().flatten().flatten() {
        let ns = ns_entry.file_name().to_string_lossy().into_owned();
        if !cachet_core::wire::is_valid_namespace(&ns) {
            continue;
        }
        for shard in fs::read_dir(ns_entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let name = file.file_name();
                let Some(digest) = name.to_str().and_then(|n| Digest::from_str(n).ok()) else {
                    continue;
                };
                let Ok(meta) = file.metadata() else { continue };
                let millis = meta.modified().map(millis_of).unwrap_or(0);
                batch.push((ns.clone(), digest.0, meta.len(), millis));
                count += 1;
                if batch.len() >= SCAN_BATCH && !flush(&mut batch) {
                    return;
                }
            }
        }
    }
    if !flush(&mut batch) {
        return;
    }
    if let Some(inner) = inner.upgrade() {
        {
            let mut idx = inner.lock_index();
            inner.evict_over_limit(&mut idx);
        }
        inner.index_ready.store(true, Ordering::Release);
        tracing::info!(
            objects = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "indexed existing objects"
        );
    }
}

impl Inner {
    fn lock_index(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves a consistent-enough index for a cache.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hash(id: &ObjectId) -> [u8; 32] {
        Digest::of(id.key.as_bytes()).0
    }

    fn path_of(&self, ns: &str, hash: &[u8; 32]) -> PathBuf {
        let hex = Digest(*hash).to_hex();
        self.objects.join(ns).join(&hex[..2]).join(hex)
    }

    fn path(&self, id: &ObjectId) -> PathBuf {
        self.path_of(&id.namespace, &Self::hash(id))
    }

    fn slot(&self, idx: &mut Index, id: &ObjectId) -> Slot {
        Slot {
            ns: idx.intern(&id.namespace),
            hash: Self::hash(id),
        }
    }

    /// Removes least recently used objects until the store fits. Called with the lock held so
    /// that no commit can land between choosing a victim and deleting its file.
    fn evict_over_limit(&self, idx: &mut Index) {
        while idx.total > self.max_size {
            let Some((_, slot)) = idx.oldest() else { break };
            idx.remove(&slot);
            let path = self.path_of(&slot.ns, &slot.hash);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), cause = %err, "failed to evict")
                }
            }
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.tmp
            .join(format!("{}-{n}-{}", std::process::id(), now_millis()))
    }
}

struct DiskUpload {
    inner: Arc<Inner>,
    id: ObjectId,
    tmp: PathBuf,
    /// Created on the first flush; small objects are written whole at commit.
    file: Option<fs::File>,
    buf: Vec<u8>,
    written: u64,
    committed: bool,
}

impl Drop for DiskUpload {
    fn drop(&mut self) {
        if !self.committed && (self.file.is_some() || self.written > 0) {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn write_chunk(file: &mut Option<fs::File>, tmp: &Path, buf: &[u8]) -> Result<(), StoreError> {
    if file.is_none() {
        *file = Some(fs::File::create(tmp).map_err(io_err("create", tmp))?);
    }
    if let Some(f) = file.as_mut() {
        f.write_all(buf).map_err(io_err("write", tmp))?;
    }
    Ok(())
}

impl DiskUpload {
    async fn flush(&mut self) -> Result<(), StoreError> {
        let mut file = self.file.take();
        let buf = std::mem::take(&mut self.buf);
        let tmp = self.tmp.clone();
        // Count the bytes as on their way to disk, so Drop knows to clean up.
        self.written += buf.len() as u64;
        let (file, mut buf, result) = tokio::task::spawn_blocking(move || {
            let r = write_chunk(&mut file, &tmp, &buf);
            (file, buf, r)
        })
        .await?;
        buf.clear();
        self.buf = buf;
        self.file = file;
        result
    }
}

impl Upload for DiskUpload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // Grow to at most WRITE_BUFFER (plus one chunk), not by doubling past it.
            let needed = self.buf.len() + chunk.len();
            if needed > self.buf.capacity() {
                let target = (needed * 2).min(WRITE_BUFFER).max(needed);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.extend_from_slice(&chunk);
            if self.buf.len() >= WRITE_BUFFER {
                self.flush().await?;
            }
            Ok(())
        })
    }

    fn commit(mut self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async move {
            self.committed = true;
            let inner = self.inner.clone();
            let id = self.id.clone();
            let tmp = self.tmp.clone();
            let mut file = self.file.take();
            let buf = std::mem::take(&mut self.buf);
            let size = self.written + buf.len() as u64;
            let result = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                let cleanup = |e: StoreError| {
                    let _ = fs::remove_file(&tmp);
                    e
                };
                write_chunk(&mut file, &tmp, &buf).map_err(cleanup)?;
                drop(file);
                let dest = inner.path(&id);
                let mut idx = inner.lock_index();
                if let Err(err) = fs::rename(&tmp, &dest) {
                    if err.kind() != std::io::ErrorKind::NotFound {
                        return Err(cleanup(io_err("rename into", &dest)(err)));
                    }
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent)
                            .map_err(io_err("create", parent))
                            .map_err(cleanup)?;
                    }
                    fs::rename(&tmp, &dest)
                        .map_err(io_err("rename into", &dest))
                        .map_err(cleanup)?;
                }
                let slot = inner.slot(&mut idx, &id);
                idx.upsert(slot, size, now_millis());
                inner.evict_over_limit(&mut idx);
                Ok(())
            })
            .await;
            result?
        })
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
            let path = inner.path(&id);
            let opened = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let mut file = match fs::File::open(&path) {
                    Ok(f) => f,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(err) => return Err(io_err("open", &path)(err)),
                };
                let m = file.metadata().map_err(io_err("stat", &path))?;
                let meta = ObjectMeta {
                    size: m.len(),
                    modified: m.modified().unwrap_or(UNIX_EPOCH),
                };
                {
                    let mut idx = inner.lock_index();
                    let slot = inner.slot(&mut idx, &id);
                    let now = now_millis();
                    if idx.map.contains_key(&slot) {
                        idx.touch(&slot, now);
                    } else {
                        // Not scanned yet (or written by a previous run): known from now on.
                        idx.insert_if_absent(slot, meta.size, now);
                    }
                }
                if meta.size <= FULL_READ_LIMIT {
                    let mut data = Vec::with_capacity(meta.size as usize);
                    file.read_to_end(&mut data).map_err(io_err("read", &path))?;
                    Ok(Some((meta, Ok(Bytes::from(data)))))
                } else {
                    Ok(Some((meta, Err(file))))
                }
            })
            .await??;
            Ok(opened.map(|(meta, body)| {
                let body = match body {
                    Ok(bytes) => ObjectBody::Full(bytes),
                    Err(file) => ObjectBody::Stream(
                        ReaderStream::with_capacity(tokio::fs::File::from_std(file), STREAM_CHUNK)
                            .boxed(),
                    ),
                };
                Object { meta, body }
            }))
        })
    }

    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let upload = DiskUpload {
            inner: self.inner.clone(),
            id: id.clone(),
            tmp: self.inner.tmp_path(),
            file: None,
            buf: Vec::new(),
            written: 0,
            committed: false,
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
                empty_trash_in_background(inner.trash.clone());
                Ok(doomed.len() as u64)
            })
            .await?
        })
    }

    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let path = self.inner.tmp_path();
        Box::pin(async move {
            tokio::fs::write(&path, b"ready")
                .await
                .map_err(io_err("write", &path))?;
            tokio::fs::remove_file(&path)
                .await
                .map_err(io_err("remove", &path))
        })
    }

    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let cutoff = now_millis().saturating_sub(older_than.as_millis() as u64);
                let mut idx = inner.lock_index();
                let mut n = 0;
                while let Some(((millis, _), slot)) = idx.oldest() {
                    if millis >= cutoff {
                        break;
                    }
                    idx.remove(&slot);
                    let path = inner.path_of(&slot.ns, &slot.hash);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => {
                            tracing::warn!(path = %path.display(), cause = %err, "failed to prune")
                        }
                    }
                    n += 1;
                }
                inner.pruned.fetch_add(n, Ordering::Relaxed);
                Ok(n)
            })
            .await?
        })
    }

    fn usage(&self) -> Usage {
        let (stored_bytes, objects) = {
            let idx = self.inner.lock_index();
            (idx.total, idx.map.len() as u64)
        };
        Usage {
            stored_bytes,
            objects,
            max_size: self.inner.max_size,
            evictions: self.inner.evictions.load(Ordering::Relaxed),
            pruned: self.inner.pruned.load(Ordering::Relaxed),
            index_ready: self.inner.index_ready.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, key: &str) -> ObjectId {
        ObjectId {
            namespace: ns.into(),
            key: key.into(),
        }
    }

    async fn put(store: &DiskStore, ns: &str, key: &str, data: &[u8]) {
        let mut up = store.put(&id(ns, key)).await.expect("put");
        up.write(Bytes::copy_from_slice(data)).await.expect("write");
        up.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn lru_evicts_least_recently_used() {
        let store = DiskStore::open(None, 1000).expect("open");
        put(&store, "a", "k1", &[1; 300]).await;
        put(&store, "a", "k2", &[2; 300]).await;
        put(&store, "a", "k3", &[3; 300]).await;
        assert!(store.get(&id("a", "k1")).await.expect("get").is_some());
        put(&store, "a", "k4", &[4; 300]).await;
        assert!(store.head(&id("a", "k2")).await.expect("head").is_none());
        for k in ["k1", "k3", "k4"] {
            assert!(
                store.head(&id("a", k)).await.expect("head").is_some(),
                "{k}"
            );
        }
        assert_eq!(store.usage().evictions, 1);
        assert_eq!(store.usage().stored_bytes, 900);
    }

    #[tokio::test]
    async fn abandoned_uploads_leave_nothing() {
        let store = DiskStore::open(None, 1 << 30).expect("open");
        {
            let mut up = store.put(&id("a", "big")).await.expect("put");
            up.write(Bytes::from(vec![7u8; 3 << 20]))
                .await
                .expect("write");
        }
        assert!(store.head(&id("a", "big")).await.expect("head").is_none());
        let leftovers = fs::read_dir(store.root().join("tmp")).expect("tmp").count();
        assert_eq!(leftovers, 0);
    }

    /// Pruning (or evicting) an object while a client streams it must not cut the stream
    /// short: the reader keeps its open file.
    #[tokio::test]
    async fn a_read_in_progress_survives_pruning() {
        let store = DiskStore::open(None, 1 << 30).expect("open");
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        put(&store, "a", "big", &data).await;
        let object = store
            .get(&id("a", "big"))
            .await
            .expect("get")
            .expect("found");
        let ObjectBody::Stream(mut stream) = object.body else {
            panic!("a 3 MiB object is streamed")
        };
        let mut read = stream.next().await.expect("chunk").expect("read").to_vec();
        // "Older than zero" excludes an object used in this very millisecond.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.prune(Duration::ZERO).await.expect("prune") == 0 {
            assert!(std::time::Instant::now() < deadline, "never pruned");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(store.head(&id("a", "big")).await.expect("head").is_none());
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.expect("read"));
        }
        assert!(read == data, "the stream delivered the whole object");
    }

    #[test]
    fn refuses_foreign_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("precious.txt"), "x").expect("write");
        let err = DiskStore::open(Some(dir.path()), 1 << 20)
            .err()
            .expect("must refuse");
        assert!(err.to_string().contains("non-empty"), "{err}");
    }
}
