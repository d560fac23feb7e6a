//! The layers of the configuration before validation: what the command line (with its
//! `CACHET_*` variables) and the TOML file say, each as a [`Settings`], every value as written.
//! The binary declares the flags (clap lives there); this library only sees plain values.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;

/// One layer of settings, as written: `None` means "this layer does not say". The TOML file
/// deserializes into it (unknown keys are refused); the binary fills it from its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
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
    /// Token file (in the file: relative to the file).
    pub token_file: Option<PathBuf>,
    /// Inline tokens, in the token-file syntax.
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
    /// Most connections open at once (a TOML number or string).
    #[serde(default, deserialize_with = "scalar")]
    pub max_connections: Option<String>,
    /// `/stats` and `/metrics` need a token with `read` on `*` (a TOML boolean or string).
    #[serde(default, deserialize_with = "scalar")]
    pub protect_stats: Option<String>,
    /// Most upload bytes buffered in memory, e.g. `128M`.
    pub upload_memory: Option<String>,
    /// Call records one client may send per second (a TOML number or string).
    #[serde(default, deserialize_with = "scalar")]
    pub report_rate: Option<String>,
    /// Call-report requests one client may send per second (a TOML number or string).
    #[serde(default, deserialize_with = "scalar")]
    pub report_requests: Option<String>,
    /// Call records all clients together may send per second (a TOML number or string).
    #[serde(default, deserialize_with = "scalar")]
    pub report_ceiling: Option<String>,
}

impl Settings {
    /// This layer over `below`: each setting from `self` if it says, else from `below`.
    pub fn or(self, below: Settings) -> Settings {
        Settings {
            listen: self.listen.or(below.listen),
            storage: self.storage.or(below.storage),
            max_size: self.max_size.or(below.max_size),
            max_age: self.max_age.or(below.max_age),
            max_object_size: self.max_object_size.or(below.max_object_size),
            token_file: self.token_file.or(below.token_file),
            tokens: self.tokens.or(below.tokens),
            tls_cert: self.tls_cert.or(below.tls_cert),
            tls_key: self.tls_key.or(below.tls_key),
            log_format: self.log_format.or(below.log_format),
            body_timeout: self.body_timeout.or(below.body_timeout),
            header_timeout: self.header_timeout.or(below.header_timeout),
            idle_timeout: self.idle_timeout.or(below.idle_timeout),
            handshake_timeout: self.handshake_timeout.or(below.handshake_timeout),
            max_connections: self.max_connections.or(below.max_connections),
            protect_stats: self.protect_stats.or(below.protect_stats),
            upload_memory: self.upload_memory.or(below.upload_memory),
            report_rate: self.report_rate.or(below.report_rate),
            report_requests: self.report_requests.or(below.report_requests),
            report_ceiling: self.report_ceiling.or(below.report_ceiling),
        }
    }

    /// Reads a TOML configuration file; its relative paths become relative to its directory.
    pub fn read_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file: Settings = toml::from_str(&text).map_err(|err| ConfigError::ParseFile {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for p in [&mut file.token_file, &mut file.tls_cert, &mut file.tls_key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(file)
    }
}

/// A TOML string, integer or boolean, as the string it would be on the command line (the
/// validation that follows is the flag's, with the flag's message).
fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Scalar;
    impl serde::de::Visitor<'_> for Scalar {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number, a boolean or a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Scalar).map(Some)
}

/// What `cachet server` was asked, as plain values (the binary's clap arguments convert into
/// it): the command-line layer of the settings and what to do with them.
#[derive(Debug, Clone, Default)]
pub struct ServerArgs {
    /// A maintenance command instead of serving.
    pub action: Option<ServerAction>,
    /// The TOML configuration file (`--config`, `CACHET_CONFIG`).
    pub config: Option<PathBuf>,
    /// Flags and their variables.
    pub settings: Settings,
    /// Where to write the bound port once listening (`--port-file`).
    pub port_file: Option<PathBuf>,
    /// Check the configuration, print it, and exit.
    pub check_config: bool,
    /// Print the commented default configuration file and exit.
    pub print_default_config: bool,
}

/// `cachet server` maintenance commands.
#[derive(Debug, Clone)]
pub enum ServerAction {
    /// `cachet server prune`.
    Prune(PruneArgs),
}

/// Arguments of `cachet server prune`.
#[derive(Debug, Clone)]
pub struct PruneArgs {
    /// Age past which objects are removed, e.g. `30d`.
    pub older_than: String,
    /// The TOML configuration file whose `storage` to prune.
    pub config: Option<PathBuf>,
    /// The storage to prune (same syntax as the server's `--storage`).
    pub storage: Option<String>,
}
