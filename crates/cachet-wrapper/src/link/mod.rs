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
//!
//! The parts, each depending only on those listed before it: `command.rs` parses the command
//! rustc printed; `args.rs` classifies its words (files, search directories, libraries,
//! embedded paths); `driver.rs` finds the linker and asks the C driver about itself;
//! `search.rs` resolves libraries and linker scripts along the search path; `inputs.rs` puts
//! them together in [`link_inputs`]. This file only declares and re-exports them.

mod args;
mod command;
mod driver;
mod inputs;
mod search;
#[cfg(test)]
mod tests;

pub use crate::absence::ABSENT;
pub use args::{classify, response_words, LibMode, LinkWords, Refusal};
pub use command::{parse_command, print_arg, LinkCommand};
pub use driver::{resolve_linker, tools_digest, LINK_ENV};
pub use inputs::{link_inputs, LinkInputs};
pub use search::LinkContext;
