//! One history for replicas that share a Redis or S3 store, and the history's upkeep task.
//!
//! Why this shape: replicas behind a load balancer each receive part of a team's reports and
//! serve part of its GETs. Every number of the history is a sum, so one history is the sum of
//! each replica's own: each replica writes **its own shard** (the same JSON document as the
//! history file) beside the objects, under the reserved namespace `_dashboard` (no client
//! can name it: the router refuses namespaces starting with `_`), and reads the others'
//! shards back; a query adds them ([`History::range`] and friends). No document is ever
//! written by two replicas, so there is no lock and no lost update of the numbers.
//!
//! Finding the other shards needs no listing (which the [`Store`] interface does not have):
//! a small registry object names the replicas. It is the only document several replicas
//! write, so it is kept self-healing instead of exact: a replica that does not find itself in
//! it (a concurrent write lost its entry) adds itself again at its next sync; an entry whose
//! shard is gone is dropped by the next writer. A new replica is seen by the others within
//! two or three [`SAVE_PERIOD`]s.
//!
//! What could delete a shard: the shared tier's own eviction (Redis `maxmemory`, an S3
//! lifecycle rule on the bucket's `v1/_dashboard/` prefix) and `--max-age` pruning. Shards
//! are written without a TTL (the store is opened without the objects' `--max-age`), and each live replica rewrites its shard when it changed and at
//! least every [`REFRESH`], so a live replica's numbers come back; a stopped replica's shard
//! stays until the store drops it (its numbers are history: they stay in the sum). A replica
//! is named `<host name>-<port>` at its first start, a name kept in the history document, so a
//! restarted replica with a local file goes on writing its own shard, and one with no local
//! file (Redis- or S3-only) on the same host and port reads its own shard back and goes on
//! from it (on another port it starts a new shard, and the old one stays in the sum).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{file, lock, History, Limits, FILE_NAME, SAVE_PERIOD};
use crate::config::StorageSpec;
use crate::storage::{ObjectBody, ObjectId, Store, StoreError};

/// The reserved namespace holding the shards and the registry.
pub const NAMESPACE: &str = crate::storage::HISTORY_NAMESPACE;
/// The registry's key.
pub const REGISTRY_KEY: &str = "replicas-v1.json";
/// A live replica rewrites its shard at least this often, changed or not.
pub const REFRESH: Duration = Duration::from_secs(600);

/// The registry: replica name → when it last said it was there (unix ms).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    replicas: BTreeMap<String, u64>,
}

/// This replica's access to the shards in the shared store.
pub struct Shards {
    store: Arc<dyn Store>,
    replica: String,
    /// Other replicas' shards as last read: name → (size, modified), to skip unchanged ones.
    seen: std::sync::Mutex<BTreeMap<String, (u64, std::time::SystemTime)>>,
    /// When this replica last wrote its shard.
    pushed: std::sync::Mutex<Option<Instant>>,
}

fn id(key: String) -> ObjectId {
    ObjectId {
        namespace: NAMESPACE.to_string(),
        key,
    }
}

fn shard_key(replica: &str) -> String {
    format!("shard-v1/{replica}.json")
}

/// A name made of what object keys allow.
fn clean(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    if s.is_empty() {
        "server".into()
    } else {
        s
    }
}

/// This replica's default name: the host name and the port it listens on.
pub fn replica_name(local: SocketAddr) -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    clean(&format!("{}-{}", host.trim(), local.port()))
}

async fn read(store: &dyn Store, id: &ObjectId) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(object) = store.get(id).await? else {
        return Ok(None);
    };
    Ok(Some(match object.body {
        ObjectBody::Full(b) => b.to_vec(),
        ObjectBody::Stream(mut s) => {
            let mut out = Vec::with_capacity(object.meta.size as usize);
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|source| StoreError::Io {
                    op: "read",
                    path: id.key.clone().into(),
                    source,
                })?;
                out.extend_from_slice(&chunk);
            }
            out
        }
    }))
}

async fn write(store: &dyn Store, id: &ObjectId, bytes: Vec<u8>) -> Result<(), StoreError> {
    let mut upload = store.put(id).await?;
    upload.write(Bytes::from(bytes)).await?;
    upload.commit().await
}

impl Shards {
    /// Access to the shards in `store` for `history`: as the replica its document names, else
    /// as `replica`.
    pub fn new(store: Arc<dyn Store>, history: &History, replica: &str) -> Shards {
        Shards {
            store,
            replica: clean(&history.join(&clean(replica))),
            seen: Default::default(),
            pushed: Default::default(),
        }
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Reads this replica's own shard back into an empty history (a restart with no file).
    pub async fn restore(&self, history: &History) {
        if !history.is_empty() {
            return;
        }
        match read(self.store.as_ref(), &id(shard_key(&self.replica))).await {
            Ok(Some(bytes)) => match file::parse(&bytes) {
                Ok(d) => {
                    history.restore(d);
                    tracing::info!(replica = %self.replica, "dashboard history read back from the shared store");
                }
                Err(err) => {
                    tracing::warn!(replica = %self.replica, cause = %err, "ignoring this replica's unreadable dashboard shard")
                }
            },
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(cause = %crate::error::chain(&err), "failed to read this replica's dashboard shard")
            }
        }
    }

    /// Writes this replica's shard (when it changed, or every [`REFRESH`]), registers the
    /// replica, and reads the other replicas' shards into `history`.
    pub async fn sync(&self, history: &History) -> Result<(), StoreError> {
        let stale = lock(&self.pushed).is_none_or(|t| t.elapsed() >= REFRESH);
        if history.shard_dirty.swap(false, Ordering::Relaxed) || stale {
            let bytes = history.to_bytes().map_err(|e| StoreError::Backend {
                backend: "dashboard",
                op: "encode the history",
                message: e.to_string(),
            });
            let pushed = match bytes {
                Ok(b) => write(self.store.as_ref(), &id(shard_key(&self.replica)), b).await,
                Err(e) => Err(e),
            };
            if let Err(err) = pushed {
                history.shard_dirty.store(true, Ordering::Relaxed);
                return Err(err);
            }
            *lock(&self.pushed) = Some(Instant::now());
        }
        let registry_id = id(REGISTRY_KEY.to_string());
        let mut registry: Registry = read(self.store.as_ref(), &registry_id)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let now = super::now_ms();
        let mut others = BTreeMap::new();
        let mut gone = Vec::new();
        for name in registry.replicas.keys().filter(|n| **n != self.replica) {
            match self.read_other(history, name).await? {
                Some(d) => {
                    others.insert(name.clone(), d);
                }
                None => gone.push(name.clone()),
            }
        }
        *lock(&history.others) = others;
        let mine = registry.replicas.get(&self.replica).copied();
        if gone.is_empty()
            && mine.is_some_and(|t| now.saturating_sub(t) < REFRESH.as_millis() as u64)
        {
            return Ok(());
        }
        for name in gone {
            registry.replicas.remove(&name);
        }
        registry.replicas.insert(self.replica.clone(), now);
        let bytes = serde_json::to_vec(&registry).unwrap_or_default();
        write(self.store.as_ref(), &registry_id, bytes).await
    }

    /// Another replica's shard: the copy already held when it has not changed, `None` when
    /// it is gone. An unreadable shard is skipped (and kept in the registry).
    async fn read_other(
        &self,
        history: &History,
        name: &str,
    ) -> Result<Option<Arc<super::Data>>, StoreError> {
        let shard = id(shard_key(name));
        let Some(meta) = self.store.head(&shard).await? else {
            return Ok(None);
        };
        let held = lock(&history.others).get(name).cloned();
        let version = (meta.size, meta.modified);
        if let Some(held) = held {
            if lock(&self.seen).get(name) == Some(&version) {
                return Ok(Some(held));
            }
        }
        let Some(bytes) = read(self.store.as_ref(), &shard).await? else {
            return Ok(None);
        };
        match file::parse(&bytes) {
            Ok(d) => {
                lock(&self.seen).insert(name.to_string(), version);
                Ok(Some(Arc::new(d)))
            }
            Err(err) => {
                tracing::warn!(replica = %name, cause = %err, "skipping another replica's unreadable dashboard shard");
                Ok(Some(Arc::new(super::Data::new())))
            }
        }
    }
}

/// The shared (Redis or S3) part of a storage spec, if any.
pub fn shared_spec(spec: &StorageSpec) -> Option<&StorageSpec> {
    match spec {
        StorageSpec::Redis(_) | StorageSpec::S3(_) => Some(spec),
        StorageSpec::Tiered { shared, .. } => shared_spec(shared),
        _ => None,
    }
}

/// The running history: its task, and what stopping it must flush.
pub struct Upkeep {
    history: Arc<History>,
    shards: Option<Arc<Shards>>,
    task: tokio::task::JoinHandle<()>,
}

/// Opens the history for a server's storage (beside the objects of a `dir:` store, also as
/// the local tier of a tiered one; else in memory), joins the replicas sharing its Redis or
/// S3 tier, and starts the task that keeps it: the disk store's evictions added, old hours
/// folded into days, the file saved and the shard synced, every [`SAVE_PERIOD`].
pub async fn start(
    spec: &StorageSpec,
    local: SocketAddr,
    store: Arc<dyn Store>,
) -> (Arc<History>, Upkeep) {
    let history = Arc::new(match spec.local_dir() {
        Some(d) => History::open(d.join(FILE_NAME), Limits::default()),
        None => History::in_memory(Limits::default()),
    });
    // The shared tier opened on its own: reads must reach it, not the local tier's copy, and
    // shards are written without the objects' TTL.
    let shards = shared_spec(spec).and_then(|s| match crate::storage::open::open(s, u64::MAX, None) {
        Ok(store) => Some(Arc::new(Shards::new(store, &history, &replica_name(local)))),
        Err(err) => {
            tracing::warn!(cause = %crate::error::chain(&err), "the dashboard history is not shared with other replicas");
            None
        }
    });
    if let Some(s) = &shards {
        s.restore(&history).await;
    }
    let task = tokio::spawn(upkeep(history.clone(), store, shards.clone()));
    (
        history.clone(),
        Upkeep {
            history,
            shards,
            task,
        },
    )
}

async fn upkeep(history: Arc<History>, store: Arc<dyn Store>, shards: Option<Arc<Shards>>) {
    let mut tick = tokio::time::interval(SAVE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        history.note_usage(&store.usage());
        let h = history.clone();
        let _ = tokio::task::spawn_blocking(move || {
            h.maintain();
            h.save_if_dirty();
        })
        .await;
        if let Some(s) = &shards {
            match s.sync(&history).await {
                Ok(()) => warned = false,
                Err(err) if !warned => {
                    warned = true;
                    tracing::warn!(cause = %crate::error::chain(&err), "failed to sync the dashboard history with the shared store (retried)");
                }
                Err(_) => {}
            }
        }
    }
}

impl Upkeep {
    /// Stops the task, then saves the file and writes the shard one last time.
    pub async fn stop(self) {
        self.task.abort();
        let h = self.history.clone();
        let _ = tokio::task::spawn_blocking(move || h.save_if_dirty()).await;
        if let Some(s) = &self.shards {
            let sync = s.sync(&self.history);
            if let Ok(Err(err)) = tokio::time::timeout(Duration::from_secs(5), sync).await {
                tracing::warn!(cause = %crate::error::chain(&err), "failed to write the dashboard history to the shared store");
            }
        }
    }
}
