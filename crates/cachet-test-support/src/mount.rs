//! A tmpfs over a directory: a small or read-only file system for the tests of a full or
//! unwritable cache (the suite runs as root, as CI does).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted over a directory for the test's duration; unmounted on drop.
pub struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs with `options` (`size=16k`, `ro,size=1m`) over `dir`, creating it.
    pub fn tmpfs(dir: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount is needed for this test");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: this test needs root (CI runs as root)",
            dir.display()
        );
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
