//! Every `CACHET_*` environment variable, declared once.
//!
//! The wrapper warns about `CACHET_*` names that are not in [`ALL`] (a typo such as
//! `CACHET_DIRR` should not silently fall back to defaults), so every part of cachet that reads
//! a variable declares it here, with the text shown by `--help` and the README.

/// Where the local cache (L1) lives. Default: the platform cache directory + `cachet`.
pub const CACHET_DIR: &str = "CACHET_DIR";
/// Size limit of the local cache, with K/M/G/T suffixes. Default `10G`.
pub const CACHET_CACHE_SIZE: &str = "CACHET_CACHE_SIZE";
/// Log filter in env-filter syntax (`debug`, `cachet_wrapper=trace`). Default: logging off.
pub const CACHET_LOG: &str = "CACHET_LOG";
/// File the wrapper logs to. Default: `cachet.log` inside `CACHET_DIR`. Never stderr.
pub const CACHET_LOG_FILE: &str = "CACHET_LOG_FILE";
/// `1`: compile every crate and overwrite its entry (refresh a cache you distrust).
pub const CACHET_RECACHE: &str = "CACHET_RECACHE";
/// `1`: the wrapper runs rustc unchanged and records nothing.
pub const CACHET_DISABLE: &str = "CACHET_DISABLE";
/// Extra environment variables in the key, for proc-macros that read them without telling
/// rustc: a comma-separated list of `NAME` (every crate) or `CRATE:NAME` (one crate).
pub const CACHET_KEY_ENV: &str = "CACHET_KEY_ENV";
/// Extra files in the key, by content: a comma-separated list of `GLOB` (every crate) or
/// `CRATE:GLOB` (one crate); a relative glob is relative to the crate's `CARGO_MANIFEST_DIR`.
pub const CACHET_KEY_FILES: &str = "CACHET_KEY_FILES";
/// Misses in a row of a crate compiled incrementally (the one being edited) whose results are
/// stored: a number, or `all`. Default 1.
pub const CACHET_EDIT_STORE: &str = "CACHET_EDIT_STORE";
/// A crate's miss more than this long after its previous miss starts a new streak (a new edit
/// session), e.g. `10m`. Default `10m`.
pub const CACHET_EDIT_PAUSE: &str = "CACHET_EDIT_PAUSE";
/// zstd level of entries uploaded to the server (1–19; the local cache keeps them raw). Default 1.
pub const CACHET_COMPRESSION_LEVEL: &str = "CACHET_COMPRESSION_LEVEL";
/// URL of a shared cachet server (the L2), e.g. `http://cache.internal:4226`.
pub const CACHET_SERVER: &str = "CACHET_SERVER";
/// Token sent to the shared server.
pub const CACHET_TOKEN: &str = "CACHET_TOKEN";
/// PEM file with an extra CA certificate to trust for an `https://` server.
pub const CACHET_CA_CERT: &str = "CACHET_CA_CERT";
/// Namespace used on the shared server. Default `cachet`.
pub const CACHET_NAMESPACE: &str = "CACHET_NAMESPACE";
/// Overall deadline of one request to the shared server (connect, headers and body), e.g.
/// `30s`; the requests of one lookup, or of one round of uploads, share twice this. Default `30s`.
pub const CACHET_SERVER_TIMEOUT: &str = "CACHET_SERVER_TIMEOUT";
/// Largest entry accepted from the shared server, with K/M/G suffixes. Default `2G`.
pub const CACHET_MAX_DOWNLOAD: &str = "CACHET_MAX_DOWNLOAD";
/// Public keys (`NAME:BASE64`, comma separated) whose signatures this client trusts; when set,
/// entries and manifests from the server must be signed by one of them. Default: none (off).
pub const CACHET_TRUSTED_KEYS: &str = "CACHET_TRUSTED_KEYS";
/// File holding this writer's secret signing key (`cachet key generate`); when set, every
/// entry stored and manifest uploaded is signed with it.
pub const CACHET_SIGNING_KEY: &str = "CACHET_SIGNING_KEY";
/// This client's name in the server's dashboard. Default: the host name.
pub const CACHET_CLIENT_NAME: &str = "CACHET_CLIENT_NAME";
/// `0` = send no call reports to the server's dashboard. Default `1` (on when a server is set).
pub const CACHET_REPORTS: &str = "CACHET_REPORTS";
/// Server: address to listen on. Default `127.0.0.1:4226`.
pub const CACHET_LISTEN: &str = "CACHET_LISTEN";
/// Server: storage. `dir:PATH`, `ephemeral`, `redis://...` (`rediss://`, `redis+cluster://`),
/// `s3://BUCKET[/PREFIX]`, or a local tier in front of a shared one (`dir:PATH,s3://...`);
/// `cachet server --help` gives the full syntax. Default: `dir:<platform data dir>/cachet/server`.
pub const CACHET_STORAGE: &str = "CACHET_STORAGE";
/// Server: size limit of the store. Default `10G`.
pub const CACHET_MAX_SIZE: &str = "CACHET_MAX_SIZE";
/// Server: objects older than this are pruned (e.g. `30d`).
pub const CACHET_MAX_AGE: &str = "CACHET_MAX_AGE";
/// Server: largest accepted object.
pub const CACHET_MAX_OBJECT_SIZE: &str = "CACHET_MAX_OBJECT_SIZE";
/// Server: file with tokens and their scopes.
pub const CACHET_TOKEN_FILE: &str = "CACHET_TOKEN_FILE";
/// Server: tokens given inline.
pub const CACHET_TOKENS: &str = "CACHET_TOKENS";
/// Server: TLS certificate chain (PEM).
pub const CACHET_TLS_CERT: &str = "CACHET_TLS_CERT";
/// Server: TLS private key (PEM).
pub const CACHET_TLS_KEY: &str = "CACHET_TLS_KEY";
/// Server: `text` or `json` log lines.
pub const CACHET_LOG_FORMAT: &str = "CACHET_LOG_FORMAT";
/// Server: TOML configuration file.
pub const CACHET_CONFIG: &str = "CACHET_CONFIG";
/// Server: longest pause allowed while reading a request's body, or while a client
/// is not reading a response (e.g. `30s`). Default `30s`.
pub const CACHET_BODY_TIMEOUT: &str = "CACHET_BODY_TIMEOUT";
/// Server: time a new connection has to send its first request's headers. Default `30s`.
pub const CACHET_HEADER_TIMEOUT: &str = "CACHET_HEADER_TIMEOUT";
/// Server: a connection with no request in progress is closed after this long. Default `60s`.
pub const CACHET_IDLE_TIMEOUT: &str = "CACHET_IDLE_TIMEOUT";
/// Server: time a client has to finish its TLS handshake. Default `10s`.
pub const CACHET_HANDSHAKE_TIMEOUT: &str = "CACHET_HANDSHAKE_TIMEOUT";
/// Server: most connections open at once. Default: from the open-file limit, at most 10000.
pub const CACHET_MAX_CONNECTIONS: &str = "CACHET_MAX_CONNECTIONS";
/// Server: most upload bytes buffered in memory across all connections. Default `256M`.
pub const CACHET_UPLOAD_MEMORY: &str = "CACHET_UPLOAD_MEMORY";
/// Server: call records one client may send per second (a token bucket holding a minute of
/// it); past it, `429` with `Retry-After`. Default `200`.
pub const CACHET_REPORT_RATE: &str = "CACHET_REPORT_RATE";
/// Server: call-report requests one client may send per second. Default `5`.
pub const CACHET_REPORT_REQUESTS: &str = "CACHET_REPORT_REQUESTS";
/// Server: call records all clients together may send per second. Default `20000`.
pub const CACHET_REPORT_CEILING: &str = "CACHET_REPORT_CEILING";
/// Server: `true` to require a token with `read` scope for `/stats` and `/metrics`.
pub const CACHET_PROTECT_STATS: &str = "CACHET_PROTECT_STATS";
/// Docker Compose (`docker-compose.yml`): the server image to run. Default `cachet:local`.
pub const CACHET_IMAGE: &str = "CACHET_IMAGE";
/// Docker Compose: a host directory for the store (persistent mode). Default: a named volume.
pub const CACHET_DATA: &str = "CACHET_DATA";
/// Docker Compose with `docker/compose.publish.yml`: host address and port to publish.
/// Default `127.0.0.1:4226`.
pub const CACHET_PUBLISH: &str = "CACHET_PUBLISH";

/// Every variable cachet reads, with a one-line description.
pub const ALL: &[(&str, &str)] = &[
    (
        CACHET_DIR,
        "local cache directory (default: platform cache dir/cachet)",
    ),
    (
        CACHET_CACHE_SIZE,
        "local cache size limit, e.g. 10G (default 10G)",
    ),
    (CACHET_LOG, "log filter, e.g. debug (default: off)"),
    (
        CACHET_LOG_FILE,
        "wrapper log file (default: CACHET_DIR/cachet.log)",
    ),
    (CACHET_RECACHE, "1 = compile and overwrite entries"),
    (
        CACHET_KEY_ENV,
        "extra variables in the key: NAME or CRATE:NAME, comma-separated",
    ),
    (
        CACHET_KEY_FILES,
        "extra files in the key: GLOB or CRATE:GLOB, comma-separated",
    ),
    (CACHET_DISABLE, "1 = run rustc unchanged"),
    (
        CACHET_EDIT_STORE,
        "misses in a row stored of a crate being edited: N or all (default 1)",
    ),
    (
        CACHET_EDIT_PAUSE,
        "a pause between misses that starts a new edit session (default 10m)",
    ),
    (
        CACHET_COMPRESSION_LEVEL,
        "zstd level of entries uploaded to a server, 1-19 (default 1)",
    ),
    (CACHET_SERVER, "shared server URL (L2)"),
    (CACHET_TOKEN, "token for the shared server"),
    (
        CACHET_CA_CERT,
        "extra CA certificate (PEM) for an https server",
    ),
    (
        CACHET_NAMESPACE,
        "namespace on the shared server (default cachet)",
    ),
    (
        CACHET_SERVER_TIMEOUT,
        "deadline of one request to the shared server (default 30s)",
    ),
    (
        CACHET_MAX_DOWNLOAD,
        "largest entry accepted from the shared server (default 2G)",
    ),
    (
        CACHET_TRUSTED_KEYS,
        "public keys whose signatures are required on server objects (default: off)",
    ),
    (
        CACHET_SIGNING_KEY,
        "secret key file: sign entries and manifests this machine writes",
    ),
    (
        CACHET_CLIENT_NAME,
        "this client's name in the server's dashboard (default: host name)",
    ),
    (
        CACHET_REPORTS,
        "0 = send no call reports to the server's dashboard (default 1)",
    ),
    (
        CACHET_LISTEN,
        "server listen address (default 127.0.0.1:4226)",
    ),
    (
        CACHET_STORAGE,
        "server storage: dir:PATH, ephemeral, redis://..., s3://..., or LOCAL,SHARED \
         (e.g. dir:/var/cachet,s3://bucket/prefix; see `cachet server --help`)",
    ),
    (CACHET_MAX_SIZE, "server store size limit (default 10G)"),
    (CACHET_MAX_AGE, "server: prune objects older than this"),
    (CACHET_MAX_OBJECT_SIZE, "server: largest accepted object"),
    (CACHET_TOKEN_FILE, "server: token file"),
    (CACHET_TOKENS, "server: inline tokens"),
    (CACHET_TLS_CERT, "server: TLS certificate (PEM)"),
    (CACHET_TLS_KEY, "server: TLS private key (PEM)"),
    (CACHET_LOG_FORMAT, "server: text or json logs"),
    (CACHET_CONFIG, "server: TOML configuration file"),
    (CACHET_BODY_TIMEOUT, "server: stall timeout (30s)"),
    (CACHET_HEADER_TIMEOUT, "server: first request timeout (30s)"),
    (CACHET_IDLE_TIMEOUT, "server: idle connection timeout (60s)"),
    (
        CACHET_HANDSHAKE_TIMEOUT,
        "server: TLS handshake timeout (10s)",
    ),
    (CACHET_MAX_CONNECTIONS, "server: most open connections"),
    (CACHET_UPLOAD_MEMORY, "server: upload buffer budget (128M)"),
    (
        CACHET_REPORT_RATE,
        "server: call records/s per client (200)",
    ),
    (
        CACHET_REPORT_REQUESTS,
        "server: report requests/s per client (5)",
    ),
    (
        CACHET_REPORT_CEILING,
        "server: call records/s, all clients (20000)",
    ),
    (
        CACHET_PROTECT_STATS,
        "server: /stats and /metrics need a token",
    ),
    (CACHET_IMAGE, "compose: server image (cachet:local)"),
    (CACHET_DATA, "compose: host dir for a persistent store"),
    (CACHET_PUBLISH, "compose: host address:port to publish"),
];

/// True when `name` is a variable cachet knows.
pub fn is_known(name: &str) -> bool {
    ALL.iter().any(|(n, _)| *n == name)
}
