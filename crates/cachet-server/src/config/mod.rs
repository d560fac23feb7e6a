//! The server's configuration: command-line flags, `CACHET_*` variables and a TOML file,
//! resolved once at start-up into a validated [`Config`].
//!
//! Precedence is flags > environment > config file > built-in defaults. The binary declares
//! the flags with clap, which merges the first two (every flag has `env = CACHET_...`) into
//! [`ServerArgs::settings`]; the file is the same [`Settings`] type read from TOML; the
//! defaults are [`DEFAULTS`]. A flag has no clap default, so `None` means "neither flag nor
//! variable", and the file, then the default, decide (a clap default would hide the file).
//! Every value is checked here, before a socket is bound, so a typo fails at start-up with a
//! message naming the setting instead of surfacing as a 500 an hour later.
//!
//! - [`settings`]: the unvalidated layers, and the plain arguments the binary hands over;
//! - [`defaults`]: the built-in defaults and the commented default file;
//! - [`error`]: what a setting can get wrong;
//! - this module: validation and layering into a [`Config`].

pub mod defaults;
pub mod error;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Tokens;
pub use crate::storage::spec::{SpecError, StorageSpec};
pub use defaults::{Defaults, DEFAULTS, DEFAULT_CONFIG_TOML};
use error::invalid;
pub use error::ConfigError;
pub use settings::{PruneArgs, ServerAction, ServerArgs, Settings};

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
    /// The rates call reports are let in at.
    pub report_rates: crate::report_limit::Rates,
}

impl Config {
    /// A configuration with the built-in defaults and the given storage, for embedding and tests.
    pub fn with_storage(storage: StorageSpec) -> Config {
        Config::validate(Settings::default(), storage)
            .unwrap_or_else(|err| unreachable!("the built-in defaults are invalid: {err}"))
    }

    /// Resolves flags (with their variables), the config file and the defaults.
    pub fn resolve(args: &ServerArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => Settings::read_file(path)?,
            None => Settings::default(),
        };
        let given = args.settings.clone().or(file);
        let storage = match &given.storage {
            Some(s) => StorageSpec::parse(s)?,
            None => StorageSpec::Dir(default_storage_dir()?),
        };
        Config::validate(given, storage)
    }

    /// Checks every given setting and fills the others from [`DEFAULTS`].
    fn validate(given: Settings, storage: StorageSpec) -> Result<Config, ConfigError> {
        let d = DEFAULTS;
        let listen = given.listen.as_deref().unwrap_or(d.listen);
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(
                "--listen",
                listen,
                "expected IP:PORT such as 127.0.0.1:4226",
            )
        })?;

        let max_size = parse_size_setting(
            "--max-size",
            given.max_size.as_deref().unwrap_or(d.max_size),
        )?;
        let max_age = given
            .max_age
            .as_deref()
            .map(|s| parse_duration_setting("--max-age", s))
            .transpose()?;
        let max_object_size = match given.max_object_size.as_deref() {
            Some(s) => {
                let v = parse_size_setting("--max-object-size", s)?;
                if v > max_size {
                    return Err(invalid(
                        "--max-object-size",
                        s,
                        "must not exceed --max-size: raise --max-size or lower this",
                    ));
                }
                v
            }
            None => parse_size_setting("--max-object-size", d.max_object_size)?.min(max_size),
        };

        let mut tokens = Tokens::default();
        if let Some(path) = &given.token_file {
            tokens.extend(Tokens::from_file(path)?);
        }
        if let Some(inline) = &given.tokens {
            tokens.extend(Tokens::parse(inline, "CACHET_TOKENS")?);
        }

        let tls = match (given.tls_cert, given.tls_key) {
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

        let log_format = match given.log_format.as_deref().unwrap_or(d.log_format) {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("--log-format", other, "expected text or json")),
        };
        let duration = |setting, value: &Option<String>, default| {
            parse_duration_setting(setting, value.as_deref().unwrap_or(default))
        };
        let body_timeout = duration("--body-timeout", &given.body_timeout, d.body_timeout)?;
        let header_timeout = duration("--header-timeout", &given.header_timeout, d.header_timeout)?;
        let idle_timeout = duration("--idle-timeout", &given.idle_timeout, d.idle_timeout)?;
        let handshake_timeout = duration(
            "--handshake-timeout",
            &given.handshake_timeout,
            d.handshake_timeout,
        )?;
        let max_connections = match given.max_connections.as_deref() {
            None => None,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(invalid(
                        "--max-connections",
                        s,
                        "expected a number of connections greater than zero",
                    ))
                }
            },
        };
        let protect_stats = match given.protect_stats.as_deref().unwrap_or(d.protect_stats) {
            "false" | "0" => false,
            "true" | "1" => true,
            other => return Err(invalid("--protect-stats", other, "expected true or false")),
        };
        let upload_memory = given.upload_memory.as_deref().unwrap_or(d.upload_memory);
        let upload_memory = match parse_size_setting("--upload-memory", upload_memory)? {
            v if v < crate::state::UPLOAD_BUFFER => {
                return Err(invalid(
                    "--upload-memory",
                    upload_memory,
                    "must be at least 1M (what one upload buffers)",
                ))
            }
            v => v,
        };

        let rate = |setting, value: &Option<String>, default| {
            parse_rate_setting(setting, value.as_deref().unwrap_or(default))
        };
        let report_rates = crate::report_limit::Rates {
            client_records: rate("--report-rate", &given.report_rate, d.report_rate)?,
            client_requests: rate(
                "--report-requests",
                &given.report_requests,
                d.report_requests,
            )?,
            server_records: rate("--report-ceiling", &given.report_ceiling, d.report_ceiling)?,
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
            report_rates,
        })
    }
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

fn parse_rate_setting(setting: &'static str, s: &str) -> Result<u64, ConfigError> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            setting,
            s,
            "expected a number per second greater than zero",
        )),
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
mod tests;
