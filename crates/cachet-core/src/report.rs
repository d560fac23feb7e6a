//! Call reports: what each wrapper call did, sent by clients to the server's dashboard.
//!
//! A shared cache's questions (is it paying off, what misses, why) can only be answered where
//! every client's calls meet: the server. Each wrapper call appends one [`CallReport`] to a
//! local spool; batches of them travel to `POST /_reports/<namespace>` as JSON lines. The
//! record is deliberately small and free of absolute paths and file contents: a crate name, what
//! happened, why, how long it took, and for a miss the *class* of input that differed from the
//! nearest earlier entry (`cachet explain`'s answer, reduced to a [`MissCause`]).
//!
//! The wrapper and the server both link this module, so this is the one definition of the
//! format. [`REPORT_VERSION`] is part of every record; a server ignores records of a version it
//! does not know instead of misreading them.

use serde::{Deserialize, Serialize};

/// Version of the [`CallReport`] format.
pub const REPORT_VERSION: u32 = 1;
/// Largest request body a client sends (and a server accepts) to the reports endpoint.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Longest client name, crate name, version or reason kept; longer ones are cut.
pub const MAX_FIELD_LEN: usize = 128;
/// First segment of the reports endpoint: `POST /_reports/<namespace>`, body JSON lines.
pub const REPORTS_SEGMENT: &str = "_reports";
/// Request header of a batch: how many records it holds, so a server can refuse it (`429`,
/// `Retry-After`) from its headers, before reading the body.
pub const RECORDS_HEADER: &str = "x-cachet-records";
/// Request header of a batch: the client's name (`CACHET_CLIENT_NAME`); with the token, the
/// identity a server keeps a client's report rate by.
pub const CLIENT_HEADER: &str = "x-cachet-client";
/// Prefix of the dashboard's versioned JSON API.
pub const API_PREFIX: &str = "/_api/v1";

/// The reports endpoint of a namespace (a path to append to the server's base URL).
pub fn reports_path(namespace: &str) -> String {
    format!("/{REPORTS_SEGMENT}/{namespace}")
}

/// What one wrapper call did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallReport {
    /// [`REPORT_VERSION`] of the record.
    pub v: u32,
    /// Unix time of the call's end, in milliseconds.
    pub time_ms: u64,
    /// The client's name (`CACHET_CLIENT_NAME`, default the host name).
    pub client: String,
    /// An opaque id grouping the calls of one build (the same for every call cargo made).
    pub build: String,
    /// The crate (or, for C/C++/assembly, the source file's name without directories).
    pub krate: String,
    /// The crate's version (`CARGO_PKG_VERSION`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What was compiled.
    pub kind: CallKind,
    /// What happened.
    pub outcome: Outcome,
    /// Why, for pass-throughs and results not stored: a stable reason string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a miss: the class of input that differed from the nearest earlier entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<MissCause>,
    /// Milliseconds the compiler ran in this call (0 for a hit).
    pub compile_ms: u64,
    /// For a hit: milliseconds to serve it (lookup, download, restore, replay).
    pub restore_ms: u64,
    /// For a hit: the compile time recorded when the entry was stored, in milliseconds.
    /// Time saved by the hit is `stored_compile_ms - restore_ms` (see `docs/dashboard.md`).
    pub stored_compile_ms: u64,
    /// Bytes of outputs written (restored or compiled).
    pub bytes: u64,
}

/// What a call compiled.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum CallKind {
    /// A Rust library (lib, rlib, dylib, staticlib, cdylib).
    Lib,
    /// A Rust binary.
    Bin,
    /// A procedural macro.
    ProcMacro,
    /// A build script (`build.rs`).
    BuildScript,
    /// A test harness (`--test`).
    Test,
    /// A C translation unit.
    C,
    /// A C++ translation unit.
    Cxx,
    /// An assembly file.
    Asm,
    /// Anything else (a probe, `-vV`, an unknown shape).
    #[serde(other)]
    Other,
}

/// What happened to a call.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Served from the client's local cache.
    HitLocal,
    /// Served from the server.
    HitRemote,
    /// Compiled and stored.
    Miss,
    /// Compiled, not stored (see the reason).
    MissNotStored,
    /// The compiler failed.
    CompileFailed,
    /// Run unchanged, not cacheable (see the reason).
    #[serde(other)]
    PassThrough,
}

impl Outcome {
    /// True for a hit of either tier.
    pub fn is_hit(self) -> bool {
        matches!(self, Outcome::HitLocal | Outcome::HitRemote)
    }

    /// True for a compile that a cache could have served (a miss, stored or not).
    pub fn is_miss(self) -> bool {
        matches!(self, Outcome::Miss | Outcome::MissNotStored)
    }
}

/// The class of input that made a call miss.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum MissCause {
    /// A source file (or any file the compiler read) changed.
    SourceFile,
    /// A compiler argument was added, removed or changed (profile, features, flags).
    Argument,
    /// An environment variable the compile reads changed.
    Environment,
    /// A dependency (an `--extern` crate) changed.
    Dependency,
    /// A native library linked in changed.
    NativeLibrary,
    /// The compiler changed.
    Compiler,
    /// The standard library or target spec changed.
    Target,
    /// The working directory or an input path changed (another checkout).
    Path,
    /// cachet's key format changed (a cachet upgrade).
    KeySchema,
    /// No earlier entry of this crate to compare with: its first build here.
    FirstBuild,
    /// The nearest earlier entry had the same inputs: it was evicted, never uploaded, or
    /// stored by another client that this one cannot read.
    SameInputs,
    /// A difference of another kind.
    #[serde(other)]
    Other,
}

impl MissCause {
    /// Every cause, in display order.
    pub const ALL: [MissCause; 12] = [
        MissCause::SourceFile,
        MissCause::Argument,
        MissCause::Environment,
        MissCause::Dependency,
        MissCause::NativeLibrary,
        MissCause::Compiler,
        MissCause::Target,
        MissCause::Path,
        MissCause::KeySchema,
        MissCause::FirstBuild,
        MissCause::SameInputs,
        MissCause::Other,
    ];

    /// The stable string form (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            MissCause::SourceFile => "source-file",
            MissCause::Argument => "argument",
            MissCause::Environment => "environment",
            MissCause::Dependency => "dependency",
            MissCause::NativeLibrary => "native-library",
            MissCause::Compiler => "compiler",
            MissCause::Target => "target",
            MissCause::Path => "path",
            MissCause::KeySchema => "key-schema",
            MissCause::FirstBuild => "first-build",
            MissCause::SameInputs => "same-inputs",
            MissCause::Other => "other",
        }
    }

    /// A sentence for people: "a source file changed".
    pub fn describe(self) -> &'static str {
        match self {
            MissCause::SourceFile => "a source file changed",
            MissCause::Argument => "a compiler argument changed",
            MissCause::Environment => "an environment variable changed",
            MissCause::Dependency => "a dependency changed",
            MissCause::NativeLibrary => "a native library changed",
            MissCause::Compiler => "the compiler changed",
            MissCause::Target => "the standard library or target changed",
            MissCause::Path => "the checkout path changed",
            MissCause::KeySchema => "cachet's key format changed",
            MissCause::FirstBuild => "first build of this crate",
            MissCause::SameInputs => "same inputs as a stored entry (evicted or not uploaded)",
            MissCause::Other => "another input changed",
        }
    }

    /// The cause for a `cachet explain` change kind (`source file`, `argument`, ...).
    pub fn from_change_kind(kind: &str) -> MissCause {
        match kind {
            "source file" | "file" => MissCause::SourceFile,
            "argument" => MissCause::Argument,
            "environment" | "env! variable" => MissCause::Environment,
            "extern crate" | "link input" => MissCause::Dependency,
            "native library" => MissCause::NativeLibrary,
            "compiler" => MissCause::Compiler,
            "standard library" | "target spec" => MissCause::Target,
            "working directory" | "input path" => MissCause::Path,
            "key schema" => MissCause::KeySchema,
            _ => MissCause::Other,
        }
    }
}

/// Cuts a string to at most [`MAX_FIELD_LEN`] bytes, at a character boundary.
pub fn clamp_field(s: &str) -> String {
    if s.len() <= MAX_FIELD_LEN {
        return s.to_string();
    }
    let mut end = MAX_FIELD_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_as_one_json_line() {
        let r = CallReport {
            v: REPORT_VERSION,
            time_ms: 1,
            client: "ci-1".into(),
            build: "b".into(),
            krate: "serde".into(),
            version: Some("1.0.0".into()),
            kind: CallKind::Lib,
            outcome: Outcome::Miss,
            reason: None,
            cause: Some(MissCause::SourceFile),
            compile_ms: 1200,
            restore_ms: 0,
            stored_compile_ms: 0,
            bytes: 4096,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"cause\":\"source-file\""));
        assert_eq!(serde_json::from_str::<CallReport>(&line).unwrap(), r);
    }

    #[test]
    fn unknown_enum_values_from_newer_clients_are_read_as_other() {
        let kind: CallKind = serde_json::from_str("\"fortran\"").unwrap();
        assert_eq!(kind, CallKind::Other);
        let cause: MissCause = serde_json::from_str("\"cosmic-ray\"").unwrap();
        assert_eq!(cause, MissCause::Other);
    }

    #[test]
    fn causes_have_distinct_stable_names() {
        let mut names: Vec<_> = MissCause::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MissCause::ALL.len());
        for c in MissCause::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        let s = "é".repeat(100);
        let cut = clamp_field(&s);
        assert!(cut.len() <= MAX_FIELD_LEN);
        assert!(s.starts_with(&cut));
    }
}
