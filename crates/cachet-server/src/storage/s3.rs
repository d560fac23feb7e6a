//! The S3 store (AWS S3 and compatible servers: MinIO, Ceph, Garage, R2), through opendal, the
//! library sccache uses (no protocol or signing code here).
//!
//! Layout: object `PREFIX/v1/<namespace>/<key>` in the bucket, the bytes as they are, so a
//! bucket can be inspected with any S3 tool and an S3 lifecycle rule on `PREFIX/v1/` expires
//! old objects (docs/server.md). Uploads stream in parts of [`PART_SIZE`] (multipart), so
//! memory stays bounded; an object is visible only once complete, and an abandoned upload is
//! aborted. Credentials come from the usual places (`AWS_ACCESS_KEY_ID`/`..._SECRET_...`/
//! `AWS_SESSION_TOKEN`, `AWS_PROFILE` and `~/.aws/credentials`/`config`, web identity,
//! container and instance metadata), region from the spec or `AWS_REGION`; an error caused by
//! wrong or missing credentials says so and where they are looked for.
//!
//! S3 does not record reads, so an object's age for `prune` is the time since it was written:
//! a hit does not renew it. An object being read is not affected by a delete (the GET in
//! progress completes).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};

use crate::storage::{
    query, BoxFuture, Object, ObjectBody, ObjectId, ObjectMeta, Store, StoreError, Upload, Usage,
};

/// An S3 bucket: `s3://BUCKET[/PREFIX][?region=R&endpoint=URL&path_style=true|false]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Spec {
    /// The bucket.
    pub bucket: String,
    /// Prefix of every object, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Region (default: `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`).
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible server (default: AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Path-style addressing (default: on with a custom endpoint, off for AWS).
    pub path_style: Option<bool>,
}

impl S3Spec {
    /// The scheme of an S3 URL.
    pub const SCHEME: &str = "s3://";

    /// Parses one tier of a `--storage` spec: `None` if `s` is not an S3 URL, else the spec or
    /// what is wrong with it (said for the user).
    pub fn parse(s: &str) -> Option<Result<S3Spec, String>> {
        let rest = s.strip_prefix(Self::SCHEME)?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Some(Err("s3:// needs a bucket: s3://BUCKET/PREFIX".into()));
        }
        let mut spec = S3Spec {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            region: None,
            endpoint: None,
            path_style: None,
        };
        for (k, v) in query::pairs(query) {
            match k.as_str() {
                "region" => spec.region = Some(v),
                "endpoint" => spec.endpoint = Some(v),
                "path_style" => {
                    spec.path_style = Some(match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Some(Err("path_style must be true or false".into())),
                    })
                }
                other => {
                    return Some(Err(format!(
                        "unknown s3 option {other:?} (known: region, endpoint, path_style)"
                    )))
                }
            }
        }
        Some(Ok(spec))
    }
}

impl std::fmt::Display for S3Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}/{}", Self::SCHEME, self.bucket, self.prefix)?;
        let mut sep = '?';
        for (k, v) in [
            ("region", self.region.clone()),
            ("endpoint", self.endpoint.clone()),
            ("path_style", self.path_style.map(|b| b.to_string())),
        ] {
            if let Some(v) = v {
                write!(f, "{sep}{k}={v}")?;
                sep = '&';
            }
        }
        Ok(())
    }
}

/// Objects up to this size are read in one request into memory; larger ones are streamed.
const FULL_READ_LIMIT: u64 = 4 << 20;
/// Size of the parts of a multipart upload (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

/// An S3 bucket (and prefix).
pub struct S3Store {
    op: Operator,
}

/// Where credentials are looked for, for the hints below.
const CREDENTIAL_SOURCES: &str = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or profile \
    $AWS_PROFILE (else [default]) of AWS_SHARED_CREDENTIALS_FILE (else ~/.aws/credentials)";

fn backend_err(op: &'static str) -> impl FnOnce(opendal::Error) -> StoreError {
    move |err| {
        let message = describe(&err);
        match storage_full(&message) {
            Some(reason) => StoreError::Full {
                path: std::path::PathBuf::from("s3"),
                reason,
            },
            None => StoreError::Backend {
                backend: "s3",
                op,
                message,
            },
        }
    }
}

/// The S3 error codes that mean "no room" rather than "unreachable", found in the error's
/// message (opendal keeps the response body, whose `<Code>` names them): MinIO's
/// `XMinioStorageFull` (507) and Ceph RGW's `QuotaExceeded` (403). Such an upload then gets
/// `507` and the tier is not marked failed (reads go on), as for a Redis at `maxmemory`.
/// Mapped by code only: moto cannot produce either, so this is not tested against a real
/// MinIO or Ceph.
fn storage_full(message: &str) -> Option<&'static str> {
    if message.contains("XMinioStorageFull") {
        Some("the S3 storage is full (MinIO: XMinioStorageFull)")
    } else if message.contains("QuotaExceeded") {
        Some("the S3 bucket's quota is exceeded (QuotaExceeded)")
    } else {
        None
    }
}

/// opendal's message, except when the cause is the credentials: then what to check first.
/// Wrong credentials get a 403, whose body names the cause (`SignatureDoesNotMatch`,
/// `InvalidAccessKeyId`, `AccessDenied`; a HEAD gets no body); opendal's full message adds
/// only the response headers. No credentials at all fail before any request.
fn describe(err: &opendal::Error) -> String {
    if err.kind() == ErrorKind::PermissionDenied {
        let detail = match err.message() {
            "" => "403 Forbidden",
            m => m,
        };
        return format!(
            "access denied ({detail}): check the credentials ({CREDENTIAL_SOURCES}) and that \
             they may read and write the bucket"
        );
    }
    let full = err.to_string();
    // reqsign's words when no provider of its chain had credentials.
    if full.contains("failed to load signing credential") {
        return format!(
            "no AWS credentials found: set {CREDENTIAL_SOURCES}, or run where web identity, \
             container or instance credentials are available ({full})"
        );
    }
    full
}

fn path(id: &ObjectId) -> String {
    format!("v1/{}/{}", id.namespace, id.key)
}

impl S3Store {
    /// Configures the client; nothing is sent until the first request.
    pub fn open(spec: &S3Spec) -> Result<S3Store, StoreError> {
        // opendal 0.58 sends requests through a process-wide transport that only its default
        // features install before main; first install wins, so this is a no-op after the first.
        opendal_http_transport_reqwest::install_default();
        // The HTTP client takes the process-wide rustls provider: ring, as for the server's
        // own TLS (already installed when another store got there first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = opendal::services::S3::default()
            .bucket(&spec.bucket)
            .root(&format!("/{}", spec.prefix));
        let region = spec
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        builder = builder.region(&region);
        if let Some(endpoint) = &spec.endpoint {
            builder = builder.endpoint(endpoint);
        }
        // AWS itself prefers virtual-host-style addressing (bucket.s3.region...); other S3
        // servers are usually reached at an endpoint with the bucket in the path.
        let custom_endpoint = spec.endpoint.is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT").is_some();
        if !spec.path_style.unwrap_or(custom_endpoint) {
            builder = builder.enable_virtual_host_style();
        }
        let op = Operator::new(builder).map_err(backend_err("configure the client"))?;
        Ok(S3Store { op })
    }
}

/// An upload streamed to S3 in parts; aborted if dropped before commit.
struct S3Upload {
    writer: Option<opendal::Writer>,
    /// Bytes written so far (the writer buffers up to a part of them).
    written: u64,
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if let Some(mut w) = self.writer.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = w.abort().await;
                });
            }
        }
    }
}

impl Upload for S3Upload {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.written += chunk.len() as u64;
            match self.writer.as_mut() {
                Some(w) => w.write(chunk).await.map_err(backend_err("upload")),
                None => Ok(()),
            }
        })
    }

    fn buffered(&self) -> u64 {
        // The writer keeps what has not filled a part yet; a part is sent when it is full.
        self.written.min(PART_SIZE as u64)
    }

    fn commit(mut self: Box<Self>) -> BoxFuture<'static, Result<(), StoreError>> {
        let writer = self.writer.take();
        Box::pin(async move {
            if let Some(mut w) = writer {
                w.close().await.map_err(backend_err("finish the upload"))?;
            }
            Ok(())
        })
    }
}

impl Store for S3Store {
    fn head(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<ObjectMeta>, StoreError>> {
        let path = path(id);
        Box::pin(async move { self.head_path(&path).await })
    }

    fn get(&self, id: &ObjectId) -> BoxFuture<'_, Result<Option<Object>, StoreError>> {
        let path = path(id);
        Box::pin(async move {
            let Some(meta) = self.head_path(&path).await? else {
                return Ok(None);
            };
            if meta.size <= FULL_READ_LIMIT {
                // The length is the one read, not the one stat'ed: the object may have been
                // replaced in between.
                return match self.op.read(&path).await {
                    Ok(buf) => {
                        let bytes = buf.to_bytes();
                        Ok(Some(Object {
                            meta: ObjectMeta {
                                size: bytes.len() as u64,
                                modified: meta.modified,
                            },
                            body: ObjectBody::Full(bytes),
                        }))
                    }
                    Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(backend_err("get")(err)),
                };
            }
            // Large objects: cachet's entries are content-addressed (same key, same bytes), so
            // the size from the stat matches the stream.
            let reader = match self.op.reader(&path).await {
                Ok(r) => r,
                Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(backend_err("get")(err)),
            };
            let stream = reader
                .into_bytes_stream(0..meta.size)
                .await
                .map_err(backend_err("get"))?;
            Ok(Some(Object {
                meta,
                body: ObjectBody::Stream(stream.map_err(std::io::Error::other).boxed()),
            }))
        })
    }

    fn put(&self, id: &ObjectId) -> BoxFuture<'_, Result<Box<dyn Upload>, StoreError>> {
        let path = path(id);
        Box::pin(async move {
            let writer = self
                .op
                .writer_with(&path)
                .chunk(PART_SIZE)
                .await
                .map_err(backend_err("start an upload"))?;
            Ok(Box::new(S3Upload {
                writer: Some(writer),
                written: 0,
            }) as Box<dyn Upload>)
        })
    }

    fn delete(&self, id: &ObjectId) -> BoxFuture<'_, Result<bool, StoreError>> {
        let path = path(id);
        Box::pin(async move {
            let existed = self.head_path(&path).await?.is_some();
            self.op.delete(&path).await.map_err(backend_err("delete"))?;
            Ok(existed)
        })
    }

    fn purge_namespace(&self, namespace: &str) -> BoxFuture<'_, Result<u64, StoreError>> {
        let dir = format!("v1/{namespace}/");
        Box::pin(async move { self.sweep(&dir, None).await })
    }

    fn check_writable(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let path = "v1/_ready";
            self.op
                .write(path, Bytes::from_static(b"ready"))
                .await
                .map_err(backend_err("write"))?;
            Ok(())
        })
    }

    fn prune(&self, older_than: Duration) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let cutoff = SystemTime::now()
                .checked_sub(older_than)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            self.sweep("v1/", Some(cutoff)).await
        })
    }

    fn usage(&self) -> Usage {
        Usage {
            index_ready: true,
            ..Usage::default()
        }
    }
}

impl S3Store {
    async fn head_path(&self, path: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(Some(ObjectMeta {
                size: meta.content_length(),
                modified: meta
                    .last_modified()
                    .map(SystemTime::from)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            })),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(backend_err("stat")(err)),
        }
    }

    /// Deletes the objects under `dir` (only those written before `cutoff`, if given);
    /// returns how many.
    async fn sweep(&self, dir: &str, cutoff: Option<SystemTime>) -> Result<u64, StoreError> {
        let mut lister = self
            .op
            .lister_with(dir)
            .recursive(true)
            .await
            .map_err(backend_err("list"))?;
        let history_dir = format!("v1/{}/", super::HISTORY_NAMESPACE);
        let mut doomed = Vec::new();
        while let Some(entry) = lister.next().await {
            let entry = entry.map_err(backend_err("list"))?;
            if !entry.metadata().is_file() || entry.path() == "v1/_ready" {
                continue;
            }
            // Age-based pruning never takes the server's own history (see HISTORY_NAMESPACE).
            if cutoff.is_some() && entry.path().starts_with(&history_dir) {
                continue;
            }
            let old = match cutoff {
                None => true,
                Some(cutoff) => entry
                    .metadata()
                    .last_modified()
                    .map(SystemTime::from)
                    .is_some_and(|t| t < cutoff),
            };
            if old {
                doomed.push(entry.path().to_string());
            }
        }
        let n = doomed.len() as u64;
        if n > 0 {
            self.op
                .delete_iter(doomed)
                .await
                .map_err(backend_err("delete"))?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod full_tests {
    use super::*;

    #[test]
    fn storage_full_codes_become_507_and_other_errors_stay_backend_errors() {
        let minio = opendal::Error::new(
            ErrorKind::Unexpected,
            "<Error><Code>XMinioStorageFull</Code><Message>Storage backend has reached its \
             minimum free drive threshold.</Message></Error>",
        );
        let ceph = opendal::Error::new(
            ErrorKind::PermissionDenied,
            "<Error><Code>QuotaExceeded</Code></Error>",
        );
        for err in [minio, ceph] {
            assert!(
                matches!(backend_err("upload")(err), StoreError::Full { .. }),
                "a full store is a 507, not an unreachable tier"
            );
        }
        let other = opendal::Error::new(ErrorKind::Unexpected, "connection refused");
        assert!(matches!(
            backend_err("upload")(other),
            StoreError::Backend { .. }
        ));
    }
}
