//! Content hashes of files, remembered across rustc calls for large, settled files.
//!
//! Every call hashes its extern crates (often tens of MB) and the compiler's libraries; doing
//! that from scratch on every call would put hundreds of milliseconds on each hit. So the hash
//! of a large file is remembered in the cache directory, keyed by its path and checked against
//! its device, inode, size, mtime and ctime. An edit that keeps size and mtime still changes
//! ctime (which no user tool can set). A record is only written when the file provably last
//! changed before hashing began: strictly before a clock marker made on the same device (see
//! `clock.rs`), or at least [`SETTLE`] ago. Otherwise a second write inside the same coarse
//! timestamp tick could keep every field equal (git's "racily clean" problem).

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachet_core::Digest;

use crate::clock::ClockMarker;
pub use crate::fingerprint::Fingerprint;

/// Files smaller than this are simply hashed: reading a record would cost as much.
const REMEMBER_AT_LEAST: u64 = 256 * 1024;
/// How long after its last change a file's hash may be remembered.
const SETTLE: Duration = Duration::from_secs(2);
const RECORD_LEN: usize = 8 * 6 + 32;

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The read buffer of [`hash_contents`]: zeroed once per process. blake3's `update_reader`
/// zeroes a fresh 64 KiB buffer for every file, which cost more than hashing a C hit's ~100
/// small headers (a fifth of a hit's instructions).
const HASH_BUF: usize = 64 * 1024;

thread_local! {
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Hashes file contents with blake3, read in chunks through one buffer reused by every call.
pub fn hash_contents(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    READ_BUF.with_borrow_mut(|buf| {
        buf.resize(HASH_BUF, 0);
        loop {
            match file.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })?;
    Ok(Digest(*hasher.finalize().as_bytes()))
}

/// Hashes files, remembering large settled ones under `records` (None: never remember).
pub struct FileHasher {
    records: Option<PathBuf>,
    marker: Option<ClockMarker>,
    /// Files smaller than this are hashed, not remembered.
    remember_at_least: u64,
}

impl FileHasher {
    /// A hasher that keeps its records in `records` (created on demand). `marker`, made before
    /// any hashing, lets it remember files that changed only moments before.
    pub fn new(records: Option<PathBuf>, marker: Option<ClockMarker>) -> FileHasher {
        FileHasher {
            records,
            marker,
            remember_at_least: REMEMBER_AT_LEAST,
        }
    }

    /// The same hasher, remembering settled files of every size: for work that hashes the
    /// same files again and again, where a record read is cheaper than hashing even a small
    /// file. A not-stored miss of the crate being edited compares a hundred link inputs (most
    /// of them small rlibs) with its last entry on every rebuild (see `explain.rs`); a cold
    /// build hashes each file once, where writing a record for each small one would only
    /// cost.
    pub fn remembering_every_size(&self) -> FileHasher {
        FileHasher {
            records: self.records.clone(),
            marker: self.marker,
            remember_at_least: 0,
        }
    }

    /// The content hash of `path`.
    pub fn hash(&self, path: &Path) -> io::Result<Digest> {
        self.hash_known(path, &fs::metadata(path)?)
    }

    /// The content hash of `path`, whose metadata the caller has just read (saves a `stat`
    /// per file where the caller needs the metadata anyway).
    pub fn hash_known(&self, path: &Path, meta: &fs::Metadata) -> io::Result<Digest> {
        let fp = Fingerprint::of(meta);
        let record = match &self.records {
            Some(dir) if meta.size() >= self.remember_at_least => Some(self.record_path(dir, path)),
            _ => None,
        };
        if let Some(rec) = &record {
            if let Some(d) = read_record(rec, &fp) {
                return Ok(d);
            }
        }
        let digest = hash_contents(path)?;
        // The file may have changed while we read it; only remember what is provably settled.
        if let Some(rec) = &record {
            let after = fs::metadata(path).map(|m| Fingerprint::of(&m));
            let now = now_ns();
            let settled = self.marker.is_some_and(|m| m.is_after(&fp))
                || now - fp.changed_ns() >= SETTLE.as_nanos() as i64;
            if after.as_ref().ok() == Some(&fp) && settled {
                write_record(rec, &fp, now, &digest);
            }
        }
        Ok(digest)
    }

    fn record_path(&self, dir: &Path, path: &Path) -> PathBuf {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let h = Digest::of(abs.as_os_str().as_encoded_bytes()).to_hex();
        dir.join(&h[..2]).join(&h[2..])
    }
}

fn read_record(rec: &Path, fp: &Fingerprint) -> Option<Digest> {
    let bytes = fs::read(rec).ok()?;
    if bytes.len() != RECORD_LEN {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let stored = Fingerprint::from_words([word(0), word(1), word(2), word(3), word(4)]);
    // Whether the file had settled was decided when the record was written.
    if stored != *fp {
        return None;
    }
    let mut d = [0u8; 32];
    d.copy_from_slice(&bytes[48..80]);
    Some(Digest(d))
}

fn write_record(rec: &Path, fp: &Fingerprint, recorded_ns: i64, digest: &Digest) {
    let mut bytes = Vec::with_capacity(RECORD_LEN);
    for v in fp.words().into_iter().chain([recorded_ns as u64]) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(&digest.0);
    // Best effort: a record that cannot be written only costs a re-hash next time.
    let _ = crate::fsutil::write_atomic(rec, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `bytes` to `f` and sets its mtime to `mtime`: after a rewrite of the same size,
    /// only ctime and the content tell the versions apart.
    fn rewrite_with_mtime(f: &Path, bytes: &[u8], mtime: SystemTime) {
        fs::write(f, bytes).unwrap();
        File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    /// The reused buffer holds the previous file's bytes: a shorter file after a longer one,
    /// and one across several chunks, must hash as their bytes do.
    #[test]
    fn chunked_hash_is_the_contents_hash() {
        let dir = tempfile::tempdir().unwrap();
        let long: Vec<u8> = (0..3 * HASH_BUF + 5).map(|i| (i % 251) as u8).collect();
        for bytes in [&long[..], b"short", b""] {
            let f = dir.path().join("f");
            fs::write(&f, bytes).unwrap();
            assert_eq!(hash_contents(&f).unwrap(), Digest::of(bytes));
        }
    }

    #[test]
    fn same_size_and_mtime_edit_is_not_fooled() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.rlib");
        let records = dir.path().join("records");
        let mut bytes = vec![b'a'; REMEMBER_AT_LEAST as usize + 10];
        let old = SystemTime::now() - Duration::from_secs(3600);
        rewrite_with_mtime(&f, &bytes, old);
        // A record is only written once the file's ctime has settled.
        std::thread::sleep(SETTLE + Duration::from_millis(100));
        let hasher = FileHasher::new(Some(records.clone()), None);
        let h1 = hasher.hash(&f).unwrap();
        assert_eq!(h1, hash_contents(&f).unwrap());
        let rec = hasher.record_path(&records, &f);
        assert!(rec.is_file(), "the settled file's hash was not remembered");
        assert_eq!(hasher.hash(&f).unwrap(), h1, "remembered hash is used");
        // Same size, same mtime, different bytes: only ctime and the content differ.
        bytes[5] = b'b';
        rewrite_with_mtime(&f, &bytes, old);
        let h2 = hasher.hash(&f).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(h2, hash_contents(&f).unwrap());
    }

    #[test]
    fn small_files_are_remembered_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("small.rlib");
        let old = SystemTime::now() - Duration::from_secs(3600);
        rewrite_with_mtime(&f, b"small", old);
        std::thread::sleep(SETTLE + Duration::from_millis(100));
        let records = dir.path().join("records");
        let hasher = FileHasher::new(Some(records.clone()), None);
        hasher.hash(&f).unwrap();
        assert!(!hasher.record_path(&records, &f).exists());
        let every = hasher.remembering_every_size();
        assert_eq!(every.hash(&f).unwrap(), Digest::of(b"small"));
        assert!(every.record_path(&records, &f).is_file());
        // A same-size, same-mtime edit is still seen through the record.
        rewrite_with_mtime(&f, b"SMALL", old);
        assert_eq!(every.hash(&f).unwrap(), Digest::of(b"SMALL"));
    }

    #[test]
    fn fresh_files_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fresh.rlib");
        fs::write(&f, vec![0u8; REMEMBER_AT_LEAST as usize]).unwrap();
        let records = dir.path().join("records");
        let hasher = FileHasher::new(Some(records.clone()), None);
        hasher.hash(&f).unwrap();
        assert!(!hasher.record_path(&records, &f).exists());
    }

    #[test]
    fn files_older_than_the_clock_marker_are_remembered_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fresh.rlib");
        let mut bytes = vec![1u8; REMEMBER_AT_LEAST as usize];
        fs::write(&f, &bytes).unwrap();
        let mtime = fs::metadata(&f).unwrap().modified().unwrap();
        // Wait for the filesystem clock to tick past the file's ctime (bounded).
        let mut marker = ClockMarker::create(dir.path()).unwrap();
        for _ in 0..100 {
            if marker.is_after(&Fingerprint::of(&fs::metadata(&f).unwrap())) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            marker = ClockMarker::create(dir.path()).unwrap();
        }
        let records = dir.path().join("records");
        let hasher = FileHasher::new(Some(records.clone()), Some(marker));
        let h1 = hasher.hash(&f).unwrap();
        assert!(hasher.record_path(&records, &f).is_file());
        // An edit after the marker, same size and mtime, is still seen.
        bytes[0] = 2;
        rewrite_with_mtime(&f, &bytes, mtime);
        let h2 = hasher.hash(&f).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(h2, hash_contents(&f).unwrap());
    }
}
