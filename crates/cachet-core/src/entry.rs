//! The cache entry: everything one rustc invocation produced, in one checksummed file.
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
//! length    u64      length of the body once decompressed
//! checksum  32 bytes blake3 of everything after this field
//! body      zstd frame of:
//!             stdout bytes, stderr bytes, then each file's bytes in meta order,
//!             meta (JSON, EntryMeta), u32 meta length
//! ```
//!
//! The metadata comes last so that [`EntryWriter`] can write an entry in one pass: each output
//! file is read in small chunks, hashed and compressed on the way, and the compressed frame
//! goes straight to its file. Storing a 40 MB program therefore allocates nothing in
//! proportion to it, which matters on a cold build where every crate is stored while the
//! cores are busy compiling. The header is written last, once the checksum is known.
//!
//! The body is decompressed in one piece (zstd's bulk API into a buffer of the recorded
//! length): on a hit that is more than twice as fast as zstd's streaming reader.
//!
//! The checksum covers the compressed body, so a truncated or flipped entry is rejected
//! before it is even decompressed; each file additionally carries its own blake3 so a decoder
//! bug can never restore bytes that differ from what rustc wrote. Decoding never trusts a
//! length it has not bounded: a malformed entry is an error, never a panic or a restore.

use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use crate::Digest;

/// Bumped whenever the layout or the meaning of a field changes; old entries then miss.
pub const ENTRY_FORMAT_VERSION: u32 = 3;
const MAGIC: &[u8; 8] = b"CACHETE\0";
const HEADER_LEN: usize = 8 + 4 + 8 + 32;
const SUM_AT: usize = 8 + 4 + 8;
/// Entries whose outputs are larger than this are compressed by two threads.
const PARALLEL_FROM: u64 = 8 << 20;
/// Size of the chunks output files are read and compressed in.
const CHUNK: usize = 256 << 10;
/// Entries larger than this once decompressed are refused (no single rustc run writes more).
pub const MAX_DECOMPRESSED: u64 = 8 << 30;

/// Metadata stored at the front of every entry.
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

/// A decoded entry.
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

/// Why an entry could not be decoded. Every variant means "treat as a miss and remove it".
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

    /// Serializes, compresses and checksums the entry into memory (tests and small tools;
    /// the wrapper streams with [`EntryWriter`]).
    pub fn encode(&self, zstd_level: i32) -> Result<Vec<u8>, EntryError> {
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(
            &mut out,
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

    /// Verifies and decodes an entry. Any malformation is an error; nothing partial is returned.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(EntryError::BadMagic);
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != ENTRY_FORMAT_VERSION {
            return Err(EntryError::UnsupportedVersion { found: version });
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[12..SUM_AT]);
        let body_len = u64::from_le_bytes(len);
        let sum = blake3::hash(&bytes[HEADER_LEN..]);
        if sum.as_bytes() != &bytes[SUM_AT..HEADER_LEN] {
            return Err(EntryError::ChecksumMismatch);
        }
        if body_len > MAX_DECOMPRESSED {
            return Err(EntryError::Decompress(
                "entry is larger than the limit".into(),
            ));
        }
        let body = zstd::bulk::decompress(&bytes[HEADER_LEN..], body_len as usize)
            .map_err(|e| EntryError::Decompress(e.to_string()))?;
        if body.len() as u64 != body_len {
            return Err(EntryError::Decompress(
                "body length differs from the header".into(),
            ));
        }
        Self::decode_body(&body)
    }

    fn decode_body(body: &[u8]) -> Result<Entry, EntryError> {
        let bad = |m: &str| EntryError::BadMeta(m.to_string());
        let Some(len_at) = body.len().checked_sub(4) else {
            return Err(bad("body shorter than its length suffix"));
        };
        let (rest, len) = body.split_at(len_at);
        let meta_len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(meta_at) = rest.len().checked_sub(meta_len) else {
            return Err(bad("metadata length exceeds the body"));
        };
        let meta: EntryMeta = serde_json::from_slice(&rest[meta_at..])
            .map_err(|e| EntryError::BadMeta(e.to_string()))?;
        let mut data = &rest[..meta_at];
        let mut take = |len: u64| -> Result<Vec<u8>, EntryError> {
            if len > data.len() as u64 {
                return Err(bad("a recorded length exceeds the body"));
            }
            let (head, tail) = data.split_at(len as usize);
            data = tail;
            Ok(head.to_vec())
        };
        let stdout = take(meta.stdout_len)?;
        let stderr = take(meta.stderr_len)?;
        let mut contents = Vec::with_capacity(meta.files.len());
        for f in &meta.files {
            if !is_safe_file_name(&f.name) {
                return Err(EntryError::BadMeta(format!(
                    "unsafe file name {:?}",
                    f.name
                )));
            }
            contents.push(match f.within {
                Some(_) => Vec::new(),
                None => take(f.size)?,
            });
        }
        for (i, f) in meta.files.iter().enumerate() {
            if let Some(w) = f.within {
                // Only a file stored in the body can hold another: no chains, no cycles.
                let holder = meta
                    .files
                    .get(w.file)
                    .filter(|h| h.within.is_none())
                    .ok_or_else(|| bad("a file refers to a file that holds no bytes"))?;
                let range = w
                    .offset
                    .checked_add(f.size)
                    .filter(|end| *end <= holder.size)
                    .map(|end| w.offset as usize..end as usize)
                    .ok_or_else(|| bad("a file's range exceeds the file holding it"))?;
                contents[i] = contents[w.file][range].to_vec();
            }
            if Digest::of(&contents[i]) != f.hash {
                return Err(EntryError::FileHashMismatch {
                    name: f.name.clone(),
                });
            }
        }
        if !data.is_empty() {
            return Err(bad("bytes between the last file and the metadata"));
        }
        Ok(Entry {
            meta,
            stdout,
            stderr,
            contents,
        })
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
    start: u64,
    body_len: u64,
    stdout_len: u64,
    stderr_len: u64,
    files: Vec<EntryFile>,
    buf: Vec<u8>,
}

impl<'w, W: Write + Seek> EntryWriter<'w, W> {
    /// Starts an entry at `out`'s current position. `payload_hint` (the expected total size of
    /// the outputs) only chooses whether to compress with two threads.
    pub fn new(
        out: &'w mut W,
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
        let json_len = u32::try_from(json.len())
            .map_err(|_| EntryError::BadMeta("metadata larger than 4 GiB".into()))?;
        self.encoder.write_all(&json)?;
        self.encoder.write_all(&json_len.to_le_bytes())?;
        let body_len = self.body_len + json.len() as u64 + 4;
        let sink = self.encoder.finish()?;
        let (out, sum, compressed_len) = (sink.inner, sink.hasher.finalize(), sink.len);
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&ENTRY_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&body_len.to_le_bytes());
        header.extend_from_slice(sum.as_bytes());
        let end = self.start + HEADER_LEN as u64 + compressed_len;
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
        let bytes = e.encode(3).unwrap();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn rejects_truncation_and_flips() {
        let bytes = sample().encode(3).unwrap();
        for cut in [0, 5, HEADER_LEN, bytes.len() - 1] {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(Entry::decode(&b).is_err(), "flip at {i}");
        }
    }

    /// A well-formed header and checksum around `body`, as a hostile writer could produce.
    fn frame(body: &[u8]) -> Vec<u8> {
        let compressed = zstd::encode_all(body, 1).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&ENTRY_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(blake3::hash(&compressed).as_bytes());
        bytes.extend_from_slice(&compressed);
        bytes
    }

    #[test]
    fn rejects_unsafe_names_even_with_valid_checksum() {
        let mut meta = sample().meta;
        meta.files.truncate(1);
        meta.files[0].name = "../evil".into();
        let json = serde_json::to_vec(&meta).unwrap();
        let mut body = b"out".to_vec();
        body.extend_from_slice(&sample().stderr);
        body.extend_from_slice(&[1, 2, 3]);
        let payload_len = body.len();
        body.extend_from_slice(&json);
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        assert!(matches!(
            Entry::decode(&frame(&body)),
            Err(EntryError::BadMeta(_))
        ));
        // The same body with a safe name is accepted: the name alone was refused.
        meta.files[0].name = "libfoo.rmeta".into();
        let json = serde_json::to_vec(&meta).unwrap();
        body.truncate(payload_len);
        body.extend_from_slice(&json);
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        Entry::decode(&frame(&body)).unwrap();
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
        let bytes = e.encode(1).unwrap();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        let mut plain = e;
        plain.meta.files[1].within = None;
        let body_len = |b: &[u8]| u64::from_le_bytes(b[12..20].try_into().unwrap());
        // The copy's 1000 bytes are not in the body (its metadata grows by the reference only).
        assert!(body_len(&bytes) + 900 < body_len(&plain.encode(1).unwrap()));
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
            let json = serde_json::to_vec(&e.meta).unwrap();
            let mut body = e.contents[0].clone();
            body.extend_from_slice(&json);
            body.extend_from_slice(&(json.len() as u32).to_le_bytes());
            assert!(Entry::decode(&frame(&body)).is_err(), "{within:?}");
        }
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(&mut out, 1, b"", b"", 0).unwrap();
        w.add_file("a", 0o644, &mut &[1u8; 10][..]).unwrap();
        let outside = Within { file: 0, offset: 5 };
        assert!(w.add_copy("b", 0o644, outside, 6, Digest::of(b"")).is_err());
    }

    #[test]
    fn writer_refuses_unsafe_names() {
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(&mut out, 1, b"", b"", 0).unwrap();
        assert!(w.add_file("../evil", 0o644, &mut &b"x"[..]).is_err());
    }

    #[test]
    fn writes_at_the_current_position() {
        let e = sample();
        let mut out = io::Cursor::new(b"prefix".to_vec());
        out.seek(SeekFrom::End(0)).unwrap();
        let mut w = EntryWriter::new(&mut out, 1, &e.stdout, &e.stderr, 0).unwrap();
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
        assert_eq!(Entry::decode(&bytes[6..]).unwrap(), e);
    }

    proptest! {
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Entry::decode(&data);
        }

        #[test]
        fn decoder_never_panics_on_framed_garbage(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            // A valid header and checksum around arbitrary compressed bytes: only the inner
            // checks stand between this and a restore.
            let bytes = frame(&data);
            let _ = Entry::decode(&bytes);
        }

        #[test]
        fn any_entry_round_trips(stdout in proptest::collection::vec(any::<u8>(), 0..64),
                                 stderr in proptest::collection::vec(any::<u8>(), 0..64),
                                 file in proptest::collection::vec(any::<u8>(), 0..256)) {
            let e = Entry::new("c".into(), "/o".into(), 1, stdout, stderr, vec![("f".into(), 0o755, file)]);
            prop_assert_eq!(Entry::decode(&e.encode(1).unwrap()).unwrap(), e);
        }
    }
}
