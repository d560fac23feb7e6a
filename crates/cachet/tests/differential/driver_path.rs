//! Programs the C driver finds through `PATH`: `ld` when rustc's bundled lld is turned off
//! (`-C linker-features=-lld`), `ld.bfd` for `-fuse-ld=bfd`. A different program earlier in
//! `PATH` links differently; before the fix only the program found was hashed, so one that
//! appeared earlier in `PATH` went unnoticed and the old link was restored.
//!
//! Not compared byte for byte with a fresh compile: nothing is restored in the second
//! checkout, where the linker that runs is the checkout's own `bin/` program, a file under
//! the checkout that the key names as it is (a miss there, by design).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{check, touch, Case, Step};

/// The real `ld` of this machine (outside the case's own `bin/`).
fn real_ld() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("ld"))
        .find(|p| p.is_file())
        .expect("ld on PATH (scripts/setup.sh installs binutils)")
}

/// `bin/` in the checkout, first in `PATH`, with an object whose constructor prints a line.
fn setup(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let src = bin.join("extra.c");
    std::fs::write(
        &src,
        "__attribute__((constructor)) static void hello(void) { __builtin_puts(\"linked by another ld\"); }\n",
    )
    .unwrap();
    let status = Command::new("cc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(bin.join("extra.o"))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Puts a linker named `name` in `bin/` that links `extra.o` too.
fn shadow(root: &Path, name: &str) {
    let script = root.join("bin").join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {} \"$@\" \"$(dirname \"$0\")/extra.o\"\n",
            real_ld().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    touch(root, "src/main.rs");
}

const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    ),
    ("src/main.rs", "fn main() { println!(\"hello\"); }\n"),
];

const LD_STEPS: &[Step] = &[Step::run("another ld earlier in PATH", |r| shadow(r, "ld"))];

const LD_BFD_STEPS: &[Step] = &[Step::run("another ld.bfd earlier in PATH", |r| {
    shadow(r, "ld.bfd")
})];

#[test]
fn ld_found_through_path_is_probed_in_every_earlier_directory() {
    check(&Case {
        name: "ld through PATH with -C linker-features=-lld",
        files: FILES,
        setup: Some(setup),
        env: &[
            ("PATH", "{ROOT}/bin:{PATH}"),
            ("RUSTFLAGS", "-C linker-features=-lld"),
        ],
        steps: LD_STEPS,
        ..super::BUILD
    });
}

#[test]
fn fuse_ld_program_found_through_path_is_probed_in_every_earlier_directory() {
    check(&Case {
        name: "ld.bfd through PATH with -fuse-ld=bfd",
        files: FILES,
        setup: Some(setup),
        env: &[
            ("PATH", "{ROOT}/bin:{PATH}"),
            ("RUSTFLAGS", "-C link-arg=-fuse-ld=bfd"),
        ],
        steps: LD_BFD_STEPS,
        ..super::BUILD
    });
}
