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
//! version   u32      ENTRY_FORMAT_VERSION (compressed) or RAW_FORMAT_VERSION (raw)
//! payload   u64      length of the frame once decompressed
//! frame     u64      length of the compressed frame (raw: equal to payload)
//! meta      u32      length of the metadata
//! key       32 bytes the entry key the entry was written for
//! checksum  32 bytes blake3 of the frame, the metadata, then the header up to this field
//!                    (raw: of stdout and stderr, the metadata, then the header)
//! frame     zstd frame (raw: the bytes themselves) of: stdout bytes, stderr bytes, then each
//!           stored file's bytes
//! meta      JSON (EntryMeta)
//! signature optional: b"CSIG", an ed25519 public key (32) and signature (64) of the checksum
//! ```
//!
//! **Two encodings of one layout.** The compressed one (version 4) is what the server holds and
//! every cachet reads. The raw one (version 5) is the local cache's: a miss then pays hashing
//! and one copy of its outputs, not compression (about three quarters of a large miss's own
//! work), and a hit no decompression. Its checksum does not cover the files' bytes, which would
//! hash them twice on every hit: it covers the metadata, which records each file's blake3, and
//! every read of a file checks that hash ([`EntryHead::read_payload`]), so a flipped byte in a
//! raw file is still refused, only while it is restored rather than before. An upload writes
//! the raw entry again compressed ([`EntryHead::compress_to`], checking each file on the way).

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
//! `write.rs` streams an entry out ([`EntryWriter`], [`Entry::encode`]), `transcode.rs`
//! compresses a raw entry for the server.

mod format;
mod read;
#[cfg(test)]
mod tests;
mod transcode;
mod write;

pub use format::{
    is_safe_file_name, signed_message, Compression, Entry, EntryError, EntryFile, EntryMeta,
    EntrySignature, Within, BULK_MAX, ENTRY_FORMAT_VERSION, HEADER_LEN, MAX_DECOMPRESSED,
    RAW_FORMAT_VERSION, SIG_LEN,
};
pub use read::{EntryHead, PayloadSink, ReadAt};
pub use write::EntryWriter;
