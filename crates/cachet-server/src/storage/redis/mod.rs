//! The Redis store: one Redis value per object, on a single node or a Redis Cluster, through
//! the `redis` crate (no protocol code here).
//!
//! Layout: key `<prefix>v1/<namespace>/<key>` (the object key is already restricted to
//! `A-Z a-z 0-9 . _ - ~ /`); value = a 16-byte header (`cachetr1` and the write time in
//! milliseconds, little-endian) followed by the object's bytes. The header lets `HEAD` answer
//! with one `GETRANGE` and `STRLEN`, and a value that does not start with it (another program's
//! key under the same prefix) is a miss, never served.
//!
//! Why one value per object: Redis values are written and read whole, atomically, so a reader
//! sees the old object or the new one, and a prune (or a TTL expiry) can never cut a read
//! short. The cost is that an upload is assembled in memory before its `SET`, and that Redis's
//! value limit (512 MB) is a hard limit: larger objects are refused with
//! [`StoreError::TooLarge`] (counted as `refused`); behind a local tier they stay local.
//!
//! Retention: with `--max-age`, every `SET` carries that TTL and every read (`GETEX`) renews
//! it, so an object expires when it has not been used for that long, as on disk (Redis 6.2 or
//! later). `prune` walks the keys with `SCAN` (on every master of a cluster) and deletes those
//! idle for longer than asked (`OBJECT IDLETIME`).

pub mod spec;

pub use spec::RedisSpec;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use tokio::sync::OnceCell;

use crate::storage::{
    BoxFuture, Object, ObjectBody, ObjectId, ObjectMeta, Store, StoreError, Upload, Usage,
};

/// Redis's limit on one value (`proto-max-bulk-len` default), less the header.
pub const MAX_VALUE: u64 = 512 * 1024 * 1024 - HEADER_LEN as u64;
/// Length of the value header.
const HEADER_LEN: usize = 16;
/// First bytes of every value written by this store (format version 1).
const MAGIC: &[u8; 8] = b"cachetr1";
/// Keys asked for per `SCAN` call.
const SCAN_COUNT: usize = 1000;
/// How long to wait for a connection or an answer before the call fails (the tier's breaker
/// then skips Redis for a while).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// See [`CONNECT_TIMEOUT`]; below the tier's own limit, so Redis's error is the one reported.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(8);

/// A Redis (single node or cluster) store.
pub struct RedisStore {
    /// Kept to connect to every master directly for `SCAN` (prune, purge).
    spec: RedisSpec,
    conn: Conn,
    /// `<prefix>v1/`: every key of this store starts with it.
    root: String,
    /// TTL of every value, renewed on read.
    ttl: Option<Duration>,
    /// Roots for `rediss://` with `ca_cert`.
    certs: Option<redis::TlsCertificates>,
}

enum Conn {
    /// Reconnects by itself after a failure.
    Single(ConnectionManager),
    /// Connected on first use (so the server starts while the cluster is down); the cluster
    /// connection follows topology changes and reconnects by itself.
    Cluster(Box<(redis::cluster::ClusterClient, OnceCell<ClusterConnection>)>),
}

fn backend_err(op: &'static str) -> impl FnOnce(redis::RedisError) -> StoreError {
    move |err| StoreError::Backend {
        backend: "redis",
        op,
        message: err.to_string(),
    }
}

/// Escapes glob characters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The TLS roots for `rediss://` with a private CA, read once.
fn tls_certificates(spec: &RedisSpec) -> Result<Option<redis::TlsCertificates>, StoreError> {
    let Some(path) = &spec.ca_cert else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| StoreError::Backend {
        backend: "redis",
        op: "read the CA certificate (ca_cert)",
        message: format!("{}: {e}", path.display()),
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// A client for one node URL, trusting the spec's CA if it names one.
fn client_for(
    url: &str,
    certs: &Option<redis::TlsCertificates>,
) -> Result<redis::Client, StoreError> {
    match certs {
        Some(c) => redis::Client::build_with_tls(url, c.clone()),
        None => redis::Client::open(url),
    }
    .map_err(backend_err("configure the client"))
}

impl RedisStore {
    /// Prepares the connection (the first command connects; a Redis that is down at start-up
    /// is retried on every later call).
    pub fn open(spec: &RedisSpec, ttl: Option<Duration>) -> Result<RedisStore, StoreError> {
        let urls = spec.node_urls();
        let certs = tls_certificates(spec)?;
        let conn = if spec.cluster {
            let mut builder = redis::cluster::ClusterClient::builder(urls)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(1);
            if let Some(c) = &certs {
                builder = builder.certs(c.clone());
            }
            let client = builder
                .build()
                .map_err(backend_err("configure the cluster client"))?;
            Conn::Cluster(Box::new((client, OnceCell::new())))
        } else {
            let client = client_for(&urls[0], &certs)?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2));
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(backend_err("connect"))?;
            Conn::Single(manager)
        };
        Ok(RedisStore {
            root: format!("{}v1/", spec.prefix),
            spec: spec.clone(),
            certs,
            conn,
            ttl,
        })
    }

    fn key(&self, id: &ObjectId) -> String {
        format!("{}{}/{}", self.root, id.namespace, id.key)
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.handle().await?;
        cmd.query_async(&mut conn).await.map_err(backend_err(op))
    }

    async fn pipe<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.handle().await?;
        pipe.query_async(&mut conn).await.map_err(backend_err(op))
    }

    /// A connection: the manager, or the cluster connection (made on first use).
    async fn handle(&self) -> Result<ConnHandle, StoreError> {
        Ok(match &self.conn {
            Conn::Single(m) => ConnHandle::Single(m.clone()),
            Conn::Cluster(c) => {
                let (client, cell) = c.as_ref();
                let conn = cell
                    .get_or_try_init(|| client.get_async_connection())
                    .await
                    .map_err(backend_err("connect"))?;
                ConnHandle::Cluster(conn.clone())
            }
        })
    }

    /// A direct connection to every master (the one node, or each master of the cluster),
    /// for `SCAN`, which walks one node's keys.
    async fn masters(&self) -> Result<Vec<redis::aio::MultiplexedConnection>, StoreError> {
        let urls = if self.spec.cluster {
            let nodes: String = self
                .query("list the cluster nodes", redis::cmd("CLUSTER").arg("NODES"))
                .await?;
            let addrs: Vec<String> = nodes
                .lines()
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let flags = fields.get(2)?;
                    if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                        return None;
                    }
                    // ip:port@cport[,hostname]
                    let addr = fields.get(1)?.split('@').next()?;
                    Some(addr.to_string())
                })
                .collect();
            addrs.iter().map(|a| self.spec.url_for(a)).collect()
        } else {
            self.spec.node_urls()
        };
        let mut conns = Vec::with_capacity(urls.len());
        for url in urls {
            let client = client_for(&url, &self.certs)?;
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT));
            conns.push(
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(backend_err("connect"))?,
            );
        }
        Ok(conns)
    }

    /// Deletes, on every master, the keys matching `pattern` (only those idle for at least
    /// `idle_at_least` seconds, if given); returns how many.
    async fn sweep(&self, pattern: &str, idle_at_least: Option<u64>) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        let history = format!("{}{}/", self.root, super::HISTORY_NAMESPACE);
        for mut node in self.masters().await? {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut node)
                    .await
                    .map_err(backend_err("scan"))?;
                // Age-based pruning never takes the server's own history (HISTORY_NAMESPACE).
                let keys: Vec<String> = match idle_at_least {
                    Some(_) => keys
                        .into_iter()
                        .filter(|k| !k.starts_with(&history))
                        .collect(),
                    None => keys,
                };
                let doomed: Vec<String> = match idle_at_least {
                    None => keys,
                    Some(min_idle) if !keys.is_empty() => {
                        let mut pipe = redis::pipe();
                        for k in &keys {
                            pipe.cmd("OBJECT").arg("IDLETIME").arg(k);
                        }
                        let idle: Vec<Option<u64>> = pipe
                            .query_async(&mut node)
                            .await
                            .map_err(backend_err("read idle times"))?;
                        keys.into_iter()
                            .zip(idle)
                            .filter(|(_, idle)| idle.is_some_and(|i| i >= min_idle))
                            .map(|(k, _)| k)
                            .collect()
                    }
                    Some(_) => Vec::new(),
                };
                if !doomed.is_empty() {
                    // One key per command: in a cluster the keys of a batch may live in
                    // different slots (all on this node, which owns them).
                    let mut pipe = redis::pipe();
                    for k in &doomed {
                        pipe.cmd("UNLINK").arg(k);
                    }
                    let gone: Vec<u64> = pipe
                        .query_async(&mut node)
                        .await
                        .map_err(backend_err("delete"))?;
                    removed += gone.iter().sum::<u64>();
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn parse_header(header: &[u8]) -> Option<SystemTime> {
    if header.len() < HEADER_LEN || &header[..8] != MAGIC {
        return None;
    }
    let millis = u64::from_le_bytes(header[8..16].try_into().ok()?);
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

/// An upload: the value is assembled in memory (Redis takes it whole) and `SET` on commit.
struct OwnedRedisUpload {
    conn: ConnHandle,
    key: String,
    value: Vec<u8>,
    ttl: Option<Duration>,
}

/// What an upload needs to send its `SET` after the call that started it has returned. A
/// connection like the two it wraps, so a command is sent the same way to a node or a cluster.
#[derive(Clone)]
enum ConnHandle {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for ConnHandle {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            ConnHandle::Single(m) => m.req_packed_command(cmd),
            ConnHandle::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            ConnHandle::Single(m) => m.req_packed_commands(cmd, offset, count),
            ConnHandle::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            ConnHandle::Single(m) => m.get_db(),
            ConnHandle::Cluster(c) => c.get_db(),
        }
    }
}

impl Upload for OwnedRedisUpload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let size = (self.value.len() - HEADER_LEN + chunk.len()) as u64;
            if size > MAX_VALUE {
                self.value = Vec::new();
                return Err(StoreError::TooLarge {
                    backend: "redis",
                    limit: MAX_VALUE,
                    size,
                });
            }
            let needed = self.value.len() + chunk.len();
            if needed > self.value.capacity() {
                // Grow by a quarter, not by doubling: the capacity is what --upload-memory
                // counts, so doubling would refuse uploads half the budget's size.
                let target = needed.max(self.value.capacity() + self.value.capacity() / 4);
                self.value.reserve_exact(target - self.value.len());
            }
            self.value.extend_from_slice(&chunk);
            Ok(())
        })
    }

    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&self.key).arg(&self.value);
            if let Some(ttl) = self.ttl {
                cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
            }
            let mut conn = self.conn.clone();
            cmd.query_async::<()>(&mut conn).await.map_err(|err| {
                // `maxmemory` reached under the `noeviction` policy: the store is full, which
                // the client should hear as such (507), not as an unreachable backend.
                if err.code() == Some("OOM") {
                    StoreError::Full {
                        path: std::path::PathBuf::from("redis"),
                        reason: "Redis is out of memory (maxmemory reached and its policy \
                                 evicts nothing)",
                    }
                } else {
                    backend_err("set")(err)
                }
            })
        })
    }

    fn buffered(&self) -> u64 {
        self.value.capacity() as u64
    }
}

impl Store for RedisStore {
    fn head(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<ObjectMeta>, StoreError>> {
        let key = self.key(id);
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.cmd("GETRANGE")
                .arg(&key)
                .arg(0)
                .arg(HEADER_LEN - 1)
                .cmd("STRLEN")
                .arg(&key);
            let (header, len): (Vec<u8>, u64) = self.pipe("head", &pipe).await?;
            Ok(parse_header(&header).map(|modified| ObjectMeta {
                size: len - HEADER_LEN as u64,
                modified,
            }))
        })
    }

    fn get(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<Object>, StoreError>> {
        let key = self.key(id);
        Box::pin(async move {
            let cmd = match self.ttl {
                Some(ttl) => {
                    let mut c = redis::cmd("GETEX");
                    c.arg(&key).arg("PX").arg(ttl.as_millis().max(1) as u64);
                    c
                }
                None => {
                    let mut c = redis::cmd("GET");
                    c.arg(&key);
                    c
                }
            };
            let value: Option<Vec<u8>> = self.query("get", &cmd).await?;
            let Some(value) = value else { return Ok(None) };
            let Some(modified) = parse_header(&value) else {
                tracing::debug!(key = %key, "ignoring a Redis value without cachet's header");
                return Ok(None);
            };
            let bytes = Bytes::from(value).slice(HEADER_LEN..);
            Ok(Some(Object {
                meta: ObjectMeta {
                    size: bytes.len() as u64,
                    modified,
                },
                body: ObjectBody::Full(bytes),
            }))
        })
    }

    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let key = self.key(id);
        Box::pin(async move {
            let mut value = Vec::with_capacity(HEADER_LEN + 4096);
            value.extend_from_slice(MAGIC);
            value.extend_from_slice(&now_millis().to_le_bytes());
            Ok(Box::new(OwnedRedisUpload {
                conn: self.handle().await?,
                key,
                value,
                ttl: self.ttl,
            }) as Box<dyn Upload>)
        })
    }

    fn delete(&self, id: &ObjectId) -> BoxFuture<'_, Result<bool, StoreError>> {
        let key = self.key(id);
        Box::pin(async move {
            let n: u64 = self.query("delete", redis::cmd("DEL").arg(&key)).await?;
            Ok(n > 0)
        })
    }

    fn purge_namespace(&self, namespace: &str) -> BoxFuture<'_, Result<u64, StoreError>> {
        let pattern = format!("{}{}/*", glob_escape(&self.root), namespace);
        Box::pin(async move { self.sweep(&pattern, None).await })
    }

    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let key = format!("{}_ready", self.root);
            self.query::<()>(
                "write",
                redis::cmd("SET").arg(&key).arg(1).arg("PX").arg(10_000),
            )
            .await
        })
    }

    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            // With a TTL no longer than the age asked for, Redis already expired everything
            // older: a walk over every key would find nothing.
            if self.ttl.is_some_and(|ttl| ttl <= older_than) {
                return Ok(0);
            }
            let pattern = format!("{}*", glob_escape(&self.root));
            self.sweep(&pattern, Some(older_than.as_secs())).await
        })
    }

    fn max_upload(&self) -> Option<(&'static str, u64)> {
        Some(("redis", MAX_VALUE))
    }

    fn usage(&self) -> Usage {
        Usage {
            index_ready: true,
            ..Usage::default()
        }
    }
}
