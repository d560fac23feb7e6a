//! Signed entries and manifests, as Nix binary caches and attic sign theirs.
//!
//! Binding an entry to its key (see `cachet_core::entry`) stops mix-ups, not forgery: whoever
//! holds a write token, or controls the server, can compute valid checksums over any content
//! for any key. Teams that want more give their trusted writers (CI on the main branch) an
//! ed25519 key (`CACHET_SIGNING_KEY`) and their clients the public keys they trust
//! (`CACHET_TRUSTED_KEYS`, which turns checking on). Then an entry or a manifest from the
//! server is used only when it carries a valid signature by a trusted key; anything unsigned,
//! signed by another key, or changed after signing is a miss, counted and warned about.
//!
//! What is signed sits at the layer every kind of entry shares, so every producer of entries
//! (rustc today, C and C++ compilers tomorrow) is covered without knowing about it:
//!
//! - an entry: its checksum, which covers the key, the header, the compressed body and the
//!   metadata, with a domain tag (`cachet_core::entry::signed_message`); the signature and the
//!   signer's public key are a trailer after the entry, so signing needs no re-encoding;
//! - a manifest: its pre-key and the blake3 of its JSON, with another domain tag; the same
//!   trailer follows the JSON on the wire (the local copy stays plain JSON).
//!
//! Verification happens once, when an object enters this machine from the server; entries
//! already in the local cache (compiled here, or verified when they arrived) are trusted, so
//! the hit path does not change. Keys are written as `NAME:BASE64` (public: the 32-byte key;
//! secret: the 32-byte seed), as Nix writes them; the name says which key a rotation retires.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use cachet_core::entry::{signed_message, EntryHead, EntrySignature, SIG_LEN};
use cachet_core::Digest;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::reason::RefusedObject;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const MANIFEST_TAG: &[u8] = b"cachet manifest v1\0";
const SIG_MAGIC: &[u8; 4] = b"CSIG";

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not `NAME:BASE64` of 32 bytes.
    #[error("{what} {text:?} is not NAME:BASE64 of a 32-byte ed25519 key")]
    Malformed {
        /// `public key` or `secret key`.
        what: &'static str,
        /// The text, cut short (a secret is never shown whole).
        text: String,
    },
    /// The key file could not be read.
    #[error("cannot read the signing key {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn parse_named(text: &str, what: &'static str) -> Result<(String, [u8; 32]), KeyError> {
    let malformed = || KeyError::Malformed {
        what,
        text: text.chars().take(24).collect(),
    };
    let (name, b64) = text.trim().split_once(':').ok_or_else(malformed)?;
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid_name {
        return Err(malformed());
    }
    let bytes = B64.decode(b64).map_err(|_| malformed())?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| malformed())?;
    Ok((name.to_string(), key))
}

/// The public keys a client trusts, parsed from `CACHET_TRUSTED_KEYS` (comma or space
/// separated `NAME:BASE64`).
pub fn parse_trusted(text: &str) -> Result<Vec<(String, [u8; 32])>, KeyError> {
    text.split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_named(s, "public key"))
        .collect()
}

/// A writer's secret key.
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl SecretKey {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> std::io::Result<SecretKey> {
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
        Ok(SecretKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `NAME:BASE64` of the seed.
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let (name, seed) = parse_named(text, "secret key")?;
        Ok(SecretKey {
            name,
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<SecretKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Unreadable {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME:BASE64` of the seed, for the key file.
    pub fn secret_text(&self) -> String {
        format!("{}:{}", self.name, B64.encode(self.key.to_bytes()))
    }

    /// `NAME:BASE64` of the public key, for `CACHET_TRUSTED_KEYS`.
    pub fn public_text(&self) -> String {
        format!(
            "{}:{}",
            self.name,
            B64.encode(self.key.verifying_key().to_bytes())
        )
    }

    /// The signature trailer of an entry whose checksum is `checksum`.
    pub fn sign_entry(&self, checksum: &Digest) -> EntrySignature {
        EntrySignature {
            public_key: self.key.verifying_key().to_bytes(),
            signature: self.key.sign(&signed_message(checksum)).to_bytes(),
        }
    }

    /// The manifest `json` of `pre` with its signature trailer, as uploaded.
    pub fn sign_manifest(&self, pre: &Digest, json: &[u8]) -> Vec<u8> {
        let sig = EntrySignature {
            public_key: self.key.verifying_key().to_bytes(),
            signature: self.key.sign(&manifest_message(pre, json)).to_bytes(),
        };
        let mut out = json.to_vec();
        out.extend_from_slice(&sig.to_trailer());
        out
    }
}

fn manifest_message(pre: &Digest, json: &[u8]) -> Vec<u8> {
    let mut m = MANIFEST_TAG.to_vec();
    m.extend_from_slice(&pre.0);
    m.extend_from_slice(blake3::hash(json).as_bytes());
    m
}

/// Splits a manifest as served into its JSON and its signature, if it has one.
pub fn split_manifest(bytes: &[u8]) -> (&[u8], Option<EntrySignature>) {
    let Some(at) = bytes.len().checked_sub(SIG_LEN) else {
        return (bytes, None);
    };
    let trailer = &bytes[at..];
    // JSON ends with `}`; a trailer starts with its magic right after it.
    if &trailer[..4] != SIG_MAGIC || !bytes[..at].ends_with(b"}") {
        return (bytes, None);
    }
    let mut public_key = [0u8; 32];
    public_key.copy_from_slice(&trailer[4..36]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&trailer[36..]);
    (
        &bytes[..at],
        Some(EntrySignature {
            public_key,
            signature,
        }),
    )
}

/// Why a signed object was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No signature at all.
    Unsigned,
    /// Signed, by a key not in `CACHET_TRUSTED_KEYS`.
    UntrustedKey,
    /// Signed by a trusted key, but the signature does not match (changed after signing).
    BadSignature,
}

impl Refusal {
    /// The statistics label for an entry refused for this reason.
    pub fn entry_label(self) -> RefusedObject {
        match self {
            Refusal::Unsigned => RefusedObject::UnsignedEntry,
            Refusal::UntrustedKey => RefusedObject::UntrustedEntry,
            Refusal::BadSignature => RefusedObject::BadEntrySignature,
        }
    }

    /// The statistics label for a manifest refused for this reason.
    pub fn manifest_label(self) -> RefusedObject {
        match self {
            Refusal::Unsigned => RefusedObject::UnsignedManifest,
            Refusal::UntrustedKey => RefusedObject::UntrustedManifest,
            Refusal::BadSignature => RefusedObject::BadManifestSignature,
        }
    }
}

/// The keys a client trusts (checking is on when there is at least one).
pub struct Trust<'a> {
    keys: &'a [(String, [u8; 32])],
}

impl<'a> Trust<'a> {
    /// Trust in `keys`.
    pub fn new(keys: &'a [(String, [u8; 32])]) -> Trust<'a> {
        Trust { keys }
    }

    /// True when objects from the server must be signed.
    pub fn is_on(&self) -> bool {
        !self.keys.is_empty()
    }

    fn verify(&self, sig: Option<&EntrySignature>, message: &[u8]) -> Result<(), Refusal> {
        let sig = sig.ok_or(Refusal::Unsigned)?;
        if !self.keys.iter().any(|(_, k)| *k == sig.public_key) {
            return Err(Refusal::UntrustedKey);
        }
        let key = VerifyingKey::from_bytes(&sig.public_key).map_err(|_| Refusal::BadSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(&sig.signature);
        key.verify_strict(message, &signature)
            .map_err(|_| Refusal::BadSignature)
    }

    /// Checks an entry's signature (its header and checksum were checked already).
    pub fn check_entry(&self, head: &EntryHead) -> Result<(), Refusal> {
        if !self.is_on() {
            return Ok(());
        }
        self.verify(head.signature.as_ref(), &signed_message(&head.checksum))
    }

    /// Checks a manifest of `pre` as served; returns its JSON.
    pub fn check_manifest<'b>(&self, pre: &Digest, bytes: &'b [u8]) -> Result<&'b [u8], Refusal> {
        let (json, sig) = split_manifest(bytes);
        if self.is_on() {
            self.verify(sig.as_ref(), &manifest_message(pre, json))?;
        }
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_core::entry::Entry;

    #[test]
    fn keys_round_trip_through_their_text() {
        let k = SecretKey::generate("ci-1").unwrap();
        let again = SecretKey::parse(&k.secret_text()).unwrap();
        assert_eq!(again.public_text(), k.public_text());
        let trusted = parse_trusted(&format!(
            "{}, other:{}",
            k.public_text(),
            B64.encode([1u8; 32])
        ))
        .unwrap();
        assert_eq!(trusted.len(), 2);
        assert_eq!(trusted[0].0, "ci-1");
        assert!(parse_trusted("nocolon").is_err());
        assert!(parse_trusted("a:AAAA").is_err());
    }

    #[test]
    fn entries_are_refused_unless_signed_by_a_trusted_key() {
        let a = SecretKey::generate("a").unwrap();
        let b = SecretKey::generate("b").unwrap();
        let key = Digest([3; 32]);
        let e = Entry::new(
            "c".into(),
            "/o".into(),
            1,
            vec![],
            vec![],
            vec![("f".into(), 0o644, b"x".to_vec())],
        );
        let bytes = e.encode(&key, 1).unwrap();
        let trusted = parse_trusted(&a.public_text()).unwrap();
        let trust = Trust::new(&trusted);
        let head = |bytes: &[u8]| EntryHead::read(bytes, &key).unwrap();
        let signed = |k: &SecretKey, bytes: &[u8]| {
            let mut out = bytes.to_vec();
            out.extend_from_slice(&k.sign_entry(&head(bytes).checksum).to_trailer());
            out
        };
        assert_eq!(trust.check_entry(&head(&signed(&a, &bytes))), Ok(()));
        assert_eq!(trust.check_entry(&head(&bytes)), Err(Refusal::Unsigned));
        assert_eq!(
            trust.check_entry(&head(&signed(&b, &bytes))),
            Err(Refusal::UntrustedKey)
        );
        // Changed after signing (checksum recomputed, A's signature kept).
        let other = Entry::new(
            "c".into(),
            "/o".into(),
            1,
            vec![],
            vec![],
            vec![("f".into(), 0o644, b"y".to_vec())],
        );
        let mut forged = other.encode(&key, 1).unwrap();
        let a_sig = &signed(&a, &bytes)[bytes.len()..];
        forged.extend_from_slice(a_sig);
        assert_eq!(
            trust.check_entry(&head(&forged)),
            Err(Refusal::BadSignature)
        );
        // Off: anything goes.
        assert_eq!(Trust::new(&[]).check_entry(&head(&bytes)), Ok(()));
    }

    #[test]
    fn manifests_are_bound_to_their_pre_key_and_signer() {
        let a = SecretKey::generate("a").unwrap();
        let trusted = parse_trusted(&a.public_text()).unwrap();
        let trust = Trust::new(&trusted);
        let (pre, other) = (Digest([1; 32]), Digest([2; 32]));
        let json = br#"{"version":1,"candidates":[]}"#;
        let signed = a.sign_manifest(&pre, json);
        assert_eq!(trust.check_manifest(&pre, &signed), Ok(&json[..]));
        assert_eq!(
            trust.check_manifest(&other, &signed),
            Err(Refusal::BadSignature)
        );
        assert_eq!(trust.check_manifest(&pre, json), Err(Refusal::Unsigned));
        // A client that does not check still reads a signed manifest.
        assert_eq!(Trust::new(&[]).check_manifest(&pre, &signed), Ok(&json[..]));
    }
}
