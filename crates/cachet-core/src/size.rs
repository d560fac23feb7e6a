//! Human sizes such as `10G` or `512M`, as used by `CACHET_CACHE_SIZE` and `--max-size`.
//!
//! Suffixes are binary (K = 1024), the way ccache and sccache read them, so `10G` means the
//! same thing to a user moving from either tool.

/// A size could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid size {input:?}: expected a number with an optional K, M, G or T suffix, such as 10G"
)]
pub struct ParseSizeError {
    /// The text that was given.
    pub input: String,
}

/// Reads `123`, `64K`, `512M`, `10G`, `1T` (binary multiples; a trailing `B`/`iB` is allowed).
pub fn parse_size(input: &str) -> Result<u64, ParseSizeError> {
    let err = || ParseSizeError {
        input: input.to_string(),
    };
    let s = input.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix("ib"))
        .or_else(|| s.strip_suffix('B'))
        .or_else(|| s.strip_suffix('b'))
        .unwrap_or(s);
    let (digits, shift) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let digits = digits.trim();
    if digits.is_empty() {
        return Err(err());
    }
    if let Ok(n) = digits.parse::<u64>() {
        return n.checked_mul(1u64 << shift).ok_or_else(err);
    }
    let f: f64 = digits.parse().map_err(|_| err())?;
    if !f.is_finite() || f < 0.0 {
        return Err(err());
    }
    let v = f * (1u64 << shift) as f64;
    if v > u64::MAX as f64 {
        return Err(err());
    }
    Ok(v as u64)
}

/// Shows a byte count the way a person reads it: `1.5 GiB`, `320 KiB`, `12 B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_suffixes() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_size(12), "12 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(10 << 30), "10.0 GiB");
    }
}
