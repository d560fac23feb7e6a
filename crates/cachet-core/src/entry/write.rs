//! Writing an entry in one pass ([`EntryWriter`]): outputs are read in chunks, hashed and
//! compressed (or copied, for a raw entry) as they go, and the header is written last, once
//! the checksum is known.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::format::{
    is_safe_file_name, Compression, Entry, EntryError, EntryFile, EntryMeta, Within, CHUNK,
    ENTRY_FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_META, PARALLEL_FROM, RAW_FORMAT_VERSION,
};
use crate::Digest;

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

impl<W: Write> Checksummed<W> {
    /// Writes bytes that the checksum does not cover (a raw entry's files, bound to it by
    /// their own hashes in the metadata).
    fn write_unsummed(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.len += buf.len() as u64;
        Ok(())
    }
}

/// Where the payload goes: through a zstd encoder, or straight to the entry.
enum Body<'w, W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, Checksummed<&'w mut W>>),
    Raw(Checksummed<&'w mut W>),
}

/// Writes an entry in one pass: stdout and stderr, then each output file read in chunks,
/// hashed and compressed (or copied) as it goes, then the metadata, then the header (see the
/// module docs).
pub struct EntryWriter<'w, W: Write + Seek> {
    body: Body<'w, W>,
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
        compression: Compression,
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
        let body = match compression {
            Compression::None => {
                let mut sink = sink;
                // Summed: the checksum covers the texts (files are bound by their hashes).
                sink.write_all(stdout)?;
                sink.write_all(stderr)?;
                Body::Raw(sink)
            }
            Compression::Zstd(level) => {
                let mut encoder = zstd::stream::write::Encoder::new(sink, level)?;
                if payload_hint > PARALLEL_FROM {
                    // Large entries finish a build's longest crates, often while a core is idle.
                    encoder.multithread(2)?;
                }
                encoder.write_all(stdout)?;
                encoder.write_all(stderr)?;
                Body::Zstd(encoder)
            }
        };
        Ok(EntryWriter {
            body,
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
            match &mut self.body {
                Body::Zstd(encoder) => encoder.write_all(&self.buf[..n])?,
                Body::Raw(sink) => sink.write_unsummed(&self.buf[..n])?,
            }
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
        let (mut sink, version) = match self.body {
            Body::Zstd(encoder) => (encoder.finish()?, ENTRY_FORMAT_VERSION),
            Body::Raw(sink) => (sink, RAW_FORMAT_VERSION),
        };
        let frame_len = sink.len;
        sink.write_all(&json)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&version.to_le_bytes());
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

impl Entry {
    /// Serializes, compresses and checksums the entry for `key` into memory (tests and small
    /// tools; the wrapper streams with [`EntryWriter`]).
    pub fn encode(&self, key: &Digest, zstd_level: i32) -> Result<Vec<u8>, EntryError> {
        self.encode_as(key, Compression::Zstd(zstd_level))
    }

    /// As [`Entry::encode`], with the payload stored as `compression` says.
    pub fn encode_as(&self, key: &Digest, compression: Compression) -> Result<Vec<u8>, EntryError> {
        let mut out = io::Cursor::new(Vec::new());
        let mut w = EntryWriter::new(
            &mut out,
            key,
            compression,
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
}
