//! Reading an object's file for a GET: on the async worker when the kernel can answer from its
//! caches, on a blocking thread when it would have to wait for the disk.
//!
//! Handing every read to Tokio's blocking pool (what this replaced) cost a thread wake-up and a
//! wake-up back per GET, and per 256 KiB chunk of a large object: at 64 clients on two cores
//! about 7 futex calls per GET, and the largest part of the CPU cachet spent per small GET
//! beyond nginx's. An object a build cache serves is usually in the page cache, so each step is
//! first tried in a form the kernel refuses rather than blocks: the path is opened with
//! `openat2(RESOLVE_CACHED)` (fails with `EAGAIN` unless every path component is in the dentry
//! cache) and read with `preadv2(RWF_NOWAIT)` (fails with `EAGAIN`, or reads short, unless the
//! pages are cached). Whatever is refused is finished on a blocking thread, from where the fast
//! path stopped, so a cold object costs what it did before. A kernel or file system without
//! these flags (before Linux 5.12; `EOPNOTSUPP`) turns the fast path off for the process.
//!
//! Read buffers are zeroed (a `preadv2` needs initialized memory; this crate has no unsafe
//! code): for small objects that is nothing next to a thread hand-off. Large objects are sent in
//! chunks, each read straight into the buffer handed to hyper (no copy); larger chunks would
//! save reads but cost memory per connection: hyper holds a chunk while it writes and asks for
//! the next one once its buffer drains (1 MiB chunks doubled the peak RSS of 64 clients reading
//! 16 MiB objects). sendfile, which nginx uses, is out of reach through hyper's body API.

use std::fs;
use std::io::{self, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use rustix::io::{Errno, ReadWriteFlags};

use super::inner::io_err;
use crate::storage::{ObjectMeta, StoreError};

/// Objects up to this size are read whole and sent as one chunk.
pub(super) const FULL_READ_LIMIT: u64 = 1 << 20;
/// Chunk size when streaming objects too large to read whole.
pub(super) const STREAM_CHUNK: u64 = 256 << 10;

/// Set once the kernel or the file system refused `RESOLVE_CACHED` or `RWF_NOWAIT` as
/// unsupported: every read then goes to a blocking thread.
static NO_FAST_PATH: AtomicBool = AtomicBool::new(false);

/// An object's file as a GET found it.
pub(super) enum Opened {
    /// No such object.
    Missing,
    /// Read whole (objects up to [`FULL_READ_LIMIT`]).
    Whole(ObjectMeta, Bytes),
    /// Open, to be streamed.
    Large(ObjectMeta, fs::File),
}

/// Opens the object at `path` and reads it whole if it is small, without blocking where the
/// kernel's caches allow; the rest on a blocking thread.
pub(super) async fn open(path: PathBuf) -> Result<Opened, StoreError> {
    let file = match open_cached(&path) {
        Cached::Missing => return Ok(Opened::Missing),
        Cached::File(file) => file,
        Cached::WouldBlock => {
            return tokio::task::spawn_blocking(move || open_blocking(&path)).await?;
        }
    };
    let meta = metadata(&file).map_err(io_err("stat", &path))?;
    if meta.size > FULL_READ_LIMIT {
        return Ok(Opened::Large(meta, file));
    }
    let mut buf = vec![0u8; meta.size as usize];
    let filled = read_nowait(&file, &mut buf, 0).map_err(io_err("read", &path))?;
    if filled == buf.len() {
        return Ok(Opened::Whole(meta, Bytes::from(buf)));
    }
    tokio::task::spawn_blocking(move || {
        finish(&file, &mut buf, filled, 0).map_err(io_err("read", &path))?;
        Ok(Opened::Whole(meta, Bytes::from(buf)))
    })
    .await?
}

/// [`open`] on a blocking thread, for a path the dentry cache could not resolve.
fn open_blocking(path: &Path) -> Result<Opened, StoreError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
        Err(err) => return Err(io_err("open", path)(err)),
    };
    let meta = metadata(&file).map_err(io_err("stat", path))?;
    if meta.size > FULL_READ_LIMIT {
        return Ok(Opened::Large(meta, file));
    }
    let mut buf = vec![0u8; meta.size as usize];
    finish(&file, &mut buf, 0, 0).map_err(io_err("read", path))?;
    Ok(Opened::Whole(meta, Bytes::from(buf)))
}

fn metadata(file: &fs::File) -> io::Result<ObjectMeta> {
    let m = file.metadata()?;
    Ok(ObjectMeta {
        size: m.len(),
        modified: m.modified().unwrap_or(UNIX_EPOCH),
    })
}

enum Cached {
    File(fs::File),
    Missing,
    /// Not in the dentry cache (or no fast path): open on a blocking thread.
    WouldBlock,
}

/// Opens `path` only if every component is in the dentry cache. A missing object answers
/// `ENOENT` from a cached negative entry just as well; any other error is left to the blocking
/// path, which reports it.
fn open_cached(path: &Path) -> Cached {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    if NO_FAST_PATH.load(Ordering::Relaxed) {
        return Cached::WouldBlock;
    }
    match openat2(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::CACHED,
    ) {
        Ok(fd) => Cached::File(fs::File::from(fd)),
        Err(Errno::NOENT) => Cached::Missing,
        Err(Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP | Errno::PERM) => {
            NO_FAST_PATH.store(true, Ordering::Relaxed);
            Cached::WouldBlock
        }
        Err(_) => Cached::WouldBlock,
    }
}

/// Reads into `buf` from `offset` what the page cache holds, stopping at the first page it
/// does not; returns the bytes read. A file shorter than `buf` is an error.
fn read_nowait(file: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() && !NO_FAST_PATH.load(Ordering::Relaxed) {
        let at = offset + filled as u64;
        let mut slices = [IoSliceMut::new(&mut buf[filled..])];
        match rustix::io::preadv2(file, &mut slices, at, ReadWriteFlags::NOWAIT) {
            Ok(0) => return Err(shorter()),
            Ok(n) => filled += n,
            Err(Errno::AGAIN) => break,
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => {
                NO_FAST_PATH.store(true, Ordering::Relaxed);
            }
            Err(Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(filled)
}

/// Reads the rest of `buf` (from `filled`) at `offset + filled`, blocking.
fn finish(file: &fs::File, buf: &mut [u8], filled: usize, offset: u64) -> io::Result<()> {
    file.read_exact_at(&mut buf[filled..], offset + filled as u64)
        .map_err(|err| {
            if err.kind() == io::ErrorKind::UnexpectedEof {
                shorter()
            } else {
                err
            }
        })
}

fn shorter() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the object's file is shorter than when it was opened",
    )
}

/// The `size` bytes of `file`, in chunks of at most [`STREAM_CHUNK`]. A file shorter than
/// `size` ends the stream with an error (never a short body that looks whole).
pub(super) fn chunks(file: fs::File, size: u64) -> BoxStream<'static, io::Result<Bytes>> {
    let file = Arc::new(file);
    futures_util::stream::try_unfold(0u64, move |offset| {
        let file = file.clone();
        async move {
            if offset >= size {
                return Ok(None);
            }
            let mut buf = vec![0u8; (size - offset).min(STREAM_CHUNK) as usize];
            let filled = read_nowait(&file, &mut buf, offset)?;
            if filled < buf.len() {
                buf = tokio::task::spawn_blocking(move || {
                    finish(&file, &mut buf, filled, offset).map(|()| buf)
                })
                .await
                .map_err(io::Error::other)??;
            }
            let next = offset + buf.len() as u64;
            Ok(Some((Bytes::from(buf), next)))
        }
    })
    .boxed()
}
