//! Reading an entry: from any [`ReadAt`] source, the header, key and checksum are checked
//! first ([`EntryHead::read`]), then the payload is handed file by file to a [`PayloadSink`].

use std::collections::HashSet;
use std::io::{self, Read};

use super::format::{
    is_safe_file_name, Entry, EntryError, EntryFile, EntryMeta, EntrySignature, Within, BULK_MAX,
    CHUNK, ENTRY_FORMAT_VERSION, HEADER_LEN, KEY_AT, MAGIC, MAX_DECOMPRESSED, MAX_META, MAX_TEXT,
    RAW_FORMAT_VERSION, SIG_LEN, SIG_MAGIC, SUM_AT,
};
use crate::Digest;

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
pub(super) struct RangeReader<'s, S: ?Sized> {
    pub(super) src: &'s S,
    pub(super) pos: u64,
    pub(super) end: u64,
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

/// Feeds `[from, to)` of `src` to `hasher`, in chunks unless `src` is in memory.
fn hash_range<S: ReadAt + ?Sized>(
    src: &S,
    hasher: &mut blake3::Hasher,
    from: u64,
    to: u64,
) -> io::Result<()> {
    if let Some(bytes) = src.as_slice() {
        hasher.update(&bytes[from as usize..to as usize]);
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK.min((to - from) as usize)];
    let mut at = from;
    while at < to {
        let want = (to - at).min(CHUNK as u64) as usize;
        read_exact_at(src, &mut buf[..want], at)?;
        hasher.update(&buf[..want]);
        at += want as u64;
    }
    Ok(())
}

pub(super) fn read_exact_at<S: ReadAt + ?Sized>(
    src: &S,
    buf: &mut [u8],
    offset: u64,
) -> io::Result<()> {
    let end = offset + buf.len() as u64;
    RangeReader {
        src,
        pos: offset,
        end,
    }
    .read_exact(buf)
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
    raw: bool,
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
        if version != ENTRY_FORMAT_VERSION && version != RAW_FORMAT_VERSION {
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
        if meta_len > MAX_META {
            return Err(EntryError::BadMeta("metadata larger than the limit".into()));
        }
        if payload_len > MAX_DECOMPRESSED {
            return Err(EntryError::Decompress(
                "entry is larger than the limit".into(),
            ));
        }
        let raw = version == RAW_FORMAT_VERSION;
        if raw && frame_len != payload_len {
            return Err(EntryError::ChecksumMismatch);
        }
        let mut meta_bytes = vec![0u8; meta_len as usize];
        read_exact_at(src, &mut meta_bytes, HEADER_LEN as u64 + frame_len).map_err(io_err)?;
        let parse = |bytes: &[u8]| -> Result<EntryMeta, EntryError> {
            serde_json::from_slice(bytes).map_err(|e| EntryError::BadMeta(e.to_string()))
        };
        let mut hasher = blake3::Hasher::new();
        let meta = if raw {
            // The checksum covers the texts, then the metadata: its lengths say where the
            // texts end (parsed before they are checked; a lie fails the checksum below).
            let meta = parse(&meta_bytes)?;
            let texts_end = meta
                .stdout_len
                .checked_add(meta.stderr_len)
                .filter(|n| *n <= MAX_TEXT && *n <= payload_len)
                .ok_or(EntryError::ChecksumMismatch)?;
            let at = HEADER_LEN as u64;
            hash_range(src, &mut hasher, at, at + texts_end).map_err(io_err)?;
            hasher.update(&meta_bytes);
            Some(meta)
        } else {
            hash_range(src, &mut hasher, HEADER_LEN as u64, body_end).map_err(io_err)?;
            None
        };
        hasher.update(&header[..SUM_AT]);
        let checksum = Digest(*hasher.finalize().as_bytes());
        if checksum.0[..] != header[SUM_AT..] {
            return Err(EntryError::ChecksumMismatch);
        }
        let meta = match meta {
            Some(meta) => meta,
            None => parse(&meta_bytes)?,
        };
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
            raw,
        })
    }

    /// True when the payload is stored raw ([`RAW_FORMAT_VERSION`]), not compressed.
    pub fn is_raw(&self) -> bool {
        self.raw
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

    /// Decompresses (or, raw, reads) the payload of `src` (the source [`EntryHead::read`]
    /// checked), handing every file to `sink` and checking its hash. Returns stdout and stderr.
    pub fn read_payload<S: ReadAt + ?Sized>(
        &self,
        src: &S,
        sink: &mut dyn PayloadSink,
    ) -> Result<(Vec<u8>, Vec<u8>), EntryError> {
        let frame_at = HEADER_LEN as u64;
        let frame_end = frame_at + self.frame_len;
        let bulk = self.payload_len <= BULK_MAX && self.frame_len <= BULK_MAX;
        let decompress = |e: io::Error| EntryError::Decompress(e.to_string());
        let mut payload: Box<dyn Read + '_> = if self.raw {
            match src.as_slice() {
                Some(bytes) => Box::new(&bytes[frame_at as usize..frame_end as usize]),
                None => Box::new(RangeReader {
                    src,
                    pos: frame_at,
                    end: frame_end,
                }),
            }
        } else if bulk {
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
pub(super) struct InMemory(pub(super) Vec<Vec<u8>>);

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
    /// Verifies and decodes the entry for `key` whole in memory. Any malformation, or another
    /// key, is an error; nothing partial is returned.
    pub fn decode(bytes: &[u8], key: &Digest) -> Result<Entry, EntryError> {
        EntryHead::read(bytes, key)?.read_all(bytes, MAX_DECOMPRESSED)
    }
}
