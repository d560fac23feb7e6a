//! The local cache (L1): entries and manifests in a directory, with LRU eviction.
//!
//! Layout under `CACHET_DIR`:
//!
//! ```text
//! v1/entries/ab/abcd…   entries (see cachet_core::entry), named by entry key
//! v1/manifests/ab/ab…   manifests, named by pre-key
//! v1/hashes/…           remembered file hashes (file_hash.rs)
//! v1/compilers/…        remembered compiler identities (compiler.rs)
//! v1/size               approximate bytes stored, for the eviction trigger
//! locks/                short-lived advisory locks
//! stats.json            statistics (stats.rs)
//! ```
//!
//! Many rustc processes share the directory. Files are written atomically (temporary name,
//! rename), no lock is held across a compile, and a lock is only taken for the few
//! microseconds of a read-modify-write (the size counter, a manifest). Recency is the file's
//! mtime, bumped on every hit (atime is unreliable under `noatime`/`relatime`). When the size
//! counter passes the limit, one process (the one that wins a try-lock) walks the store,
//! deletes the least recently used files down to 90% of the limit and rewrites the counter
//! from what it found, correcting any drift.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cachet_core::Digest;

use crate::fsutil::{self, try_lock};
pub use crate::fsutil::{lock, LockGuard};
use crate::manifest::Manifest;

/// The kind of a stored object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A cache entry.
    Entry,
    /// A manifest.
    Manifest,
}

/// The local cache directory.
pub struct LocalStore {
    root: PathBuf,
    limit: u64,
}

/// Marks the object at `path` recently used (recency is the mtime). Best effort: a read-only
/// cache still serves hits.
fn touch(path: &Path) {
    if let Ok(f) = File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// A read's result with a missing file as `Ok(None)` (a miss, not an error).
fn found<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl LocalStore {
    /// The store in `dir` with a size limit in bytes. Nothing is created until a write.
    pub fn new(dir: &Path, limit: u64) -> LocalStore {
        LocalStore {
            root: dir.to_path_buf(),
            limit,
        }
    }

    /// Where remembered file hashes live.
    pub fn hash_records(&self) -> PathBuf {
        self.root.join("v1/hashes")
    }

    /// Where remembered compiler identities live.
    pub fn compiler_records(&self) -> PathBuf {
        self.root.join("v1/compilers")
    }

    fn path(&self, kind: ObjectKind, key: &Digest) -> PathBuf {
        let hex = key.to_hex();
        let sub = match kind {
            ObjectKind::Entry => "v1/entries",
            ObjectKind::Manifest => "v1/manifests",
        };
        self.root.join(sub).join(&hex[..2]).join(&hex)
    }

    /// Reads an object, marking it recently used. `Ok(None)` is a miss.
    pub fn get(&self, kind: ObjectKind, key: &Digest) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(kind, key);
        let bytes = found(fs::read(&path))?;
        if bytes.is_some() {
            touch(&path);
        }
        Ok(bytes)
    }

    /// Opens an object, marking it recently used. `Ok(None)` is a miss.
    pub fn open(&self, kind: ObjectKind, key: &Digest) -> io::Result<Option<File>> {
        let path = self.path(kind, key);
        let file = found(File::open(&path))?;
        if file.is_some() {
            touch(&path);
        }
        Ok(file)
    }

    /// A new temporary file beside where the object would be stored (a download in progress;
    /// removed by the caller, or by eviction if the process dies).
    pub fn temp_for(&self, kind: ObjectKind, key: &Digest) -> io::Result<(PathBuf, File)> {
        let target = self.path(kind, key);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = fsutil::temp_path_for(&target);
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        Ok((tmp, f))
    }

    /// Moves a verified temporary file (from [`LocalStore::temp_for`]) into place.
    pub fn adopt(&self, kind: ObjectKind, key: &Digest, tmp: &Path, len: u64) -> io::Result<()> {
        fs::rename(tmp, self.path(kind, key))?;
        self.account(len)
    }

    /// Writes an object atomically and evicts if the store grew past its limit.
    pub fn put(&self, kind: ObjectKind, key: &Digest, bytes: &[u8]) -> io::Result<()> {
        fsutil::write_atomic(&self.path(kind, key), bytes)?;
        self.account(bytes.len() as u64)
    }

    /// Stores an object written by `write` (which returns its length) without holding it in
    /// memory: entries stream from rustc's outputs straight into the cache.
    pub fn put_with<E: From<io::Error>>(
        &self,
        kind: ObjectKind,
        key: &Digest,
        write: impl FnOnce(&mut File) -> Result<u64, E>,
    ) -> Result<u64, E> {
        let len = fsutil::write_atomic_with(&self.path(kind, key), None, write)?;
        self.account(len)?;
        Ok(len)
    }

    /// Removes an object (a corrupt entry).
    pub fn remove(&self, kind: ObjectKind, key: &Digest) {
        let _ = fs::remove_file(self.path(kind, key));
    }

    /// Adds a candidate to the manifest of `pre_key` under a short lock, so concurrent
    /// compiles of the same crate do not drop each other's candidates.
    pub fn update_manifest(
        &self,
        pre_key: &Digest,
        f: impl FnOnce(&mut Manifest),
    ) -> io::Result<Vec<u8>> {
        let _guard = lock(&self.root, &format!("manifest-{}", &pre_key.to_hex()[..2]))?;
        let mut m = match fs::read(self.path(ObjectKind::Manifest, pre_key)) {
            Ok(b) => Manifest::decode(&b),
            Err(_) => Manifest::default(),
        };
        f(&mut m);
        let bytes = m.encode();
        fsutil::write_atomic(&self.path(ObjectKind::Manifest, pre_key), &bytes)?;
        self.account(bytes.len() as u64)?;
        Ok(bytes)
    }

    fn size_path(&self) -> PathBuf {
        self.root.join("v1/size")
    }

    /// Approximate bytes stored.
    pub fn size(&self) -> u64 {
        fs::read_to_string(self.size_path())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn account(&self, added: u64) -> io::Result<()> {
        let total = {
            let _guard = lock(&self.root, "size")?;
            let total = self.size() + added;
            fsutil::write_atomic(&self.size_path(), total.to_string().as_bytes())?;
            total
        };
        if total > self.limit {
            self.evict()?;
        }
        Ok(())
    }

    /// Deletes least recently used objects until the store is under 90% of its limit.
    /// Returns the number of files removed.
    pub fn evict(&self) -> io::Result<usize> {
        let Some(_cleaning) = try_lock(&self.root, "evict")? else {
            return Ok(0); // another process is already cleaning
        };
        let mut files = Vec::new();
        for sub in ["v1/entries", "v1/manifests"] {
            collect_files(&self.root.join(sub), &mut files);
        }
        files.sort_by_key(|(_, mtime, _)| *mtime);
        let mut total: u64 = files.iter().map(|(_, _, len)| len).sum();
        let target = self.limit / 10 * 9;
        let mut removed = 0;
        for (path, _, len) in &files {
            if total <= target {
                break;
            }
            if fs::remove_file(path).is_ok() {
                total -= len;
                removed += 1;
            }
        }
        let _guard = lock(&self.root, "size")?;
        fsutil::write_atomic(&self.size_path(), total.to_string().as_bytes())?;
        Ok(removed)
    }

    /// Bytes and number of entries and manifests stored, counted from the files present
    /// (one walk of the store).
    pub fn usage(&self) -> (u64, usize) {
        let mut files = Vec::new();
        for sub in ["v1/entries", "v1/manifests"] {
            collect_files(&self.root.join(sub), &mut files);
        }
        (files.iter().map(|(_, _, len)| len).sum(), files.len())
    }
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, SystemTime, u64)>) {
    let Ok(shards) = fs::read_dir(dir) else {
        return;
    };
    for shard in shards.flatten() {
        let Ok(entries) = fs::read_dir(shard.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                // A temporary file; an old one (from a killed process) is garbage.
                if let Ok(meta) = e.metadata() {
                    let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
                    if age.is_some_and(|a| a.as_secs() > 3600) {
                        let _ = fs::remove_file(e.path());
                    }
                }
                continue;
            }
            if let Ok(meta) = e.metadata() {
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((e.path(), mtime, meta.len()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), 3000);
        let keys: Vec<Digest> = (0..3u8).map(|i| Digest::of(&[i])).collect();
        let base = SystemTime::now() - std::time::Duration::from_secs(3600);
        for (i, k) in keys.iter().enumerate() {
            store.put(ObjectKind::Entry, k, &[0u8; 900]).unwrap();
            let f = File::options()
                .write(true)
                .open(store.path(ObjectKind::Entry, k))
                .unwrap();
            f.set_modified(base + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        // Use the oldest, so the middle one becomes the least recently used.
        assert!(store.get(ObjectKind::Entry, &keys[0]).unwrap().is_some());
        store
            .put(ObjectKind::Entry, &Digest::of(b"new"), &[0u8; 900])
            .unwrap();
        assert!(store.get(ObjectKind::Entry, &keys[1]).unwrap().is_none());
        assert!(store.get(ObjectKind::Entry, &keys[0]).unwrap().is_some());
        assert!(store.size() <= 2700);
    }
}
