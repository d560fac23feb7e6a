//! Why a rustc invocation is not served from the cache, with the stable label `cachet stats`
//! counts it by.

use std::fmt;

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

impl crate::reason::PassThroughReason for PassReason {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        PassReason::label(self).into()
    }
}
