//! The entry format's constants and types: the header layout, the metadata, the in-memory
//! [`Entry`] and the errors. Both the reader and the writer depend on this module, and it on
//! neither, so the format is defined in one place.

use std::io;

use serde::{Deserialize, Serialize};

use crate::Digest;

/// Bumped whenever the layout or the meaning of a field changes; old entries then miss. This
/// is the compressed format: what the server holds and what every cachet reads.
pub const ENTRY_FORMAT_VERSION: u32 = 4;
/// The same layout with the payload stored raw (the local cache's format for new entries):
/// the body is the payload itself, and the checksum covers stdout, stderr, the metadata and
/// the header; each file's bytes are bound to it by the blake3 the metadata records, which
/// every read checks (see the module docs).
pub const RAW_FORMAT_VERSION: u32 = 5;

/// How an entry's payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Raw ([`RAW_FORMAT_VERSION`]): a miss pays one copy, a hit no decompression.
    None,
    /// A zstd frame at this level ([`ENTRY_FORMAT_VERSION`]): what goes to the server.
    Zstd(i32),
}
pub(super) const MAGIC: &[u8; 8] = b"CACHETE\0";
/// Length of the header.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 32 + 32;
pub(super) const KEY_AT: usize = 8 + 4 + 8 + 8 + 4;
pub(super) const SUM_AT: usize = KEY_AT + 32;
pub(super) const SIG_MAGIC: &[u8; 4] = b"CSIG";
/// Length of the signature trailer.
pub const SIG_LEN: usize = 4 + 32 + 64;
/// Entries whose outputs are larger than this are compressed by two threads.
pub(super) const PARALLEL_FROM: u64 = 8 << 20;
/// Size of the chunks output files are read, hashed and compressed in.
pub(super) const CHUNK: usize = 256 << 10;
/// Entries larger than this once decompressed are refused (no single rustc run writes more).
pub const MAX_DECOMPRESSED: u64 = 8 << 30;
/// Entries whose frame is at most this long, compressed and decompressed, are decoded in one
/// piece in memory; larger ones are streamed.
pub const BULK_MAX: u64 = 32 << 20;
/// Largest metadata accepted (it is read whole).
pub(super) const MAX_META: u32 = 16 << 20;
/// Largest stdout plus stderr accepted (they are replayed from memory).
pub(super) const MAX_TEXT: u64 = 64 << 20;

/// Metadata stored after the frame of every entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EntryMeta {
    /// The crate that was compiled, for `stats` and `explain`.
    pub crate_name: String,
    /// The out-dir of the recorded build, so paths in stderr and dep-info can be rewritten.
    pub out_dir: String,
    /// The recorded build's path anchors (`WORKSPACE`, `CARGO_HOME`, `TARGET` and their
    /// directories), so paths in stderr and dep-info can be moved to the current build's.
    #[serde(default)]
    pub anchors: Vec<(String, String)>,
    /// How long the original compile took, to estimate time saved by a hit.
    pub compile_millis: u64,
    /// Length of the recorded stdout.
    pub stdout_len: u64,
    /// Length of the recorded stderr.
    pub stderr_len: u64,
    /// The output files, in the order their bytes follow.
    pub files: Vec<EntryFile>,
}

/// One output file of an entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EntryFile {
    /// File name inside the out-dir: one path component, never `.` or `..`.
    pub name: String,
    /// Unix permission bits to restore (executables keep their `x` bits).
    pub mode: u32,
    /// Length in bytes.
    pub size: u64,
    /// blake3 of the contents.
    pub hash: Digest,
    /// Set when the contents are not in the body but are a range of another file of the entry
    /// (an `.rmeta` is a copy of the metadata inside its `.rlib`): stored once, restored twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
}

/// Where a file's contents sit inside another file of the same entry.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Within {
    /// Index in `EntryMeta::files` of the file holding the bytes (itself stored in the body).
    pub file: usize,
    /// Offset of the contents in that file.
    pub offset: u64,
}

/// An entry decoded whole in memory (tests and small tools; the wrapper streams).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The metadata.
    pub meta: EntryMeta,
    /// rustc's stdout.
    pub stdout: Vec<u8>,
    /// rustc's stderr.
    pub stderr: Vec<u8>,
    /// The contents of each file in `meta.files`, in the same order.
    pub contents: Vec<Vec<u8>>,
}

/// Why an entry could not be decoded. Every variant but `Restore` means "treat as a miss and
/// remove it".
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// Not an entry at all, or cut short before the header ends.
    #[error("not a cachet entry (bad magic or truncated header)")]
    BadMagic,
    /// Written by a cachet with another entry format.
    #[error("entry format version {found} is not supported (this cachet reads versions {ENTRY_FORMAT_VERSION} and {RAW_FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found in the header.
        found: u32,
    },
    /// A valid entry, but for another key than the one it was found under.
    #[error("the entry was written for key {found}, not for the key it was found under")]
    WrongKey {
        /// The key in the entry's header.
        found: Digest,
    },
    /// The bytes were changed or cut after writing.
    #[error("entry checksum mismatch: the entry is corrupt or truncated")]
    ChecksumMismatch,
    /// The body could not be decompressed or is larger than allowed.
    #[error("entry body could not be decompressed: {0}")]
    Decompress(String),
    /// The metadata is malformed or does not match the body.
    #[error("entry metadata is invalid: {0}")]
    BadMeta(String),
    /// A file's contents do not match its recorded hash.
    #[error("file {name} in the entry does not match its recorded hash")]
    FileHashMismatch {
        /// The file name.
        name: String,
    },
    /// Reading the entry, or writing what it holds, failed (not the entry's fault).
    #[error("failed to restore the entry: {0}")]
    Restore(io::Error),
    /// Compression failed while writing.
    #[error("failed to compress the entry: {0}")]
    Compress(#[from] std::io::Error),
}

/// True when `name` is a single plain path component that is safe to join to a directory.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
}
/// The ed25519 signature an entry may carry (verified by the wrapper, not here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntrySignature {
    /// The signer's public key.
    pub public_key: [u8; 32],
    /// The signature of [`signed_message`] of the entry's checksum.
    pub signature: [u8; 64],
}

impl EntrySignature {
    /// The trailer appended to an entry.
    pub fn to_trailer(&self) -> [u8; SIG_LEN] {
        let mut out = [0u8; SIG_LEN];
        out[..4].copy_from_slice(SIG_MAGIC);
        out[4..36].copy_from_slice(&self.public_key);
        out[36..].copy_from_slice(&self.signature);
        out
    }
}

/// What a signature of an entry signs: a domain tag and the entry's checksum (which covers
/// the key, the header and every byte of the body).
pub fn signed_message(checksum: &Digest) -> Vec<u8> {
    let mut m = b"cachet entry v4\0".to_vec();
    m.extend_from_slice(&checksum.0);
    m
}
impl Entry {
    /// Builds an entry, filling in lengths and hashes from the contents.
    pub fn new(
        crate_name: String,
        out_dir: String,
        compile_millis: u64,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        files: Vec<(String, u32, Vec<u8>)>,
    ) -> Entry {
        let mut metas = Vec::with_capacity(files.len());
        let mut contents = Vec::with_capacity(files.len());
        for (name, mode, bytes) in files {
            metas.push(EntryFile {
                name,
                mode,
                size: bytes.len() as u64,
                hash: Digest::of(&bytes),
                within: None,
            });
            contents.push(bytes);
        }
        Entry {
            meta: EntryMeta {
                crate_name,
                out_dir,
                anchors: Vec::new(),
                compile_millis,
                stdout_len: stdout.len() as u64,
                stderr_len: stderr.len() as u64,
                files: metas,
            },
            stdout,
            stderr,
            contents,
        }
    }

    /// Total size of the payload before compression.
    pub fn payload_len(&self) -> u64 {
        self.stdout.len() as u64
            + self.stderr.len() as u64
            + self.contents.iter().map(|c| c.len() as u64).sum::<u64>()
    }
}
