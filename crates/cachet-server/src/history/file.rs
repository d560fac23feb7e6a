//! The history as one JSON document: read at start, written atomically (temporary file,
//! rename) when it changed. The same document is a replica's shard in a shared store
//! ([`super::shared`]), so both read through [`parse`].

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{lock, Data, History, Limits, FILE_VERSION};

/// Why a document was not taken.
#[derive(Debug, thiserror::Error)]
pub(super) enum ParseError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("a history of format version {0}, not {expected}", expected = FILE_VERSION)]
    Version(u32),
}

/// A history document, checked for its version, with its entries counted.
pub(super) fn parse(bytes: &[u8]) -> Result<Data, ParseError> {
    let mut d: Data = serde_json::from_slice(bytes)?;
    if d.version != FILE_VERSION {
        return Err(ParseError::Version(d.version));
    }
    d.count_entries();
    Ok(d)
}

impl History {
    /// A history saved at `path`, starting from what the file holds. A file that cannot be
    /// read (corrupt, another version) is logged and set aside: the dashboard starts empty
    /// rather than the server not starting.
    pub fn open(path: PathBuf, limits: Limits) -> History {
        let data = match std::fs::read(&path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(d) => Some(d),
                Err(err) => {
                    tracing::warn!(path = %path.display(), cause = %err, "failed to read the dashboard history: starting a new one");
                    if matches!(err, ParseError::Json(_)) {
                        let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                    }
                    None
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                tracing::warn!(path = %path.display(), cause = %err, "failed to read the dashboard history: starting a new one");
                None
            }
        };
        History::with(data.unwrap_or_else(Data::new), Some(path), limits)
    }

    /// Whether the history holds nothing of this replica's own (a new or in-memory one).
    pub fn is_empty(&self) -> bool {
        self.with_data(|d| d.hours.is_empty() && d.days.is_empty() && d.details.is_empty())
    }

    /// This replica's data as a document: copied under the lock (cheap, see `Data`), written
    /// out after it is released, so object GETs and arriving reports never wait for a save.
    pub(super) fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let snapshot = self.with_data(|d| d.clone());
        serde_json::to_vec(&snapshot)
    }

    /// This replica's name and that it shares a store: the name the document already holds
    /// (kept across restarts), else `default`. Returns the name.
    pub(super) fn join(&self, default: &str) -> String {
        self.shared.store(true, Ordering::Relaxed);
        self.with_data(|d| d.replica.get_or_insert_with(|| default.to_string()).clone())
    }

    /// Replaces this replica's data by a document read back (its own shard, at start).
    pub(super) fn restore(&self, mut data: Data) {
        let limits = self.limits;
        let mut d = lock(&self.data);
        data.replica = d.replica.take();
        *d = data;
        super::enforce(&mut d, &limits, super::now_ms());
        drop(d);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the history to its file if it changed since the last save.
    pub fn save_if_dirty(&self) {
        let Some(path) = &self.path else { return };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let result = self
            .to_bytes()
            .map_err(std::io::Error::other)
            .and_then(|b| write_atomically(path, &b));
        if let Err(err) = result {
            self.dirty.store(true, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), cause = %err, "failed to save the dashboard history");
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
