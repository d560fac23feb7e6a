//! What checking signatures costs a client, in CPU time (robust to a loaded machine).
//!
//! Signing (see `src/signing.rs`) adds two things to a wrapper call: parsing
//! `CACHET_TRUSTED_KEYS` with the other settings (every call), and one ed25519 verification of
//! the 32-byte checksum `EntryHead::read` has already computed (once per entry, when it arrives
//! from the server; an L1 hit verifies nothing). This times both over many repetitions, next to
//! `EntryHead::read` of the same entry, which every entry from the server pays with or without
//! signing, and what a writer pays to sign.
//!
//! ```text
//! cargo run --release -p cachet-wrapper --example verify_cost -- CACHE_DIR/v1/entries/ab/abcd… [N]
//! ```
//!
//! The entry is signed here with a fresh key, so any entry of a local cache will do.

use std::time::Duration;

use cachet_core::entry::EntryHead;
use cachet_core::Digest;
use cachet_wrapper::signing::{parse_trusted, SecretKey, Trust};

/// CPU time of this thread so far (the scheduler's count, in nanoseconds; it advances at the
/// scheduler's ticks, so each measurement below spans many milliseconds).
fn cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = text.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(ns.expect("a CPU time"))
}

/// CPU time per call of `f`, over `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let start = cpu();
    for _ in 0..n {
        f();
    }
    (cpu() - start) / n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: verify_cost ENTRY_FILE [N] (an entry of a local cache)");
    let n: u32 = args.next().map_or(2000, |s| s.parse().expect("N"));
    let path = std::path::PathBuf::from(path);
    let key: Digest = path
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.parse().ok())
        .expect("an entry file is named by its key");
    let bytes = std::fs::read(&path).expect("read the entry");
    let head = EntryHead::read(&bytes[..], &key).expect("a valid entry");
    let mut signed = bytes[..head.unsigned_len() as usize].to_vec();
    let writer = SecretKey::generate("bench").unwrap();
    signed.extend_from_slice(&writer.sign_entry(&head.checksum).to_trailer());
    let trusted_text = format!("{},other:{}", writer.public_text(), "A".repeat(43) + "=");

    let read = per_call(n, || {
        std::hint::black_box(EntryHead::read(&signed[..], &key).unwrap());
    });
    let trusted = parse_trusted(&trusted_text).unwrap();
    let trust = Trust::new(&trusted);
    let signed_head = EntryHead::read(&signed[..], &key).unwrap();
    let verify = per_call(n, || {
        trust
            .check_entry(std::hint::black_box(&signed_head))
            .unwrap();
    });
    let sign = per_call(n, || {
        std::hint::black_box(writer.sign_entry(std::hint::black_box(&head.checksum)));
    });
    // Much shorter than the others: more repetitions, so the scheduler's count (updated at
    // its ticks) covers many of them.
    let parse = per_call(n * 50, || {
        std::hint::black_box(parse_trusted(std::hint::black_box(&trusted_text)).unwrap());
    });
    println!(
        "entry: {} bytes, {} files, {n} repetitions",
        bytes.len(),
        head.meta.files.len()
    );
    println!("EntryHead::read (header, key, checksum; paid with or without signing): {read:?} CPU");
    println!("signature check of the checksum (once per entry from the server): {verify:?} CPU");
    println!("signing the checksum (a writer, once per stored entry): {sign:?} CPU");
    println!("parsing CACHET_TRUSTED_KEYS with two keys (every call): {parse:?} CPU");
}
