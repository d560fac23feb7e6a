//! A 256-bit blake3 digest and a hasher that frames every field it is fed.
//!
//! Keys are built from many variable-length fields (paths, arguments, file contents). Feeding
//! them to a hash back to back would let `("ab", "c")` and `("a", "bc")` collide, so
//! [`Hasher`] prefixes every field with a tag and its length.

use std::fmt;
use std::str::FromStr;

/// A blake3 digest, shown as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of one byte string.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        out
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// The text is not 64 hex characters.
#[derive(Debug, thiserror::Error)]
#[error("not a digest: expected 64 hex characters")]
pub struct ParseDigestError;

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(ParseDigestError);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or(ParseDigestError)?;
            let lo = (pair[1] as char).to_digit(16).ok_or(ParseDigestError)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A blake3 hasher that frames each field with a tag and a length.
pub struct Hasher(blake3::Hasher);

impl Hasher {
    /// A hasher for one purpose; the domain keeps digests of different kinds apart.
    pub fn new(domain: &str) -> Hasher {
        let mut h = Hasher(blake3::Hasher::new());
        h.field("domain", domain.as_bytes());
        h
    }

    /// Adds one named field.
    pub fn field(&mut self, tag: &str, value: &[u8]) -> &mut Self {
        self.0.update(&(tag.len() as u64).to_le_bytes());
        self.0.update(tag.as_bytes());
        self.0.update(&(value.len() as u64).to_le_bytes());
        self.0.update(value);
        self
    }

    /// Adds one named string field.
    pub fn str(&mut self, tag: &str, value: &str) -> &mut Self {
        self.field(tag, value.as_bytes())
    }

    /// Adds one named digest field.
    pub fn digest(&mut self, tag: &str, value: &Digest) -> &mut Self {
        self.field(tag, &value.0)
    }

    /// The digest of everything fed so far.
    pub fn finish(&self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = Digest::of(b"cachet");
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert!("zz".parse::<Digest>().is_err());
    }

    #[test]
    fn framing_keeps_field_boundaries() {
        let a = Hasher::new("t").str("x", "ab").str("y", "c").finish();
        let b = Hasher::new("t").str("x", "a").str("y", "bc").finish();
        assert_ne!(a, b);
    }
}
