//! The cache entry: everything one rustc invocation produced, in one checksummed file bound
//! to the key it is stored under.
//!
//! An entry holds the output files (by file name, restored into whatever out-dir the next
//! invocation names), rustc's stdout and stderr byte for byte, and a little metadata used to
//! rewrite paths and to estimate time saved.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic     8 bytes  b"CACHETE\0"
//! version   u32      ENTRY_FORMAT_VERSION
//! payload   u64      length of the frame once decompressed
//! frame     u64      length of the compressed frame
//! meta      u32      length of the metadata
//! key       32 bytes the entry key the entry was written for
//! checksum  32 bytes blake3 of the frame, the metadata, then the header up to this field
//! frame     zstd frame of: stdout bytes, stderr bytes, then each stored file's bytes
//! meta      JSON (EntryMeta)
//! signature optional: b"CSIG", an ed25519 public key (32) and signature (64) of the checksum
//! ```
//!
//! **Bound to its key.** The key is in the header and under the checksum, and a reader is
//! always told which key it expects: an entry served or found under another key (a confused
//! or hostile server answering `K2` with `K1`'s valid entry) is [`EntryError::WrongKey`], a
//! miss, never a restore of the wrong code.
//!
//! **Streamed both ways.** [`EntryWriter`] reads each output in small chunks, hashing and
//! compressing on the way, so storing a 40 MB program allocates nothing in proportion to it;
//! the metadata follows the frame and the header is written last, once the checksum is known.
//! Reading is two steps: [`EntryHead::read`] checks the header, the key and the checksum
//! (streaming over a file) and validates the metadata against the lengths; then
//! [`EntryHead::read_payload`] hands each file's bytes to a [`PayloadSink`] as a reader, so a
//! restore writes them to disk without holding them. Nothing is allocated from a length the
//! entry claims unless it is small: entries up to [`BULK_MAX`] are decompressed in one piece
//! (zstd's bulk API, more than twice as fast as its streaming reader on a hit), larger ones
//! through the streaming reader. A small compressed bomb therefore cannot exhaust memory.
//!
//! Each file additionally carries its own blake3, checked as it is read, so a decoder bug can
//! never restore bytes that differ from what rustc wrote. A malformed entry is an error, never
//! a panic or a partial restore.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use crate::Digest;

/// Bumped whenever the layout or the meaning of a field changes; old entries then miss.
pub const ENTRY_FORMAT_VERSION: u32 = 4;
const MAGIC: &[u8; 8] = b"CACHETE\0";
/// Length of the header.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 32 + 32;
const KEY_AT: usize = 8 + 4 + 8 + 8 + 4;
const SUM_AT: usize = KEY_AT + 32;
const SIG_MAGIC: &[u8; 4] = b"CSIG";
/// Length of the signature trailer.
pub const SIG_LEN: usize = 4 + 32 + 64;
/// Entries whose outputs are larger than this are compressed by two threads.
const PARALLEL_FROM: u64 = 8 << 20;
/// Size of the chunks output files are read, hashed and compressed in.
const CHUNK: usize = 256 << 10;
/// Entries larger than this once decompressed are refused (no single rustc run writes more).
pub const MAX_DECOMPRESSED: u64 = 8 << 30;
/// Entries whose frame is at most this long, compressed and decompressed, are decoded in one
/// piece in memory; larger ones are streamed.
pub const BULK_MAX: u64 = 32 << 20;
/// Largest metadata accepted (it is read whole).
const MAX_META: u32 = 16 << 20;
/// Largest stdout plus stderr accepted (they are replayed from memory).
const MAX_TEXT: u64 = 64 << 20;

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
    #[error("entry format version {found} is not supported (this cachet reads version {ENTRY_FORMAT_VERSION})")]
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

/// Something an entry can be read from at any offset: a file, or bytes in memory.
pub trait ReadAt {
    /// Total length.
    fn total_len(&self) -> io::Result<u64>;
    /// Reads at `offset`, as `pread`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The whole source, when it is in memory already.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
}

impl ReadAt for [u8] {
    fn total_len(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset as usize).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ReadAt for Vec<u8> {
    fn total_len(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self[..].read_at(buf, offset)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ReadAt for std::fs::File {
    fn total_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

/// A [`Read`] over `[pos, end)` of a [`ReadAt`].
struct RangeReader<'s, S: ?Sized> {
    src: &'s S,
    pos: u64,
    end: u64,
}

impl<S: ReadAt + ?Sized> Read for RangeReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.src.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_exact_at<S: ReadAt + ?Sized>(src: &S, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let end = offset + buf.len() as u64;
    RangeReader {
        src,
        pos: offset,
        end,
    }
    .read_exact(buf)
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

/// Receives the files of an entry as [`EntryHead::read_payload`] decodes them.
pub trait PayloadSink {
    /// The stored file `index` of the metadata: `contents` yields exactly its bytes (what is
    /// not read is drained and still checked). Called in metadata order.
    fn file(&mut self, index: usize, file: &EntryFile, contents: &mut dyn Read) -> io::Result<()>;
    /// File `index` is `file.size` bytes at `within.offset` of the stored file `within.file`
    /// (already received): produce it and return its blake3. Called after every stored file.
    fn copy(&mut self, index: usize, file: &EntryFile, within: Within) -> io::Result<Digest>;
}

/// An entry's header and metadata, checked: the key is the expected one, the checksum holds,
/// and every length and reference in the metadata fits the body.
#[derive(Clone, Debug)]
pub struct EntryHead {
    /// The entry key.
    pub key: Digest,
    /// The checksum (what a signature signs).
    pub checksum: Digest,
    /// The metadata.
    pub meta: EntryMeta,
    /// The signature, if the entry carries one.
    pub signature: Option<EntrySignature>,
    /// Length of the whole entry, signature included.
    pub len: u64,
    payload_len: u64,
    frame_len: u64,
}

impl EntryHead {
    /// Checks `src` as the entry for `expected`: header, key, checksum (read once, in chunks)
    /// and metadata. Nothing is decompressed.
    pub fn read<S: ReadAt + ?Sized>(src: &S, expected: &Digest) -> Result<EntryHead, EntryError> {
        let io_err = EntryError::Restore;
        let len = src.total_len().map_err(io_err)?;
        if len < HEADER_LEN as u64 {
            return Err(EntryError::BadMagic);
        }
        let mut header = [0u8; HEADER_LEN];
        read_exact_at(src, &mut header, 0).map_err(EntryError::Restore)?;
        if &header[..8] != MAGIC {
            return Err(EntryError::BadMagic);
        }
        let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or([0; 8]));
        let version = u32_at(8);
        if version != ENTRY_FORMAT_VERSION {
            return Err(EntryError::UnsupportedVersion { found: version });
        }
        let (payload_len, frame_len, meta_len) = (u64_at(12), u64_at(20), u32_at(28));
        let mut key = [0u8; 32];
        key.copy_from_slice(&header[KEY_AT..SUM_AT]);
        let key = Digest(key);
        if key != *expected {
            return Err(EntryError::WrongKey { found: key });
        }
        let body_end = (HEADER_LEN as u64)
            .checked_add(frame_len)
            .and_then(|n| n.checked_add(u64::from(meta_len)))
            .filter(|end| *end <= len)
            .ok_or(EntryError::ChecksumMismatch)?;
        let trailer = len - body_end;
        if trailer != 0 && trailer != SIG_LEN as u64 {
            return Err(EntryError::ChecksumMismatch);
        }
        let mut hasher = blake3::Hasher::new();
        match src.as_slice() {
            Some(bytes) => {
                hasher.update(&bytes[HEADER_LEN..body_end as usize]);
            }
            None => {
                let mut buf = vec![0u8; CHUNK];
                let mut at = HEADER_LEN as u64;
                while at < body_end {
                    let want = (body_end - at).min(CHUNK as u64) as usize;
                    read_exact_at(src, &mut buf[..want], at).map_err(io_err)?;
                    hasher.update(&buf[..want]);
                    at += want as u64;
                }
            }
        }
        hasher.update(&header[..SUM_AT]);
        let checksum = Digest(*hasher.finalize().as_bytes());
        if checksum.0[..] != header[SUM_AT..] {
            return Err(EntryError::ChecksumMismatch);
        }
        if meta_len > MAX_META {
            return Err(EntryError::BadMeta("metadata larger than the limit".into()));
        }
        if payload_len > MAX_DECOMPRESSED {
            return Err(EntryError::Decompress(
                "entry is larger than the limit".into(),
            ));
        }
        let mut meta_bytes = vec![0u8; meta_len as usize];
        read_exact_at(src, &mut meta_bytes, HEADER_LEN as u64 + frame_len).map_err(io_err)?;
        let meta: EntryMeta =
            serde_json::from_slice(&meta_bytes).map_err(|e| EntryError::BadMeta(e.to_string()))?;
        validate(&meta, payload_len)?;
        let signature = if trailer == 0 {
            None
        } else {
            let mut t = [0u8; SIG_LEN];
            read_exact_at(src, &mut t, body_end).map_err(io_err)?;
            if &t[..4] != SIG_MAGIC {
                return Err(EntryError::BadMeta("unknown trailer".into()));
            }
            let mut public_key = [0u8; 32];
            public_key.copy_from_slice(&t[4..36]);
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&t[36..]);
            Some(EntrySignature {
                public_key,
                signature,
            })
        };
        Ok(EntryHead {
            key,
            checksum,
            meta,
            signature,
            len,
            payload_len,
            frame_len,
        })
    }

    /// The checksum recorded in the header of `src`, unchecked: for a writer signing the entry
    /// it has just written.
    pub fn stored_checksum<S: ReadAt + ?Sized>(src: &S) -> io::Result<Digest> {
        let mut sum = [0u8; 32];
        read_exact_at(src, &mut sum, SUM_AT as u64)?;
        Ok(Digest(sum))
    }

    /// Decodes the whole entry into memory (small entries, such as a C compiler's): refused
    /// when its files add up to more than `max_payload` bytes.
    pub fn read_all<S: ReadAt + ?Sized>(
        &self,
        src: &S,
        max_payload: u64,
    ) -> Result<Entry, EntryError> {
        let total: u64 = self.meta.files.iter().map(|f| f.size).sum();
        if total > max_payload {
            return Err(EntryError::Decompress(
                "entry is larger than the limit".into(),
            ));
        }
        let mut sink = InMemory(vec![Vec::new(); self.meta.files.len()]);
        let (stdout, stderr) = self.read_payload(src, &mut sink)?;
        Ok(Entry {
            meta: self.meta.clone(),
            stdout,
            stderr,
            contents: sink.0,
        })
    }

    /// Length of the entry without its signature (where a signature is appended).
    pub fn unsigned_len(&self) -> u64 {
        self.len
            - if self.signature.is_some() {
                SIG_LEN as u64
            } else {
                0
            }
    }

    /// Decompresses the frame of `src` (the source [`EntryHead::read`] checked), handing every
    /// file to `sink` and checking its hash. Returns stdout and stderr.
    pub fn read_payload<S: ReadAt + ?Sized>(
        &self,
        src: &S,
        sink: &mut dyn PayloadSink,
    ) -> Result<(Vec<u8>, Vec<u8>), EntryError> {
        let frame_at = HEADER_LEN as u64;
        let frame_end = frame_at + self.frame_len;
        let bulk = self.payload_len <= BULK_MAX && self.frame_len <= BULK_MAX;
        let decompress = |e: io::Error| EntryError::Decompress(e.to_string());
        let mut payload: Box<dyn Read + '_> = if bulk {
            let owned;
            let frame = match src.as_slice() {
                Some(bytes) => &bytes[frame_at as usize..frame_end as usize],
                None => {
                    let mut buf = vec![0u8; self.frame_len as usize];
                    read_exact_at(src, &mut buf, frame_at).map_err(EntryError::Restore)?;
                    owned = buf;
                    &owned[..]
                }
            };
            let body =
                zstd::bulk::decompress(frame, self.payload_len as usize).map_err(decompress)?;
            if body.len() as u64 != self.payload_len {
                return Err(EntryError::Decompress(
                    "body length differs from the header".into(),
                ));
            }
            Box::new(io::Cursor::new(body))
        } else {
            let frame = RangeReader {
                src,
                pos: frame_at,
                end: frame_end,
            };
            let decoder = zstd::stream::read::Decoder::new(frame).map_err(decompress)?;
            Box::new(decoder)
        };
        let meta = &self.meta;
        let mut text = |len: u64| -> Result<Vec<u8>, EntryError> {
            let mut out = Vec::with_capacity(len as usize);
            (&mut payload)
                .take(len)
                .read_to_end(&mut out)
                .map_err(decompress)?;
            if out.len() as u64 != len {
                return Err(EntryError::Decompress("body shorter than recorded".into()));
            }
            Ok(out)
        };
        let stdout = text(meta.stdout_len)?;
        let stderr = text(meta.stderr_len)?;
        for (i, f) in meta.files.iter().enumerate() {
            if f.within.is_some() {
                continue;
            }
            let mut reader = Checked {
                inner: (&mut payload).take(f.size),
                hasher: blake3::Hasher::new(),
                read: 0,
                failed: None,
            };
            let sunk = sink.file(i, f, &mut reader);
            // Whatever the sink left unread is still part of the body and still checked.
            let drained = sunk.and_then(|()| io::copy(&mut reader, &mut io::sink()).map(|_| ()));
            if let Some(e) = reader.failed.take() {
                return Err(EntryError::Decompress(e));
            }
            drained.map_err(EntryError::Restore)?;
            if reader.read != f.size {
                return Err(EntryError::Decompress("body shorter than recorded".into()));
            }
            if Digest(*reader.hasher.finalize().as_bytes()) != f.hash {
                return Err(EntryError::FileHashMismatch {
                    name: f.name.clone(),
                });
            }
        }
        // Nothing may follow the last file: a longer body is not the recorded one.
        let mut probe = [0u8; 1];
        if payload.read(&mut probe).map_err(decompress)? != 0 {
            return Err(EntryError::Decompress("body longer than recorded".into()));
        }
        for (i, f) in meta.files.iter().enumerate() {
            if let Some(within) = f.within {
                if sink.copy(i, f, within).map_err(EntryError::Restore)? != f.hash {
                    return Err(EntryError::FileHashMismatch {
                        name: f.name.clone(),
                    });
                }
            }
        }
        Ok((stdout, stderr))
    }
}

/// Checks that the metadata describes a body of `payload_len` bytes: safe and distinct names,
/// lengths that add up, copies that point inside a stored file.
fn validate(meta: &EntryMeta, payload_len: u64) -> Result<(), EntryError> {
    let bad = |m: &str| EntryError::BadMeta(m.to_string());
    let mut total = meta
        .stdout_len
        .checked_add(meta.stderr_len)
        .filter(|n| *n <= MAX_TEXT)
        .ok_or_else(|| bad("recorded output larger than the limit"))?;
    let mut names = HashSet::new();
    for f in &meta.files {
        if !is_safe_file_name(&f.name) {
            return Err(EntryError::BadMeta(format!(
                "unsafe file name {:?}",
                f.name
            )));
        }
        if !names.insert(f.name.as_str()) {
            return Err(EntryError::BadMeta(format!("file {:?} twice", f.name)));
        }
        match f.within {
            None => {
                total = total
                    .checked_add(f.size)
                    .ok_or_else(|| bad("lengths overflow"))?;
            }
            Some(w) => {
                // Only a file stored in the body can hold another: no chains, no cycles.
                let holder = meta
                    .files
                    .get(w.file)
                    .filter(|h| h.within.is_none())
                    .ok_or_else(|| bad("a file refers to a file that holds no bytes"))?;
                w.offset
                    .checked_add(f.size)
                    .filter(|end| *end <= holder.size)
                    .ok_or_else(|| bad("a file's range exceeds the file holding it"))?;
            }
        }
    }
    if total != payload_len {
        return Err(bad("recorded lengths differ from the body's"));
    }
    Ok(())
}

/// Hashes and counts what is read through it, remembering a read error of the body (so it is
/// not taken for the sink's own failure).
struct Checked<R> {
    inner: R,
    hasher: blake3::Hasher,
    read: u64,
    failed: Option<String>,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = Some(e.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Collects an entry's files in memory (for [`Entry::decode`]).
struct InMemory(Vec<Vec<u8>>);

impl PayloadSink for InMemory {
    fn file(&mut self, index: usize, _: &EntryFile, contents: &mut dyn Read) -> io::Result<()> {
        contents.read_to_end(&mut self.0[index]).map(|_| ())
    }

    fn copy(&mut self, index: usize, file: &EntryFile, within: Within) -> io::Result<Digest> {
        let start = within.offset as usize;
        let bytes = self.0[within.file][start..start + file.size as usize].to_vec();
        let digest = Digest::of(&bytes);
        self.0[index] = bytes;
        Ok(digest)
    }
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

    /// Serializes, compresses and checksums the entry for `key` into memory (tests and small
    /// tools; the wrapper streams with [`EntryWriter`]).
    pub fn encode(&self, key: &Digest, zstd_level: i32) -> Result<Vec<u8>, EntryError> {
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(
            &mut out,
            key,
            zstd_level,
            &self.stdout,
            &self.stderr,
            self.payload_len(),
        )?;
        for (f, bytes) in self.meta.files.iter().zip(&self.contents) {
            match f.within {
                Some(within) => w.add_copy(&f.name, f.mode, within, bytes.len() as u64, f.hash)?,
                None => {
                    w.add_file(&f.name, f.mode, &mut &bytes[..])?;
                }
            }
        }
        w.finish(EntryMeta {
            files: Vec::new(),
            ..self.meta.clone()
        })?;
        Ok(out.into_inner())
    }

    /// Verifies and decodes the entry for `key` whole in memory. Any malformation, or another
    /// key, is an error; nothing partial is returned.
    pub fn decode(bytes: &[u8], key: &Digest) -> Result<Entry, EntryError> {
        EntryHead::read(bytes, key)?.read_all(bytes, MAX_DECOMPRESSED)
    }
}

/// Passes bytes through, hashing and counting them (the compressed body's checksum).
struct Checksummed<W> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes an entry in one pass: stdout and stderr, then each output file read in chunks,
/// hashed and compressed as it goes, then the metadata, then the header (see the module docs).
pub struct EntryWriter<'w, W: Write + Seek> {
    encoder: zstd::stream::write::Encoder<'static, Checksummed<&'w mut W>>,
    key: Digest,
    start: u64,
    body_len: u64,
    stdout_len: u64,
    stderr_len: u64,
    files: Vec<EntryFile>,
    buf: Vec<u8>,
}

impl<'w, W: Write + Seek> EntryWriter<'w, W> {
    /// Starts the entry for `key` at `out`'s current position. `payload_hint` (the expected
    /// total size of the outputs) only chooses whether to compress with two threads.
    pub fn new(
        out: &'w mut W,
        key: &Digest,
        zstd_level: i32,
        stdout: &[u8],
        stderr: &[u8],
        payload_hint: u64,
    ) -> Result<Self, EntryError> {
        let start = out.stream_position()?;
        // Placeholder: the checksum is only known at the end.
        out.write_all(&[0; HEADER_LEN])?;
        let sink = Checksummed {
            inner: out,
            hasher: blake3::Hasher::new(),
            len: 0,
        };
        let mut encoder = zstd::stream::write::Encoder::new(sink, zstd_level)?;
        if payload_hint > PARALLEL_FROM {
            // Large entries finish a build's longest crates, often while a core is idle.
            encoder.multithread(2)?;
        }
        encoder.write_all(stdout)?;
        encoder.write_all(stderr)?;
        Ok(EntryWriter {
            encoder,
            key: *key,
            start,
            body_len: (stdout.len() + stderr.len()) as u64,
            stdout_len: stdout.len() as u64,
            stderr_len: stderr.len() as u64,
            files: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Adds an output file, reading `contents` to its end. Returns its length and hash.
    pub fn add_file(
        &mut self,
        name: &str,
        mode: u32,
        contents: &mut dyn Read,
    ) -> Result<&EntryFile, EntryError> {
        if !is_safe_file_name(name) {
            return Err(EntryError::BadMeta(format!("unsafe file name {name:?}")));
        }
        self.buf.resize(CHUNK, 0);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        loop {
            let n = match contents.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&self.buf[..n]);
            self.encoder.write_all(&self.buf[..n])?;
            size += n as u64;
        }
        self.body_len += size;
        self.files.push(EntryFile {
            name: name.to_string(),
            mode,
            size,
            hash: Digest(*hasher.finalize().as_bytes()),
            within: None,
        });
        Ok(self.files.last().expect("just pushed"))
    }

    /// How many files were added so far (the next file's index in the metadata).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Adds a file whose contents are `size` bytes of an earlier file, as [`Within`] says, with
    /// blake3 `hash`. Nothing is written to the body; the decoder checks the hash as for any
    /// file, so a wrong range is a rejected entry, never wrong bytes.
    pub fn add_copy(
        &mut self,
        name: &str,
        mode: u32,
        within: Within,
        size: u64,
        hash: Digest,
    ) -> Result<(), EntryError> {
        if !is_safe_file_name(name) {
            return Err(EntryError::BadMeta(format!("unsafe file name {name:?}")));
        }
        let holder = self
            .files
            .get(within.file)
            .filter(|h| h.within.is_none())
            .filter(|h| {
                within
                    .offset
                    .checked_add(size)
                    .is_some_and(|end| end <= h.size)
            });
        if holder.is_none() {
            return Err(EntryError::BadMeta(format!(
                "{name} is not inside file {} of the entry",
                within.file
            )));
        }
        self.files.push(EntryFile {
            name: name.to_string(),
            mode,
            size,
            hash,
            within: Some(within),
        });
        Ok(())
    }

    /// Writes the metadata (`meta`'s lengths and files are filled in here) and the header.
    /// Returns the entry's length; `out` is left at its end.
    pub fn finish(mut self, mut meta: EntryMeta) -> Result<u64, EntryError> {
        meta.stdout_len = self.stdout_len;
        meta.stderr_len = self.stderr_len;
        meta.files = std::mem::take(&mut self.files);
        let json = serde_json::to_vec(&meta).map_err(|e| EntryError::BadMeta(e.to_string()))?;
        let meta_len = u32::try_from(json.len())
            .ok()
            .filter(|n| *n <= MAX_META)
            .ok_or_else(|| EntryError::BadMeta("metadata larger than the limit".into()))?;
        let mut sink = self.encoder.finish()?;
        let frame_len = sink.len;
        sink.write_all(&json)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&ENTRY_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&self.body_len.to_le_bytes());
        header.extend_from_slice(&frame_len.to_le_bytes());
        header.extend_from_slice(&meta_len.to_le_bytes());
        header.extend_from_slice(&self.key.0);
        sink.hasher.update(&header);
        header.extend_from_slice(sink.hasher.finalize().as_bytes());
        let out = sink.inner;
        let end = self.start + HEADER_LEN as u64 + frame_len + u64::from(meta_len);
        out.seek(SeekFrom::Start(self.start))?;
        out.write_all(&header)?;
        out.seek(SeekFrom::Start(end))?;
        Ok(end - self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K: Digest = Digest([7; 32]);

    fn sample() -> Entry {
        Entry::new(
            "foo".into(),
            "/t/debug/deps".into(),
            1234,
            b"out".to_vec(),
            b"{\"artifact\":\"/t/debug/deps/libfoo.rmeta\",\"emit\":\"metadata\"}\n".to_vec(),
            vec![
                ("libfoo.rmeta".into(), 0o644, vec![1, 2, 3]),
                ("libfoo.rlib".into(), 0o644, vec![9; 5000]),
            ],
        )
    }

    #[test]
    fn round_trips() {
        let e = sample();
        let bytes = e.encode(&K, 3).unwrap();
        assert_eq!(Entry::decode(&bytes, &K).unwrap(), e);
    }

    #[test]
    fn an_entry_is_bound_to_its_key() {
        // What broke: a server answering K2 with K1's valid entry got it restored.
        let bytes = sample().encode(&K, 1).unwrap();
        let other = Digest([8; 32]);
        assert!(matches!(
            Entry::decode(&bytes, &other),
            Err(EntryError::WrongKey { found }) if found == K
        ));
        // Rewriting the key in the header breaks the checksum.
        let mut forged = bytes;
        forged[KEY_AT..SUM_AT].copy_from_slice(&other.0);
        assert!(matches!(
            Entry::decode(&forged, &other),
            Err(EntryError::ChecksumMismatch)
        ));
    }

    #[test]
    fn rejects_truncation_and_flips() {
        let bytes = sample().encode(&K, 3).unwrap();
        for cut in [0, 5, HEADER_LEN, bytes.len() - 1] {
            assert!(Entry::decode(&bytes[..cut], &K).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Entry::decode(&b, &K).is_err(), "flip at {i}");
        }
    }

    /// A well-formed header and checksum around `payload` and `meta`, as a hostile writer
    /// could produce.
    fn frame_with(payload: &[u8], payload_len: u64, meta: &EntryMeta) -> Vec<u8> {
        let compressed = zstd::encode_all(payload, 1).unwrap();
        let json = serde_json::to_vec(meta).unwrap();
        let mut header = Vec::new();
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&ENTRY_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&payload_len.to_le_bytes());
        header.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
        header.extend_from_slice(&(json.len() as u32).to_le_bytes());
        header.extend_from_slice(&K.0);
        let mut h = blake3::Hasher::new();
        h.update(&compressed);
        h.update(&json);
        h.update(&header);
        header.extend_from_slice(h.finalize().as_bytes());
        header.extend_from_slice(&compressed);
        header.extend_from_slice(&json);
        header
    }

    fn frame(payload: &[u8], meta: &EntryMeta) -> Vec<u8> {
        frame_with(payload, payload.len() as u64, meta)
    }

    #[test]
    fn rejects_unsafe_and_repeated_names_even_with_valid_checksum() {
        let mut meta = sample().meta;
        meta.files.truncate(1);
        meta.files[0].name = "../evil".into();
        let mut payload = b"out".to_vec();
        payload.extend_from_slice(&sample().stderr);
        payload.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            Entry::decode(&frame(&payload, &meta), &K),
            Err(EntryError::BadMeta(_))
        ));
        // The same body with a safe name is accepted: the name alone was refused.
        meta.files[0].name = "libfoo.rmeta".into();
        Entry::decode(&frame(&payload, &meta), &K).unwrap();
        // One name twice would restore one file over the other.
        let mut twice = meta.clone();
        twice.files.push(meta.files[0].clone());
        payload.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            Entry::decode(&frame(&payload, &twice), &K),
            Err(EntryError::BadMeta(_))
        ));
    }

    #[test]
    fn a_small_bomb_is_refused_without_allocating_what_it_claims() {
        // 64 MiB of zeros compress to a few kB; the metadata claims a tiny file.
        let zeros = vec![0u8; 64 << 20];
        let mut meta = sample().meta;
        meta.stdout_len = 0;
        meta.stderr_len = 0;
        meta.files.truncate(1);
        meta.files[0].size = 3;
        meta.files[0].hash = Digest::of(&[0, 0, 0]);
        let bytes = frame_with(&zeros, 3, &meta);
        assert!(bytes.len() < 1 << 20);
        assert!(matches!(
            Entry::decode(&bytes, &K),
            Err(EntryError::Decompress(_))
        ));
        // Claimed as large as it is: streamed, and refused as longer than the files it holds.
        let bytes = frame_with(&zeros, 64 << 20, &meta);
        assert!(matches!(
            Entry::decode(&bytes, &K),
            Err(EntryError::BadMeta(_))
        ));
    }

    #[test]
    fn large_entries_stream_and_round_trip() {
        let big: Vec<u8> = (0..(BULK_MAX as usize + 4096))
            .map(|i| (i % 251) as u8)
            .collect();
        let e = Entry::new(
            "big".into(),
            "/o".into(),
            1,
            b"o".to_vec(),
            b"e".to_vec(),
            vec![("libbig.rlib".into(), 0o644, big)],
        );
        let bytes = e.encode(&K, 1).unwrap();
        assert_eq!(Entry::decode(&bytes, &K).unwrap(), e);
        let mut flipped = bytes.clone();
        let at = bytes.len() / 2;
        flipped[at] ^= 1;
        assert!(Entry::decode(&flipped, &K).is_err());
    }

    /// An entry whose `.rmeta` is stored as a range of its `.rlib`.
    fn with_copy() -> Entry {
        let rmeta: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut rlib = vec![7u8; 3000];
        rlib[1000..2000].copy_from_slice(&rmeta);
        let mut e = Entry::new(
            "foo".into(),
            "/t".into(),
            1,
            Vec::new(),
            Vec::new(),
            vec![
                ("libfoo.rlib".into(), 0o644, rlib),
                ("libfoo.rmeta".into(), 0o644, rmeta),
            ],
        );
        e.meta.files[1].within = Some(Within {
            file: 0,
            offset: 1000,
        });
        e
    }

    #[test]
    fn a_copy_is_stored_once_and_restored() {
        let e = with_copy();
        let bytes = e.encode(&K, 1).unwrap();
        assert_eq!(Entry::decode(&bytes, &K).unwrap(), e);
        let mut plain = e;
        plain.meta.files[1].within = None;
        let payload_len = |b: &[u8]| u64::from_le_bytes(b[12..20].try_into().unwrap());
        // The copy's 1000 bytes are not in the body.
        assert_eq!(
            payload_len(&bytes) + 1000,
            payload_len(&plain.encode(&K, 1).unwrap())
        );
    }

    #[test]
    fn a_wrong_copy_reference_is_rejected() {
        // Offsets that point elsewhere, past the end, or at a file that is itself a copy.
        for within in [
            Within {
                file: 0,
                offset: 999,
            },
            Within {
                file: 0,
                offset: 2001,
            },
            Within { file: 1, offset: 0 },
            Within { file: 9, offset: 0 },
        ] {
            let mut e = with_copy();
            e.meta.files[1].within = Some(within);
            // Bypass the writer's own checks: a hostile or buggy writer.
            assert!(
                Entry::decode(&frame(&e.contents[0], &e.meta), &K).is_err(),
                "{within:?}"
            );
        }
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(&mut out, &K, 1, b"", b"", 0).unwrap();
        w.add_file("a", 0o644, &mut &[1u8; 10][..]).unwrap();
        let outside = Within { file: 0, offset: 5 };
        assert!(w.add_copy("b", 0o644, outside, 6, Digest::of(b"")).is_err());
    }

    #[test]
    fn writer_refuses_unsafe_names() {
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(&mut out, &K, 1, b"", b"", 0).unwrap();
        assert!(w.add_file("../evil", 0o644, &mut &b"x"[..]).is_err());
    }

    #[test]
    fn writes_at_the_current_position_and_reads_from_a_file() {
        let e = sample();
        let mut out = io::Cursor::new(b"prefix".to_vec());
        out.seek(SeekFrom::End(0)).unwrap();
        let mut w = EntryWriter::new(&mut out, &K, 1, &e.stdout, &e.stderr, 0).unwrap();
        for (f, bytes) in e.meta.files.iter().zip(&e.contents) {
            w.add_file(&f.name, f.mode, &mut &bytes[..]).unwrap();
        }
        let len = w
            .finish(EntryMeta {
                files: Vec::new(),
                ..e.meta.clone()
            })
            .unwrap();
        let bytes = out.into_inner();
        assert_eq!(bytes.len() as u64, 6 + len);
        assert_eq!(Entry::decode(&bytes[6..], &K).unwrap(), e);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes[6..]).unwrap();
        let head = EntryHead::read(&file, &K).unwrap();
        let mut sink = InMemory(vec![Vec::new(); 2]);
        head.read_payload(&file, &mut sink).unwrap();
        assert_eq!(sink.0, e.contents);
    }

    #[test]
    fn a_signature_trailer_is_read_and_does_not_change_the_checksum() {
        let bytes = sample().encode(&K, 1).unwrap();
        let head = EntryHead::read(&bytes[..], &K).unwrap();
        let sig = EntrySignature {
            public_key: [1; 32],
            signature: [2; 64],
        };
        let mut signed = bytes.clone();
        signed.extend_from_slice(&sig.to_trailer());
        let signed_head = EntryHead::read(&signed[..], &K).unwrap();
        assert_eq!(signed_head.signature, Some(sig));
        assert_eq!(signed_head.checksum, head.checksum);
        assert_eq!(signed_head.unsigned_len(), bytes.len() as u64);
        signed.push(0);
        assert!(EntryHead::read(&signed[..], &K).is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Entry::decode(&data, &K);
        }

        #[test]
        fn decoder_never_panics_on_framed_garbage(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            // A valid header and checksum around arbitrary compressed bytes: only the inner
            // checks stand between this and a restore.
            let bytes = frame(&data, &sample().meta);
            let _ = Entry::decode(&bytes, &K);
        }

        #[test]
        fn any_entry_round_trips(stdout in proptest::collection::vec(any::<u8>(), 0..64),
                                 stderr in proptest::collection::vec(any::<u8>(), 0..64),
                                 file in proptest::collection::vec(any::<u8>(), 0..256)) {
            let e = Entry::new("c".into(), "/o".into(), 1, stdout, stderr, vec![("f".into(), 0o755, file)]);
            prop_assert_eq!(Entry::decode(&e.encode(&K, 1).unwrap(), &K).unwrap(), e);
        }
    }
}
