//! Writing an entry: rustc's stdout and stderr, then each output streamed in chunks (never
//! whole in memory), then the metadata. A `.rmeta` whose bytes also sit inside the crate's
//! `.rlib` is stored once, as a range of it. An output that changes while it is read abandons
//! the entry.

use std::fs;

use cachet_core::entry::{Compression, EntryError, EntryMeta, EntryWriter, Within};
use cachet_core::Digest;

use super::collect::Output;
use crate::call::NotStored;
use crate::compile;
use crate::file_hash::Fingerprint;
use crate::reason::NotStoredReason;

/// The offset of the first `needle` in `file`, read in chunks.
pub(super) fn find(file: &fs::File, needle: &[u8]) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    if needle.is_empty() {
        return Ok(Some(0));
    }
    let finder = memchr::memmem::Finder::new(needle);
    // Each read keeps the previous chunk's last `needle.len() - 1` bytes in front, so a match
    // across a chunk boundary is found.
    let keep = needle.len() - 1;
    let mut buf = vec![0u8; keep + CHUNK];
    // `start` is the file offset of `buf[0]`.
    let (mut held, mut start) = (0usize, 0u64);
    loop {
        let n = file.read_at(&mut buf[held..held + CHUNK], start + held as u64)?;
        if n == 0 {
            return Ok(None);
        }
        let filled = held + n;
        if let Some(i) = finder.find(&buf[..filled]) {
            return Ok(Some(start + i as u64));
        }
        let next = keep.min(filled);
        start += (filled - next) as u64;
        buf.copy_within(filled - next..filled, 0);
        held = next;
    }
}

/// Whether `file` holds exactly `bytes` at `offset`.
pub(super) fn holds_at(file: &fs::File, offset: u64, bytes: &[u8]) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; bytes.len().min(1 << 20)];
    let mut done = 0;
    while done < bytes.len() {
        let want = (bytes.len() - done).min(buf.len());
        let n = file.read_at(&mut buf[..want], offset + done as u64)?;
        if n == 0 || buf[..n] != bytes[done..done + n] {
            return Ok(false);
        }
        done += n;
    }
    Ok(true)
}

/// For a crate's `.rmeta` whose bytes also sit inside its `.rlib` (rustc writes the same
/// metadata into both), where they are: the entry then stores them once. `None` whenever
/// that cannot be shown byte for byte.
fn rmeta_within_rlib(outputs: &[Output], rmeta: &Output) -> Option<(usize, u64, Vec<u8>)> {
    use std::io::Read;
    let stem = rmeta.name.strip_suffix(".rmeta")?;
    let rlib = outputs
        .iter()
        .position(|o| o.name.strip_suffix(".rlib") == Some(stem))?;
    let mut bytes = Vec::with_capacity(rmeta.fingerprint.size() as usize);
    (&rmeta.file).read_to_end(&mut bytes).ok()?;
    let probe = &bytes[..bytes.len().min(256)];
    if probe.len() < 64 {
        return None;
    }
    let offset = find(&outputs[rlib].file, probe).ok()??;
    holds_at(&outputs[rlib].file, offset, &bytes)
        .ok()?
        .then_some((rlib, offset, bytes))
}

/// Streams the entry into `file`: rustc's stdout and stderr, then each output read in chunks
/// (never whole in memory), then the metadata. An output that changes meanwhile abandons it.
/// The local cache keeps the payload raw: hashing and one copy (see docs/design.md).
pub(super) fn write_entry(
    file: &mut fs::File,
    key: &Digest,
    meta: EntryMeta,
    compiled: &compile::Compiled,
    outputs: &mut [Output],
) -> Result<u64, NotStored> {
    use std::io::{Seek, SeekFrom};
    let payload: u64 = outputs.iter().map(|o| o.fingerprint.size()).sum();
    let entry_error = |e: EntryError| match e {
        EntryError::Compress(io) => NotStored::CacheWrite(io),
        _ => NotStored::Refused(NotStoredReason::EntryNotEncodable),
    };
    let mut writer = EntryWriter::new(
        file,
        key,
        Compression::None,
        &compiled.stdout,
        &compiled.stderr,
        payload,
    )
    .map_err(entry_error)?;
    // Files stored in the body first, then those that are copies of a range of one of them.
    let mut copies = Vec::new();
    let mut index_in_entry = vec![usize::MAX; outputs.len()];
    for (i, o) in outputs.iter().enumerate() {
        if let Some((holder, offset, bytes)) = rmeta_within_rlib(outputs, o) {
            copies.push((i, holder, offset, bytes));
        }
    }
    for (i, o) in outputs.iter_mut().enumerate() {
        if copies.iter().any(|c| c.0 == i) {
            continue;
        }
        let unreadable = |_| NotStored::Refused(NotStoredReason::OutputUnreadable);
        o.file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        // A read error of an output is not the cache's fault: tell the two apart.
        let mut reader = ReadErrors {
            inner: &o.file,
            failed: false,
        };
        let written = writer.add_file(&o.name, o.mode, &mut reader);
        if reader.failed {
            return Err(NotStored::Refused(NotStoredReason::OutputUnreadable));
        }
        let size = written.map_err(entry_error)?.size;
        index_in_entry[i] = writer.file_count() - 1;
        let now = o.file.metadata().map_err(unreadable)?;
        if size != o.fingerprint.size() || Fingerprint::of(&now) != o.fingerprint {
            return Err(NotStored::Refused(
                NotStoredReason::OutputModifiedWhileStored,
            ));
        }
    }
    for (i, holder, offset, bytes) in copies {
        let o = &outputs[i];
        let within = Within {
            file: index_in_entry[holder],
            offset,
        };
        let hash = Digest::of(&bytes);
        writer
            .add_copy(&o.name, o.mode, within, bytes.len() as u64, hash)
            .map_err(entry_error)?;
        let now = o.file.metadata();
        if bytes.len() as u64 != o.fingerprint.size()
            || now.map(|m| Fingerprint::of(&m)).ok() != Some(o.fingerprint)
        {
            return Err(NotStored::Refused(
                NotStoredReason::OutputModifiedWhileStored,
            ));
        }
    }
    writer.finish(meta).map_err(entry_error)
}

/// Remembers whether reading failed, so a read error is not taken for a cache write error.
struct ReadErrors<'f> {
    inner: &'f fs::File,
    failed: bool,
}

impl std::io::Read for ReadErrors<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::Interrupted) {
            self.failed = true;
        }
        r
    }
}
