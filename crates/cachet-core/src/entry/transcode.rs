//! Compressing a raw entry for the server: the local cache keeps new entries raw (a miss pays
//! one copy, a hit no decompression), the server and every client read the compressed format,
//! so an upload writes the same entry again with a zstd frame. The files are read from the raw
//! entry and checked against their hashes on the way: a damaged local entry is an error, never
//! an upload.

use std::io::{Seek, Write};

use super::format::{Compression, EntryError, EntryMeta, Within, HEADER_LEN};
use super::read::{read_exact_at, EntryHead, RangeReader, ReadAt};
use super::write::EntryWriter;
use crate::Digest;

impl EntryHead {
    /// Writes the raw entry `src` (the source this head was read from) to `out` in the
    /// compressed format at zstd `level`, unsigned. Returns its length.
    pub fn compress_to<S: ReadAt + ?Sized, W: Write + Seek>(
        &self,
        src: &S,
        out: &mut W,
        level: i32,
    ) -> Result<u64, EntryError> {
        if !self.is_raw() {
            return Err(EntryError::BadMeta(
                "the entry is compressed already".into(),
            ));
        }
        let meta = &self.meta;
        let mut texts = vec![0u8; (meta.stdout_len + meta.stderr_len) as usize];
        read_exact_at(src, &mut texts, HEADER_LEN as u64).map_err(EntryError::Restore)?;
        let (stdout, stderr) = texts.split_at(meta.stdout_len as usize);
        let payload = self.meta.files.iter().map(|f| f.size).sum();
        let mut w = EntryWriter::new(
            out,
            &self.key,
            Compression::Zstd(level),
            stdout,
            stderr,
            payload,
        )?;
        // Stored files first (in their order in the body), then the copies of a range of one.
        let mut pos = HEADER_LEN as u64 + texts.len() as u64;
        let mut placed = vec![None; meta.files.len()];
        for (i, f) in meta.files.iter().enumerate() {
            if f.within.is_some() {
                continue;
            }
            let mut contents = RangeReader {
                src,
                pos,
                end: pos + f.size,
            };
            let written = w.add_file(&f.name, f.mode, &mut contents)?;
            if written.size != f.size || written.hash != f.hash {
                return Err(EntryError::FileHashMismatch {
                    name: f.name.clone(),
                });
            }
            placed[i] = Some((w.file_count() - 1, pos));
            pos += f.size;
        }
        for f in &meta.files {
            let Some(within) = f.within else { continue };
            let (file, start) = placed
                .get(within.file)
                .copied()
                .flatten()
                .ok_or_else(|| EntryError::BadMeta("a copy of a file not stored".into()))?;
            let mut hasher = blake3::Hasher::new();
            let from = start + within.offset;
            let mut range = RangeReader {
                src,
                pos: from,
                end: from + f.size,
            };
            std::io::copy(&mut range, &mut hasher).map_err(EntryError::Restore)?;
            if Digest(*hasher.finalize().as_bytes()) != f.hash {
                return Err(EntryError::FileHashMismatch {
                    name: f.name.clone(),
                });
            }
            let within = Within {
                file,
                offset: within.offset,
            };
            w.add_copy(&f.name, f.mode, within, f.size, f.hash)?;
        }
        w.finish(EntryMeta {
            files: Vec::new(),
            ..meta.clone()
        })
    }
}
