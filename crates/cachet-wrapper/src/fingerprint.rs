//! A file's fingerprint: what its metadata says about which version of it is on disk (device,
//! inode, size, mtime, ctime).
//!
//! It is its own module because both the hash records (`file_hash.rs`, which remember a
//! content hash for a fingerprint) and the filesystem clock (`clock.rs`, which decides whether
//! a fingerprint's last change is provably in the past) read it, and neither should depend on
//! the other for it.

use std::fs;
use std::os::unix::fs::MetadataExt;

use cachet_core::Hasher;

/// Identity of a file's current version, as far as metadata tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Fingerprint {
    /// Reads the fingerprint of `meta`.
    pub fn of(meta: &fs::Metadata) -> Fingerprint {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }

    /// The fingerprint as five words (device, inode, size, mtime, ctime), the order in which
    /// it is hashed and remembered in hash records.
    pub fn words(&self) -> [u64; 5] {
        [
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns as u64,
            self.ctime_ns as u64,
        ]
    }

    /// The fingerprint [`Fingerprint::words`] gave.
    pub fn from_words([dev, ino, size, mtime_ns, ctime_ns]: [u64; 5]) -> Fingerprint {
        Fingerprint {
            dev,
            ino,
            size,
            mtime_ns: mtime_ns as i64,
            ctime_ns: ctime_ns as i64,
        }
    }

    /// Adds the fingerprint to a hasher.
    pub fn feed(&self, h: &mut Hasher, tag: &str) {
        let mut b = Vec::with_capacity(40);
        for v in self.words() {
            b.extend_from_slice(&v.to_le_bytes());
        }
        h.field(tag, &b);
    }

    /// The device the file is on.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// The file's length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The latest of mtime and ctime, in nanoseconds since the epoch.
    pub fn changed_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }
}
