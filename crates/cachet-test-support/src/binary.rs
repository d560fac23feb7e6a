//! The `cachet` binary under test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `cachet` binary: `CACHET_TEST_BIN` (the release build `scripts/test.sh` prepares), else
/// `CARGO_BIN_EXE_cachet` (cargo sets it when it runs the `cachet` crate's own integration
/// tests, having built the binary first), else built once per test process with cargo into the
/// running test's target directory (the server crate's tests).
pub fn cachet_bin() -> PathBuf {
    for var in ["CACHET_TEST_BIN", "CARGO_BIN_EXE_cachet"] {
        if let Some(p) = std::env::var_os(var) {
            return PathBuf::from(p);
        }
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // .../target/debug/deps/NAME-HASH -> .../target/debug and .../target
            let exe = std::env::current_exe().expect("current exe");
            let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
            let target_dir = profile_dir.parent().expect("target dir");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                // Both binaries: `cachet server` runs `cachet-server` from beside `cachet`.
                .args(["build", "-p", "cachet", "--bins"])
                .env("CARGO_TARGET_DIR", target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build -p cachet failed");
            profile_dir.join("cachet")
        })
        .clone()
}
