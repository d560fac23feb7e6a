//! An entry the tiers found: its checked header and metadata, and its bytes (in memory when
//! small, else the open file) for the restore.

use std::fs;
use std::io::{self, Read, Seek};

use cachet_core::entry::{EntryHead, ReadAt, BULK_MAX};
use cachet_core::Digest;

use crate::call::{Hit, Source};

/// An entry's bytes: in memory when small (the common hit, read in one go), else the open
/// file, read in chunks as it is restored.
pub enum EntryData {
    /// The whole entry.
    Memory(Vec<u8>),
    /// The entry's file.
    File(fs::File),
}

impl EntryData {
    /// Reads a small file whole, keeps a large one open.
    pub(super) fn load(mut file: fs::File) -> io::Result<EntryData> {
        let len = file.metadata()?.len();
        if len > BULK_MAX {
            return Ok(EntryData::File(file));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // A download was just written through this handle: read from the start.
        file.seek(io::SeekFrom::Start(0))?;
        file.read_to_end(&mut bytes)?;
        Ok(EntryData::Memory(bytes))
    }

    /// The bytes, to read at any offset.
    pub fn source(&self) -> &dyn ReadAt {
        match self {
            EntryData::Memory(bytes) => bytes,
            EntryData::File(f) => f,
        }
    }
}

/// An entry found for a key, its header and metadata checked (see `cachet_core::entry`).
pub struct Found {
    /// The header and metadata.
    pub head: EntryHead,
    /// The bytes, for the restore.
    pub data: EntryData,
    /// Where it came from.
    pub source: Source,
}

impl Found {
    /// This entry as the hit of `pre_key`, restored in `restore_ms`.
    pub fn hit(&self, pre_key: Digest, restore_ms: u64) -> Hit {
        Hit {
            pre_key,
            source: self.source,
            bytes: self.head.len,
            restore_ms,
            stored_compile_ms: self.head.meta.compile_millis,
        }
    }
}
