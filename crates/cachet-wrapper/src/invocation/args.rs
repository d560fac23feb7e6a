//! Reading rustc's arguments: every flag cachet knows, normalised into what the key covers.
//! Anything it does not know is flagged as a problem, which makes the call a pass-through
//! (see the module above).

use std::ffi::OsString;
use std::path::PathBuf;

use super::reason::PassReason;

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

pub(super) const TAKES_VALUE: &[&str] = &[
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

pub(super) const FLAGS: &[&str] = &[
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
