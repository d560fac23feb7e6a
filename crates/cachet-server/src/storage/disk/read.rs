//! Streaming an object's file to a client in chunks, each read straight into the buffer that
//! is sent.
//!
//! `tokio_util::io::ReaderStream` over a `tokio::fs::File` (what this replaced) reads on a
//! blocking thread into the file's own buffer, then copies into the stream's buffer: one
//! memcpy of every byte served, and two buffers per stream. Here each chunk is one `pread` on a
//! blocking thread into a fresh allocation that becomes the `Bytes` handed to hyper (no copy,
//! and no zeroing: rustix reads into the spare capacity). Larger chunks would save blocking
//! tasks but cost memory per connection: hyper holds a chunk while it writes and asks for the
//! next one once its buffer drains (1 MiB chunks doubled the peak RSS of 64 clients reading
//! 16 MiB objects). sendfile, which nginx uses, is out of reach through hyper's body API.

use std::fs;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

/// Chunk size when streaming objects too large to read whole.
pub(super) const STREAM_CHUNK: u64 = 256 << 10;

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
            let want = (size - offset).min(STREAM_CHUNK) as usize;
            let chunk = tokio::task::spawn_blocking(move || read_at(&file, offset, want))
                .await
                .map_err(io::Error::other)??;
            let next = offset + chunk.len() as u64;
            Ok(Some((chunk, next)))
        }
    })
    .boxed()
}

/// Reads `len` bytes of `file` at `offset`. Blocking.
fn read_at(file: &fs::File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        let n = rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the object's file is shorter than when it was opened",
            ));
        }
    }
    Ok(Bytes::from(buf))
}
