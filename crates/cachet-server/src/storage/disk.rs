//! The disk store: one file per object, an in-memory LRU index, atomic writes.
//!
//! Layout under the storage root (versioned, so a future layout never misreads this one):
//!
//! ```text
//! VERSION                      "cachet-disk-store 1"
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
//! - The index (`Index`) is pure data with reservations: an upload reserves its bytes before
//!   writing them, so `--max-size` holds with concurrent writers. Its lock is held for map
//!   updates and renames, never for deleting: victims are renamed into `trash/` under the lock
//!   (a commit landing meanwhile cannot lose its file to a late delete) and deleted after.
//! - A full disk is an operating condition: a write that finds no space evicts what it needs
//!   once and retries; if that does not help, other files fill the disk, the store is marked
//!   full (uploads get [`StoreError::Full`], a 507, without evicting more) until a write
//!   succeeds or the disk has room again.
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
pub const WRITE_BUFFER: usize = 1 << 20;
/// Index entries inserted per lock acquisition during the start-up scan.
const SCAN_BATCH: usize = 1024;
/// Objects pruned per lock acquisition, so reads never wait long behind a prune.
const PRUNE_BATCH: usize = 1024;
/// When the disk is full, an upload evicts what its pending write needs plus this much (once;
/// if that does not help, other files fill the disk and evicting more would only empty the
/// cache).
const NO_SPACE_SLACK: u64 = 1 << 20;
/// A store marked full is ready again once the disk has this much free.
const READY_FREE_SPACE: u64 = 2 << 20;

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
    /// Size and last use of every known object, and reservations. A std mutex: it is held for
    /// map updates and renames (a commit's, evicted objects' into the trash), never for a
    /// deletion and never across an await.
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
    /// Set when a write found the disk full and evicting did not help (other files fill it):
    /// uploads then fail fast without evicting, and `/readyz` says so, until a write succeeds
    /// or the disk has room again.
    disk_full: AtomicBool,
    /// Owns the directory of an `ephemeral` store: dropping it removes everything.
    _ephemeral: Option<tempfile::TempDir>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An object's place in the index: its namespace (interned) and the digest of its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// The size and LRU order of every object, and the bytes reserved by uploads in progress:
/// pure data, no files (the store renames and deletes files around it). Invariant kept by
/// [`Index::reserve`]: `total + reserved` never exceeds the limit it is given, so the limit
/// holds with any number of concurrent writers.
#[derive(Default)]
struct Index {
    map: HashMap<Slot, Meta>,
    lru: BTreeMap<Stamp, Slot>,
    names: HashSet<Arc<str>>,
    seq: u64,
    /// Bytes of the objects in `map`.
    total: u64,
    /// Bytes reserved by uploads in progress (written to `tmp/` or about to be).
    reserved: u64,
    /// Bytes of objects evicted for size (for the dashboard).
    evicted_bytes: u64,
    /// Sum of the ages since last use of objects evicted for size, in ms (for the dashboard).
    evicted_age_ms: u64,
}

/// What [`Index::reserve`] decided.
#[derive(Debug, PartialEq, Eq)]
enum Reservation {
    /// Reserved; these objects were removed from the index to make room (their files are the
    /// caller's to delete).
    Granted(Vec<Slot>),
    /// Uploads in progress alone already hold the limit: nothing was evicted.
    Refused,
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

    /// [`Index::remove`] for an eviction: counts its bytes and age for the dashboard.
    fn evict(&mut self, slot: &Slot) -> Option<Meta> {
        let meta = self.remove(slot)?;
        self.evicted_bytes += meta.size;
        self.evicted_age_ms += now_millis().saturating_sub(meta.stamp.0);
        Some(meta)
    }

    fn remove(&mut self, slot: &Slot) -> Option<Meta> {
        let meta = self.map.remove(slot)?;
        self.lru.remove(&meta.stamp);
        self.total -= meta.size;
        Some(meta)
    }

    /// Reserves `n` bytes for an upload under `limit`, evicting least recently used objects
    /// as needed; refuses (evicting nothing) when the reservations alone would pass it.
    fn reserve(&mut self, n: u64, limit: u64) -> Reservation {
        if self.reserved.saturating_add(n) > limit {
            return Reservation::Refused;
        }
        let mut victims = Vec::new();
        while self.total + self.reserved + n > limit {
            let Some((_, slot)) = self.oldest() else {
                break;
            };
            self.evict(&slot);
            victims.push(slot);
        }
        self.reserved += n;
        Reservation::Granted(victims)
    }

    /// Gives back `n` reserved bytes (an upload abandoned, or committed: then
    /// [`Index::upsert`] counts the object).
    fn release(&mut self, n: u64) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Removes least recently used objects until they add up to `bytes` (to free disk space
    /// that other files took); returns them.
    fn evict_bytes(&mut self, bytes: u64) -> Vec<Slot> {
        let mut freed = 0;
        let mut victims = Vec::new();
        while freed < bytes {
            let Some((_, slot)) = self.oldest() else {
                break;
            };
            freed += self.evict(&slot).map_or(0, |m| m.size);
            victims.push(slot);
        }
        victims
    }

    /// Removes least recently used objects until `total` fits `limit`; returns them.
    fn evict_over(&mut self, limit: u64) -> Vec<Slot> {
        let mut victims = Vec::new();
        while self.total > limit {
            let Some((_, slot)) = self.oldest() else {
                break;
            };
            self.evict(&slot);
            victims.push(slot);
        }
        victims
    }

    /// Removes up to `max` objects last used before `cutoff` (ms); returns them.
    fn take_older_than(&mut self, cutoff: u64, max: usize) -> Vec<Slot> {
        let mut victims = Vec::new();
        while victims.len() < max {
            match self.oldest() {
                Some(((millis, _), slot)) if millis < cutoff => {
                    self.remove(&slot);
                    victims.push(slot);
                }
                _ => break,
            }
        }
        victims
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

/// Deletes files already moved out of the store (evicted or pruned objects).
fn delete_files(paths: &[PathBuf]) {
    for path in paths {
        if let Err(err) = fs::remove_file(path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), cause = %err, "failed to delete");
            }
        }
    }
}

/// True for "no space left on device" and "disk quota exceeded".
fn is_no_space(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Like [`io_err`], but a full disk becomes [`StoreError::Full`].
fn store_err<'a>(
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

/// Bytes free for unprivileged writers on the file system holding `path`.
fn available_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
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
            disk_full: AtomicBool::new(false),
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
        for (ns, hash, _, millis) in batch.drain(..) {
            // The file was seen before the lock was taken: since then it may have been evicted
            // or deleted (both move the file under this lock), and indexing it again would
            // count an object that is gone. Looked at again under the lock, with its size now.
            let Ok(meta) = fs::symlink_metadata(inner.path_of(&ns, &hash)) else {
                continue;
            };
            let ns = idx.intern(&ns);
            idx.insert_if_absent(Slot { ns, hash }, meta.len(), millis);
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
        let retired = {
            let mut idx = inner.lock_index();
            inner.evict_over_limit(&mut idx)
        };
        delete_files(&retired);
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

    /// Moves the files of objects just removed from the index into the trash. Called with the
    /// lock held, so no commit can land between choosing a victim and moving its file (a
    /// rename, cheap next to deleting a large file); the caller deletes the returned paths
    /// after releasing the lock, so reads never wait for that.
    fn retire(&self, victims: &[Slot]) -> Vec<PathBuf> {
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
    fn evict_over_limit(&self, idx: &mut Index) -> Vec<PathBuf> {
        let victims = idx.evict_over(self.max_size);
        self.evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        self.retire(&victims)
    }

    /// Reserves `n` bytes of `--max-size` for an upload, evicting as needed.
    fn reserve(&self, n: u64) -> Result<(), StoreError> {
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
    fn release(&self, n: u64) {
        if n > 0 {
            self.lock_index().release(n);
        }
    }

    /// Evicts least recently used objects adding up to `bytes` and deletes their files now
    /// (the disk is full); returns how many objects went.
    fn free_disk_space(&self, bytes: u64) -> usize {
        let mut idx = self.lock_index();
        let victims = idx.evict_bytes(bytes);
        self.evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        let retired = self.retire(&victims);
        drop(idx);
        delete_files(&retired);
        victims.len()
    }

    /// The error for a write that found no space, marking the store full.
    fn disk_full_error(&self) -> StoreError {
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

    /// Writes `buf` whole to `file`; when the disk is full, evicts what the rest needs and
    /// tries again, once per upload (`made_room`).
    fn write_making_room(
        &self,
        file: &mut fs::File,
        tmp: &Path,
        mut buf: &[u8],
        made_room: &mut bool,
    ) -> Result<(), StoreError> {
        while !buf.is_empty() {
            match file.write(buf) {
                Ok(0) => {
                    return Err(io_err("write", tmp)(std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => buf = &buf[n..],
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) if is_no_space(&err) => {
                    if *made_room || self.disk_full.load(Ordering::Relaxed) {
                        return Err(self.disk_full_error());
                    }
                    *made_room = true;
                    if self.free_disk_space(buf.len() as u64 + NO_SPACE_SLACK) == 0 {
                        return Err(self.disk_full_error());
                    }
                }
                Err(err) => return Err(io_err("write", tmp)(err)),
            }
        }
        Ok(())
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
    /// The bytes of `--max-size` this upload holds (what it wrote to `tmp/`).
    reserved: Reserved,
    /// Set once this upload has evicted objects to free disk space: it does not again.
    made_room: bool,
}

/// Bytes reserved in the index for an upload; given back on drop unless the commit turned
/// them into an object.
struct Reserved {
    inner: Arc<Inner>,
    bytes: u64,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.inner.release(self.bytes);
    }
}

impl Drop for DiskUpload {
    fn drop(&mut self) {
        if !self.committed && (self.file.is_some() || self.written > 0) {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn write_chunk(
    inner: &Inner,
    file: &mut Option<fs::File>,
    tmp: &Path,
    buf: &[u8],
    made_room: &mut bool,
) -> Result<(), StoreError> {
    if file.is_none() {
        *file = Some(fs::File::create(tmp).map_err(store_err(inner, "create", tmp))?);
    }
    if let Some(f) = file.as_mut() {
        inner.write_making_room(f, tmp, buf, made_room)?;
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
        let inner = self.inner.clone();
        let n = buf.len() as u64;
        let mut made_room = self.made_room;
        let (file, mut buf, made_room, result) = tokio::task::spawn_blocking(move || {
            let r = inner
                .reserve(n)
                .and_then(|()| write_chunk(&inner, &mut file, &tmp, &buf, &mut made_room));
            (file, buf, made_room, r)
        })
        .await?;
        self.made_room = made_room;
        if result.is_ok() {
            self.reserved.bytes += n;
        }
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

    fn buffered(&self) -> u64 {
        self.buf.capacity() as u64
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
            let mut reserved = Reserved {
                inner: inner.clone(),
                bytes: std::mem::take(&mut self.reserved.bytes),
            };
            let mut made_room = self.made_room;
            let result = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                let cleanup = |e: StoreError| {
                    let _ = fs::remove_file(&tmp);
                    e
                };
                inner.reserve(buf.len() as u64).map_err(cleanup)?;
                reserved.bytes += buf.len() as u64;
                write_chunk(&inner, &mut file, &tmp, &buf, &mut made_room).map_err(cleanup)?;
                drop(file);
                let dest = inner.path(&id);
                let mut idx = inner.lock_index();
                if let Err(err) = fs::rename(&tmp, &dest) {
                    if err.kind() != std::io::ErrorKind::NotFound {
                        return Err(cleanup(io_err("rename into", &dest)(err)));
                    }
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent)
                            .map_err(store_err(&inner, "create", parent))
                            .map_err(cleanup)?;
                    }
                    fs::rename(&tmp, &dest)
                        .map_err(io_err("rename into", &dest))
                        .map_err(cleanup)?;
                }
                // The reservation becomes the object.
                idx.release(std::mem::take(&mut reserved.bytes));
                let slot = inner.slot(&mut idx, &id);
                idx.upsert(slot, size, now_millis());
                let retired = inner.evict_over_limit(&mut idx);
                drop(idx);
                delete_files(&retired);
                inner.disk_full.store(false, Ordering::Relaxed);
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
            reserved: Reserved {
                inner: self.inner.clone(),
                bytes: 0,
            },
            made_room: false,
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
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                if inner.disk_full.load(Ordering::Relaxed) {
                    if available_space(&inner.tmp).unwrap_or(0) < READY_FREE_SPACE {
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

    fn slot(i: u8) -> Slot {
        Slot {
            ns: Arc::from("ns"),
            hash: [i; 32],
        }
    }

    #[test]
    fn reservations_evict_the_least_recently_used_and_hold_the_limit() {
        let mut idx = Index::default();
        for i in 0..4 {
            idx.upsert(slot(i), 100, u64::from(i));
        }
        idx.touch(&slot(0), 10);
        // 400 stored; 250 more under a limit of 500 evicts the two least recently used.
        assert_eq!(
            idx.reserve(250, 500),
            Reservation::Granted(vec![slot(1), slot(2)])
        );
        assert_eq!((idx.total, idx.reserved), (200, 250));
        // Reservations alone may not pass the limit, and such a refusal evicts nothing.
        assert_eq!(idx.reserve(300, 500), Reservation::Refused);
        assert_eq!(idx.map.len(), 2);
        assert_eq!(
            idx.reserve(250, 500),
            Reservation::Granted(vec![slot(3), slot(0)])
        );
        assert_eq!(idx.total + idx.reserved, 500);
        // A commit turns a reservation into an object.
        idx.release(250);
        idx.upsert(slot(9), 250, 20);
        assert_eq!((idx.total, idx.reserved), (250, 250));
        idx.release(250);
        assert_eq!(idx.reserved, 0);
    }

    #[test]
    fn evicting_for_disk_space_stops_once_enough_is_freed() {
        let mut idx = Index::default();
        for i in 0..5 {
            idx.upsert(slot(i), 100, u64::from(i));
        }
        assert_eq!(idx.evict_bytes(150), vec![slot(0), slot(1)]);
        assert_eq!(idx.total, 300);
        assert_eq!(idx.take_older_than(4, 10), vec![slot(2), slot(3)]);
        assert_eq!(idx.take_older_than(100, 0), Vec::<Slot>::new());
        assert_eq!(idx.evict_over(0), vec![slot(4)]);
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
