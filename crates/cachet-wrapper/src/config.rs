//! The wrapper's settings, read once from `CACHET_*` environment variables.
//!
//! A bad value never fails a build: it is reported (once per cargo invocation, see
//! `notice.rs`) and the default is used. Unknown `CACHET_*` names are reported too, since a
//! typo would otherwise silently change nothing.

use std::path::PathBuf;

use cachet_core::env_vars as ev;
use serde::Deserialize;

use crate::remote::RemoteConfig;

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
    /// zstd level for new entries.
    pub compression_level: i32,
    /// The shared server, when one is configured.
    pub remote: Option<RemoteConfig>,
    /// Problems found while reading the settings, to report to the user.
    pub warnings: Vec<String>,
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
}

fn read_file_config(warnings: &mut Vec<String>) -> FileConfig {
    let Some(path) = config_file() else {
        return FileConfig::default();
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return FileConfig::default();
    };
    toml::from_str(&text).unwrap_or_else(|e| {
        warnings.push(format!("ignoring {}: {}", path.display(), e.message()));
        FileConfig::default()
    })
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
        let dir = get
            .get(ev::CACHET_DIR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
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
        let log_file = get
            .get(ev::CACHET_LOG_FILE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("cachet.log"));
        let remote = remote_config(&get, file, &mut warnings);
        Config {
            remote,
            dir,
            cache_size,
            log,
            log_file,
            recache,
            disable,
            compression_level,
            warnings,
        }
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
    Some(RemoteConfig {
        url,
        token: non_empty(ev::CACHET_TOKEN).or(file.token),
        ca_cert: non_empty(ev::CACHET_CA_CERT)
            .map(PathBuf::from)
            .or(file.ca_cert),
        namespace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Config {
        Config::from_sources(
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            FileConfig::default(),
            Vec::new(),
        )
    }

    #[test]
    fn server_settings_from_env_win_over_the_file() {
        let file = FileConfig {
            server: Some("http://file:4226/".into()),
            token: Some("file-token".into()),
            ..FileConfig::default()
        };
        let vars = [("CACHET_TOKEN".to_string(), "env-token".to_string())];
        let c = Config::from_sources(vars.into_iter(), file, Vec::new());
        let r = c.remote.unwrap();
        assert_eq!(r.url, "http://file:4226");
        assert_eq!(r.token.as_deref(), Some("env-token"));
        assert_eq!(r.namespace, "cachet");
        let c = cfg(&[("CACHET_SERVER", "cache:4226")]);
        assert!(c.remote.is_none());
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn reads_values_and_reports_bad_ones() {
        let c = cfg(&[
            ("CACHET_DIR", "/x"),
            ("CACHET_CACHE_SIZE", "2G"),
            ("CACHET_RECACHE", "1"),
        ]);
        assert_eq!(c.dir, PathBuf::from("/x"));
        assert_eq!(c.cache_size, 2 << 30);
        assert!(c.recache && !c.disable);
        assert!(c.warnings.is_empty());
        assert_eq!(c.log_file, PathBuf::from("/x/cachet.log"));

        let c = cfg(&[
            ("CACHET_CACHE_SIZE", "lots"),
            ("CACHET_DIRR", "/y"),
            ("CACHET_DISABLE", "maybe"),
        ]);
        assert_eq!(c.cache_size, DEFAULT_CACHE_SIZE);
        assert!(!c.disable);
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w.contains("CACHET_DIRR")));
    }
}
