//! The shared server (L2): a small blocking HTTP client, created only when the local cache
//! misses, and a breaker that keeps a dead server from slowing every crate of a build.
//!
//! Objects live at `<server>/<namespace>/<key>` (see `cachet_core::wire`). A `404` is a miss;
//! anything else that is not `2xx` is an error. When the server cannot be reached, times out
//! or rejects the token, the failure is written to `remote-down` in the cache directory and
//! later calls skip the server for [`BREAKER`], so a build against a dead server waits once,
//! not once per crate. A read-only token is remembered the same way for uploads only.
//!
//! Nothing the server sends is trusted to be small or quick. Every request has one overall
//! deadline (connect, headers and body together, `CACHET_SERVER_TIMEOUT`), and the requests
//! of one phase of a wrapper call (its lookup; its uploads) share a budget of twice that, so a
//! server that drips one byte every few seconds, or goes silent after its headers, costs one
//! bounded wait and trips the breaker. Entries are streamed to a file, never held whole, and refused beyond
//! `CACHET_MAX_DOWNLOAD` (and beyond the length the server announced); uploads stream from
//! the entry file.

use std::cell::Cell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cachet_core::wire;
use ureq::Agent;

use crate::fsutil;
use crate::reason::ServerFailure;

/// How long a failure makes later calls skip the server.
pub const BREAKER: Duration = Duration::from_secs(30);
/// Default overall deadline of one request (`CACHET_SERVER_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest entry accepted from the server (`CACHET_MAX_DOWNLOAD`).
pub const DEFAULT_MAX_DOWNLOAD: u64 = 2 << 30;
/// Largest manifest or other small answer accepted (they are read into memory).
const MAX_SMALL_ANSWER: u64 = 16 << 20;

/// Where the server is and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Base URL, e.g. `http://cache:4226` (no trailing slash).
    pub url: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// Namespace for this client's objects.
    pub namespace: String,
    /// Overall deadline of one request; the requests of one phase of a call share twice this.
    pub timeout: Duration,
    /// Largest entry accepted.
    pub max_download: u64,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No connection, a timeout, or a broken transfer.
    #[error("cannot reach the cache server at {url}: {detail}")]
    Unreachable {
        /// The server.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// 401: no valid credentials.
    #[error("the cache server at {url} rejected the token (401): check CACHET_TOKEN")]
    Unauthorized {
        /// The server.
        url: String,
    },
    /// 403: the token lacks the scope.
    #[error("the token has no {scope} permission on namespace {namespace} of {url} (403)")]
    Forbidden {
        /// The server.
        url: String,
        /// `read` or `write`.
        scope: &'static str,
        /// The namespace.
        namespace: String,
    },
    /// Another non-2xx answer.
    #[error("the cache server at {url} answered {status}")]
    Status {
        /// The server.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The server announced or sent an object larger than allowed.
    #[error(
        "the cache server at {url} sent an object larger than CACHET_MAX_DOWNLOAD ({limit} bytes)"
    )]
    TooLarge {
        /// The server.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The configuration cannot be used (a bad CA file).
    #[error("{0}")]
    Config(String),
}

impl RemoteError {
    /// True when the whole server should be skipped for a while.
    pub fn trips_breaker(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. }
                | RemoteError::Unauthorized { .. }
                | RemoteError::TooLarge { .. }
                | RemoteError::Config(_)
        ) || matches!(self, RemoteError::Status { status, .. } if *status >= 500)
    }

    /// A short label for statistics.
    pub fn label(&self) -> ServerFailure {
        match self {
            RemoteError::Unreachable { .. } => ServerFailure::Unreachable,
            RemoteError::Unauthorized { .. } => ServerFailure::Unauthorized,
            RemoteError::Forbidden { .. } => ServerFailure::Forbidden,
            RemoteError::Status { .. } => ServerFailure::Status,
            RemoteError::TooLarge { .. } => ServerFailure::TooLarge,
            RemoteError::Config(_) => ServerFailure::Config,
        }
    }
}

/// A client for the shared server.
pub struct Remote {
    agent: Agent,
    config: RemoteConfig,
    /// When the requests of this phase of the call (the lookup, or the uploads after the
    /// compile) must all be done: a slow server costs each a bounded wait however many
    /// requests it makes, and the compile in between never counts.
    deadline: Cell<Instant>,
}

fn load_roots(extra: Option<&Path>) -> Result<ureq::tls::RootCerts, RemoteError> {
    use ureq::tls::{parse_pem, PemItem, RootCerts};
    let Some(extra) = extra else {
        return Ok(RootCerts::WebPki);
    };
    let mut certs = Vec::new();
    let pem = fs::read(extra).map_err(|e| {
        RemoteError::Config(format!(
            "cannot read CACHET_CA_CERT {}: {e}",
            extra.display()
        ))
    })?;
    for item in parse_pem(&pem) {
        if let Ok(PemItem::Certificate(c)) = item {
            certs.push(c.to_owned());
        }
    }
    if certs.is_empty() {
        return Err(RemoteError::Config(format!(
            "CACHET_CA_CERT {} holds no PEM certificate",
            extra.display()
        )));
    }
    // Keep the system's roots too, so one setting works for a private and a public server.
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    if let Ok(pem) = fs::read(system) {
        for item in parse_pem(&pem) {
            if let Ok(PemItem::Certificate(c)) = item {
                certs.push(c.to_owned());
            }
        }
    }
    Ok(RootCerts::new_with_certs(&certs))
}

impl Remote {
    /// A client; no connection is made yet.
    pub fn new(config: RemoteConfig) -> Result<Remote, RemoteError> {
        let roots = if config.url.starts_with("https://") {
            load_roots(config.ca_cert.as_deref())?
        } else {
            ureq::tls::RootCerts::WebPki
        };
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_recv_response(Some(Duration::from_secs(5)))
            .timeout_per_read(Some(Duration::from_secs(10)))
            .timeout_per_write(Some(Duration::from_secs(10)))
            .timeout_global(Some(config.timeout))
            .max_redirects(0)
            .user_agent(format!("cachet/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        let deadline = Cell::new(Instant::now() + config.timeout * 2);
        Ok(Remote {
            agent,
            config,
            deadline,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.config.url, self.config.namespace)
    }

    fn auth(&self) -> Option<String> {
        self.config.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Unreachable {
            url: self.config.url.clone(),
            detail: e.to_string(),
        }
    }

    fn status_error(&self, status: u16, scope: &'static str) -> RemoteError {
        match status {
            401 => RemoteError::Unauthorized {
                url: self.config.url.clone(),
            },
            403 => RemoteError::Forbidden {
                url: self.config.url.clone(),
                scope,
                namespace: self.config.namespace.clone(),
            },
            _ => RemoteError::Status {
                url: self.config.url.clone(),
                status,
            },
        }
    }

    /// Starts a new phase of the call (the uploads after a compile) with a fresh budget.
    pub fn new_phase(&self) {
        self.deadline.set(Instant::now() + self.config.timeout * 2);
    }

    /// What is left of this phase's budget, at most one request's deadline.
    fn budget(&self) -> Result<Duration, RemoteError> {
        let left = self
            .deadline
            .get()
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.unreachable(format!(
                "no answer within {}s (CACHET_SERVER_TIMEOUT)",
                self.config.timeout.as_secs()
            )));
        }
        Ok(left.min(self.config.timeout))
    }

    fn request_error(&self, e: ureq::Error) -> RemoteError {
        match e {
            ureq::Error::Timeout(_) => self.unreachable(format!(
                "no complete answer within {}s (CACHET_SERVER_TIMEOUT)",
                self.config.timeout.as_secs()
            )),
            ureq::Error::BodyExceedsLimit(_) => RemoteError::TooLarge {
                url: self.config.url.clone(),
                limit: self.config.max_download,
            },
            e => self.unreachable(e),
        }
    }

    fn call_get(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, RemoteError> {
        let mut req = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(self.budget()?))
            .build();
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        req.call().map_err(|e| self.request_error(e))
    }

    /// Fetches a small object (a manifest) into memory; `Ok(None)` is a miss.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        debug_assert!(wire::is_valid_key(key));
        let mut resp = self.call_get(&self.url(key))?;
        match resp.status().as_u16() {
            200 => resp
                .body_mut()
                .with_config()
                .limit(MAX_SMALL_ANSWER)
                .read_to_vec()
                .map(Some)
                .map_err(|e| self.request_error(e)),
            404 => Ok(None),
            s => Err(self.status_error(s, "read")),
        }
    }

    /// Streams an object into `out` (never whole in memory), refusing more than
    /// `max_download` bytes or than the server announced. `Ok(None)` is a miss; `Ok(Some(n))`
    /// the bytes written.
    pub fn get_to(&self, key: &str, out: &mut impl io::Write) -> Result<Option<u64>, RemoteError> {
        debug_assert!(wire::is_valid_key(key));
        let mut resp = self.call_get(&self.url(key))?;
        match resp.status().as_u16() {
            200 => {
                let limit = self.config.max_download;
                let too_large = || RemoteError::TooLarge {
                    url: self.config.url.clone(),
                    limit,
                };
                let announced = resp.body().content_length();
                if announced.is_some_and(|n| n > limit) {
                    return Err(too_large());
                }
                let mut body = resp
                    .body_mut()
                    .with_config()
                    .limit(announced.unwrap_or(limit))
                    .reader();
                let n = io::copy(&mut body, out).map_err(|e| {
                    match e.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
                        Some(Ok(e)) => self.request_error(*e),
                        Some(Err(e)) => self.unreachable(e),
                        None => self.unreachable("the transfer broke off"),
                    }
                })?;
                Ok(Some(n))
            }
            404 => Ok(None),
            s => Err(self.status_error(s, "read")),
        }
    }

    /// Stores an object read from `file` (streamed from disk, with its length announced).
    pub fn put_file(&self, key: &str, file: &fs::File) -> Result<(), RemoteError> {
        self.put_body(key, file)
    }

    /// Stores a small object (a manifest).
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError> {
        self.put_body(key, bytes)
    }

    fn put_body(&self, key: &str, body: impl ureq::AsSendBody) -> Result<(), RemoteError> {
        let mut req = self
            .agent
            .put(&self.url(key))
            .config()
            .timeout_global(Some(self.budget()?))
            .build();
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        let resp = req.send(body).map_err(|e| self.request_error(e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(self.status_error(s, "write")),
        }
    }

    /// POSTs a small body with `headers` to a server path outside the namespace (the
    /// dashboard's reports); returns the status and `Retry-After`.
    pub fn post_path(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Posted, RemoteError> {
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.config.url))
            .config()
            .timeout_global(Some(self.budget()?))
            .build();
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        let mut resp = req.send(body).map_err(|e| self.request_error(e))?;
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read the (small) answer to its end so the connection stays usable.
        let _ = resp
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_ANSWER)
            .read_to_vec();
        Ok(Posted {
            status: resp.status().as_u16(),
            retry_after,
        })
    }

    /// GETs a server path outside the namespace (`/healthz`, `/stats`, `/_whoami`).
    pub fn get_path(&self, path: &str) -> Result<(u16, Vec<u8>), RemoteError> {
        let mut resp = self.call_get(&format!("{}{path}", self.config.url))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_ANSWER)
            .read_to_vec()
            .map_err(|e| self.request_error(e))?;
        Ok((status, body))
    }
}

/// The answer to a POST: its status, and its `Retry-After` in seconds, if any.
#[derive(Debug, Clone, Copy)]
pub struct Posted {
    /// The status code.
    pub status: u16,
    /// How long the server asks to wait before the next request (a `429` or `503`).
    pub retry_after: Option<Duration>,
}

/// Remembers server failures in the cache directory so later calls skip the server.
pub struct Breaker {
    down: PathBuf,
    read_only: PathBuf,
    up: PathBuf,
}

impl Breaker {
    /// The breaker files in `cache_dir`.
    pub fn new(cache_dir: &Path) -> Breaker {
        Breaker {
            down: cache_dir.join("remote-down"),
            read_only: cache_dir.join("remote-read-only"),
            up: cache_dir.join("remote-up"),
        }
    }

    fn tripped(path: &Path) -> bool {
        fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < BREAKER)
    }

    /// True while a recent failure says the server is not worth asking.
    pub fn is_down(&self) -> bool {
        Self::tripped(&self.down)
    }

    /// True while a recent success says the server answers.
    pub fn is_up(&self) -> bool {
        Self::tripped(&self.up)
    }

    /// True while a recent 403 says uploads are refused.
    pub fn is_read_only(&self) -> bool {
        Self::tripped(&self.read_only)
    }

    /// Records a failure.
    pub fn trip(&self, err: &RemoteError) -> io::Result<()> {
        let path = if matches!(err, RemoteError::Forbidden { scope: "write", .. }) {
            &self.read_only
        } else {
            &self.down
        };
        fsutil::write_atomic(path, err.to_string().as_bytes())
    }

    /// Forgets a failure after a success, and remembers the success.
    pub fn reset(&self) {
        let _ = fs::remove_file(&self.down);
        if !self.is_up() {
            let _ = fsutil::write_atomic(&self.up, b"");
        }
    }
}
