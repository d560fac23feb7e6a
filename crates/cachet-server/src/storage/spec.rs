//! A `--storage` spec: one tier, or a local tier in front of a shared one
//! (`dir:/var/cachet,s3://bucket/prefix`). This module splits a chain into tiers and knows the
//! local kinds (`dir:`, `ephemeral`); each shared backend parses its own URL beside its code
//! ([`RedisSpec::parse`], [`S3Spec::parse`]), so adding a backend means adding its file and
//! one line to [`parse_tier`] (and to [`super::open`]), not editing a parser for all of them.

use std::path::PathBuf;

use super::redis::{spec::SCHEMES as REDIS_SCHEMES, RedisSpec};
use super::s3::S3Spec;

/// Where objects live: one tier, or a local tier in front of a shared one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSpec {
    /// A persistent directory.
    Dir(PathBuf),
    /// A private temporary directory removed when the server stops.
    Ephemeral,
    /// A Redis node or cluster.
    Redis(RedisSpec),
    /// An S3 bucket.
    S3(S3Spec),
    /// A bounded local tier (`Dir` or `Ephemeral`) in front of a shared one (`Redis` or `S3`).
    Tiered {
        /// The local tier.
        local: Box<StorageSpec>,
        /// The shared tier.
        shared: Box<StorageSpec>,
    },
}

/// A `--storage` value that cannot be used; shown as `invalid --storage "SPEC": REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --storage {spec:?}: {reason}")]
pub struct SpecError {
    /// The whole value given.
    pub spec: String,
    /// What is wrong with it, for the user.
    pub reason: String,
}

const DIR: &str = "dir:";
const EPHEMERAL: &str = "ephemeral";

/// What a spec accepts, for an error that matches no kind.
const SYNTAX: &str = "expected dir:PATH, ephemeral, redis://HOST:PORT[/DB][?prefix=P], \
     rediss://..., redis+cluster://HOST:PORT,HOST:PORT, s3://BUCKET[/PREFIX][?region=R&endpoint=URL&path_style=BOOL], \
     or a local tier in front of a shared one (dir:/var/cachet,s3://bucket/prefix)";

impl StorageSpec {
    /// Reads a `--storage` spec: one tier, or `LOCAL,SHARED`.
    pub fn parse(s: &str) -> Result<StorageSpec, SpecError> {
        let bad = |reason: &str| SpecError {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        let tier = |t: &str| parse_tier(t).map_err(|reason| bad(&reason));
        match split_tiers(s).as_slice() {
            [one] => tier(one),
            [local, shared] => {
                let local = tier(local)?;
                let shared = tier(shared)?;
                if !matches!(local, StorageSpec::Dir(_) | StorageSpec::Ephemeral) {
                    return Err(bad(
                        "the first tier of a chain must be local: dir:PATH or ephemeral",
                    ));
                }
                if !matches!(shared, StorageSpec::Redis(_) | StorageSpec::S3(_)) {
                    return Err(bad(
                        "the second tier of a chain must be shared: redis://... or s3://...",
                    ));
                }
                Ok(StorageSpec::Tiered {
                    local: Box::new(local),
                    shared: Box::new(shared),
                })
            }
            _ => Err(bad(
                "at most two tiers: a local dir: (or ephemeral) in front of one redis:// or s3://",
            )),
        }
    }

    /// The persistent directory of a `dir:` store, also as the local tier of a tiered one: where
    /// the store's files and the dashboard's history live (`None`: nothing on local disk).
    pub fn local_dir(&self) -> Option<&PathBuf> {
        match self {
            StorageSpec::Dir(d) => Some(d),
            StorageSpec::Tiered { local, .. } => local.local_dir(),
            _ => None,
        }
    }
}

/// Splits a chain at the commas that start a tier; a comma followed by anything else belongs
/// to the tier before it (the seed nodes of a cluster).
fn split_tiers(s: &str) -> Vec<String> {
    let starts_tier = |piece: &str| {
        [DIR, EPHEMERAL, S3Spec::SCHEME]
            .into_iter()
            .chain(REDIS_SCHEMES.map(|(scheme, ..)| scheme))
            .any(|p| piece.starts_with(p))
    };
    let mut parts: Vec<String> = Vec::new();
    for piece in s.split(',') {
        match parts.last_mut() {
            Some(last) if !starts_tier(piece) => {
                last.push(',');
                last.push_str(piece);
            }
            _ => parts.push(piece.to_string()),
        }
    }
    parts
}

/// One tier; the error is the reason alone.
fn parse_tier(s: &str) -> Result<StorageSpec, String> {
    if s == EPHEMERAL {
        return Ok(StorageSpec::Ephemeral);
    }
    if let Some(path) = s.strip_prefix(DIR) {
        if path.is_empty() {
            return Err("dir: needs a path".into());
        }
        return Ok(StorageSpec::Dir(PathBuf::from(path)));
    }
    if let Some(spec) = S3Spec::parse(s) {
        return spec.map(StorageSpec::S3);
    }
    if let Some(spec) = RedisSpec::parse(s) {
        return spec.map(StorageSpec::Redis);
    }
    Err(SYNTAX.into())
}

impl std::fmt::Display for StorageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSpec::Dir(p) => write!(f, "{DIR}{}", p.display()),
            StorageSpec::Ephemeral => f.write_str(EPHEMERAL),
            StorageSpec::Redis(r) => write!(f, "{r}"),
            StorageSpec::S3(s) => write!(f, "{s}"),
            StorageSpec::Tiered { local, shared } => write!(f, "{local},{shared}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(s: &str) -> StorageSpec {
        StorageSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn storage_specs() {
        let chain = parse("dir:/var/cachet,s3://team-cache/rust/?region=eu-west-1");
        let StorageSpec::Tiered { local, shared } = chain else {
            panic!("{chain:?}")
        };
        assert_eq!(*local, StorageSpec::Dir("/var/cachet".into()));
        let StorageSpec::S3(s3) = *shared else {
            panic!()
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("team-cache", "rust")
        );
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));

        let cluster = parse("ephemeral,redis+cluster://u:p%40ss@h1:7000,h2:7001,h3?prefix=x:");
        let StorageSpec::Tiered { shared, .. } = &cluster else {
            panic!()
        };
        let StorageSpec::Redis(r) = shared.as_ref() else {
            panic!()
        };
        assert_eq!(r.nodes, ["h1:7000", "h2:7001", "h3:6379"]);
        assert!(r.cluster && !r.tls);
        assert_eq!(r.prefix, "x:");
        assert_eq!(r.url_for("h1:7000"), "redis://u:p%40ss@h1:7000");
        // The password never shows.
        assert!(!cluster.to_string().contains("p%40ss"), "{cluster}");

        let single = parse("rediss://:secret@cache:6380/3");
        let StorageSpec::Redis(r) = &single else {
            panic!()
        };
        assert_eq!(r.url_for(&r.nodes[0]), "rediss://:secret@cache:6380/3");
        assert!(!format!("{single} {single:?}").contains("secret"));
        let with_ca = parse("rediss://cache:6380/0?ca_cert=/etc/ca.pem");
        let StorageSpec::Redis(r) = &with_ca else {
            panic!()
        };
        assert_eq!(r.ca_cert.as_deref(), Some(Path::new("/etc/ca.pem")));

        for bad in [
            "redis://cache:6379/0?ca_cert=/etc/ca.pem",
            "s3://",
            "redis://a:1,b:2",
            "redis+cluster://a:1/2",
            "s3://b/p,dir:/x",
            "dir:/a,dir:/b",
            "dir:/a,ephemeral,s3://b",
            "s3://b?colour=blue",
            "ftp://x",
        ] {
            let err = StorageSpec::parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("invalid --storage"), "{err}");
        }
    }

    /// What a spec shows (logs, `--check-config`) reads back as the same spec, passwords aside.
    #[test]
    fn a_shown_spec_reads_back() {
        for s in [
            "dir:/var/cachet",
            "ephemeral",
            "s3://b/p?region=r&endpoint=http://127.0.0.1:9000&path_style=true",
            "ephemeral,redis+cluster://h1:7000,h2:7001?prefix=x/",
            "dir:/d,rediss://cache:6380/2?prefix=cachet/&ca_cert=/etc/ca.pem",
        ] {
            let spec = parse(s);
            assert_eq!(parse(&spec.to_string()), spec, "{s} shown as {spec}");
        }
    }
}
