//! What can be wrong with the configuration: each error names the setting (as its flag), the
//! value and what is expected, or the file that could not be read.

use std::path::PathBuf;

use crate::auth::TokenError;
use crate::storage::spec::SpecError;

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

/// A setting with a bad value: `invalid SETTING "VALUE": REASON`.
pub(super) fn invalid(
    setting: &'static str,
    value: &str,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        setting,
        value: value.to_string(),
        reason: reason.into(),
    }
}
