//! Uploads that could not be made when an entry was stored: a marker per object in
//! `v1/pending`, retried by later calls that reach the server and by `cachet flush`.

use std::fs;
use std::path::PathBuf;

use cachet_core::Digest;
use tracing::debug;

use super::{key_of, Tiers};
use crate::call::Event;
use crate::local_store::ObjectKind;
use crate::remote::{Remote, RemoteError};

impl Tiers<'_> {
    pub(super) fn pending_dir(&self) -> PathBuf {
        self.config.dir.join("v1/pending")
    }

    pub(super) fn mark_pending(&self, kind: ObjectKind, digest: &Digest) {
        let prefix = match kind {
            ObjectKind::Entry => "e",
            ObjectKind::Manifest => "m",
        };
        let dir = self.pending_dir();
        let _ = fs::create_dir_all(&dir)
            .and_then(|()| fs::write(dir.join(format!("{prefix}-{digest}")), b""));
    }

    /// Uploads up to `max` pending objects; returns how many were uploaded.
    pub fn drain_pending(&self, remote: &Remote, max: usize) -> usize {
        let Ok(dir) = fs::read_dir(self.pending_dir()) else {
            return 0;
        };
        let mut done = 0;
        for marker in dir.flatten().take(max) {
            let name = marker.file_name().to_string_lossy().into_owned();
            let Some((kind, digest)) = parse_pending(&name) else {
                let _ = fs::remove_file(marker.path());
                continue;
            };
            // An object evicted locally meanwhile has nothing left to upload.
            let body = match kind {
                ObjectKind::Entry => self
                    .local
                    .open(kind, &digest)
                    .ok()
                    .flatten()
                    .map(Body::File),
                ObjectKind::Manifest => self
                    .local
                    .get(kind, &digest)
                    .ok()
                    .flatten()
                    .map(Body::Bytes),
            };
            if let Some(body) = body {
                match body.put(remote, &key_of(kind, &digest)) {
                    Ok(len) => {
                        self.state.record(Event::Uploaded(len));
                        done += 1;
                    }
                    Err(e) => {
                        self.report(&e);
                        return done;
                    }
                }
            }
            let _ = fs::remove_file(marker.path());
        }
        debug!(done, "pending uploads drained");
        done
    }

    /// Uploads every pending object (`cachet flush`). Returns (uploaded, still pending).
    pub fn flush(&self) -> Result<(usize, usize), RemoteError> {
        let rc = self.config.remote.clone().ok_or_else(|| {
            RemoteError::Config("no server configured (set CACHET_SERVER)".into())
        })?;
        let remote = Remote::new(rc)?;
        let uploaded = self.drain_pending(&remote, usize::MAX);
        Ok((uploaded, self.pending_count()))
    }

    /// Objects waiting for upload.
    pub fn pending_count(&self) -> usize {
        fs::read_dir(self.pending_dir())
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// What an upload sends: an entry streamed from its file, or a small object from memory.
pub(super) enum Body {
    File(fs::File),
    Bytes(Vec<u8>),
}

impl Body {
    /// Uploads the object; returns its length.
    pub(super) fn put(&self, remote: &Remote, key: &str) -> Result<u64, RemoteError> {
        match self {
            Body::File(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                remote.put_file(key, f)?;
                Ok(len)
            }
            Body::Bytes(b) => {
                remote.put(key, b)?;
                Ok(b.len() as u64)
            }
        }
    }
}

fn parse_pending(name: &str) -> Option<(ObjectKind, Digest)> {
    let (kind, hex) = name.split_once('-')?;
    let kind = match kind {
        "e" => ObjectKind::Entry,
        "m" => ObjectKind::Manifest,
        _ => return None,
    };
    Some((kind, hex.parse().ok()?))
}
