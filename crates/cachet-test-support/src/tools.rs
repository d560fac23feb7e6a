//! External tools the tests run (redis-server, moto, sccache, ccache, prometheus, chromium):
//! found the same way everywhere, and a missing one fails the test instead of skipping it,
//! since a skipped test would pass with the feature untested.

use std::path::PathBuf;

/// An external tool: from the variable `env` if set, else the first of `fallbacks` that
/// exists, else `name` on PATH. Panics naming `scripts/setup.sh` when it is missing.
pub fn require_tool(env: &str, name: &str, fallbacks: &[PathBuf]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "{env}={} does not exist: run scripts/setup.sh",
            p.display()
        );
        return p;
    }
    for f in fallbacks {
        if f.exists() {
            return f.clone();
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (set {env} or put it on PATH): run scripts/setup.sh");
}

/// Where `scripts/setup.sh` keeps what it installs outside the system's package manager:
/// `CACHET_CI_CACHE`, else `~/.cache/cachet-ci`.
pub fn ci_cache() -> Option<PathBuf> {
    std::env::var_os("CACHET_CI_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cachet-ci")))
}
