//! The rustc command line as cachet understands it, and the decision it leads to.
//!
//! cachet forwards rustc's argv untouched; this module only reads it. Parsing is strict on
//! purpose: an argument it does not know could change the output in a way the key would not
//! see, so anything unknown makes the invocation a pass-through (rustc runs as if cachet were
//! not there) with the reason counted in the statistics. Known flags are normalised into
//! `key_args`: destination-only paths are dropped, `--cfg`/`--check-cfg` are sorted, and
//! everything whose order matters (lint levels, `-C` options) keeps its order.
//!
//! `-C incremental=DIR` is read like any other option: whether the crate is compiled
//! incrementally goes into the key (rustc partitions code differently then), the directory
//! does not (it is rustc's private cache and never reaches an output). See docs/design.md,
//! "Incremental compilation".

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// A crate type rustc can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrateType {
    /// An executable.
    Bin,
    /// A Rust library (`lib`, produced as an rlib).
    Lib,
    /// A Rust library archive.
    Rlib,
    /// A Rust dynamic library.
    Dylib,
    /// A C-ABI dynamic library.
    Cdylib,
    /// A C-ABI static library.
    Staticlib,
    /// A procedural macro.
    ProcMacro,
}

impl CrateType {
    fn parse(s: &str) -> Option<CrateType> {
        Some(match s {
            "bin" => CrateType::Bin,
            "lib" => CrateType::Lib,
            "rlib" => CrateType::Rlib,
            "dylib" => CrateType::Dylib,
            "cdylib" => CrateType::Cdylib,
            "staticlib" => CrateType::Staticlib,
            "proc-macro" => CrateType::ProcMacro,
            _ => return None,
        })
    }

    /// The name rustc uses on its command line.
    pub fn as_str(self) -> &'static str {
        match self {
            CrateType::Bin => "bin",
            CrateType::Lib => "lib",
            CrateType::Rlib => "rlib",
            CrateType::Dylib => "dylib",
            CrateType::Cdylib => "cdylib",
            CrateType::Staticlib => "staticlib",
            CrateType::ProcMacro => "proc-macro",
        }
    }

    /// True for crate types whose output is produced by the system linker. Their key also
    /// covers the linker and everything the link reads (see `link.rs`).
    pub fn is_linked(self) -> bool {
        matches!(
            self,
            CrateType::Bin | CrateType::Dylib | CrateType::Cdylib | CrateType::ProcMacro
        )
    }
}

/// An output kind of `--emit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EmitKind {
    /// The crate's main artifact.
    Link,
    /// The `.rmeta` metadata file.
    Metadata,
    /// The `.d` Makefile-style dependency file.
    DepInfo,
    /// Any other kind (`asm`, `llvm-ir`, `obj`, `mir`, ...), which cachet does not cache.
    Other,
}

/// One `--emit` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emit {
    /// The kind of output.
    pub kind: EmitKind,
    /// The kind as written.
    pub name: String,
    /// An explicit output path (`--emit=link=PATH`).
    pub path: Option<PathBuf>,
}

/// One `--extern name[=path]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extern {
    /// The options before the name (`priv`, `noprelude`), and the name.
    pub name: String,
    /// The file, when given.
    pub path: Option<PathBuf>,
}

/// One `-L [kind=]path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPath {
    /// `all`, `native`, `dependency`, `crate` or `framework`.
    pub kind: String,
    /// The directory.
    pub path: PathBuf,
}

/// One `-l [kind[:modifiers]=]name[:rename]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeLib {
    /// `static`, `dylib`, `framework`, `link-arg` or empty (rustc's default).
    pub kind: String,
    /// Modifiers such as `+bundle,-whole-archive`.
    pub modifiers: String,
    /// The library name.
    pub name: String,
}

impl NativeLib {
    /// True when rustc reads the library file while producing a Rust library (it bundles
    /// static libraries into rlibs and staticlibs unless told `-bundle`).
    pub fn is_bundled(&self) -> bool {
        self.kind == "static" && !self.modifiers.split(',').any(|m| m == "-bundle")
    }

    /// True when the name is a file name to use verbatim.
    pub fn is_verbatim(&self) -> bool {
        self.modifiers.split(',').any(|m| m == "+verbatim")
    }
}

/// Why an invocation is not served from the cache. The label is what `cachet stats` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassReason {
    /// `-vV`, `--version`, `--print ...`, `--help`, `--explain`.
    Query,
    /// The source comes from standard input.
    Stdin,
    /// No input file, or more than one.
    NoSingleInput,
    /// `@file` argument files.
    ArgFile,
    /// An argument that is not UTF-8.
    NonUtf8Argument,
    /// An argument cachet does not know.
    UnknownArgument(String),
    /// `-C incremental` without a directory (rustc rejects it).
    IncrementalWithoutDir,
    /// An `--emit` kind other than link, metadata and dep-info.
    UnsupportedEmit(String),
    /// `--emit KIND=PATH` or `-o`: output paths cachet does not predict yet.
    ExplicitOutputPath,
    /// No `--out-dir`.
    NoOutDir,
    /// No `--crate-name`.
    NoCrateName,
    /// No `--crate-type`.
    NoCrateType,
    /// No dep-info requested, so the files rustc reads cannot be known.
    NoDepInfo,
    /// A `-C` option that makes the output unpredictable or host-dependent.
    UnsupportedCodegenOption(String),
    /// A `-Z` option cachet does not know to be safe.
    UnsupportedUnstableOption(String),
    /// A target cachet does not predict output names for.
    UnsupportedTarget(String),
}

impl PassReason {
    /// True when cachet understood the invocation well enough to add `--remap-path-prefix`
    /// arguments to it when it runs it uncached.
    pub fn understood(&self) -> bool {
        !matches!(
            self,
            PassReason::Query
                | PassReason::Stdin
                | PassReason::ArgFile
                | PassReason::NonUtf8Argument
                | PassReason::UnknownArgument(_)
        )
    }

    /// A short, bounded label for statistics.
    pub fn label(&self) -> String {
        match self {
            PassReason::Query => "version or print query".into(),
            PassReason::Stdin => "input from stdin".into(),
            PassReason::NoSingleInput => "not exactly one input file".into(),
            PassReason::ArgFile => "@argfile".into(),
            PassReason::NonUtf8Argument => "non-UTF-8 argument".into(),
            PassReason::UnknownArgument(a) => format!("unknown argument {a}"),
            PassReason::IncrementalWithoutDir => "-C incremental without a directory".into(),
            PassReason::UnsupportedEmit(e) => format!("--emit={e}"),
            PassReason::ExplicitOutputPath => "explicit output path".into(),
            PassReason::NoOutDir => "no --out-dir".into(),
            PassReason::NoCrateName => "no --crate-name".into(),
            PassReason::NoCrateType => "no --crate-type".into(),
            PassReason::NoDepInfo => "no dep-info emitted".into(),
            PassReason::UnsupportedCodegenOption(o) => format!("-C {o}"),
            PassReason::UnsupportedUnstableOption(o) => format!("-Z {o}"),
            PassReason::UnsupportedTarget(t) => format!("target {t}"),
        }
    }
}

impl fmt::Display for PassReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// rustc's arguments, read.
#[derive(Clone, Debug, Default)]
pub struct RustcArgs {
    /// `--crate-name`.
    pub crate_name: Option<String>,
    /// Every `--crate-type`, in order.
    pub crate_types: Vec<CrateType>,
    /// Every `--emit` item, in order.
    pub emits: Vec<Emit>,
    /// `--out-dir`.
    pub out_dir: Option<PathBuf>,
    /// `-o`.
    pub output: Option<PathBuf>,
    /// The positional inputs (rustc accepts exactly one).
    pub inputs: Vec<String>,
    /// Every `--extern`.
    pub externs: Vec<Extern>,
    /// Every `-L`.
    pub search_paths: Vec<SearchPath>,
    /// Every `-l`.
    pub native_libs: Vec<NativeLib>,
    /// Every `-C key[=value]` (also `-g`, `-O` as their `-C` meaning).
    pub codegen: Vec<(String, Option<String>)>,
    /// Every `-Z option`.
    pub unstable: Vec<String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--sysroot`.
    pub sysroot: Option<PathBuf>,
    /// `-C incremental=DIR`: rustc's own incremental cache, read and written by the compile.
    /// Only its presence is keyed.
    pub incremental: Option<PathBuf>,
    /// `--test`.
    pub test: bool,
    /// `--print`, `-V`, `--help`, `--explain` were given.
    pub query: bool,
    /// The normalised arguments that go into the key, in their significant order.
    pub key_args: Vec<String>,
    /// The first problem that makes the invocation uncacheable, found while parsing.
    pub problem: Option<PassReason>,
}

const TAKES_VALUE: &[&str] = &[
    "--cfg",
    "--check-cfg",
    "-L",
    "-l",
    "--crate-type",
    "--crate-name",
    "--edition",
    "--emit",
    "--print",
    "-o",
    "--out-dir",
    "--explain",
    "--target",
    "-A",
    "--allow",
    "-W",
    "--warn",
    "--force-warn",
    "-D",
    "--deny",
    "-F",
    "--forbid",
    "--cap-lints",
    "-C",
    "--codegen",
    "-Z",
    "--sysroot",
    "--error-format",
    "--json",
    "--color",
    "--diagnostic-width",
    "--remap-path-prefix",
    "--remap-path-scope",
    "--extern",
    "--env-set",
];

const FLAGS: &[&str] = &[
    "--test",
    "-g",
    "-O",
    "-v",
    "--verbose",
    "-V",
    "-vV",
    "--version",
    "-h",
    "--help",
];

/// `-C` options that do not make outputs unpredictable. Anything else passes through.
const CODEGEN_OK: &[&str] = &[
    "ar",
    "code-model",
    "codegen-units",
    "collapse-macro-debuginfo",
    "control-flow-guard",
    "debug-assertions",
    "debuginfo",
    "default-linker-libs",
    "dlltool",
    "dwarf-version",
    "embed-bitcode",
    "extra-filename",
    "force-frame-pointers",
    "force-unwind-tables",
    "inline-threshold",
    "instrument-coverage",
    "jump-tables",
    "link-arg",
    "link-args",
    "link-dead-code",
    "link-self-contained",
    "linker",
    "linker-features",
    "linker-flavor",
    "linker-plugin-lto",
    "llvm-args",
    "lto",
    "metadata",
    "no-prepopulate-passes",
    "no-redzone",
    "no-stack-check",
    "no-vectorize-loops",
    "no-vectorize-slp",
    "opt-level",
    "overflow-checks",
    "panic",
    "passes",
    "prefer-dynamic",
    "relocation-model",
    "relro-level",
    "rpath",
    "soft-float",
    "split-debuginfo",
    "strip",
    "symbol-mangling-version",
    "target-cpu",
    "target-feature",
    "unsafe-allow-abi-mismatch",
];

/// `-Z` options known not to write extra files or read inputs the key does not see.
const UNSTABLE_OK: &[&str] = &[
    "threads",
    "share-generics",
    "macro-backtrace",
    "unstable-options",
    "next-solver",
    "polonius",
    "trim-diagnostic-paths",
    "location-detail",
    "mir-opt-level",
    "inline-mir",
    "ui-testing",
    "terminal-urls",
    "track-diagnostics",
    "randomize-layout",
    "layout-seed",
    "has-thread-local",
    "tls-model",
    "plt",
    "relax-elf-relocations",
    "fewer-names",
    "function-sections",
    "debug-info-for-profiling",
    "checksum-hash-algorithm",
];

impl RustcArgs {
    /// Reads rustc's arguments (argv without the program name).
    pub fn parse(args: &[OsString]) -> RustcArgs {
        let mut out = RustcArgs::default();
        let mut cfgs: Vec<String> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let Some(arg) = args[i].to_str() else {
                out.flag_problem(PassReason::NonUtf8Argument);
                i += 1;
                continue;
            };
            i += 1;
            if arg.starts_with('@') {
                out.flag_problem(PassReason::ArgFile);
                continue;
            }
            if arg == "-" {
                out.flag_problem(PassReason::Stdin);
                out.inputs.push(arg.to_string());
                continue;
            }
            if !arg.starts_with('-') {
                out.inputs.push(arg.to_string());
                continue;
            }
            // Split into (flag, inline value).
            let (flag, inline): (&str, Option<&str>) = if let Some(rest) = arg.strip_prefix("--") {
                match rest.split_once('=') {
                    Some((f, v)) => (&arg[..2 + f.len()], Some(v)),
                    None => (arg, None),
                }
            } else {
                let short = &arg[..2.min(arg.len())];
                if arg.len() > 2 && TAKES_VALUE.contains(&short) {
                    (short, Some(&arg[2..]))
                } else {
                    (arg, None)
                }
            };
            if FLAGS.contains(&flag) {
                if inline.is_some() {
                    out.flag_problem(PassReason::UnknownArgument(flag.to_string()));
                }
                out.handle_flag(flag);
                continue;
            }
            if !TAKES_VALUE.contains(&flag) {
                out.flag_problem(PassReason::UnknownArgument(flag.to_string()));
                continue;
            }
            let value = match inline {
                Some(v) => v.to_string(),
                None => match args.get(i).map(|v| v.to_str()) {
                    Some(Some(v)) => {
                        i += 1;
                        v.to_string()
                    }
                    Some(None) => {
                        i += 1;
                        out.flag_problem(PassReason::NonUtf8Argument);
                        continue;
                    }
                    None => {
                        out.flag_problem(PassReason::UnknownArgument(format!(
                            "{flag} without a value"
                        )));
                        continue;
                    }
                },
            };
            out.handle_option(flag, value, &mut cfgs);
        }
        cfgs.sort();
        out.key_args.extend(cfgs);
        out
    }

    fn flag_problem(&mut self, reason: PassReason) {
        if self.problem.is_none() {
            self.problem = Some(reason);
        }
    }

    fn handle_flag(&mut self, flag: &str) {
        match flag {
            "--test" => self.test = true,
            "-g" => self.codegen.push(("debuginfo".into(), Some("2".into()))),
            "-O" => self.codegen.push(("opt-level".into(), Some("2".into()))),
            "-V" | "-vV" | "--version" | "-h" | "--help" => self.query = true,
            _ => {}
        }
        self.key_args.push(flag.to_string());
    }

    fn handle_option(&mut self, flag: &str, value: String, cfgs: &mut Vec<String>) {
        match flag {
            "--cfg" | "--check-cfg" => {
                cfgs.push(format!("{flag}={value}"));
                return;
            }
            "--crate-name" => self.crate_name = Some(value.clone()),
            "--crate-type" => {
                for t in value.split(',') {
                    match CrateType::parse(t) {
                        Some(ct) => self.crate_types.push(ct),
                        None => self
                            .flag_problem(PassReason::UnknownArgument(format!("--crate-type {t}"))),
                    }
                }
            }
            "--emit" => {
                for item in value.split(',') {
                    let (name, path) = match item.split_once('=') {
                        Some((n, p)) => (n, Some(PathBuf::from(p))),
                        None => (item, None),
                    };
                    let kind = match name {
                        "link" => EmitKind::Link,
                        "metadata" => EmitKind::Metadata,
                        "dep-info" => EmitKind::DepInfo,
                        _ => EmitKind::Other,
                    };
                    // Only the kind and the file name matter to the output; the directory does not.
                    let file = path
                        .as_ref()
                        .and_then(|p| p.file_name())
                        .map(|f| f.to_string_lossy().into_owned());
                    self.key_args
                        .push(format!("--emit={name}={}", file.unwrap_or_default()));
                    self.emits.push(Emit {
                        kind,
                        name: name.to_string(),
                        path,
                    });
                }
                return;
            }
            "--print" | "--explain" => self.query = true,
            "-o" => {
                let p = PathBuf::from(&value);
                let file = p
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.key_args.push(format!("-o={file}"));
                self.output = Some(p);
                return;
            }
            "--out-dir" => {
                self.out_dir = Some(PathBuf::from(value));
                return;
            }
            "--extern" => {
                let (name, path) = match value.split_once('=') {
                    Some((n, p)) => (n.to_string(), Some(PathBuf::from(p))),
                    None => (value.clone(), None),
                };
                // The file's content, not its path, goes into the key (see `key.rs`).
                self.key_args.push(format!("--extern={name}"));
                self.externs.push(Extern { name, path });
                return;
            }
            "-L" => {
                let (kind, path) = match value.split_once('=') {
                    Some((k, p))
                        if matches!(k, "all" | "native" | "dependency" | "crate" | "framework") =>
                    {
                        (k.to_string(), p.to_string())
                    }
                    _ => ("all".to_string(), value.clone()),
                };
                self.search_paths.push(SearchPath {
                    kind,
                    path: PathBuf::from(path),
                });
            }
            "-l" => {
                let (spec, name) = match value.split_once('=') {
                    Some((s, n)) => (s, n),
                    None => ("", value.as_str()),
                };
                let (kind, modifiers) = spec.split_once(':').unwrap_or((spec, ""));
                let name = name.split_once(':').map(|(n, _)| n).unwrap_or(name);
                self.native_libs.push(NativeLib {
                    kind: kind.to_string(),
                    modifiers: modifiers.to_string(),
                    name: name.to_string(),
                });
            }
            "-C" | "--codegen" => {
                let (k, v) = match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.clone(), None),
                };
                let k = k.replace('_', "-");
                if k == "incremental" {
                    match v {
                        Some(dir) if !dir.is_empty() => self.incremental = Some(dir.into()),
                        _ => self.flag_problem(PassReason::IncrementalWithoutDir),
                    }
                    // Incremental compiles split a crate into per-module codegen units (256
                    // by default instead of 16), so their outputs differ from a plain
                    // compile's: keyed apart. The directory only holds rustc's private cache.
                    self.key_args.push("-C=incremental".into());
                    return;
                }
                let allowed = CODEGEN_OK.contains(&k.as_str())
                    && !(k == "target-cpu" && v.as_deref() == Some("native"))
                    && !(k == "split-debuginfo" && v.as_deref() != Some("off"));
                if !allowed {
                    self.flag_problem(PassReason::UnsupportedCodegenOption(match &v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    }));
                }
                self.key_args.push(format!("-C={value}"));
                self.codegen.push((k, v));
                return;
            }
            "-Z" => {
                let name = value
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .replace('_', "-");
                if !UNSTABLE_OK.contains(&name.as_str()) {
                    self.flag_problem(PassReason::UnsupportedUnstableOption(name));
                }
                self.unstable.push(value.clone());
            }
            "--target" => self.target = Some(value.clone()),
            "--sysroot" => self.sysroot = Some(PathBuf::from(&value)),
            _ => {}
        }
        self.key_args.push(format!("{flag}={value}"));
    }

    /// True when the crate can load crates other than the standard library's: an `--extern`
    /// with a file, one without (found by search) other than the sysroot's, or a directory
    /// `extern crate` may search (`-L crate=`, `-L all=`).
    pub fn loads_crates(&self) -> bool {
        const SYSROOT: &[&str] = &["std", "core", "alloc", "proc_macro", "test"];
        self.externs
            .iter()
            .any(|e| e.path.is_some() || !SYSROOT.contains(&e.name.as_str()))
            || self
                .search_paths
                .iter()
                .any(|s| matches!(s.kind.as_str(), "all" | "crate"))
    }

    /// The value of the last `-C key=...`, if any.
    pub fn codegen_value(&self, key: &str) -> Option<&str> {
        self.codegen
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// True when this invocation emits `kind`.
    pub fn emits(&self, kind: EmitKind) -> bool {
        self.emits.iter().any(|e| e.kind == kind)
    }
}

/// What a cacheable invocation will write, and where.
#[derive(Clone, Debug)]
pub struct CachePlan {
    /// The parsed arguments.
    pub args: RustcArgs,
    /// The crate name.
    pub crate_name: String,
    /// The input file as given.
    pub input: String,
    /// The out-dir as given (relative paths are relative to the working directory).
    pub out_dir: PathBuf,
    /// The file names of every output, inside `out_dir`.
    pub outputs: Vec<String>,
    /// The dep-info file's name, inside `out_dir`.
    pub dep_info: String,
    /// True when the system linker produces an output (executables, dynamic libraries,
    /// proc-macros): the key then also covers what the link reads.
    pub links: bool,
}

/// What to do with an invocation.
#[derive(Clone, Debug)]
pub enum Plan {
    /// Serve from the cache, or compile and store.
    Cache(Box<CachePlan>),
    /// Run rustc unchanged.
    PassThrough(PassReason),
}

/// Decides whether an invocation can be cached and, if so, which files it writes.
pub fn plan(args: &[OsString]) -> Plan {
    let parsed = RustcArgs::parse(args);
    match plan_parsed(parsed) {
        Ok(p) => Plan::Cache(Box::new(p)),
        Err(reason) => Plan::PassThrough(reason),
    }
}

fn plan_parsed(a: RustcArgs) -> Result<CachePlan, PassReason> {
    if a.query {
        return Err(PassReason::Query);
    }
    if let Some(problem) = a.problem.clone() {
        return Err(problem);
    }
    if a.inputs.len() != 1 {
        return Err(PassReason::NoSingleInput);
    }
    // `--test` builds the test harness: an executable, whatever `--crate-type` says.
    let crate_types = if a.test {
        vec![CrateType::Bin]
    } else {
        a.crate_types.clone()
    };
    if crate_types.is_empty() {
        return Err(PassReason::NoCrateType);
    }
    if let Some(flavor) = a.codegen_value("linker-flavor") {
        if crate_types.iter().any(|t| t.is_linked()) && !matches!(flavor, "gcc" | "gnu-cc") {
            // Other flavors call a linker directly, whose search rules cachet does not model.
            return Err(PassReason::UnsupportedCodegenOption(format!(
                "linker-flavor={flavor}"
            )));
        }
    }
    if let Some(e) = a.emits.iter().find(|e| e.kind == EmitKind::Other) {
        return Err(PassReason::UnsupportedEmit(e.name.clone()));
    }
    if a.output.is_some() || a.emits.iter().any(|e| e.path.is_some()) {
        return Err(PassReason::ExplicitOutputPath);
    }
    if let Some(t) = &a.target {
        if t.contains("windows") || t.contains("wasm") || t.contains("apple") {
            return Err(PassReason::UnsupportedTarget(t.clone()));
        }
    }
    let Some(out_dir) = a.out_dir.clone() else {
        return Err(PassReason::NoOutDir);
    };
    let Some(crate_name) = a.crate_name.clone() else {
        return Err(PassReason::NoCrateName);
    };
    if !a.emits(EmitKind::DepInfo) {
        return Err(PassReason::NoDepInfo);
    }
    let extra = a.codegen_value("extra-filename").unwrap_or("");
    let stem = format!("{crate_name}{extra}");
    let mut outputs = Vec::new();
    // rustc's default emit is `link` when `--emit` is absent, but cargo always passes it and we
    // require dep-info, so `emits` is never empty here.
    for e in &a.emits {
        match e.kind {
            EmitKind::Link => {
                for t in &crate_types {
                    // File names on the Unix-like targets cachet accepts (see the check above).
                    let name = match t {
                        CrateType::Lib | CrateType::Rlib => format!("lib{stem}.rlib"),
                        CrateType::Staticlib => format!("lib{stem}.a"),
                        CrateType::Bin => stem.clone(),
                        CrateType::Dylib | CrateType::Cdylib | CrateType::ProcMacro => {
                            format!("lib{stem}.so")
                        }
                    };
                    if !outputs.contains(&name) {
                        outputs.push(name);
                    }
                }
            }
            EmitKind::Metadata => outputs.push(format!("lib{stem}.rmeta")),
            EmitKind::DepInfo => outputs.push(format!("{stem}.d")),
            EmitKind::Other => unreachable!("rejected above"),
        }
    }
    outputs.dedup();
    if outputs
        .iter()
        .any(|o| !cachet_core::entry::is_safe_file_name(o))
    {
        return Err(PassReason::UnknownArgument(
            "--crate-name with a path separator".into(),
        ));
    }
    Ok(CachePlan {
        crate_name,
        links: crate_types.iter().any(|t| t.is_linked()) && a.emits(EmitKind::Link),
        input: a.inputs[0].clone(),
        out_dir,
        dep_info: format!("{stem}.d"),
        outputs,
        args: a,
    })
}

impl CachePlan {
    /// The out-dir resolved against the working directory.
    pub fn out_dir_in(&self, cwd: &Path) -> PathBuf {
        cwd.join(&self.out_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn cargo_lib_args() -> Vec<OsString> {
        os(&[
            "--crate-name",
            "depa",
            "--edition=2021",
            "/src/depa/src/lib.rs",
            "--error-format=json",
            "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
            "--crate-type",
            "lib",
            "--emit=dep-info,metadata,link",
            "-C",
            "embed-bitcode=no",
            "-C",
            "debuginfo=2",
            "--check-cfg",
            "cfg(docsrs,test)",
            "--cfg",
            "feature=\"b\"",
            "--cfg",
            "feature=\"a\"",
            "-C",
            "metadata=5cc52cfb061906c9",
            "-C",
            "extra-filename=-c18aefc0bffb0014",
            "--out-dir",
            "/t/debug/deps",
            "-L",
            "dependency=/t/debug/deps",
            "--extern",
            "serde=/t/debug/deps/libserde-1.rmeta",
            "--cap-lints",
            "allow",
        ])
    }

    #[test]
    fn cargo_library_is_cacheable_with_predicted_outputs() {
        let Plan::Cache(p) = plan(&cargo_lib_args()) else {
            panic!("expected cacheable")
        };
        assert_eq!(p.crate_name, "depa");
        assert_eq!(
            p.outputs,
            vec![
                "depa-c18aefc0bffb0014.d",
                "libdepa-c18aefc0bffb0014.rmeta",
                "libdepa-c18aefc0bffb0014.rlib"
            ]
        );
        assert_eq!(p.out_dir, PathBuf::from("/t/debug/deps"));
        assert_eq!(p.args.externs[0].name, "serde");
    }

    #[test]
    fn out_dir_and_extern_paths_stay_out_of_the_key() {
        let a = RustcArgs::parse(&cargo_lib_args());
        let joined = a.key_args.join(" ");
        assert!(!joined.contains("/t/debug/deps/libserde"), "{joined}");
        assert!(!joined.contains("--out-dir"), "{joined}");
    }

    #[test]
    fn cfg_order_does_not_matter_but_lint_order_does() {
        let mut swapped = cargo_lib_args();
        let a = swapped.iter().position(|x| x == "feature=\"b\"").unwrap();
        let b = swapped.iter().position(|x| x == "feature=\"a\"").unwrap();
        swapped.swap(a, b);
        assert_eq!(
            RustcArgs::parse(&cargo_lib_args()).key_args,
            RustcArgs::parse(&swapped).key_args
        );
        let l1 = RustcArgs::parse(&os(&["-A", "x", "-D", "x"])).key_args;
        let l2 = RustcArgs::parse(&os(&["-D", "x", "-A", "x"])).key_args;
        assert_ne!(l1, l2);
    }

    #[test]
    fn inline_and_separate_values_mean_the_same() {
        let a = RustcArgs::parse(&os(&["-Copt-level=3", "-Lnative=/x", "--edition", "2021"]));
        let b = RustcArgs::parse(&os(&[
            "-C",
            "opt-level=3",
            "-L",
            "native=/x",
            "--edition=2021",
        ]));
        assert_eq!(a.key_args, b.key_args);
        assert_eq!(a.search_paths, b.search_paths);
    }

    fn reason(v: &[&str]) -> PassReason {
        let mut args = cargo_lib_args();
        args.extend(os(v));
        match plan(&args) {
            Plan::PassThrough(r) => r,
            Plan::Cache(_) => panic!("expected pass-through for {v:?}"),
        }
    }

    #[test]
    fn incremental_is_keyed_by_presence_not_directory() {
        let mut a = cargo_lib_args();
        a.extend(os(&["-C", "incremental=/t/debug/incremental"]));
        let mut b = cargo_lib_args();
        b.extend(os(&["-Cincremental=/elsewhere/inc"]));
        let Plan::Cache(pa) = plan(&a) else {
            panic!("an incremental call is cacheable")
        };
        let Plan::Cache(pb) = plan(&b) else {
            panic!("an incremental call is cacheable")
        };
        assert_eq!(
            pa.args.incremental.as_deref(),
            Some(Path::new("/t/debug/incremental"))
        );
        assert_eq!(pa.args.key_args, pb.args.key_args);
        assert!(!pa.args.key_args.join(" ").contains("/t/debug/incremental"));
        assert_ne!(
            pa.args.key_args,
            RustcArgs::parse(&cargo_lib_args()).key_args,
            "an incremental compile is keyed apart from a plain one"
        );
        assert_eq!(
            reason(&["-C", "incremental"]),
            PassReason::IncrementalWithoutDir
        );
    }

    #[test]
    fn uncacheable_invocations_say_why() {
        assert_eq!(
            reason(&["--emit=asm"]),
            PassReason::UnsupportedEmit("asm".into())
        );
        assert_eq!(
            reason(&["--crate-type", "bin", "-C", "linker-flavor=ld.lld"]),
            PassReason::UnsupportedCodegenOption("linker-flavor=ld.lld".into())
        );
        assert_eq!(
            reason(&["--frobnicate"]),
            PassReason::UnknownArgument("--frobnicate".into())
        );
        assert_eq!(reason(&["@args.txt"]), PassReason::ArgFile);
        assert_eq!(
            reason(&["-C", "target-cpu=native"]),
            PassReason::UnsupportedCodegenOption("target-cpu=native".into())
        );
        assert_eq!(
            reason(&["-C", "save-temps"]),
            PassReason::UnsupportedCodegenOption("save-temps".into())
        );
        assert_eq!(
            reason(&["-Z", "self-profile"]),
            PassReason::UnsupportedUnstableOption("self-profile".into())
        );
        assert_eq!(reason(&["other.rs"]), PassReason::NoSingleInput);
        assert!(matches!(
            plan(&os(&["-vV"])),
            Plan::PassThrough(PassReason::Query)
        ));
        assert!(matches!(
            plan(&os(&["-", "--crate-name", "___", "--print=file-names"])),
            Plan::PassThrough(PassReason::Query)
        ));
        assert!(matches!(
            plan(&os(&["-", "--crate-name", "x"])),
            Plan::PassThrough(PassReason::Stdin)
        ));
    }

    #[test]
    fn staticlib_and_check_builds_are_cacheable() {
        let Plan::Cache(p) = plan(&os(&[
            "--crate-name",
            "s",
            "src/lib.rs",
            "--crate-type",
            "staticlib",
            "--crate-type",
            "rlib",
            "--emit=dep-info,link",
            "--out-dir",
            "o",
        ])) else {
            panic!()
        };
        assert_eq!(p.outputs, vec!["s.d", "libs.a", "libs.rlib"]);
        let Plan::Cache(p) = plan(&os(&[
            "--crate-name",
            "c",
            "src/lib.rs",
            "--crate-type",
            "lib",
            "--emit=dep-info,metadata",
            "--out-dir",
            "o",
        ])) else {
            panic!()
        };
        assert_eq!(p.outputs, vec!["c.d", "libc.rmeta"]);
    }

    #[test]
    fn native_libs_are_read() {
        let a = RustcArgs::parse(&os(&[
            "-l",
            "static:-bundle=foo",
            "-lstatic=bar:baz",
            "-l",
            "z",
        ]));
        assert!(!a.native_libs[0].is_bundled());
        assert!(a.native_libs[1].is_bundled());
        assert_eq!(a.native_libs[1].name, "bar");
        assert_eq!(a.native_libs[2].kind, "");
    }

    proptest! {
        #[test]
        fn parser_never_panics(args in proptest::collection::vec("[-=@a-zA-Z0-9_,./:\"]{0,12}", 0..16)) {
            let os: Vec<OsString> = args.iter().map(OsString::from).collect();
            let _ = plan(&os);
        }

        #[test]
        fn parser_never_panics_on_known_flags(picks in proptest::collection::vec((0usize..TAKES_VALUE.len() + FLAGS.len(), "[a-z0-9=,/.-]{0,8}"), 0..12)) {
            let mut os = Vec::new();
            for (i, v) in picks {
                let f = if i < TAKES_VALUE.len() { TAKES_VALUE[i] } else { FLAGS[i - TAKES_VALUE.len()] };
                os.push(OsString::from(f));
                os.push(OsString::from(v));
            }
            let _ = plan(&os);
        }

        #[test]
        fn predicted_outputs_are_plain_file_names(name in "[a-z_./]{1,10}", extra in "[-a-z0-9./]{0,10}") {
            let os: Vec<OsString> = ["--crate-name", &name, "x.rs", "--crate-type", "lib", "--emit=dep-info,link",
                "--out-dir", "o", "-C", &format!("extra-filename={extra}")].iter().map(OsString::from).collect();
            if let Plan::Cache(p) = plan(&os) {
                for o in p.outputs {
                    prop_assert!(cachet_core::entry::is_safe_file_name(&o));
                }
            }
        }
    }
}
