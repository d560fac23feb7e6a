//! What one wrapper call did, as one value.
//!
//! `pipeline::serve` (rustc) and `cc::serve::serve` (C, C++, assembler) return a
//! [`CallResult`]; only `lib.rs` turns it into statistics, the journal record, the dashboard's
//! call report and the exit, in one match, so those can never disagree with each other. What
//! the tiers observe on the way (a server failure, an object refused, bytes moved) is not a
//! result of the call but a fact about the cache; it is recorded as an [`Event`] in the
//! [`CallState`] the caller holds, so a panic in the middle of a call loses none of it, and
//! the caller decides what each event counts as and which notice it shows.
//!
//! Reasons are enums with the stable strings that `cachet stats`, the journal and the server
//! already use ([`Problem::as_str`], the reasons of `reason.rs`, the pass-through reasons of
//! `invocation.rs` and `cc/args.rs`); a statistics map is chosen by the reason's type, never
//! by a free string.

use std::cell::{Cell, RefCell};
use std::io;

use cachet_core::Digest;

use crate::reason::{
    DriverReason, NotStoredReason, PerCheckoutReason, RefusedObject, ServerFailure,
};

/// Where a hit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The local cache.
    Local,
    /// The shared server.
    Remote,
}

/// A problem inside cachet that the build went on despite, counted under `errors` in the
/// statistics by [`Problem::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The working directory is unreadable.
    NoWorkingDirectory,
    /// The compiler's identity could not be read.
    CompilerIdentification,
    /// The C compiler named could not be found.
    CCompilerNotFound,
    /// An entry was found but could not be restored; the call compiled instead.
    RestoreFailed,
    /// The compiler could not be started.
    CompilerFailedToStart,
    /// cachet panicked.
    Internal,
    /// The local cache could not be read.
    CacheRead,
    /// The local cache could not be written.
    CacheWrite,
    /// The server was not asked: it failed recently (see `remote.rs`, the breaker).
    ServerSkipped,
    /// A request to the server failed (the kind of the `RemoteError`).
    Server(ServerFailure),
    /// An object failed its checks (an entry for another key, a corrupt or unsigned one, an
    /// entry that does not fit the compile): the reason says which.
    Refused(RefusedObject),
    /// The server's manifest named a file that cannot be an input.
    UnsuitableManifest,
}

impl Problem {
    /// The key counted in the statistics' `errors`.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::NoWorkingDirectory => "no working directory",
            Problem::CompilerIdentification => "compiler identification",
            Problem::CCompilerNotFound => "c compiler not found",
            Problem::RestoreFailed => "restore failed",
            Problem::CompilerFailedToStart => "compiler failed to start",
            Problem::Internal => "internal error",
            Problem::CacheRead => "cache read",
            Problem::CacheWrite => "cache write",
            Problem::ServerSkipped => "server skipped after a recent failure",
            Problem::Server(failure) => failure.as_str(),
            Problem::Refused(refused) => refused.as_str(),
            Problem::UnsuitableManifest => "manifest from server names an unsuitable file",
        }
    }

    /// The reason the journal gives when this problem made the call run the compiler
    /// unchanged.
    pub fn journal_reason(self) -> &'static str {
        match self {
            Problem::CompilerIdentification => "compiler identification failed",
            other => other.as_str(),
        }
    }
}

/// A warning for the user, shown once per build (see `notice.rs`).
#[derive(Debug)]
pub enum Notice {
    /// `message`, shown once per build for `topic`.
    Once {
        /// What the warning is about: one warning per topic and build.
        topic: &'static str,
        /// The text.
        message: String,
    },
    /// The cache directory cannot be written.
    CacheUnwritable(io::Error),
}

/// Something the tiers observed during a call.
#[derive(Debug)]
pub enum Event {
    /// A problem, and the warning it deserves, if any.
    Problem(Problem, Option<Notice>),
    /// A warning with no problem counted (an unreadable signing key).
    Notice(Notice),
    /// Bytes downloaded from the server.
    Downloaded(u64),
    /// An object uploaded to the server, of this many bytes.
    Uploaded(u64),
    /// An upload failed and was queued for a retry.
    UploadQueued,
}

/// What the caller of a wrapper call holds while it runs: whether the compiler's output
/// (real or replayed) has begun, and the tiers' events.
#[derive(Debug, Default)]
pub struct CallState {
    output_started: Cell<bool>,
    events: RefCell<Vec<Event>>,
}

impl CallState {
    /// Records that output has begun: from now on a failure inside cachet must not run the
    /// compiler a second time.
    pub fn start_output(&self) {
        self.output_started.set(true);
    }

    /// True once output has begun.
    pub fn output_started(&self) -> bool {
        self.output_started.get()
    }

    /// Records an event.
    pub fn record(&self, event: Event) {
        self.events.borrow_mut().push(event);
    }

    /// Records a problem with no warning.
    pub fn problem(&self, problem: Problem) {
        self.record(Event::Problem(problem, None));
    }

    /// The events so far, taken.
    pub fn take_events(&self) -> Vec<Event> {
        self.events.take()
    }
}

/// What a cacheable call found out before it compiled.
#[derive(Clone, Copy, Debug)]
pub struct Lookup {
    /// The pre-key.
    pub pre_key: Digest,
    /// False under `CACHET_RECACHE`: nothing was looked up, so this is not a miss.
    pub looked_up: bool,
    /// The server answered a lookup (with or without the object).
    pub remote_answered: bool,
}

/// A hit, restored and replayed.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    /// The pre-key.
    pub pre_key: Digest,
    /// Where the entry came from.
    pub source: Source,
    /// Bytes of the entry.
    pub bytes: u64,
    /// Milliseconds to find and restore it.
    pub restore_ms: u64,
    /// The compile time recorded when the entry was stored.
    pub stored_compile_ms: u64,
}

/// Why an entry is stored under a key holding this checkout's location, so that it hits only
/// here.
#[derive(Clone, Debug)]
pub struct PerCheckout {
    /// The statistics key (`stored_per_checkout`).
    pub label: PerCheckoutReason,
    /// The reason shown by the journal and `cachet explain`.
    pub reason: String,
}

/// An entry written.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its length in bytes.
    pub bytes: u64,
    /// Set when it hits only in this checkout.
    pub per_checkout: Option<PerCheckout>,
}

/// Why a successful compile's result was not stored.
#[derive(Debug)]
pub enum NotStored {
    /// Storing would be unsound or pointless (counted under `not_stored` by this reason).
    Refused(NotStoredReason),
    /// The local cache could not be written (counted under `errors`, warned about).
    CacheWrite(io::Error),
}

impl NotStored {
    /// The reason the journal gives.
    pub fn journal_reason(&self) -> &'static str {
        match self {
            NotStored::Refused(reason) => reason.as_str(),
            NotStored::CacheWrite(_) => "cache write failed",
        }
    }
}

impl From<io::Error> for NotStored {
    fn from(e: io::Error) -> NotStored {
        NotStored::CacheWrite(e)
    }
}

/// A compile that succeeded after a lookup found nothing (or was skipped).
#[derive(Debug)]
pub struct Miss {
    /// What the lookup found out.
    pub lookup: Lookup,
    /// Milliseconds in the compiler.
    pub compile_ms: u64,
    /// The entry written, or why none was.
    pub stored: Result<Stored, NotStored>,
    /// What differs from the nearest earlier entry (`None`: not compared, or none).
    pub changes: Option<Vec<crate::explain::Change>>,
}

/// Why a call ran the compiler unchanged.
#[derive(Clone, Debug)]
pub enum Skip {
    /// A rustc invocation cachet does not cache (counted under `pass_through`).
    Rustc(crate::invocation::PassReason),
    /// A C, C++ or assembler invocation cachet does not cache (`pass_through`).
    Cc(crate::cc::args::PassReason),
    /// A workspace wrapper cachet does not cache (`pass_through`).
    Driver(DriverReason),
    /// The key could not be computed (counted under `not_stored`).
    NotCacheable(NotStoredReason),
    /// A problem inside cachet (counted under `errors`).
    Problem(Problem),
}

/// What one wrapper call did.
#[derive(Debug)]
pub enum CallResult {
    /// A hit was restored; exit 0.
    Hit(Hit),
    /// The compiler ran and succeeded; exit 0.
    Miss(Miss),
    /// Nothing ran: run the compiler unchanged.
    PassThrough(Skip),
    /// The compiler ran and failed with this exit code (nothing stored).
    CompileFailed {
        /// What the lookup found out.
        lookup: Lookup,
        /// Milliseconds in the compiler.
        compile_ms: u64,
        /// The compiler's exit code.
        code: u8,
    },
    /// The compiler could not be started after the lookup; exit 1.
    NotStarted {
        /// What the lookup found out.
        lookup: Lookup,
    },
    /// cachet failed (panicked). Before any output, the compiler runs unchanged; after, the
    /// call exits with 101 (running it again would print its output twice).
    Internal {
        /// Whether output had begun.
        after_output: bool,
    },
}
