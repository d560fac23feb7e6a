//! Reading a C, C++ or assembler command line (gcc and clang syntax) to decide whether the
//! call can be cached, and what its key and outputs are.
//!
//! Only single-source `-c` compiles are cached. The parser knows the options the key and the
//! outputs depend on; an option it does not know, or one that reads or writes files the
//! compile's dependency file does not list (`-specs=`, `-B`, `-fprofile-use`, `-save-temps`,
//! `-gsplit-dwarf`, ...), or one whose output cannot be predicted (`-march=native`), makes
//! the call run unchanged, with the reason counted. The command line is never rewritten
//! beyond adding path maps and, when the user did not ask for one, a dependency file.

use std::fmt;
use std::path::Path;

/// The language of the source, from `-x` or its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// C.
    C,
    /// C++.
    Cxx,
    /// Assembly through the C preprocessor (`.S`, `-x assembler-with-cpp`).
    AsmCpp,
    /// Assembly as is (`.s`, `-x assembler`): no preprocessor, so no dependency file.
    Asm,
}

impl Language {
    /// The name used in statistics and keys.
    pub fn label(self) -> &'static str {
        match self {
            Language::C => "c",
            Language::Cxx => "c++",
            Language::AsmCpp | Language::Asm => "asm",
        }
    }

    /// True when the preprocessor runs, so `-MD` lists what was read.
    pub fn preprocessed(self) -> bool {
        self != Language::Asm
    }

    fn from_x(value: &str) -> Option<Language> {
        match value {
            "c" => Some(Language::C),
            "c++" => Some(Language::Cxx),
            "assembler-with-cpp" => Some(Language::AsmCpp),
            "assembler" => Some(Language::Asm),
            _ => None,
        }
    }

    fn from_extension(path: &str, cxx_driver: bool) -> Option<Language> {
        let ext = Path::new(path).extension()?.to_str()?;
        match ext {
            // A C++ driver (g++, clang++) compiles `.c` files as C++.
            "c" if cxx_driver => Some(Language::Cxx),
            "c" => Some(Language::C),
            "cc" | "cpp" | "cxx" | "c++" | "C" | "cp" | "CPP" => Some(Language::Cxx),
            "S" | "sx" => Some(Language::AsmCpp),
            "s" => Some(Language::Asm),
            _ => None,
        }
    }
}

/// Why a compiler call runs unchanged. The label is stable: statistics count by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassReason {
    /// No `-c`: a link, or a query such as `--version`.
    NotCompile,
    /// `-E`, `-M` or `-MM` without `-MD`: preprocessing only.
    Preprocess,
    /// `-S`: assembly output.
    AssemblyOutput,
    /// No source file.
    NoSource,
    /// More than one source file.
    SeveralSources,
    /// A source whose language is not C, C++ or assembly (or `-x` after the source).
    UnsupportedLanguage,
    /// An argument that reads or writes files the dependency file does not list.
    UntrackedFile,
    /// Profile-guided optimisation or coverage data.
    Profile,
    /// `-march=native` and friends: the output depends on the machine.
    NativeCpu,
    /// Precompiled headers.
    Pch,
    /// An `@file` response file.
    ResponseFile,
    /// Output to stdout or input from stdin.
    Stdio,
    /// An option this parser does not know.
    UnknownOption,
    /// `DEPENDENCIES_OUTPUT` or `SUNPRO_DEPENDENCIES` is set.
    DependencyEnv,
}

impl PassReason {
    /// The stable label counted in statistics.
    pub fn label(self) -> &'static str {
        match self {
            PassReason::NotCompile => "c: not a compile (-c)",
            PassReason::Preprocess => "c: preprocess only",
            PassReason::AssemblyOutput => "c: assembly output (-S)",
            PassReason::NoSource => "c: no source file",
            PassReason::SeveralSources => "c: several source files",
            PassReason::UnsupportedLanguage => "c: unsupported language",
            PassReason::UntrackedFile => "c: option reads or writes untracked files",
            PassReason::Profile => "c: profile or coverage",
            PassReason::NativeCpu => "c: -march=native",
            PassReason::Pch => "c: precompiled header",
            PassReason::ResponseFile => "c: response file",
            PassReason::Stdio => "c: stdin or stdout",
            PassReason::UnknownOption => "c: unknown option",
            PassReason::DependencyEnv => "c: DEPENDENCIES_OUTPUT set",
        }
    }
}

impl fmt::Display for PassReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl crate::reason::PassThroughReason for PassReason {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        PassReason::label(*self).into()
    }
}

/// A key argument: a plain token, or the value of a path option (written relative to the
/// anchors in the key, since only what the path leads to matters and that is hashed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyArg {
    /// Kept literally (a `-D` value may be baked into the object).
    Literal(String),
    /// A path: an include directory, a forced include, a sysroot.
    Path(String),
}

/// Where an include directory sits in the search order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SearchKind {
    /// `-iquote`: quoted includes only, first.
    Quote,
    /// `-I`.
    Normal,
    /// `-isystem`.
    System,
    /// `-idirafter`: after the system directories.
    After,
}

/// A cacheable compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcPlan {
    /// The source, as given.
    pub source: String,
    /// Its language.
    pub language: Language,
    /// The object file, as given by `-o` (or the default `<stem>.o` in the working directory).
    pub output: String,
    /// The user's dependency file (`-MD` or `-MMD`, with `-MF` or the default name), if any.
    pub user_depfile: Option<String>,
    /// True for `-MMD`: the compile runs with `-MD` (the key needs the system headers too)
    /// and the user's file is then written without them (see `depfile.rs`).
    pub user_depfile_without_system: bool,
    /// True for `-MP`: the user's dependency file has an empty rule per header.
    pub phony_targets: bool,
    /// The arguments that enter the key: everything but the source, `-o` and `-MF` paths.
    pub key_args: Vec<KeyArg>,
    /// Include directories in command-line order, with their kind.
    pub include_dirs: Vec<(SearchKind, String)>,
}

fn is_cxx_driver(compiler: &str) -> bool {
    let name = Path::new(compiler)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    name.contains("++")
}

/// Options followed by a separate value that is a path.
const PATH_VALUE: &[&str] = &[
    "-I",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-include",
    "-imacros",
    "-isysroot",
    "--sysroot",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-L",
];

/// Options followed by a separate value that is not a path.
const PLAIN_VALUE: &[&str] = &[
    "-D",
    "-U",
    "-MT",
    "-MQ",
    "-target",
    "--target",
    "-arch",
    "-Xassembler",
    "-Xpreprocessor",
    "-Xlinker",
    "--param",
    "-imultilib",
    "-l",
    "-u",
    "-z",
];

/// Option prefixes that make the call uncacheable, with the reason.
const REFUSED_PREFIXES: &[(&str, PassReason)] = &[
    ("-fprofile-", PassReason::Profile),
    ("-fauto-profile", PassReason::Profile),
    ("-fcoverage", PassReason::Profile),
    ("-ftest-coverage", PassReason::Profile),
    ("--coverage", PassReason::Profile),
    ("-fbranch-probabilities", PassReason::Profile),
    ("-fcs-profile", PassReason::Profile),
    ("-march=native", PassReason::NativeCpu),
    ("-mcpu=native", PassReason::NativeCpu),
    ("-mtune=native", PassReason::NativeCpu),
    ("-include-pch", PassReason::Pch),
    ("-fpch", PassReason::Pch),
    ("-save-temps", PassReason::UntrackedFile),
    ("-gsplit-dwarf", PassReason::UntrackedFile),
    ("-fdump-", PassReason::UntrackedFile),
    ("-fstack-usage", PassReason::UntrackedFile),
    ("-fcallgraph-info", PassReason::UntrackedFile),
    ("-fsave-optimization-record", PassReason::UntrackedFile),
    ("-foptimization-record-file", PassReason::UntrackedFile),
    ("-fopt-info", PassReason::UntrackedFile),
    ("-ftime-trace", PassReason::UntrackedFile),
    ("-fplugin", PassReason::UntrackedFile),
    ("-fsanitize-blacklist", PassReason::UntrackedFile),
    ("-fsanitize-ignorelist", PassReason::UntrackedFile),
    ("-fprofile-list", PassReason::UntrackedFile),
    ("-frecord-gcc-switches", PassReason::UntrackedFile),
    ("-fmodules", PassReason::UntrackedFile),
    ("-fmodule-", PassReason::UntrackedFile),
    ("-fcxx-modules", PassReason::UntrackedFile),
    ("-fsyntax-only", PassReason::NotCompile),
    ("-specs", PassReason::UntrackedFile),
    ("--specs", PassReason::UntrackedFile),
    ("-B", PassReason::UntrackedFile),
    ("-wrapper", PassReason::UntrackedFile),
    ("-Xclang", PassReason::UnknownOption),
    ("-MJ", PassReason::UntrackedFile),
    ("-MG", PassReason::UntrackedFile),
    ("-###", PassReason::NotCompile),
];

/// Option prefixes known to affect only code generation or diagnostics (kept in the key).
const KNOWN_PREFIXES: &[&str] = &[
    "-f",
    "-m",
    "-W",
    "-O",
    "-g",
    "-std=",
    "-D",
    "-U",
    "-I",
    "-w",
    "-pedantic",
    "-ansi",
    "-pthread",
    "-nostdinc",
    "-nostdlib",
    "-nodefaultlibs",
    "-isystem",
    "-iquote",
    "-idirafter",
    "--sysroot=",
    "--target=",
    "-stdlib=",
    "--gcc-toolchain=",
    "-gcc-toolchain",
    "-Q",
    "-pipe",
    "-static",
    "-shared",
    "-rdynamic",
    "-L",
    "-l",
    "-trigraphs",
    "-undef",
    "-P",
    "-C",
    "-p",
    "-no-integrated-as",
    "-integrated-as",
    "-x",
    "-MP",
    "-MD",
    "-MT",
    "-MQ",
    "-MF",
    "-mllvm",
    "-rtlib=",
    "-unwindlib=",
    "-fuse-ld=",
];

/// Reads the arguments after the compiler. `env` reads the environment.
pub fn plan(
    compiler: &str,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CcPlan, PassReason> {
    if env("DEPENDENCIES_OUTPUT").is_some() || env("SUNPRO_DEPENDENCIES").is_some() {
        return Err(PassReason::DependencyEnv);
    }
    let mut compile = false;
    let mut output: Option<String> = None;
    let mut sources: Vec<(String, Option<Language>)> = Vec::new();
    let mut x_lang: Option<Option<Language>> = None;
    let mut md = false;
    let mut mmd = false;
    let mut mp = false;
    let mut mf: Option<String> = None;
    let mut m_only = false;
    let mut key_args = Vec::new();
    let mut include_dirs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = || args.get(i + 1).cloned().ok_or(PassReason::UnknownOption);
        if a.starts_with('@') {
            return Err(PassReason::ResponseFile);
        }
        if a == "-" {
            return Err(PassReason::Stdio);
        }
        if !a.starts_with('-') {
            let lang = match x_lang {
                Some(l) => l,
                None => Language::from_extension(a, is_cxx_driver(compiler)),
            };
            sources.push((a.to_string(), lang));
            i += 1;
            continue;
        }
        for (prefix, reason) in REFUSED_PREFIXES {
            if a.starts_with(prefix) {
                return Err(*reason);
            }
        }
        match a {
            "-c" => compile = true,
            "-E" => return Err(PassReason::Preprocess),
            "-S" => return Err(PassReason::AssemblyOutput),
            "-M" | "-MM" => m_only = true,
            "-MMD" => {
                md = true;
                mmd = true;
            }
            "-MD" => md = true,
            "-MP" => mp = true,
            "-v" | "--version" | "--help" => return Err(PassReason::NotCompile),
            "-o" => {
                output = Some(next()?);
                i += 2;
                continue;
            }
            "-MF" => {
                mf = Some(next()?);
                i += 2;
                continue;
            }
            "-x" => {
                let v = next()?;
                if !sources.is_empty() {
                    return Err(PassReason::UnsupportedLanguage);
                }
                x_lang = if v == "none" {
                    None
                } else {
                    Some(Language::from_x(&v))
                };
                key_args.push(KeyArg::Literal("-x".into()));
                key_args.push(KeyArg::Literal(v));
                i += 2;
                continue;
            }
            _ => {}
        }
        if matches!(a, "-c" | "-MD" | "-MMD" | "-M" | "-MM") {
            key_args.push(KeyArg::Literal(a.to_string()));
            i += 1;
            continue;
        }
        if let Some(v) = a.strip_prefix("-o") {
            output = Some(v.to_string());
            i += 1;
            continue;
        }
        if let Some(v) = a.strip_prefix("-MF") {
            mf = Some(v.to_string());
            i += 1;
            continue;
        }
        if let Some(v) = a.strip_prefix("-x") {
            if !sources.is_empty() {
                return Err(PassReason::UnsupportedLanguage);
            }
            x_lang = if v == "none" {
                None
            } else {
                Some(Language::from_x(v))
            };
            key_args.push(KeyArg::Literal(a.to_string()));
            i += 1;
            continue;
        }
        if a.starts_with("-Wp,") && a.contains("-M") {
            return Err(PassReason::UntrackedFile);
        }
        if let Some(list) = a.strip_prefix("-Wa,") {
            // Assembler listings and dependency files are outputs the entry would not hold.
            if list
                .split(',')
                .any(|o| o.starts_with("-a") || o.contains("MD") || o.starts_with("-o"))
            {
                return Err(PassReason::UntrackedFile);
            }
        }
        if PATH_VALUE.contains(&a) {
            let v = next()?;
            if let Some(kind) = search_kind(a) {
                include_dirs.push((kind, v.clone()));
            }
            if a == "-include" && is_pch_include(&v) {
                return Err(PassReason::Pch);
            }
            key_args.push(KeyArg::Literal(a.to_string()));
            key_args.push(KeyArg::Path(v));
            i += 2;
            continue;
        }
        if PLAIN_VALUE.contains(&a) {
            let v = next()?;
            key_args.push(KeyArg::Literal(a.to_string()));
            key_args.push(KeyArg::Literal(v));
            i += 2;
            continue;
        }
        // Joined path options: `-Ifoo`, `-isystemfoo`, `--sysroot=foo`.
        if let Some((flag, value)) = split_joined_path(a) {
            if let Some(kind) = search_kind(flag) {
                include_dirs.push((kind, value.to_string()));
            }
            key_args.push(KeyArg::Literal(flag.to_string()));
            key_args.push(KeyArg::Path(value.to_string()));
            i += 1;
            continue;
        }
        if !KNOWN_PREFIXES.iter().any(|p| a.starts_with(p)) {
            return Err(PassReason::UnknownOption);
        }
        key_args.push(KeyArg::Literal(a.to_string()));
        i += 1;
    }
    if m_only && !md {
        return Err(PassReason::Preprocess);
    }
    if !compile {
        return Err(PassReason::NotCompile);
    }
    let (source, language) = match sources.as_slice() {
        [] => return Err(PassReason::NoSource),
        [(s, Some(l))] => (s.clone(), *l),
        [(_, None)] => return Err(PassReason::UnsupportedLanguage),
        _ => return Err(PassReason::SeveralSources),
    };
    let output = match output {
        Some(o) if o == "-" => return Err(PassReason::Stdio),
        Some(o) => o,
        None => {
            let stem = Path::new(&source)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{stem}.o")
        }
    };
    let user_depfile = match (md, mf) {
        (true, Some(f)) => Some(f),
        // gcc and clang: the object's name with its suffix replaced by `.d`.
        (true, None) => Some(
            Path::new(&output)
                .with_extension("d")
                .to_string_lossy()
                .into_owned(),
        ),
        (false, _) => None,
    };
    if user_depfile.is_some() && !language.preprocessed() {
        return Err(PassReason::UnsupportedLanguage);
    }
    Ok(CcPlan {
        source,
        language,
        output,
        user_depfile,
        user_depfile_without_system: mmd,
        phony_targets: mp,
        key_args,
        include_dirs,
    })
}

fn search_kind(flag: &str) -> Option<SearchKind> {
    match flag {
        "-I" => Some(SearchKind::Normal),
        "-iquote" => Some(SearchKind::Quote),
        "-isystem" => Some(SearchKind::System),
        "-idirafter" => Some(SearchKind::After),
        _ => None,
    }
}

fn split_joined_path(a: &str) -> Option<(&'static str, &str)> {
    for flag in ["-isystem", "-iquote", "-idirafter", "-I", "-L"] {
        if let Some(v) = a.strip_prefix(flag) {
            if !v.is_empty() {
                return Some((flag, v));
            }
        }
    }
    for flag in ["--sysroot=", "-isysroot"] {
        if let Some(v) = a.strip_prefix(flag) {
            if !v.is_empty() {
                return Some((flag, v));
            }
        }
    }
    None
}

/// A forced include with a precompiled header beside it: gcc would read the `.gch` instead.
fn is_pch_include(path: &str) -> bool {
    [".gch", ".pch"]
        .iter()
        .any(|ext| Path::new(&format!("{path}{ext}")).exists())
}

#[cfg(test)]
mod tests;
