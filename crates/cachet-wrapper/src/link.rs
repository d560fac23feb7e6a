//! Linked crates: what the system linker reads, so that executables, build scripts,
//! proc-macros and dynamic libraries can be cached soundly.
//!
//! A Rust library is made by rustc alone, so its key is rustc's inputs. An executable is made
//! by the C compiler driver (`cc`) and the linker it runs, which read much more: the rlibs of
//! every transitive dependency (found by rustc in `-L dependency=` directories, not named by
//! `--extern`), native libraries found through search paths, the C runtime's start files,
//! `libc.so` (a linker script naming more files), and the linker programs themselves.
//!
//! The key covers them in the same two stages as rustc's inputs (see `key.rs`):
//!
//! - **Pre-key** (known before compiling, so also on hits, without running anything): the
//!   linker program as rustc will find it (`-C linker`, or `cc` looked up in the sysroot's
//!   tool directories and then `PATH`, as rustc does) by canonical path and content; the
//!   sysroot's link tools (`rust-lld`, `gcc-ld/`, self-contained start files); and the
//!   variables the driver and linker read (`LIBRARY_PATH`, `COMPILER_PATH`, ...).
//! - **Link inputs** (learnt from the compile, stored in the manifest candidate beside the
//!   dep-info files and checked by hashing on lookup): rustc prints the exact link command
//!   (`--print link-args=FILE`); every file it names is hashed; every `-l` library is resolved
//!   the way the linker resolves it, and the directories probed before the one that holds it
//!   are recorded as absent, so a library that later appears earlier in the search path is a
//!   miss; linker scripts are followed; the driver's start files and programs (`crt*.o`,
//!   `collect2`, `ld`) are hashed too.
//!
//! Files inside the sysroot are covered by the pre-key and skipped; files rustc generated for
//! this link (its temporary directory, this crate's object files) are skipped. Anything the
//! command names that cannot be identified with confidence means the result is not stored.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use cachet_core::{Digest, Hasher};
use serde::{Deserialize, Serialize};

use crate::compiler::{self, Compiler};
use crate::file_hash::FileHasher;
use crate::fsutil;
use crate::invocation::RustcArgs;
use crate::link_args::{self, LibMode, LinkWords};
use crate::paths::Anchors;

/// The digest recorded for a path that must not exist (a library search probe that found
/// nothing). No file's content hashes to all zeros.
pub const ABSENT: Digest = Digest([0; 32]);

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
struct DriverInfo {
    version: u32,
    /// `-print-search-dirs`' `libraries:` line, in order.
    search_dirs: Vec<PathBuf>,
    /// `-print-file-name=` answers that are absolute paths.
    files: Vec<PathBuf>,
    /// `-print-prog-name=` answers (absolute paths, or names looked up in `PATH`).
    programs: Vec<String>,
    /// `-print-search-dirs`' `programs:` line: where the driver looks for a program by name
    /// before `PATH`.
    program_dirs: Vec<PathBuf>,
}

fn driver_output(driver: &Path, env: &[(String, String)], arg: &str) -> Option<String> {
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

fn driver_info(
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

/// A link command as rustc printed it: the environment it sets, then the program and its
/// arguments, each a Rust string literal.
#[derive(Debug, PartialEq, Eq)]
pub struct LinkCommand {
    /// `NAME="value"` assignments before the program.
    pub env: Vec<(String, String)>,
    /// The program.
    pub program: String,
    /// The arguments.
    pub args: Vec<String>,
}

/// Reads one `"..."` literal (Rust's `Debug` escaping) from the start of `s`; returns it and
/// the rest. `None` for anything else, including escapes of non-UTF-8 bytes.
fn literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    '\\' | '"' | '\'' => out.push(e),
                    'u' => {
                        let (_, open) = chars.next()?;
                        if open != '{' {
                            return None;
                        }
                        let mut hex = String::new();
                        loop {
                            let (_, h) = chars.next()?;
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Parses `--print link-args` output.
pub fn parse_command(text: &str) -> Option<LinkCommand> {
    let mut rest = text.trim();
    let mut env = Vec::new();
    let mut words = Vec::new();
    while !rest.is_empty() {
        if rest.starts_with('"') {
            let (w, r) = literal(rest)?;
            words.push(w);
            rest = r;
        } else if words.is_empty() {
            let (name, r) = rest.split_once('=')?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let (value, r) = literal(r)?;
            env.push((name.to_string(), value));
            rest = r;
        } else {
            return None;
        }
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            return None;
        }
        rest = rest.trim_start();
    }
    let mut words = words.into_iter();
    Some(LinkCommand {
        env,
        program: words.next()?,
        args: words.collect(),
    })
}

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
struct Collector<'a> {
    ctx: &'a LinkContext<'a>,
    /// The library search path: `-L` directories, then the driver's.
    dirs: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    inputs: Vec<(String, Digest)>,
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
    fn in_sysroot(&self, path: &Path) -> bool {
        lexical(path).starts_with(lexical(self.ctx.sysroot))
    }

    fn in_out_dir(&self, path: &Path) -> bool {
        lexical(path).starts_with(lexical(self.ctx.out_dir))
    }

    /// True for files rustc made for this link and removed (or will not keep).
    fn generated(&self, path: &Path) -> bool {
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
    fn file(&mut self, path: &Path) -> Result<(), &'static str> {
        let path = self.ctx.cwd.join(path);
        if self.in_sysroot(&path) || self.generated(&path) || self.seen.contains(&path) {
            return Ok(());
        }
        let digest = self
            .ctx
            .hasher
            .hash(&path)
            .map_err(|_| "link input unreadable")?;
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
    fn follow_script(&mut self, path: &Path) -> Result<(), &'static str> {
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
    fn first_of(&mut self, dirs: &[PathBuf], names: &[String]) -> Result<(), &'static str> {
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
        Err("native library not found")
    }

    /// A program the driver runs (`collect2`, `ld`), as `-print-prog-name` answered: an
    /// absolute path, or a bare name the driver looks up in its own program directories and
    /// then `PATH`. Every directory probed before the one holding it is recorded as absent, so
    /// a program that later appears earlier (another `ld` in `PATH`) is a miss.
    fn program(
        &mut self,
        name: &str,
        program_dirs: &[PathBuf],
        path_env: Option<&str>,
    ) -> Result<bool, &'static str> {
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
    fn library(&mut self, name: &str, mode: LibMode) -> Result<(), &'static str> {
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
fn script_inputs(text: &str) -> Vec<String> {
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

/// True when a path the linker writes into the output (an rpath, the dynamic linker) depends
/// on where the checkout is: it names a directory under an anchor, or is relative to the
/// output's own location (`$ORIGIN`), which moves with the out-dir.
fn embeds_location(value: &str, anchors: &Anchors) -> bool {
    value.split(':').any(|part| {
        part.contains("$ORIGIN")
            || part.contains("${ORIGIN}")
            || (Path::new(part).is_absolute() && anchors.normalize(part) != part)
    })
}

/// Resolves a program name as the driver's `PATH` lookup would.
fn in_path(name: &str, path_env: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::split_paths(path_env?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What a link read, and whether its output depends on the checkout's location.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkInputs {
    /// Files as stored (anchored path, digest), [`ABSENT`] for probes that found nothing.
    pub files: Vec<(String, Digest)>,
    /// The linker writes a path that depends on where the checkout is (see [`embeds_location`]):
    /// the result may be reused only at the same location.
    pub location_dependent: bool,
}

/// The inputs of the link rustc printed as `command`.
pub fn link_inputs(
    command: &LinkCommand,
    ctx: &LinkContext<'_>,
) -> Result<LinkInputs, &'static str> {
    let path_env = command
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let program =
        in_path(&command.program, path_env).and_then(|p| fs::canonicalize(ctx.cwd.join(p)).ok());
    if program.as_deref() != Some(ctx.linker) {
        // rustc ran another linker than the one in the pre-key.
        return Err("linker differs from the expected one");
    }
    let driver_digest = ctx
        .hasher
        .hash(ctx.linker)
        .map_err(|_| "linker unreadable")?;
    let info = driver_info(ctx.linker, &driver_digest, &command.env, ctx.records)
        .ok_or("linker is not a C compiler driver")?;
    let words = link_args::classify(&command.args, ctx.cwd)?;
    let LinkWords {
        files,
        search,
        libs,
        prefixes,
        fuse_ld,
        scripts,
        embedded_paths,
        all_static,
    } = words;
    let location_dependent = embedded_paths
        .iter()
        .any(|v| embeds_location(v, ctx.anchors));
    let mut dirs = search;
    dirs.extend(info.search_dirs.iter().cloned());
    let mut c = Collector {
        ctx,
        dirs: dirs.clone(),
        seen: HashSet::new(),
        inputs: Vec::new(),
    };
    for f in &files {
        let p = ctx.cwd.join(f);
        if !p.exists() && !c.generated(&p) {
            return Err("link input missing");
        }
        c.file(&p)?;
    }
    // -B directories: the driver looks for its programs there first.
    for dir in &prefixes {
        let dir = ctx.cwd.join(dir);
        if c.in_sysroot(&dir) {
            continue;
        }
        for (name, _) in compiler::list_files(&dir) {
            c.file(&dir.join(name))?;
        }
    }
    if let Some(ld) = fuse_ld {
        let name = format!("ld.{ld}");
        if !prefixes
            .iter()
            .any(|d| ctx.cwd.join(d).join(&name).is_file())
        {
            let answer = driver_output(
                ctx.linker,
                &command.env,
                &format!("-print-prog-name={name}"),
            )
            .ok_or("linker program not found")?;
            if !c.program(&answer, &info.program_dirs, path_env)? {
                return Err("linker program not found");
            }
        }
    }
    // `-R FILE` reads a file's symbols (`-R DIR` is an rpath).
    for value in &embedded_paths {
        let p = ctx.cwd.join(value);
        if p.is_file() {
            c.file(&p)?;
        }
    }
    for script in scripts {
        let found = std::iter::once(ctx.cwd.to_path_buf())
            .chain(dirs.iter().map(|d| ctx.cwd.join(d)))
            .map(|d| d.join(&script))
            .find(|p| p.is_file());
        match found {
            Some(p) => c.file(&p)?,
            None if c.generated(&ctx.cwd.join(&script)) => {}
            None => return Err("linker script not found"),
        }
    }
    for (name, m) in libs {
        let m = if all_static { LibMode::Static } else { m };
        c.library(&name, m)?;
    }
    for f in &info.files {
        if f.is_file() {
            c.file(f)?;
        }
    }
    for p in &info.programs {
        // `collect2` finds `ld` itself; a program found nowhere was not run.
        c.program(p, &info.program_dirs, path_env)?;
    }
    Ok(LinkInputs {
        files: c.inputs,
        location_dependent,
    })
}

/// The `--print link-args=FILE` argument that makes rustc write its link command to `file`.
pub fn print_arg(file: &Path) -> OsString {
    let mut a = OsString::from("--print=link-args=");
    a.push(file);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_link_commands() {
        let text =
            r#"LC_ALL="C" PATH="/a:/b" "cc" "-m64" "/t/x.o" "-Wl,-Bstatic" "q\"uote\\d" "\u{e9}""#;
        let c = parse_command(text).unwrap();
        assert_eq!(
            c.env,
            vec![
                ("LC_ALL".into(), "C".into()),
                ("PATH".into(), "/a:/b".into())
            ]
        );
        assert_eq!(c.program, "cc");
        assert_eq!(
            c.args,
            vec!["-m64", "/t/x.o", "-Wl,-Bstatic", "q\"uote\\d", "é"]
        );
        assert_eq!(parse_command(r#""cc" "\xff""#), None);
        assert_eq!(parse_command(r#""cc" unquoted"#), None);
        assert_eq!(parse_command(r#""cc" "open"#), None);
    }

    /// A link context for `cc` from PATH, with a made-up sysroot and out-dir.
    fn with_context<T>(f: impl FnOnce(&LinkContext<'_>, &Path) -> T) -> T {
        let path_env = "/usr/local/bin:/usr/bin:/bin";
        let cc = in_path("cc", Some(path_env))
            .and_then(|p| fs::canonicalize(p).ok())
            .expect("a C compiler driver `cc` on PATH (scripts/setup.sh installs gcc)");
        let dir = tempfile::tempdir().unwrap();
        let sysroot = dir.path().join("sysroot");
        let out_dir = dir.path().join("out");
        fs::create_dir_all(&out_dir).unwrap();
        let compiler = Compiler {
            path: sysroot.join("bin/rustc"),
            version_verbose: String::new(),
            sysroot: sysroot.clone(),
            host: "x86_64-unknown-linux-gnu".into(),
            digest: Digest::of(b"rustc"),
        };
        let hasher = FileHasher::new(None, None);
        let anchors = Anchors::default();
        let ctx = LinkContext {
            cwd: dir.path(),
            out_dir: &out_dir,
            stem: "app-1234",
            compiler: &compiler,
            sysroot: &sysroot,
            linker: &cc,
            anchors: &anchors,
            hasher: &hasher,
            records: None,
        };
        f(&ctx, dir.path())
    }

    fn command(args: &[&str]) -> LinkCommand {
        LinkCommand {
            env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
            program: "cc".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn libraries_resolve_as_the_linker_does_and_earlier_probes_must_stay_absent() {
        with_context(|ctx, dir| {
            let (a, b) = (dir.join("a"), dir.join("b"));
            fs::create_dir_all(&a).unwrap();
            fs::create_dir_all(&b).unwrap();
            fs::write(b.join("libfoo.a"), b"!<arch>\nfoo").unwrap();
            let inputs = link_inputs(
                &command(&[
                    "-L",
                    "a",
                    "-L",
                    "b",
                    "-Wl,-Bstatic",
                    "-lfoo",
                    "-o",
                    "out/app",
                ]),
                ctx,
            )
            .unwrap()
            .files;
            let get = |p: &Path| {
                inputs
                    .iter()
                    .find(|(k, _)| Path::new(k) == p)
                    .map(|(_, d)| *d)
            };
            assert_eq!(get(&a.join("libfoo.a")), Some(ABSENT));
            assert_eq!(get(&b.join("libfoo.a")), Some(Digest::of(b"!<arch>\nfoo")));
            // Static mode: no shared library was looked for.
            assert_eq!(get(&a.join("libfoo.so")), None);
            // The driver's own start files are inputs too.
            assert!(
                inputs.iter().any(|(k, _)| k.ends_with("crti.o")),
                "{inputs:?}"
            );
        });
    }

    #[test]
    fn what_cannot_be_identified_is_not_stored() {
        with_context(|ctx, _| {
            assert_eq!(
                link_inputs(&command(&["/nonexistent/dir/x.o"]), ctx),
                Err("link input missing")
            );
            assert_eq!(
                link_inputs(&command(&["-Wl,--sysroot=/elsewhere"]), ctx),
                Err("linker option names files cachet does not follow")
            );
            assert_eq!(
                link_inputs(&command(&["-lno_such_library_anywhere"]), ctx),
                Err("native library not found")
            );
            // Files rustc made for this link and removed are skipped, not missing.
            let temp = ctx.out_dir.join("rustcAbC123/symbols.o");
            assert!(link_inputs(&command(&[temp.to_str().unwrap()]), ctx).is_ok());
            let mut other = command(&[]);
            other.program = "/bin/true".into();
            assert_eq!(
                link_inputs(&other, ctx),
                Err("linker differs from the expected one")
            );
        });
    }

    #[test]
    fn reads_linker_scripts_like_libc_so() {
        let script = "/* GNU ld script\n   Use the shared library. */\nOUTPUT_FORMAT(elf64-x86-64)\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc_nonshared.a  AS_NEEDED ( /lib64/ld-linux-x86-64.so.2 ) )\n";
        assert_eq!(
            script_inputs(script),
            vec![
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libc_nonshared.a",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert_eq!(script_inputs("INPUT(-lfoo)"), vec!["-lfoo"]);
    }
}
