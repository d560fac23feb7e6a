//! How objects are named on a cachet server.
//!
//! A request path is `/<namespace>/<key>`. The namespace is one path segment (`cachet`,
//! `sccache`, `ccache`, or any team-chosen name); the key is one or more segments of a
//! conservative character set, so that it can never escape the store or be read as a
//! different object. The wrapper stores entries under `e/<digest>` and manifests under
//! `m/<digest>`, prefixed by the wire format version so incompatible cachets never share keys.

use crate::Digest;

/// Version of the wire layout of the wrapper's objects (part of every key it sends).
pub const WIRE_VERSION: u32 = 1;
/// Default namespace for cachet's own clients.
pub const DEFAULT_NAMESPACE: &str = "cachet";
/// Longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// True for a valid namespace: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn is_valid_namespace(ns: &str) -> bool {
    (1..=64).contains(&ns.len())
        && !ns.starts_with('.')
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// True for a valid key: segments separated by `/`, each of `A-Z a-z 0-9 . _ - ~`, none empty,
/// `.` or `..`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
        })
}

/// The key of a cache entry.
pub fn entry_key(digest: &Digest) -> String {
    format!("v{WIRE_VERSION}/e/{digest}")
}

/// The key of a manifest.
pub fn manifest_key(digest: &Digest) -> String {
    format!("v{WIRE_VERSION}/m/{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid() {
        let d = Digest::of(b"x");
        assert!(is_valid_key(&entry_key(&d)));
        assert!(is_valid_key(&manifest_key(&d)));
    }

    #[test]
    fn rejects_escapes() {
        for bad in [
            "", "..", "a/../b", "/a", "a//b", "a/", "a\\b", "a b", "%2e%2e", "a\0",
        ] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
        assert!(is_valid_key("ab/cdef.sccache_check"));
        assert!(is_valid_namespace("sccache"));
        assert!(!is_valid_namespace(".."));
        assert!(!is_valid_namespace("a/b"));
    }
}
