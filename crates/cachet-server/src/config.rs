//! The server's configuration: command-line flags, `CACHET_*` variables and a TOML file,
//! resolved once at start-up into a validated [`Config`].
//!
//! Precedence is flags > environment > config file > built-in defaults. clap already merges the
//! first two (every flag has `env = CACHET_...`), so every flag is an `Option` without a clap
//! default: `None` means "neither flag nor variable", and the file, then the default, decide.
//! Every value is checked here, before a socket is bound, so a typo fails at start-up with a
//! message naming the setting instead of surfacing as a 500 an hour later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cachet_core::env_vars as ev;
use serde::Deserialize;

use crate::auth::{TokenError, Tokens};
pub use crate::storage::spec::{SpecError, StorageSpec};

/// The commented default configuration file, shown by `cachet server --print-default-config`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default-config.toml");

/// Default of `--header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of `--upload-memory`.
pub const DEFAULT_UPLOAD_MEMORY: u64 = 128 << 20;
/// Default of `--handshake-timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Command-line arguments of `cachet server`.
///
/// Every setting can also come from the `CACHET_*` variable of the same name or from the TOML
/// file given by `--config`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    /// Maintenance commands (without one, the server runs).
    #[command(subcommand)]
    pub action: Option<ServerAction>,
    /// TOML configuration file (see --print-default-config).
    #[arg(long, env = ev::CACHET_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4226].
    #[arg(long, env = ev::CACHET_LISTEN, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Storage: `dir:PATH`, `ephemeral`, `redis://HOST:PORT[/DB][?prefix=P]` (`rediss://` for
    /// TLS, `redis+cluster://H1:P1,H2:P2` for a cluster), `s3://BUCKET[/PREFIX][?region=R&
    /// endpoint=URL&path_style=true]`, or a local tier in front of a shared one:
    /// `dir:/var/cachet,s3://bucket/prefix` [default: dir:<platform data dir>/cachet/server].
    #[arg(long, env = ev::CACHET_STORAGE, value_name = "SPEC")]
    pub storage: Option<String>,
    /// Size limit of the store; least recently used objects are evicted past it [default: 10G].
    #[arg(long, env = ev::CACHET_MAX_SIZE, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Objects not read or written for this long are pruned, e.g. `30d` [default: never].
    #[arg(long, env = ev::CACHET_MAX_AGE, value_name = "DURATION")]
    pub max_age: Option<String>,
    /// Largest accepted object; larger uploads get 413 [default: 1G, at most --max-size].
    #[arg(long, env = ev::CACHET_MAX_OBJECT_SIZE, value_name = "SIZE")]
    pub max_object_size: Option<String>,
    /// File with one token per line: `TOKEN SCOPES [NAMESPACES]` (see docs/server.md).
    #[arg(long, env = ev::CACHET_TOKEN_FILE, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Tokens given inline, in the token-file syntax; `;` also separates entries.
    #[arg(long, env = ev::CACHET_TOKENS, value_name = "TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// TLS certificate chain (PEM); serves HTTPS (HTTP/2 by ALPN) when given with --tls-key.
    #[arg(long, env = ev::CACHET_TLS_CERT, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = ev::CACHET_TLS_KEY, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Log line format: `text` or `json` [default: text]. The filter is CACHET_LOG (default info).
    #[arg(long, env = ev::CACHET_LOG_FORMAT, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Longest pause allowed while a client sends a body, or reads a response [default: 30s].
    #[arg(long, env = ev::CACHET_BODY_TIMEOUT, value_name = "DURATION")]
    pub body_timeout: Option<String>,
    /// Time a new connection (or a TLS connection once its handshake is done) has to send its
    /// first request's headers [default: 30s].
    #[arg(long, env = ev::CACHET_HEADER_TIMEOUT, value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// A connection with no request in progress (HTTP/1.1 keep-alive or HTTP/2) is closed
    /// after this long [default: 60s].
    #[arg(long, env = ev::CACHET_IDLE_TIMEOUT, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Time a client has to finish its TLS handshake [default: 10s].
    #[arg(long, env = ev::CACHET_HANDSHAKE_TIMEOUT, value_name = "DURATION")]
    pub handshake_timeout: Option<String>,
    /// Most connections open at once; past it, idle connections are closed and new ones wait
    /// [default: (open-file limit - 64) / 2, at most 10000].
    #[arg(long, env = ev::CACHET_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: Option<String>,
    /// `true`: `/stats` and `/metrics` need a token with `read` on every namespace (`*`)
    /// when tokens are configured [default: false].
    #[arg(long, env = ev::CACHET_PROTECT_STATS, value_name = "BOOL")]
    pub protect_stats: Option<String>,
    /// Most bytes of uploads buffered in memory across all connections; past it, uploads wait
    /// briefly, then get 503 with Retry-After [default: 128M].
    #[arg(long, env = ev::CACHET_UPLOAD_MEMORY, value_name = "SIZE")]
    pub upload_memory: Option<String>,
    /// Once listening, write the bound port to FILE (written whole, then renamed into place):
    /// with `--listen 127.0.0.1:0` a script or test learns the port the system picked. The
    /// address is also logged on stderr at every log level (`cachet server listening on
    /// http://ADDR`).
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Check the configuration, print it, and exit without serving.
    #[arg(long)]
    pub check_config: bool,
    /// Print a commented default configuration file and exit.
    #[arg(long)]
    pub print_default_config: bool,
}

/// `cachet server` maintenance commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServerAction {
    /// Remove objects not used for longer than --older-than from every tier of the storage
    /// (Redis: idle time; S3: time since written), then exit. Safe while servers run.
    Prune(PruneArgs),
}

/// Arguments of `cachet server prune`.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Age past which objects are removed, e.g. `30d`.
    #[arg(long, value_name = "DURATION")]
    pub older_than: String,
    /// TOML configuration file whose `storage` to prune.
    #[arg(long, env = ev::CACHET_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The storage to prune (same syntax as the server's --storage).
    #[arg(long, env = ev::CACHET_STORAGE, value_name = "SPEC")]
    pub storage: Option<String>,
}

/// The TOML configuration file. Every field is optional; flags and variables override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on, e.g. `127.0.0.1:4226` or `0.0.0.0:4226`.
    pub listen: Option<String>,
    /// Storage: `dir:PATH`, `ephemeral`, `redis://...`, `s3://...`, or `LOCAL,SHARED`.
    pub storage: Option<String>,
    /// Size limit of the store, e.g. `10G`.
    pub max_size: Option<String>,
    /// Prune objects not used for this long, e.g. `30d`.
    pub max_age: Option<String>,
    /// Largest accepted object, e.g. `1G`.
    pub max_object_size: Option<String>,
    /// Token file (relative paths are relative to the config file).
    pub token_file: Option<PathBuf>,
    /// Inline tokens, one entry per line, in the token-file syntax.
    pub tokens: Option<String>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Longest stall of a request's body (or of a client reading a response), e.g. `30s`.
    pub body_timeout: Option<String>,
    /// Time a new connection has to send its first request's headers, e.g. `30s`.
    pub header_timeout: Option<String>,
    /// Close connections with no request in progress after this long, e.g. `60s`.
    pub idle_timeout: Option<String>,
    /// Time a client has to finish its TLS handshake, e.g. `10s`.
    pub handshake_timeout: Option<String>,
    /// Most connections open at once.
    pub max_connections: Option<u64>,
    /// `/stats` and `/metrics` need a token with `read` on `*`.
    pub protect_stats: Option<bool>,
    /// Most upload bytes buffered in memory, e.g. `128M`.
    pub upload_memory: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Paths of a TLS certificate chain and key.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (only used by [`crate::run_from_args`]; [`crate::run`] takes a
    /// bound listener).
    pub listen: SocketAddr,
    /// Where objects live.
    pub storage: StorageSpec,
    /// Size limit of the store, in bytes.
    pub max_size: u64,
    /// Objects unused for longer are pruned.
    pub max_age: Option<Duration>,
    /// Largest accepted object, in bytes.
    pub max_object_size: u64,
    /// Who may do what; empty means everyone may do everything.
    pub tokens: Tokens,
    /// Serve HTTPS with this certificate.
    pub tls: Option<TlsPaths>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Longest stall of a request's body, or of a client reading a response.
    pub body_timeout: Duration,
    /// Time a new connection has to send its first request's headers.
    pub header_timeout: Duration,
    /// Connections with no request in progress are closed after this long.
    pub idle_timeout: Duration,
    /// Time a client has to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// Most connections open at once; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// `/stats` and `/metrics` need a token (when tokens are configured).
    pub protect_stats: bool,
    /// Most upload bytes buffered in memory across all connections.
    pub upload_memory: u64,
}

/// A setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("failed to read config file {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this server.
    #[error("invalid config file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// One setting has a bad value.
    #[error("invalid {setting} {value:?}: {reason}")]
    Invalid {
        /// Flag name of the setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// The tokens could not be read.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// The storage spec is not valid.
    #[error(transparent)]
    Storage(#[from] SpecError),
}

fn invalid(setting: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Config {
    /// A configuration with the built-in defaults and the given storage, for embedding and tests.
    pub fn with_storage(storage: StorageSpec) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4226)),
            storage,
            max_size: 10 << 30,
            max_age: None,
            max_object_size: 1 << 30,
            tokens: Tokens::default(),
            tls: None,
            log_format: LogFormat::Text,
            body_timeout: Duration::from_secs(30),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: None,
            protect_stats: false,
            upload_memory: DEFAULT_UPLOAD_MEMORY,
        }
    }

    /// Resolves flags (with their variables), the config file and the defaults.
    pub fn resolve(args: &ServerArgs) -> Result<Config, ConfigError> {
        let (file, file_dir) = match &args.config {
            Some(path) => (
                read_file_config(path)?,
                path.parent().map(Path::to_path_buf),
            ),
            None => (FileConfig::default(), None),
        };
        let rel = |p: PathBuf| match &file_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        };
        let pick = |flag: &Option<String>, file: Option<String>| flag.clone().or(file);

        let listen = pick(&args.listen, file.listen).unwrap_or_else(|| "127.0.0.1:4226".into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(
                "--listen",
                &listen,
                "expected IP:PORT such as 127.0.0.1:4226",
            )
        })?;

        let storage = match pick(&args.storage, file.storage) {
            Some(s) => StorageSpec::parse(&s)?,
            None => StorageSpec::Dir(default_storage_dir()?),
        };

        let max_size = match pick(&args.max_size, file.max_size) {
            Some(s) => parse_size_setting("--max-size", &s)?,
            None => 10 << 30,
        };
        let max_age = pick(&args.max_age, file.max_age)
            .map(|s| parse_duration_setting("--max-age", &s))
            .transpose()?;
        let max_object_size = match pick(&args.max_object_size, file.max_object_size) {
            Some(s) => {
                let v = parse_size_setting("--max-object-size", &s)?;
                if v > max_size {
                    return Err(invalid(
                        "--max-object-size",
                        &s,
                        "must not exceed --max-size: raise --max-size or lower this",
                    ));
                }
                v
            }
            None => (1u64 << 30).min(max_size),
        };

        let mut tokens = Tokens::default();
        if let Some(path) = args.token_file.clone().or(file.token_file.map(&rel)) {
            tokens.extend(Tokens::from_file(&path)?);
        }
        if let Some(inline) = pick(&args.tokens, file.tokens) {
            tokens.extend(Tokens::parse(&inline, "CACHET_TOKENS")?);
        }

        let tls_cert = args.tls_cert.clone().or(file.tls_cert.map(&rel));
        let tls_key = args.tls_key.clone().or(file.tls_key.map(&rel));
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsPaths { cert, key }),
            (None, None) => None,
            (Some(c), None) => {
                return Err(invalid(
                    "--tls-cert",
                    &c.display().to_string(),
                    "--tls-key is required too",
                ))
            }
            (None, Some(k)) => {
                return Err(invalid(
                    "--tls-key",
                    &k.display().to_string(),
                    "--tls-cert is required too",
                ))
            }
        };

        let log_format = match pick(&args.log_format, file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("--log-format", other, "expected text or json")),
        };
        let body_timeout = match pick(&args.body_timeout, file.body_timeout) {
            Some(s) => parse_duration_setting("--body-timeout", &s)?,
            None => Duration::from_secs(30),
        };
        let timeout = |setting, flag: &Option<String>, file: Option<String>, default| match pick(
            flag, file,
        ) {
            Some(s) => parse_duration_setting(setting, &s),
            None => Ok(default),
        };
        let header_timeout = timeout(
            "--header-timeout",
            &args.header_timeout,
            file.header_timeout,
            DEFAULT_HEADER_TIMEOUT,
        )?;
        let idle_timeout = timeout(
            "--idle-timeout",
            &args.idle_timeout,
            file.idle_timeout,
            DEFAULT_IDLE_TIMEOUT,
        )?;
        let handshake_timeout = timeout(
            "--handshake-timeout",
            &args.handshake_timeout,
            file.handshake_timeout,
            DEFAULT_HANDSHAKE_TIMEOUT,
        )?;
        let max_connections = match pick(
            &args.max_connections,
            file.max_connections.map(|n| n.to_string()),
        ) {
            None => None,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(invalid(
                        "--max-connections",
                        &s,
                        "expected a number of connections greater than zero",
                    ))
                }
            },
        };

        let protect_stats = match pick(
            &args.protect_stats,
            file.protect_stats.map(|b| b.to_string()),
        )
        .as_deref()
        {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => return Err(invalid("--protect-stats", other, "expected true or false")),
        };
        let upload_memory = match pick(&args.upload_memory, file.upload_memory) {
            Some(s) => match parse_size_setting("--upload-memory", &s)? {
                v if v < crate::api::UPLOAD_BUFFER => {
                    return Err(invalid(
                        "--upload-memory",
                        &s,
                        "must be at least 1M (what one upload buffers)",
                    ))
                }
                v => v,
            },
            None => DEFAULT_UPLOAD_MEMORY,
        };

        Ok(Config {
            listen,
            storage,
            max_size,
            max_age,
            max_object_size,
            tokens,
            tls,
            log_format,
            body_timeout,
            header_timeout,
            idle_timeout,
            handshake_timeout,
            max_connections,
            protect_stats,
            upload_memory,
        })
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|err| ConfigError::ParseFile {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

fn default_storage_dir() -> Result<PathBuf, ConfigError> {
    dirs::data_dir()
        .map(|d| d.join("cachet").join("server"))
        .ok_or_else(|| {
            invalid(
                "--storage",
                "",
                "no platform data directory (HOME unset?): pass --storage dir:PATH",
            )
        })
}

fn parse_size_setting(setting: &'static str, s: &str) -> Result<u64, ConfigError> {
    match cachet_core::parse_size(s) {
        Ok(0) => Err(invalid(setting, s, "must be greater than zero")),
        Ok(v) => Ok(v),
        Err(err) => Err(invalid(setting, s, err.to_string())),
    }
}

fn parse_duration_setting(setting: &'static str, s: &str) -> Result<Duration, ConfigError> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err(invalid(setting, s, "must be greater than zero")),
        Ok(d) => Ok(d),
        Err(err) => Err(invalid(
            setting,
            s,
            format!("{err} (expected e.g. 30s, 12h, 30d)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_file_parses() {
        let parsed: Result<FileConfig, _> = toml::from_str(DEFAULT_CONFIG_TOML);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "max_size = \"1G\"\nstorage = \"ephemeral\"\nlisten = \"127.0.0.1:1\"\n",
        )
        .expect("write");
        let args = ServerArgs {
            config: Some(path),
            listen: Some("127.0.0.1:2".into()),
            ..ServerArgs::default()
        };
        let c = Config::resolve(&args).expect("valid");
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.max_size, 1 << 30);
        assert_eq!(c.storage, StorageSpec::Ephemeral);
        assert_eq!(c.max_object_size, 1 << 30);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            ServerArgs {
                max_size: Some("ten".into()),
                ..ServerArgs::default()
            },
            ServerArgs {
                storage: Some("s3:x".into()),
                ..ServerArgs::default()
            },
            ServerArgs {
                max_age: Some("soon".into()),
                storage: Some("ephemeral".into()),
                ..ServerArgs::default()
            },
            ServerArgs {
                max_size: Some("1M".into()),
                max_object_size: Some("2M".into()),
                storage: Some("ephemeral".into()),
                ..ServerArgs::default()
            },
        ];
        for args in cases {
            let err = Config::resolve(&args).expect_err("invalid").to_string();
            assert!(err.starts_with("invalid --"), "{err}");
        }
    }

    #[test]
    fn unknown_file_fields_are_rejected() {
        assert!(toml::from_str::<FileConfig>("max_sise = \"1G\"").is_err());
    }
}
