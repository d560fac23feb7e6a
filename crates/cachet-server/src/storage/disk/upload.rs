//! Uploads into the disk store: bytes are buffered, written to a temporary file in `tmp/` on a
//! blocking thread, and the file is renamed into `objects-v1/` on commit.
//!
//! The temporary file and the bytes of `--max-size` reserved for it are one value, [`TmpFile`],
//! whose drop deletes the file and gives the bytes back unless it became an object. Each write
//! moves the `TmpFile` to the blocking thread that does it and back: an upload cancelled while
//! a write is in flight (its connection closed) is cleaned up when that write ends, by whoever
//! holds the `TmpFile` then. This replaced bookkeeping split between the upload and the
//! blocking task, which leaked twice: a reservation taken for a write that then failed (a full
//! disk) or was cancelled was never given back, so after enough of them uploads in progress
//! seemed to hold the whole `--max-size` and every upload got 507 for good; and a cancelled
//! upload's delete could run before the blocking task created the file, leaving it in `tmp/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::index::now_millis;
use super::inner::{delete_files, io_err, is_no_space, store_err, Inner, NO_SPACE_SLACK};
use crate::storage::{BoxFuture, ObjectId, StoreError, Upload};

/// Uploads are buffered up to this size between writes to the temporary file.
pub const WRITE_BUFFER: usize = 1 << 20;

/// An upload's temporary file and the bytes of `--max-size` it holds; see the module docs.
pub(super) struct TmpFile {
    inner: Arc<Inner>,
    path: PathBuf,
    /// Created by the first write.
    file: Option<fs::File>,
    /// Bytes written to the file.
    written: u64,
    /// Bytes reserved in the index: what was written, and what a failed write meant to write.
    reserved: u64,
    /// Set once the file became an object: drop leaves the file and the index alone.
    committed: bool,
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.file.take().is_some() {
            if let Err(err) = fs::remove_file(&self.path) {
                if err.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), cause = %err, "failed to delete");
                }
            }
        }
        self.inner.release(std::mem::take(&mut self.reserved));
    }
}

impl TmpFile {
    pub(super) fn new(inner: Arc<Inner>) -> TmpFile {
        TmpFile {
            path: inner.tmp_path(),
            inner,
            file: None,
            written: 0,
            reserved: 0,
            committed: false,
        }
    }

    /// Reserves room for `buf` under `--max-size` (evicting as needed) and appends it to the
    /// file, creating it first. Blocking.
    pub(super) fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.inner.reserve(buf.len() as u64)?;
        self.reserved += buf.len() as u64;
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = fs::File::create(&self.path).map_err(store_err(
                    &self.inner,
                    "create",
                    &self.path,
                ))?;
                self.file.insert(f)
            }
        };
        self.inner.write_making_room(file, &self.path, buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Renames the file to `id`'s object and indexes it: its reservation becomes the object.
    /// Blocking.
    pub(super) fn commit(&mut self, id: &ObjectId) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let dest = inner.path(id);
        let mut idx = inner.lock_index();
        if let Err(err) = fs::rename(&self.path, &dest) {
            if err.kind() != std::io::ErrorKind::NotFound {
                return Err(io_err("rename into", &dest)(err));
            }
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(store_err(&inner, "create", parent))?;
            }
            fs::rename(&self.path, &dest).map_err(io_err("rename into", &dest))?;
        }
        self.committed = true;
        inner
            .committed_bytes
            .fetch_add(self.written, Ordering::Relaxed);
        idx.release(std::mem::take(&mut self.reserved));
        let slot = inner.slot(&mut idx, id);
        idx.upsert(slot, self.written, now_millis());
        let retired = inner.evict_over_limit(&mut idx);
        drop(idx);
        delete_files(&retired);
        inner.disk_full.store(false, Ordering::Relaxed);
        Ok(())
    }
}

impl Inner {
    /// Evicts least recently used objects adding up to `bytes` and deletes their files now
    /// (the disk is full), unless `room` says others take what the store frees; returns how
    /// many objects went.
    fn free_disk_space(&self, bytes: u64) -> usize {
        let written = self.committed_bytes.load(Ordering::Relaxed);
        let mut idx = self.lock_index();
        let stored = idx.total;
        if !idx.room.may_evict(stored, written) {
            return 0;
        }
        let victims = idx.evict_bytes(bytes);
        let freed = stored - idx.total;
        idx.room.evicted(freed);
        self.evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        let retired = self.retire(&victims);
        drop(idx);
        delete_files(&retired);
        victims.len()
    }

    /// Writes `buf` whole to `file`; when the disk is full, evicts what the rest needs and
    /// tries again, within the bound of `room`.
    fn write_making_room(
        &self,
        file: &mut fs::File,
        tmp: &Path,
        mut buf: &[u8],
    ) -> Result<(), StoreError> {
        while !buf.is_empty() {
            match file.write(buf) {
                Ok(0) => {
                    return Err(io_err("write", tmp)(std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => buf = &buf[n..],
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) if is_no_space(&err) => {
                    if self.disk_full.load(Ordering::Relaxed)
                        || self.free_disk_space(buf.len() as u64 + NO_SPACE_SLACK) == 0
                    {
                        return Err(self.disk_full_error());
                    }
                }
                Err(err) => return Err(io_err("write", tmp)(err)),
            }
        }
        Ok(())
    }
}

/// An upload in progress.
pub(super) struct DiskUpload {
    pub(super) inner: Arc<Inner>,
    pub(super) id: ObjectId,
    /// The temporary file; `None` while a write runs on a blocking thread (which holds it),
    /// and for good once such a write was cancelled.
    pub(super) tmp: Option<TmpFile>,
    /// Bytes not yet written; the file is created only when this fills, so an object smaller
    /// than [`WRITE_BUFFER`] is written whole at commit.
    pub(super) buf: Vec<u8>,
}

impl DiskUpload {
    fn take_tmp(&mut self) -> Result<TmpFile, StoreError> {
        self.tmp.take().ok_or_else(|| {
            io_err(
                "write an upload whose earlier write was cancelled into",
                &self.inner.tmp,
            )(std::io::ErrorKind::Interrupted.into())
        })
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        let mut tmp = self.take_tmp()?;
        let buf = std::mem::take(&mut self.buf);
        let (tmp, mut buf, result) = tokio::task::spawn_blocking(move || {
            let result = tmp.write(&buf);
            (tmp, buf, result)
        })
        .await?;
        buf.clear();
        self.buf = buf;
        self.tmp = Some(tmp);
        result
    }
}

impl Upload for DiskUpload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // Grow to at most WRITE_BUFFER (plus one chunk), not by doubling past it.
            let needed = self.buf.len() + chunk.len();
            if needed > self.buf.capacity() {
                let target = (needed * 2).min(WRITE_BUFFER).max(needed);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.extend_from_slice(&chunk);
            if self.buf.len() >= WRITE_BUFFER {
                self.flush().await?;
            }
            Ok(())
        })
    }

    fn buffered(&self) -> u64 {
        self.buf.capacity() as u64
    }

    fn commit(mut self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async move {
            let mut tmp = self.take_tmp()?;
            let buf = std::mem::take(&mut self.buf);
            let id = self.id.clone();
            // Dropped on the blocking thread: an upload that failed there cleans up there.
            tokio::task::spawn_blocking(move || {
                tmp.write(&buf)?;
                tmp.commit(&id)
            })
            .await?
        })
    }
}
