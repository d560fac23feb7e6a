use std::io::{self, Seek, SeekFrom, Write};

use super::format::{KEY_AT, MAGIC, SUM_AT};
use super::read::InMemory;
use super::*;
use crate::Digest;
use proptest::prelude::*;

const K: Digest = Digest([7; 32]);

fn sample() -> Entry {
    Entry::new(
        "foo".into(),
        "/t/debug/deps".into(),
        1234,
        b"out".to_vec(),
        b"{\"artifact\":\"/t/debug/deps/libfoo.rmeta\",\"emit\":\"metadata\"}\n".to_vec(),
        vec![
            ("libfoo.rmeta".into(), 0o644, vec![1, 2, 3]),
            ("libfoo.rlib".into(), 0o644, vec![9; 5000]),
        ],
    )
}

#[test]
fn round_trips() {
    let e = sample();
    let bytes = e.encode(&K, 3).unwrap();
    assert_eq!(Entry::decode(&bytes, &K).unwrap(), e);
}

#[test]
fn an_entry_is_bound_to_its_key() {
    // What broke: a server answering K2 with K1's valid entry got it restored.
    let bytes = sample().encode(&K, 1).unwrap();
    let other = Digest([8; 32]);
    assert!(matches!(
        Entry::decode(&bytes, &other),
        Err(EntryError::WrongKey { found }) if found == K
    ));
    // Rewriting the key in the header breaks the checksum.
    let mut forged = bytes;
    forged[KEY_AT..SUM_AT].copy_from_slice(&other.0);
    assert!(matches!(
        Entry::decode(&forged, &other),
        Err(EntryError::ChecksumMismatch)
    ));
}

/// Asserts that `bytes` cut short anywhere that matters, or with any one byte flipped, is
/// refused.
fn assert_every_cut_and_flip_refused(bytes: &[u8]) {
    for cut in [0, 5, HEADER_LEN, bytes.len() - 1] {
        assert!(Entry::decode(&bytes[..cut], &K).is_err(), "cut at {cut}");
    }
    for i in 0..bytes.len() {
        let mut b = bytes.to_vec();
        b[i] ^= 0x40;
        assert!(Entry::decode(&b, &K).is_err(), "flip at {i}");
    }
}

#[test]
fn rejects_truncation_and_flips() {
    assert_every_cut_and_flip_refused(&sample().encode(&K, 3).unwrap());
}

/// A well-formed header and checksum around `payload` and `meta`, as a hostile writer
/// could produce.
fn frame_with(payload: &[u8], payload_len: u64, meta: &EntryMeta) -> Vec<u8> {
    let compressed = zstd::encode_all(payload, 1).unwrap();
    let json = serde_json::to_vec(meta).unwrap();
    let mut header = Vec::new();
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&ENTRY_FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&payload_len.to_le_bytes());
    header.extend_from_slice(&(compressed.len() as u64).to_le_bytes());
    header.extend_from_slice(&(json.len() as u32).to_le_bytes());
    header.extend_from_slice(&K.0);
    let mut h = blake3::Hasher::new();
    h.update(&compressed);
    h.update(&json);
    h.update(&header);
    header.extend_from_slice(h.finalize().as_bytes());
    header.extend_from_slice(&compressed);
    header.extend_from_slice(&json);
    header
}

fn frame(payload: &[u8], meta: &EntryMeta) -> Vec<u8> {
    frame_with(payload, payload.len() as u64, meta)
}

#[test]
fn rejects_unsafe_and_repeated_names_even_with_valid_checksum() {
    let mut meta = sample().meta;
    meta.files.truncate(1);
    meta.files[0].name = "../evil".into();
    let mut payload = b"out".to_vec();
    payload.extend_from_slice(&sample().stderr);
    payload.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        Entry::decode(&frame(&payload, &meta), &K),
        Err(EntryError::BadMeta(_))
    ));
    // The same body with a safe name is accepted: the name alone was refused.
    meta.files[0].name = "libfoo.rmeta".into();
    Entry::decode(&frame(&payload, &meta), &K).unwrap();
    // One name twice would restore one file over the other.
    let mut twice = meta.clone();
    twice.files.push(meta.files[0].clone());
    payload.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        Entry::decode(&frame(&payload, &twice), &K),
        Err(EntryError::BadMeta(_))
    ));
}

#[test]
fn a_small_bomb_is_refused_without_allocating_what_it_claims() {
    // 64 MiB of zeros compress to a few kB; the metadata claims a tiny file.
    let zeros = vec![0u8; 64 << 20];
    let mut meta = sample().meta;
    meta.stdout_len = 0;
    meta.stderr_len = 0;
    meta.files.truncate(1);
    meta.files[0].size = 3;
    meta.files[0].hash = Digest::of(&[0, 0, 0]);
    let bytes = frame_with(&zeros, 3, &meta);
    assert!(bytes.len() < 1 << 20);
    assert!(matches!(
        Entry::decode(&bytes, &K),
        Err(EntryError::Decompress(_))
    ));
    // Claimed as large as it is: streamed, and refused as longer than the files it holds.
    let bytes = frame_with(&zeros, 64 << 20, &meta);
    assert!(matches!(
        Entry::decode(&bytes, &K),
        Err(EntryError::BadMeta(_))
    ));
}

#[test]
fn large_entries_stream_and_round_trip() {
    let big: Vec<u8> = (0..(BULK_MAX as usize + 4096))
        .map(|i| (i % 251) as u8)
        .collect();
    let e = Entry::new(
        "big".into(),
        "/o".into(),
        1,
        b"o".to_vec(),
        b"e".to_vec(),
        vec![("libbig.rlib".into(), 0o644, big)],
    );
    let bytes = e.encode(&K, 1).unwrap();
    assert_eq!(Entry::decode(&bytes, &K).unwrap(), e);
    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 1;
    assert!(Entry::decode(&flipped, &K).is_err());
}

/// An entry whose `.rmeta` is stored as a range of its `.rlib`.
fn with_copy() -> Entry {
    let rmeta: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut rlib = vec![7u8; 3000];
    rlib[1000..2000].copy_from_slice(&rmeta);
    let mut e = Entry::new(
        "foo".into(),
        "/t".into(),
        1,
        Vec::new(),
        Vec::new(),
        vec![
            ("libfoo.rlib".into(), 0o644, rlib),
            ("libfoo.rmeta".into(), 0o644, rmeta),
        ],
    );
    e.meta.files[1].within = Some(Within {
        file: 0,
        offset: 1000,
    });
    e
}

#[test]
fn a_copy_is_stored_once_and_restored() {
    let e = with_copy();
    let bytes = e.encode(&K, 1).unwrap();
    assert_eq!(Entry::decode(&bytes, &K).unwrap(), e);
    let mut plain = e;
    plain.meta.files[1].within = None;
    let payload_len = |b: &[u8]| u64::from_le_bytes(b[12..20].try_into().unwrap());
    // The copy's 1000 bytes are not in the body.
    assert_eq!(
        payload_len(&bytes) + 1000,
        payload_len(&plain.encode(&K, 1).unwrap())
    );
}

#[test]
fn a_wrong_copy_reference_is_rejected() {
    // Offsets that point elsewhere, past the end, or at a file that is itself a copy.
    for within in [
        Within {
            file: 0,
            offset: 999,
        },
        Within {
            file: 0,
            offset: 2001,
        },
        Within { file: 1, offset: 0 },
        Within { file: 9, offset: 0 },
    ] {
        let mut e = with_copy();
        e.meta.files[1].within = Some(within);
        // Bypass the writer's own checks: a hostile or buggy writer.
        assert!(
            Entry::decode(&frame(&e.contents[0], &e.meta), &K).is_err(),
            "{within:?}"
        );
    }
    let mut out = io::Cursor::new(Vec::new());
    let mut w = EntryWriter::new(&mut out, &K, Compression::Zstd(1), b"", b"", 0).unwrap();
    w.add_file("a", 0o644, &mut &[1u8; 10][..]).unwrap();
    let outside = Within { file: 0, offset: 5 };
    assert!(w.add_copy("b", 0o644, outside, 6, Digest::of(b"")).is_err());
}

#[test]
fn writer_refuses_unsafe_names() {
    let mut out = io::Cursor::new(Vec::new());
    let mut w = EntryWriter::new(&mut out, &K, Compression::Zstd(1), b"", b"", 0).unwrap();
    assert!(w.add_file("../evil", 0o644, &mut &b"x"[..]).is_err());
}

#[test]
fn writes_at_the_current_position_and_reads_from_a_file() {
    let e = sample();
    let mut out = io::Cursor::new(b"prefix".to_vec());
    out.seek(SeekFrom::End(0)).unwrap();
    let mut w =
        EntryWriter::new(&mut out, &K, Compression::Zstd(1), &e.stdout, &e.stderr, 0).unwrap();
    for (f, bytes) in e.meta.files.iter().zip(&e.contents) {
        w.add_file(&f.name, f.mode, &mut &bytes[..]).unwrap();
    }
    let len = w
        .finish(EntryMeta {
            files: Vec::new(),
            ..e.meta.clone()
        })
        .unwrap();
    let bytes = out.into_inner();
    assert_eq!(bytes.len() as u64, 6 + len);
    assert_eq!(Entry::decode(&bytes[6..], &K).unwrap(), e);
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&bytes[6..]).unwrap();
    let head = EntryHead::read(&file, &K).unwrap();
    let mut sink = InMemory(vec![Vec::new(); 2]);
    head.read_payload(&file, &mut sink).unwrap();
    assert_eq!(sink.0, e.contents);
}

#[test]
fn a_signature_trailer_is_read_and_does_not_change_the_checksum() {
    let bytes = sample().encode(&K, 1).unwrap();
    let head = EntryHead::read(&bytes[..], &K).unwrap();
    let sig = EntrySignature {
        public_key: [1; 32],
        signature: [2; 64],
    };
    let mut signed = bytes.clone();
    signed.extend_from_slice(&sig.to_trailer());
    let signed_head = EntryHead::read(&signed[..], &K).unwrap();
    assert_eq!(signed_head.signature, Some(sig));
    assert_eq!(signed_head.checksum, head.checksum);
    assert_eq!(signed_head.unsigned_len(), bytes.len() as u64);
    signed.push(0);
    assert!(EntryHead::read(&signed[..], &K).is_err());
}

proptest! {
    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Entry::decode(&data, &K);
    }

    #[test]
    fn decoder_never_panics_on_framed_garbage(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        // A valid header and checksum around arbitrary compressed bytes: only the inner
        // checks stand between this and a restore.
        let bytes = frame(&data, &sample().meta);
        let _ = Entry::decode(&bytes, &K);
    }

    #[test]
    fn any_entry_round_trips(stdout in proptest::collection::vec(any::<u8>(), 0..64),
                             stderr in proptest::collection::vec(any::<u8>(), 0..64),
                             file in proptest::collection::vec(any::<u8>(), 0..256)) {
        let e = Entry::new("c".into(), "/o".into(), 1, stdout, stderr, vec![("f".into(), 0o755, file)]);
        prop_assert_eq!(Entry::decode(&e.encode(&K, 1).unwrap(), &K).unwrap(), e);
    }
}

const RAW: Compression = Compression::None;

/// An offset inside `libfoo.rlib`'s bytes in `sample()` stored raw.
fn inside_rlib() -> usize {
    let e = sample();
    HEADER_LEN + e.stdout.len() + e.stderr.len() + e.contents[0].len() + 100
}

#[test]
fn raw_entries_round_trip_and_say_so_in_their_version() {
    for e in [sample(), with_copy()] {
        let raw = e.encode_as(&K, RAW).unwrap();
        assert_eq!(raw[8..12], RAW_FORMAT_VERSION.to_le_bytes());
        assert!(EntryHead::read(&raw[..], &K).unwrap().is_raw());
        assert_eq!(Entry::decode(&raw, &K).unwrap(), e);
        // From a file, in chunks, as the wrapper reads a large entry.
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&raw).unwrap();
        let head = EntryHead::read(&file, &K).unwrap();
        assert_eq!(head.read_all(&file, MAX_DECOMPRESSED).unwrap(), e);
    }
}

#[test]
fn compressed_entries_written_before_raw_ones_still_read() {
    // What it guards: a cache filled by an older cachet (compressed entries, version 4) keeps
    // serving hits after the local cache turned to raw entries.
    let old = sample().encode(&K, 3).unwrap();
    assert_eq!(old[8..12], ENTRY_FORMAT_VERSION.to_le_bytes());
    let head = EntryHead::read(&old[..], &K).unwrap();
    assert!(!head.is_raw());
    assert_eq!(Entry::decode(&old, &K).unwrap(), sample());
}

#[test]
fn any_flipped_or_cut_byte_of_a_raw_entry_is_refused() {
    // A raw entry's files are not under the checksum but under their hashes in the
    // metadata: a flipped byte there passes the header's check and fails the payload's.
    for e in [sample(), with_copy()] {
        assert_every_cut_and_flip_refused(&e.encode_as(&K, RAW).unwrap());
    }
    let mut flipped = sample().encode_as(&K, RAW).unwrap();
    flipped[inside_rlib()] ^= 1;
    let head = EntryHead::read(&flipped[..], &K).unwrap();
    assert!(matches!(
        head.read_all(&flipped[..], MAX_DECOMPRESSED),
        Err(EntryError::FileHashMismatch { name }) if name == "libfoo.rlib"
    ));
}

#[test]
fn a_raw_entry_compresses_to_the_same_entry_and_a_damaged_one_does_not() {
    for e in [sample(), with_copy()] {
        let raw = e.encode_as(&K, RAW).unwrap();
        let head = EntryHead::read(&raw[..], &K).unwrap();
        let mut out = io::Cursor::new(Vec::new());
        head.compress_to(&raw[..], &mut out, 3).unwrap();
        let wire = out.into_inner();
        assert_eq!(wire, e.encode(&K, 3).unwrap());
        assert!(wire.len() < raw.len());
    }
    let mut raw = sample().encode_as(&K, RAW).unwrap();
    raw[inside_rlib()] ^= 1;
    let head = EntryHead::read(&raw[..], &K).unwrap();
    let mut out = io::Cursor::new(Vec::new());
    assert!(matches!(
        head.compress_to(&raw[..], &mut out, 3),
        Err(EntryError::FileHashMismatch { .. })
    ));
}
