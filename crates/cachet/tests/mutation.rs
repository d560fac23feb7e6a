//! What the two mutation suites share: `soundness.rs` (the `soundness` fixture, built with
//! `CARGO_INCREMENTAL=0`) and `incremental.rs` (the `members` fixture in the default dev
//! profile) change one input at a time and compare each build with a plain cargo build of the
//! same state. The edits and the comparison are written once, here.

use std::fs;
use std::path::Path;

/// One change to a fixture, made for one build, and what must show afterwards. `C` is what a
/// suite checks besides the program's output (which crates compile, what `explain` says).
pub struct Mutation<C: 'static> {
    pub name: &'static str,
    /// Edits files in the project root.
    pub edit: fn(&Path),
    /// Extra cargo arguments for this build only.
    pub args: &'static [&'static str],
    /// Extra environment for this build only.
    pub env: &'static [(&'static str, &'static str)],
    /// `cargo clean` (with these arguments) first, because cargo itself would not notice.
    pub clean: Option<&'static [&'static str]>,
    /// A line the program must print afterwards.
    pub expect: &'static str,
    pub check: C,
}

impl<C> Mutation<C> {
    /// The parts most mutations leave as they are (each one names what it changes), with
    /// `check`.
    pub const fn unchanged(check: C) -> Mutation<C> {
        Mutation {
            name: "",
            edit: no_edit,
            args: &[],
            env: &[],
            clean: None,
            expect: "",
            check,
        }
    }
}

/// Replaces `from` with `to` in `root/file`, which must contain it.
pub fn replace(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    fs::write(&path, text.replace(from, to)).unwrap();
}

/// Replaces `from` with `to` (of the same length) in `root/file` and puts the old mtime back:
/// same size, same mtime, other contents. cargo trusts mtimes; cachet must not.
pub fn replace_keeping_size_and_mtime(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let before = fs::metadata(&path).unwrap();
    let mtime = before.modified().unwrap();
    replace(root, file, from, to);
    let f = fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let after = fs::metadata(&path).unwrap();
    assert_eq!(
        (before.len(), mtime),
        (after.len(), after.modified().unwrap())
    );
}

/// The edit of a mutation that changes only arguments or the environment.
pub fn no_edit(_: &Path) {}

/// The profile directory a build with cargo arguments `args` writes the program to.
pub fn profile_of(args: &[&str]) -> &'static str {
    if args.contains(&"--release") {
        "release"
    } else {
        "debug"
    }
}

/// After the mutation `name`, the program built through cachet printed `cached` and the one
/// built without it `plain`: they must be the same and show the line `expect`.
pub fn assert_like_plain(name: &str, cached: &str, plain: &str, expect: &str) {
    assert_eq!(
        cached, plain,
        "changing {name}: output differs from a plain build"
    );
    assert!(
        cached.lines().any(|l| l == expect),
        "changing {name}: expected {expect:?} in\n{cached}"
    );
}
