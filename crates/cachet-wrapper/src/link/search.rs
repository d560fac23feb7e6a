//! Library search: every file a link reads, resolved the way the linker resolves it. Each
//! `-l` library and each linker-script input is looked for along the search path, and the
//! places probed before the one that holds it are recorded as [`ABSENT`], so a library that
//! later appears earlier in the search path is a miss. Files in the sysroot (covered by the
//! pre-key) and files rustc generated for this link are skipped.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use cachet_core::Digest;

use super::args::LibMode;
use crate::absence::ABSENT;
use crate::compiler::Compiler;
use crate::file_hash::FileHasher;
use crate::paths::Anchors;
use crate::reason::NotStoredReason;

/// Everything [`link_inputs`] needs.
pub struct LinkContext<'a> {
    /// rustc's working directory.
    pub cwd: &'a Path,
    /// This invocation's out-dir (absolute).
    pub out_dir: &'a Path,
    /// This crate's output file stem (crate name and extra filename).
    pub stem: &'a str,
    /// The compiler.
    pub compiler: &'a Compiler,
    /// The sysroot the compile used.
    pub sysroot: &'a Path,
    /// The linker the pre-key resolved.
    pub linker: &'a Path,
    /// Anchors for writing paths.
    pub anchors: &'a Anchors,
    /// Hashes files.
    pub hasher: &'a FileHasher,
    /// Where driver records live.
    pub records: Option<&'a Path>,
}

/// Collects link inputs as `(path as stored, digest)`, [`ABSENT`] for probes that found
/// nothing. `Err` is the reason not to store.
pub(super) struct Collector<'a> {
    pub(super) ctx: &'a LinkContext<'a>,
    /// The library search path: `-L` directories, then the driver's.
    pub(super) dirs: Vec<PathBuf>,
    pub(super) seen: HashSet<PathBuf>,
    pub(super) inputs: Vec<(String, Digest)>,
}

/// `path` with `.` and `..` removed lexically (for prefix tests only).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

impl Collector<'_> {
    pub(super) fn in_sysroot(&self, path: &Path) -> bool {
        lexical(path).starts_with(lexical(self.ctx.sysroot))
    }

    fn in_out_dir(&self, path: &Path) -> bool {
        lexical(path).starts_with(lexical(self.ctx.out_dir))
    }

    /// True for files rustc made for this link and removed (or will not keep).
    pub(super) fn generated(&self, path: &Path) -> bool {
        if self.in_out_dir(path) {
            if !path.exists() {
                return true;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            return name.starts_with(&format!("{}.", self.ctx.stem)) && name.ends_with(".o");
        }
        // Older rustc versions keep their temporary directory under TMPDIR.
        !path.exists()
            && lexical(path).starts_with(std::env::temp_dir())
            && path.ancestors().any(|a| {
                a.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("rustc"))
            })
    }

    fn record(&mut self, path: &Path, digest: Digest) {
        if self.seen.insert(path.to_path_buf()) {
            let shown = self.ctx.anchors.normalize(&path.to_string_lossy());
            self.inputs.push((shown, digest));
        }
    }

    /// Hashes a file the link reads; follows it if it is a linker script.
    pub(super) fn file(&mut self, path: &Path) -> Result<(), NotStoredReason> {
        let path = self.ctx.cwd.join(path);
        if self.in_sysroot(&path) || self.generated(&path) || self.seen.contains(&path) {
            return Ok(());
        }
        let digest = self
            .ctx
            .hasher
            .hash(&path)
            .map_err(|_| NotStoredReason::LinkInputUnreadable)?;
        self.record(&path, digest);
        self.follow_script(&path)
    }

    /// A file that must not exist (a search probe that found nothing).
    fn absent(&mut self, path: &Path) {
        if !self.in_sysroot(path) {
            self.record(path, ABSENT);
        }
    }

    /// If `path` is a linker script (as `libc.so` is), hashes the files it names.
    fn follow_script(&mut self, path: &Path) -> Result<(), NotStoredReason> {
        let Ok(meta) = fs::metadata(path) else {
            return Ok(());
        };
        if meta.len() > 64 * 1024 {
            return Ok(());
        }
        let Ok(bytes) = fs::read(path) else {
            return Ok(());
        };
        if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"!<arch>") {
            return Ok(());
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(());
        };
        for name in script_inputs(&text) {
            if let Some(lib) = name.strip_prefix("-l") {
                self.library(lib, LibMode::Dynamic)?;
            } else if Path::new(&name).is_absolute() {
                self.file(Path::new(&name))?;
            } else {
                // As the linker does: the working directory, the script's own directory,
                // then the library search path.
                let script_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let dirs: Vec<PathBuf> = [self.ctx.cwd.to_path_buf(), script_dir]
                    .into_iter()
                    .chain(self.dirs.iter().map(|d| self.ctx.cwd.join(d)))
                    .collect();
                self.first_of(&dirs, &[name])?;
            }
        }
        Ok(())
    }

    /// Hashes the first of `names` found in `dirs` (each directory tried for every name before
    /// the next directory), recording the probes before it as absent.
    fn first_of(&mut self, dirs: &[PathBuf], names: &[String]) -> Result<(), NotStoredReason> {
        for dir in dirs {
            let dir = self.ctx.cwd.join(dir);
            if self.in_sysroot(&dir) || (self.in_out_dir(&dir) && !dir.exists()) {
                // The sysroot is in the pre-key; a missing directory of rustc's is its own.
                if names.iter().any(|c| dir.join(c).is_file()) {
                    return Ok(());
                }
                continue;
            }
            for c in names {
                let p = dir.join(c);
                if p.is_file() {
                    return self.file(&p);
                }
                self.absent(&p);
            }
        }
        Err(NotStoredReason::NativeLibNotFound)
    }

    /// A program the driver runs (`collect2`, `ld`), as `-print-prog-name` answered: an
    /// absolute path, or a bare name the driver looks up in its own program directories and
    /// then `PATH`. Every directory probed before the one holding it is recorded as absent, so
    /// a program that later appears earlier (another `ld` in `PATH`) is a miss.
    pub(super) fn program(
        &mut self,
        name: &str,
        program_dirs: &[PathBuf],
        path_env: Option<&str>,
    ) -> Result<bool, NotStoredReason> {
        if name.contains('/') {
            let p = Path::new(name);
            return if p.is_file() {
                self.file(p).map(|()| true)
            } else {
                Ok(false)
            };
        }
        let dirs: Vec<PathBuf> = program_dirs
            .iter()
            .cloned()
            .chain(
                path_env
                    .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .collect();
        for dir in dirs {
            let dir = self.ctx.cwd.join(dir);
            let p = dir.join(name);
            if p.is_file() {
                return self.file(&p).map(|()| true);
            }
            self.absent(&p);
        }
        // Not found at all: the driver did not run it, and it must stay absent.
        Ok(false)
    }

    /// Resolves `-l name` as the linker does, recording the probes that found nothing.
    pub(super) fn library(&mut self, name: &str, mode: LibMode) -> Result<(), NotStoredReason> {
        let candidates: Vec<String> = match (name.strip_prefix(':'), mode) {
            (Some(file), _) => vec![file.to_string()],
            (None, LibMode::Dynamic) => vec![format!("lib{name}.so"), format!("lib{name}.a")],
            (None, LibMode::Static) => vec![format!("lib{name}.a")],
        };
        let dirs = self.dirs.clone();
        self.first_of(&dirs, &candidates)
    }
}

/// The file names inside `GROUP(...)`, `INPUT(...)` and `AS_NEEDED(...)` of a linker script.
pub(super) fn script_inputs(text: &str) -> Vec<String> {
    // Drop /* comments */.
    let mut clean = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        clean.push_str(&rest[..start]);
        match rest[start..].find("*/") {
            Some(end) => rest = &rest[start + end + 2..],
            None => rest = "",
        }
    }
    clean.push_str(rest);
    let mut out = Vec::new();
    for keyword in ["GROUP", "INPUT"] {
        let mut rest = clean.as_str();
        while let Some(pos) = rest.find(keyword) {
            let after = rest[pos + keyword.len()..].trim_start();
            let Some(inner) = after.strip_prefix('(') else {
                rest = &rest[pos + keyword.len()..];
                continue;
            };
            let mut depth = 1;
            let mut end = inner.len();
            for (i, c) in inner.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            out.extend(
                inner[..end]
                    .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ','))
                    .filter(|w| !w.is_empty() && *w != "AS_NEEDED")
                    .map(str::to_string),
            );
            rest = &inner[end..];
        }
    }
    out
}
