//! The cache entry: everything one rustc invocation produced, in one checksummed file bound
//! to the key it is stored under.
//!
//! An entry holds the output files (by file name, restored into whatever out-dir the next
//! invocation names), rustc's stdout and stderr byte for byte, and a little metadata used to
//! rewrite paths and to estimate time saved.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic     8 bytes  b"CACHETE\0"
//! version   u32      ENTRY_FORMAT_VERSION
//! payload   u64      length of the frame once decompressed
//! frame     u64      length of the compressed frame
//! meta      u32      length of the metadata
//! key       32 bytes the entry key the entry was written for
//! checksum  32 bytes blake3 of the frame, the metadata, then the header up to this field
//! frame     zstd frame of: stdout bytes, stderr bytes, then each stored file's bytes
//! meta      JSON (EntryMeta)
//! signature optional: b"CSIG", an ed25519 public key (32) and signature (64) of the checksum
//! ```
//!
//! **Bound to its key.** The key is in the header and under the checksum, and a reader is
//! always told which key it expects: an entry served or found under another key (a confused
//! or hostile server answering `K2` with `K1`'s valid entry) is [`EntryError::WrongKey`], a
//! miss, never a restore of the wrong code.
//!
//! **Streamed both ways.** [`EntryWriter`] reads each output in small chunks, hashing and
//! compressing on the way, so storing a 40 MB program allocates nothing in proportion to it;
//! the metadata follows the frame and the header is written last, once the checksum is known.
//! Reading is two steps: [`EntryHead::read`] checks the header, the key and the checksum
//! (streaming over a file) and validates the metadata against the lengths; then
//! [`EntryHead::read_payload`] hands each file's bytes to a [`PayloadSink`] as a reader, so a
//! restore writes them to disk without holding them. Nothing is allocated from a length the
//! entry claims unless it is small: entries up to [`BULK_MAX`] are decompressed in one piece
//! (zstd's bulk API, more than twice as fast as its streaming reader on a hit), larger ones
//! through the streaming reader. A small compressed bomb therefore cannot exhaust memory.
//!
//! Each file additionally carries its own blake3, checked as it is read, so a decoder bug can
//! never restore bytes that differ from what rustc wrote. A malformed entry is an error, never
//! a panic or a partial restore.
//!
//! The parts: `format.rs` holds the layout's constants and types (a leaf: both sides depend on
//! it, it on neither), `read.rs` checks and decodes ([`EntryHead`], [`Entry::decode`]),
//! `write.rs` streams an entry out ([`EntryWriter`], [`Entry::encode`]).

mod format;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use format::{
    is_safe_file_name, signed_message, Entry, EntryError, EntryFile, EntryMeta, EntrySignature,
    Within, BULK_MAX, ENTRY_FORMAT_VERSION, HEADER_LEN, MAX_DECOMPRESSED, SIG_LEN,
};
pub use read::{EntryHead, PayloadSink, ReadAt};
pub use write::EntryWriter;
