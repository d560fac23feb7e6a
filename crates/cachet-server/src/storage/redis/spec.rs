//! The Redis storage URL, parsed beside the store that uses it: `redis://`, `rediss://` (TLS),
//! `redis+cluster://` and `rediss+cluster://` (comma-separated seed nodes), with `?prefix=`
//! and, for TLS, `?ca_cert=`. A password is kept as written and never shown.

use std::path::PathBuf;

use crate::storage::query;

/// The schemes of a Redis URL, with (TLS, cluster).
pub const SCHEMES: [(&str, bool, bool); 4] = [
    ("redis://", false, false),
    ("rediss://", true, false),
    ("redis+cluster://", false, true),
    ("rediss+cluster://", true, true),
];

/// A Redis node or cluster: `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=P]`,
/// `rediss://` for TLS, `redis+cluster://` (or `rediss+cluster://`) with comma-separated seed
/// nodes.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// TLS (`rediss`).
    pub tls: bool,
    /// A Redis Cluster.
    pub cluster: bool,
    /// `USER:PASSWORD` as written in the URL (percent-encoded); never logged.
    pub userinfo: Option<String>,
    /// `HOST:PORT` of the node, or of the cluster's seed nodes.
    pub nodes: Vec<String>,
    /// Database number (single node only).
    pub db: u32,
    /// Prefix of every key (default `cachet/`).
    pub prefix: String,
    /// A PEM file of the CA to trust for `rediss://` instead of the system's roots
    /// (`?ca_cert=PATH`), for a Redis with a private certificate.
    pub ca_cert: Option<PathBuf>,
}

impl RedisSpec {
    /// Parses one tier of a `--storage` spec: `None` if `s` is not a Redis URL, else the spec
    /// or what is wrong with it (said for the user).
    pub fn parse(s: &str) -> Option<Result<RedisSpec, String>> {
        SCHEMES.iter().find_map(|&(scheme, tls, cluster)| {
            let rest = s.strip_prefix(scheme)?;
            Some(parse_rest(rest, tls, cluster))
        })
    }

    /// The URL the `redis` crate connects to for `node`.
    pub fn url_for(&self, node: &str) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = self
            .userinfo
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        if self.cluster {
            format!("{scheme}://{auth}{node}")
        } else {
            format!("{scheme}://{auth}{node}/{}", self.db)
        }
    }

    /// One URL per configured node.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| self.url_for(n)).collect()
    }
}

fn parse_rest(rest: &str, tls: bool, cluster: bool) -> Result<RedisSpec, String> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, db) = location.split_once('/').unwrap_or((location, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:6379")
            }
        })
        .collect();
    if nodes.is_empty() {
        return Err("redis needs a host: redis://HOST:PORT".into());
    }
    if nodes.len() > 1 && !cluster {
        return Err("several Redis nodes are a cluster: use redis+cluster://H1:P1,H2:P2".into());
    }
    let db = match db {
        "" => 0,
        d => d
            .parse::<u32>()
            .map_err(|_| "the Redis database must be a number: redis://HOST:PORT/2")?,
    };
    if cluster && db != 0 {
        return Err("a Redis Cluster has only database 0".into());
    }
    let mut prefix = "cachet/".to_string();
    let mut ca_cert = None;
    for (k, v) in query::pairs(query) {
        match k.as_str() {
            "prefix" => prefix = v,
            "ca_cert" if tls => ca_cert = Some(PathBuf::from(v)),
            "ca_cert" => return Err("ca_cert needs TLS: use rediss://".into()),
            other => {
                return Err(format!(
                    "unknown redis option {other:?} (known: prefix, ca_cert)"
                ))
            }
        }
    }
    Ok(RedisSpec {
        tls,
        cluster,
        userinfo,
        nodes,
        db,
        prefix,
        ca_cert,
    })
}

impl std::fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = SCHEMES
            .iter()
            .find(|&&(_, tls, cluster)| (tls, cluster) == (self.tls, self.cluster))
            .map_or("redis://", |&(scheme, ..)| scheme);
        f.write_str(scheme)?;
        if let Some(u) = &self.userinfo {
            // The user name is shown, the password never.
            let user = u.split(':').next().unwrap_or_default();
            write!(f, "{user}:***@")?;
        }
        write!(f, "{}", self.nodes.join(","))?;
        if !self.cluster {
            write!(f, "/{}", self.db)?;
        }
        write!(f, "?prefix={}", self.prefix)?;
        if let Some(ca) = &self.ca_cert {
            write!(f, "&ca_cert={}", ca.display())?;
        }
        Ok(())
    }
}
