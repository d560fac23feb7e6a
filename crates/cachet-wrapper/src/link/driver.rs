//! Driver probing: which linker program rustc will run, the sysroot's link tools, and what the
//! C compiler driver says about itself (its library search directories, start files and the
//! programs it runs), remembered per driver because asking costs a dozen processes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cachet_core::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::compiler::{self, Compiler};
use crate::file_hash::FileHasher;
use crate::fsutil;
use crate::invocation::RustcArgs;

/// Variables the C driver or the linker read that can change what is linked.
pub const LINK_ENV: &[&str] = &[
    "LIBRARY_PATH",
    "COMPILER_PATH",
    "GCC_EXEC_PREFIX",
    "LD_RUN_PATH",
];

/// Start files and support libraries the driver may add to a link, asked by name.
const DRIVER_FILES: &[&str] = &[
    "crt1.o",
    "Scrt1.o",
    "rcrt1.o",
    "crti.o",
    "crtn.o",
    "crtbegin.o",
    "crtbeginS.o",
    "crtbeginT.o",
    "crtend.o",
    "crtendS.o",
    "libgcc.a",
    "libgcc_eh.a",
];

/// Programs the driver runs to link.
const DRIVER_PROGRAMS: &[&str] = &["collect2", "ld"];

/// Version of [`DriverInfo`] records.
const DRIVER_RECORD_VERSION: u32 = 2;

/// The directories rustc puts in front of `PATH` when it runs the linker.
fn tool_dirs(compiler: &Compiler) -> Vec<PathBuf> {
    let bin = compiler
        .sysroot
        .join("lib/rustlib")
        .join(&compiler.host)
        .join("bin");
    vec![bin.clone(), bin.join("self-contained")]
}

/// The linker program rustc will run for this invocation, resolved to a canonical file.
pub fn resolve_linker(
    args: &RustcArgs,
    compiler: &Compiler,
    cwd: &Path,
    path_env: Option<&str>,
) -> Option<PathBuf> {
    let name = args.codegen_value("linker").unwrap_or("cc");
    let found = if name.contains('/') {
        Some(cwd.join(name))
    } else {
        tool_dirs(compiler)
            .into_iter()
            .chain(
                path_env
                    .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .map(|d| cwd.join(d).join(name))
            .find(|p| p.is_file())
    }?;
    fs::canonicalize(found).ok()
}

/// Digest of the sysroot's link tools for `target` (remembered like the standard library's).
pub fn tools_digest(
    compiler: &Compiler,
    target: &str,
    records: Option<&Path>,
    hasher: &FileHasher,
) -> std::io::Result<Digest> {
    let mut dirs = tool_dirs(compiler);
    dirs.push(dirs[0].join("gcc-ld"));
    dirs.push(
        compiler
            .sysroot
            .join("lib/rustlib")
            .join(target)
            .join("lib/self-contained"),
    );
    compiler::dirs_digest(&dirs, records, hasher)
}

/// What the C driver says about itself: its library search directories and the files and
/// programs it adds to a link. Asking costs a dozen processes, so the answer is remembered per
/// driver (path, content and the variables it reads).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DriverInfo {
    pub(super) version: u32,
    /// `-print-search-dirs`' `libraries:` line, in order.
    pub(super) search_dirs: Vec<PathBuf>,
    /// `-print-file-name=` answers that are absolute paths.
    pub(super) files: Vec<PathBuf>,
    /// `-print-prog-name=` answers (absolute paths, or names looked up in `PATH`).
    pub(super) programs: Vec<String>,
    /// `-print-search-dirs`' `programs:` line: where the driver looks for a program by name
    /// before `PATH`.
    pub(super) program_dirs: Vec<PathBuf>,
}

pub(super) fn driver_output(driver: &Path, env: &[(String, String)], arg: &str) -> Option<String> {
    let out = Command::new(driver)
        .arg(arg)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

pub(super) fn driver_info(
    driver: &Path,
    driver_digest: &Digest,
    env: &[(String, String)],
    records: Option<&Path>,
) -> Option<DriverInfo> {
    let mut fp = Hasher::new("cachet-driver-info");
    fp.str("path", &driver.to_string_lossy());
    fp.digest("content", driver_digest);
    for name in LINK_ENV {
        fp.str(name, &std::env::var(name).unwrap_or_default());
    }
    let record = records.map(|r| r.join(format!("driver-{}.json", fp.finish())));
    if let Some(info) = record
        .as_ref()
        .and_then(|r| fs::read(r).ok())
        .and_then(|b| serde_json::from_slice::<DriverInfo>(&b).ok())
        .filter(|i| i.version == DRIVER_RECORD_VERSION)
    {
        return Some(info);
    }
    let dirs = driver_output(driver, env, "-print-search-dirs")?;
    let libraries = dirs
        .lines()
        .find_map(|l| l.strip_prefix("libraries: "))?
        .trim_start_matches('=');
    let search_dirs = std::env::split_paths(libraries).collect();
    let program_dirs = dirs
        .lines()
        .find_map(|l| l.strip_prefix("programs: "))
        .map(|p| std::env::split_paths(p.trim_start_matches('=')).collect())
        .unwrap_or_default();
    let files = DRIVER_FILES
        .iter()
        .filter_map(|f| driver_output(driver, env, &format!("-print-file-name={f}")))
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .collect();
    let programs = DRIVER_PROGRAMS
        .iter()
        .filter_map(|p| driver_output(driver, env, &format!("-print-prog-name={p}")))
        .collect();
    let info = DriverInfo {
        version: DRIVER_RECORD_VERSION,
        search_dirs,
        files,
        programs,
        program_dirs,
    };
    if let (Some(r), Ok(bytes)) = (&record, serde_json::to_vec(&info)) {
        let _ = fsutil::write_atomic(r, &bytes);
    }
    Some(info)
}

/// Resolves a program name as the driver's `PATH` lookup would.
pub(super) fn in_path(name: &str, path_env: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::split_paths(path_env?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
