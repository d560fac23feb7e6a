//! The reasons a wrapper call gives, as enums with one stable string each.
//!
//! `cachet stats` counts results not stored, entries stored for one checkout and objects
//! refused by these strings; the journal, `cachet explain` and the dashboard's call reports
//! show them. Users and scripts read them, so each is written once, here, and never changes
//! with the code that produces it. A statistics map is reached only through the type of its
//! reasons (see `stats.rs`), so a reason cannot be counted in the wrong map.
//!
//! This module imports nothing from the crate: every module that produces a reason can use it
//! without an import cycle.

/// Defines an enum whose variants each have one stable string (`as_str`, `Display`); the
/// string is also the variant's documentation.
macro_rules! reasons {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $text, "`")] $variant,)*
        }

        impl $name {
            /// The stable string: the statistics key, and what the journal shows.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

reasons! {
    /// Why a compile's result is not stored, or why a call's key could not be computed (both
    /// counted under `not_stored`).
    NotStoredReason {
        DepInfoUnreadable => "dep-info unreadable",
        DepfileUnreadable => "dependency file unreadable",
        InputVanished => "input vanished",
        InputNotAFile => "input is not a file",
        InputModified => "input modified during compile",
        InputUnreadable => "input unreadable",
        InputOutside => "input outside the build's directories",
        InputTooLarge => "input larger than the lookup limit",
        OutputMissing => "expected output missing",
        OutputUnreadable => "output unreadable",
        OutputModifiedWhileStored => "output modified while stored",
        EntryNotEncodable => "entry could not be encoded",
        CrateBeingEdited => "crate being edited (missed repeatedly)",
        PrecompiledHeader => "precompiled header",
        DateOrTime => "source uses __DATE__ or __TIME__",
        Incbin => "source uses .incbin",
        AsmInclude => "assembler .include",
        ComputedHasInclude => "__has_include with a computed argument",
        UnreadableKeyInput => "unreadable input",
        BadKeyFilesPattern => "CACHET_KEY_FILES pattern not valid",
        ThinArchive => "thin archive in a native search directory",
        NativeLibNotFound => "native library not found",
        LinkerNotFound => "linker not found",
        LinkCommandUnknown => "link command unknown",
        LinkCommandUnreadable => "link command unreadable",
        LinkCommandTruncated => "link command truncated",
        LinkOptionNotUnderstood => "link option not understood",
        LinkerOptionNamesFiles => "linker option names files cachet does not follow",
        ResponseFilesTooDeep => "response files nested too deeply",
        ResponseFileUnreadable => "response file unreadable",
        LinkerDiffers => "linker differs from the expected one",
        LinkerUnreadable => "linker unreadable",
        LinkerNotADriver => "linker is not a C compiler driver",
        LinkerProgramNotFound => "linker program not found",
        LinkerScriptNotFound => "linker script not found",
        LinkInputMissing => "link input missing",
        LinkInputUnreadable => "link input unreadable",
        LinkInputVanished => "link input vanished",
        LinkInputModified => "link input modified during compile",
    }
}

reasons! {
    /// Why an entry is stored under a key holding this checkout's location, so that it hits
    /// only here (counted under `stored_per_checkout`).
    PerCheckoutReason {
        PathValuedEnv => "path-valued env! keyed literally",
        ProcMacro => "proc-macro may read the checkout path",
        LinkOutput => "checkout path in the link output",
    }
}

reasons! {
    /// Why an object from the local cache or the server failed its checks (counted under
    /// `errors`).
    RefusedObject {
        LocalWrongKey => "entry under another key removed",
        RemoteWrongKey => "entry from server for another key",
        LocalCorrupt => "corrupt entry removed",
        RemoteCorrupt => "corrupt entry from server",
        UnexpectedFile => "entry holds an unexpected file",
        LacksOutput => "entry lacks an output",
        UnsignedEntry => "unsigned entry from server",
        UntrustedEntry => "entry from server signed by an untrusted key",
        BadEntrySignature => "entry from server with a bad signature",
        UnsignedManifest => "unsigned manifest from server",
        UntrustedManifest => "manifest from server signed by an untrusted key",
        BadManifestSignature => "manifest from server with a bad signature",
    }
}

reasons! {
    /// How a request to the server failed (counted under `errors`).
    ServerFailure {
        Unreachable => "server unreachable",
        Unauthorized => "server rejected the token",
        Forbidden => "server refused (no permission)",
        Status => "server error",
        TooLarge => "server sent an oversized object",
        Config => "server configuration",
    }
}

reasons! {
    /// Why a workspace wrapper runs uncached (counted under `pass_through`).
    DriverReason {
        NotClippy => "workspace wrapper not clippy-driver",
        Unidentified => "workspace wrapper identification failed",
    }
}

reasons! {
    /// Why a variable read by `env!` could not be proven absent from a crate's outputs (see
    /// `env_proof.rs`); shown in the per-checkout reason.
    EnvUnproven {
        ComputedName => "env! with a computed name",
        OutsideInclude => "env! value used outside include!",
        BuiltinShadowed => "a builtin macro is shadowed",
        ForeignMacros => "macros of other crates may run",
    }
}

reasons! {
    /// Why a proc-macro is not proven not to read the checkout's path (see `macro_proof.rs`);
    /// shown in the per-checkout reason.
    MacroUnproven {
        Unreadable => "a proc-macro could not be read",
        NamesPathVariable => "a proc-macro names a cargo path variable",
        Recorded => "a proc-macro is not proven (recorded)",
    }
}

/// A reason counted under `pass_through` (a call run unchanged): the rustc and C
/// invocations cachet does not cache, and [`DriverReason`]. Only these types implement it, so
/// no other reason can be counted there.
pub trait PassThroughReason {
    /// The stable string: the statistics key, and what the journal shows.
    fn label(&self) -> std::borrow::Cow<'static, str>;
}

impl PassThroughReason for DriverReason {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.as_str().into()
    }
}
