//! The wrapper's settings, read once from `CACHET_*` environment variables.
//!
//! A bad value never fails a build: it is reported (once per cargo invocation, see
//! `notice.rs`) and the default is used. Unknown `CACHET_*` names are reported too, since a
//! typo would otherwise silently change nothing.

use std::path::PathBuf;

use cachet_core::env_vars as ev;

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
    /// Problems found while reading the settings, to report to the user.
    pub warnings: Vec<String>,
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

    /// Reads the settings from the given variables (all of them; non-`CACHET_` ones are ignored).
    pub fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Config {
        let mut warnings = Vec::new();
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
        Config {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Config {
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
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
