//! The wrapper's settings, read once from `CACHET_*` environment variables.
//!
//! A bad value never fails a build: it is reported (once per cargo invocation, see
//! `notice.rs`) and the default is used. Unknown `CACHET_*` names are reported too, since a
//! typo would otherwise silently change nothing.
//!
//! Path settings must be absolute: the wrapper runs in every package's directory (crates.io
//! sources under `CARGO_HOME` included), so a relative `CACHET_DIR` would scatter a cache into
//! each of them and make cargo rebuild forever. A relative path in the environment is refused
//! with one warning and the default is used; a relative path in the configuration file is
//! resolved against the file's own directory, the one stable base it has.

use std::path::PathBuf;

use cachet_core::env_vars as ev;
use serde::Deserialize;

use crate::edit_loop::Policy;
use crate::remote::{RemoteConfig, DEFAULT_MAX_DOWNLOAD, DEFAULT_TIMEOUT};

/// Default size limit of the local cache.
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;
/// Default zstd level of new entries.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 1;

/// The wrapper's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The local cache directory.
    pub dir: PathBuf,
    /// Its size limit in bytes.
    pub cache_size: u64,
    /// The log filter, when logging is on.
    pub log: Option<String>,
    /// Where logs go.
    pub log_file: PathBuf,
    /// Compile and overwrite instead of looking up.
    pub recache: bool,
    /// Run rustc unchanged.
    pub disable: bool,
    /// zstd level of entries uploaded to the server (the local cache keeps them raw).
    pub compression_level: i32,
    /// The shared server, when one is configured.
    pub remote: Option<RemoteConfig>,
    /// Public keys whose signatures objects from the server must carry (empty: not checked).
    pub trusted_keys: Vec<(String, [u8; 32])>,
    /// This writer's secret key file, to sign what it stores.
    pub signing_key: Option<PathBuf>,
    /// Inputs the user adds to keys (`CACHET_KEY_ENV`, `CACHET_KEY_FILES`).
    pub extra_key: ExtraKey,
    /// How much of a crate's streak of incremental misses is stored (`CACHET_EDIT_STORE`,
    /// `CACHET_EDIT_PAUSE`; see `edit_loop.rs`).
    pub edit_loop: Policy,
    /// Send call reports to the server's dashboard (`CACHET_REPORTS`, default on).
    pub reports: bool,
    /// This client's name in the dashboard (`CACHET_CLIENT_NAME`; `None`: the host name).
    pub client_name: Option<String>,
    /// Problems found while reading the settings, to report to the user.
    pub warnings: Vec<String>,
}

/// Inputs a user adds to the key because a proc-macro reads them without telling rustc
/// (sqlx's `query!` reads `DATABASE_URL` and `.sqlx/`; template engines read files by path).
/// Every compiler cache is blind to those reads; this is the lever (see docs/design.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraKey {
    /// Environment variables, keyed by value (or "unset").
    pub env: Vec<Scoped>,
    /// File globs; every matching file is keyed by path and content.
    pub files: Vec<Scoped>,
}

/// A setting for every crate, or for one crate (`CRATE:VALUE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoped {
    /// The crate it applies to (`-` written as `_`, as rustc's `--crate-name`), or every crate.
    pub krate: Option<String>,
    /// The variable name or the glob.
    pub value: String,
}

impl Scoped {
    /// Reads `CRATE:VALUE` or `VALUE`.
    fn parse(item: &str) -> Option<Scoped> {
        let item = item.trim();
        if item.is_empty() {
            return None;
        }
        let scoped = item.split_once(':').filter(|(c, v)| {
            !c.is_empty()
                && !v.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        });
        Some(match scoped {
            Some((krate, value)) => Scoped {
                krate: Some(krate.replace('-', "_")),
                value: value.to_string(),
            },
            None => Scoped {
                krate: None,
                value: item.to_string(),
            },
        })
    }

    /// True when it applies to the crate named `crate_name`.
    pub fn applies_to(&self, crate_name: &str) -> bool {
        self.krate.as_deref().is_none_or(|k| k == crate_name)
    }
}

fn scoped_list(text: &str) -> Vec<Scoped> {
    text.split(',').filter_map(Scoped::parse).collect()
}

/// The user's configuration file: `~/.config/cachet/config.toml`.
pub fn config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cachet").join("config.toml"))
}

/// The client settings a configuration file may hold. Environment variables win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// URL of the shared server, as `CACHET_SERVER`.
    pub server: Option<String>,
    /// Token for the server, as `CACHET_TOKEN`.
    pub token: Option<String>,
    /// Extra CA certificate, as `CACHET_CA_CERT`.
    pub ca_cert: Option<PathBuf>,
    /// Namespace on the server, as `CACHET_NAMESPACE`.
    pub namespace: Option<String>,
    /// Extra variables in the key, as `CACHET_KEY_ENV` (`NAME` or `CRATE:NAME`).
    pub key_env: Option<Vec<String>>,
    /// Extra file globs in the key, as `CACHET_KEY_FILES` (`GLOB` or `CRATE:GLOB`).
    pub key_files: Option<Vec<String>>,
    /// Public keys (`NAME:BASE64`) whose signatures objects from the server must carry, as
    /// `CACHET_TRUSTED_KEYS`.
    pub trusted_keys: Option<Vec<String>>,
    /// This writer's secret key file, as `CACHET_SIGNING_KEY` (relative: to this file).
    pub signing_key: Option<PathBuf>,
    /// Send call reports to the server's dashboard, as `CACHET_REPORTS` (default true).
    pub reports: Option<bool>,
    /// This client's name in the dashboard, as `CACHET_CLIENT_NAME`.
    pub client_name: Option<String>,
    /// Misses in a row stored of a crate being edited, as `CACHET_EDIT_STORE` (`3` or `"all"`).
    pub edit_store: Option<TextOrNumber>,
    /// The pause that starts a new edit session, as `CACHET_EDIT_PAUSE` (`"10m"`).
    pub edit_pause: Option<String>,
}

/// A file value that may be written as a number or as text (`edit_store = 3`,
/// `edit_store = "all"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TextOrNumber {
    /// `3`
    Number(i64),
    /// `"all"`, or `"3"`
    Text(String),
}

impl TextOrNumber {
    fn text(&self) -> String {
        match self {
            TextOrNumber::Number(n) => n.to_string(),
            TextOrNumber::Text(t) => t.clone(),
        }
    }
}

fn read_file_config(warnings: &mut Vec<String>) -> FileConfig {
    match config_file() {
        Some(path) => parse_file_config(&path, warnings),
        None => FileConfig::default(),
    }
}

fn parse_file_config(path: &std::path::Path, warnings: &mut Vec<String>) -> FileConfig {
    let Ok(text) = std::fs::read_to_string(path) else {
        return FileConfig::default();
    };
    let mut file: FileConfig = toml::from_str(&text).unwrap_or_else(|e| {
        warnings.push(format!("ignoring {}: {}", path.display(), e.message()));
        FileConfig::default()
    });
    // A relative path in the file means relative to the file, wherever rustc runs.
    if let Some(base) = path.parent() {
        for setting in [&mut file.ca_cert, &mut file.signing_key] {
            if let Some(p) = setting.as_mut() {
                *p = base.join(&*p);
            }
        }
    }
    file
}

/// The default local cache directory: the platform cache directory + `cachet`.
pub fn default_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("cachet")
}

fn parse_bool(name: &str, value: &str, warnings: &mut Vec<String>) -> bool {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => true,
        "" | "0" | "false" | "no" | "off" => false,
        _ => {
            warnings.push(format!(
                "{name}={value:?} is not a boolean (use 1 or 0); treating it as off"
            ));
            false
        }
    }
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Config {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Reads the settings from the given variables (all of them; non-`CACHET_` ones are ignored)
    /// and the user's configuration file.
    pub fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Config {
        let mut warnings = Vec::new();
        let file = read_file_config(&mut warnings);
        Self::from_sources(vars, file, warnings)
    }

    /// Reads the settings from variables and an already parsed file.
    pub fn from_sources(
        vars: impl Iterator<Item = (String, String)>,
        file: FileConfig,
        mut warnings: Vec<String>,
    ) -> Config {
        let mut get = std::collections::HashMap::new();
        for (k, v) in vars {
            if k.starts_with("CACHET_") {
                if !ev::is_known(&k) {
                    warnings.push(format!("unknown variable {k} is ignored (see `cachet --help` for the CACHET_* variables)"));
                }
                get.insert(k, v);
            }
        }
        let dir = absolute_setting(
            &get,
            ev::CACHET_DIR,
            "the default cache directory",
            &mut warnings,
        )
        .unwrap_or_else(default_dir);
        let cache_size = match get.get(ev::CACHET_CACHE_SIZE) {
            None => DEFAULT_CACHE_SIZE,
            Some(v) => match cachet_core::parse_size(v) {
                Ok(0) | Err(_) => {
                    warnings.push(format!(
                        "{}={v:?} is not a size such as 10G; using 10G",
                        ev::CACHET_CACHE_SIZE
                    ));
                    DEFAULT_CACHE_SIZE
                }
                Ok(n) => n,
            },
        };
        let compression_level = match get.get(ev::CACHET_COMPRESSION_LEVEL) {
            None => DEFAULT_COMPRESSION_LEVEL,
            Some(v) => match v.trim().parse::<i32>() {
                Ok(n) if (1..=19).contains(&n) => n,
                _ => {
                    warnings.push(format!(
                        "{}={v:?} is not a level from 1 to 19; using 1",
                        ev::CACHET_COMPRESSION_LEVEL
                    ));
                    DEFAULT_COMPRESSION_LEVEL
                }
            },
        };
        let flag = |name: &str, warnings: &mut Vec<String>| {
            get.get(name).is_some_and(|v| parse_bool(name, v, warnings))
        };
        let recache = flag(ev::CACHET_RECACHE, &mut warnings);
        let disable = flag(ev::CACHET_DISABLE, &mut warnings);
        let log = get.get(ev::CACHET_LOG).filter(|v| !v.is_empty()).cloned();
        let log_file = absolute_setting(
            &get,
            ev::CACHET_LOG_FILE,
            "CACHET_DIR/cachet.log",
            &mut warnings,
        )
        .unwrap_or_else(|| dir.join("cachet.log"));
        let from_file = |list: &Option<Vec<String>>| -> Vec<Scoped> {
            list.iter()
                .flatten()
                .filter_map(|i| Scoped::parse(i))
                .collect()
        };
        let extra_key = ExtraKey {
            env: get
                .get(ev::CACHET_KEY_ENV)
                .map(|v| scoped_list(v))
                .unwrap_or_else(|| from_file(&file.key_env)),
            files: get
                .get(ev::CACHET_KEY_FILES)
                .map(|v| scoped_list(v))
                .unwrap_or_else(|| from_file(&file.key_files)),
        };
        let edit_loop = edit_loop_policy(&get, &file, &mut warnings);
        let reports = match get.get(ev::CACHET_REPORTS) {
            Some(v) => parse_bool(ev::CACHET_REPORTS, v, &mut warnings),
            None => file.reports.unwrap_or(true),
        };
        let client_name = get
            .get(ev::CACHET_CLIENT_NAME)
            .cloned()
            .or_else(|| file.client_name.clone())
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        // An empty variable does not turn checking off when the file turns it on: only a
        // list can be trusted, never the absence of one.
        let trusted_text = match (get.get(ev::CACHET_TRUSTED_KEYS), &file.trusted_keys) {
            (Some(v), _) if !v.trim().is_empty() => Some((ev::CACHET_TRUSTED_KEYS, v.clone())),
            (_, Some(list)) => Some(("trusted_keys in the config file", list.join(","))),
            (Some(_), None) | (None, None) => None,
        };
        let trusted_keys = match trusted_text {
            None => Vec::new(),
            Some((origin, v)) => crate::signing::parse_trusted(&v).unwrap_or_else(|e| {
                // Refusing everything is the safe reading of a list that cannot be parsed.
                warnings.push(format!(
                    "{origin}: {e}; no entry from the server will be trusted"
                ));
                vec![("invalid".to_string(), [0; 32])]
            }),
        };
        let signing_key =
            absolute_setting(&get, ev::CACHET_SIGNING_KEY, "no signing", &mut warnings).or_else(
                || {
                    // Set but refused: the fallback the warning names, not the file's key.
                    let refused = get
                        .get(ev::CACHET_SIGNING_KEY)
                        .is_some_and(|v| !v.is_empty());
                    (!refused).then(|| file.signing_key.clone()).flatten()
                },
            );
        let remote = remote_config(&get, file, &mut warnings);
        Config {
            trusted_keys,
            signing_key,
            extra_key,
            edit_loop,
            remote,
            dir,
            cache_size,
            log,
            log_file,
            recache,
            disable,
            compression_level,
            reports,
            client_name,
            warnings,
        }
    }
}

/// The path a variable names, if set and absolute; a relative one is refused with a warning
/// (see the module docs).
fn absolute_setting(
    get: &std::collections::HashMap<String, String>,
    name: &str,
    fallback: &str,
    warnings: &mut Vec<String>,
) -> Option<PathBuf> {
    let value = get.get(name).filter(|v| !v.is_empty())?;
    let path = PathBuf::from(value);
    if path.is_absolute() {
        return Some(path);
    }
    warnings.push(format!(
        "{name}={value:?} is a relative path, which would mean another directory for every crate; using {fallback} (set an absolute path)"
    ));
    None
}

/// The edit-loop settings: the environment wins over the file, and a bad value is reported
/// and replaced by the default.
fn edit_loop_policy(
    get: &std::collections::HashMap<String, String>,
    file: &FileConfig,
    warnings: &mut Vec<String>,
) -> Policy {
    let default = Policy::default();
    let stored = match get
        .get(ev::CACHET_EDIT_STORE)
        .map(|v| (ev::CACHET_EDIT_STORE, v.clone()))
        .or_else(|| file.edit_store.as_ref().map(|v| ("edit_store", v.text())))
    {
        None => default.stored_in_a_row,
        Some((name, v)) => Policy::parse_stored(&v).unwrap_or_else(|| {
            warnings.push(format!(
                "{name}={v:?} is not a number of misses (1 or more) or `all`; storing the first miss of each streak"
            ));
            default.stored_in_a_row
        }),
    };
    let pause_ms = match get
        .get(ev::CACHET_EDIT_PAUSE)
        .map(|v| (ev::CACHET_EDIT_PAUSE, v.clone()))
        .or_else(|| file.edit_pause.clone().map(|v| ("edit_pause", v)))
    {
        None => default.pause_ms,
        Some((name, v)) => match humantime::parse_duration(v.trim()) {
            Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Err(_) => {
                warnings.push(format!(
                    "{name}={v:?} is not a duration such as 10m; using 10m"
                ));
                default.pause_ms
            }
        },
    };
    Policy {
        stored_in_a_row: stored,
        pause_ms,
    }
}

fn remote_config(
    get: &std::collections::HashMap<String, String>,
    file: FileConfig,
    warnings: &mut Vec<String>,
) -> Option<RemoteConfig> {
    let non_empty = |name: &str| get.get(name).filter(|v| !v.is_empty()).cloned();
    let url = non_empty(ev::CACHET_SERVER).or(file.server)?;
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        warnings.push(format!(
            "CACHET_SERVER={url:?} is not an http:// or https:// URL; the shared cache is off"
        ));
        return None;
    }
    let namespace = non_empty(ev::CACHET_NAMESPACE)
        .or(file.namespace)
        .unwrap_or_else(|| cachet_core::wire::DEFAULT_NAMESPACE.to_string());
    if !cachet_core::wire::is_valid_namespace(&namespace) {
        warnings.push(format!(
            "CACHET_NAMESPACE={namespace:?} is not a valid namespace (letters, digits, . _ -); the shared cache is off"
        ));
        return None;
    }
    let ca_cert = match non_empty(ev::CACHET_CA_CERT).map(PathBuf::from) {
        Some(p) if p.is_relative() => {
            warnings.push(format!(
                "CACHET_CA_CERT={:?} is a relative path; the shared cache is off (set an absolute path)",
                p.display()
            ));
            return None;
        }
        Some(p) => Some(p),
        None => file.ca_cert,
    };
    let timeout = match get.get(ev::CACHET_SERVER_TIMEOUT) {
        None => DEFAULT_TIMEOUT,
        Some(v) => match humantime::parse_duration(v.trim()) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                warnings.push(format!(
                    "{}={v:?} is not a duration such as 30s; using 30s",
                    ev::CACHET_SERVER_TIMEOUT
                ));
                DEFAULT_TIMEOUT
            }
        },
    };
    let max_download = match get.get(ev::CACHET_MAX_DOWNLOAD) {
        None => DEFAULT_MAX_DOWNLOAD,
        Some(v) => match cachet_core::parse_size(v) {
            Ok(n) if n > 0 => n,
            _ => {
                warnings.push(format!(
                    "{}={v:?} is not a size such as 2G; using 2G",
                    ev::CACHET_MAX_DOWNLOAD
                ));
                DEFAULT_MAX_DOWNLOAD
            }
        },
    };
    Some(RemoteConfig {
        url,
        token: non_empty(ev::CACHET_TOKEN).or(file.token),
        ca_cert,
        namespace,
        timeout,
        max_download,
    })
}

#[cfg(test)]
mod tests;
