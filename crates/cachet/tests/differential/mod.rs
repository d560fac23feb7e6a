//! The differential soundness harness: a tiny project (or a mutation of one) built plainly and
//! through cachet, compared by what the program does.
//!
//! A false hit restores an artifact a plain build would not have produced. The only judge a
//! user has is the program, so every case here builds the same state twice, once with
//! `cargo build` into `target-plain/` and once through cachet into `target/` (sharing one
//! cache for the whole case), runs both programs and requires the same exit status and output.
//! Each case goes through three places:
//!
//! 1. the first checkout, `one/proj`, as written;
//! 2. the same checkout after each [`Step`] (one input changed at a time, so an input cachet
//!    does not follow cannot hide behind another one that it does);
//! 3. a second checkout at another path and depth, `two/levels/deeper/proj`, after the first
//!    one is deleted (a restored artifact that still points into the first checkout fails
//!    there), and, for cases where rustc is reproducible, the restored artifacts compared byte
//!    for byte with what cachet compiles fresh (`CACHET_RECACHE=1`) in that checkout.
//!
//! Environment values may say `{ROOT}` for the checkout's root and `{PATH}` for the test's
//! `PATH`. Outputs are compared
//! with `target-plain` written as `target`, the only difference the two builds are allowed.
//! One file per class of input; each case names the fix it protects.

mod bundled;
mod driver_path;
mod env_paths;
mod key_lever;
mod link_paths;
mod link_words;
mod search_dirs;

use std::path::{Path, PathBuf};
use std::process::Command;

use cachet_wrapper::journal::Record;

use crate::util::Project;

/// One change to the first checkout, followed by both builds and the comparison.
pub struct Step {
    /// What changes, for messages.
    pub name: &'static str,
    /// Edits the checkout (its root is given).
    pub edit: fn(&Path),
}

/// A tiny project and the changes it goes through.
pub struct Case {
    /// For messages.
    pub name: &'static str,
    /// The project's files (`path`, contents); `{ROOT}` is not expanded in them.
    pub files: &'static [(&'static str, &'static str)],
    /// Run in a new checkout before the first build (prebuilt inputs, helper programs).
    pub setup: Option<fn(&Path)>,
    /// The program built in `target/debug/` and run.
    pub bin: &'static str,
    /// Environment of every build (`{ROOT}` is the checkout's root).
    pub env: &'static [(&'static str, &'static str)],
    /// Changes made in the first checkout, one at a time.
    pub steps: &'static [Step],
    /// rustc and the linker produce the same bytes for the same inputs here: compare the
    /// second checkout's restored program with a fresh compile.
    pub reproducible: bool,
}

/// What one checkout of a case has.
struct Checkout<'a> {
    case: &'a Case,
    root: PathBuf,
    cache: PathBuf,
}

/// A program's observable behaviour.
#[derive(Debug, PartialEq, Eq)]
struct Behaviour {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Checkout<'_> {
    fn env(&self) -> Vec<(String, String)> {
        let root = self.root.to_string_lossy();
        let path = std::env::var("PATH").unwrap_or_default();
        self.case
            .env
            .iter()
            .map(|(k, v)| {
                let v = v.replace("{ROOT}", &root).replace("{PATH}", &path);
                (k.to_string(), v)
            })
            .collect()
    }

    fn project(&self) -> Project {
        Project {
            tmp: tempfile::tempdir().unwrap(),
            root: self.root.clone(),
            cache: self.cache.clone(),
        }
    }

    /// `cargo build` through cachet; returns the journal records of the build.
    fn cachet_build(&self, extra: &[(&str, &str)]) -> Vec<Record> {
        let p = self.project();
        let before = p.journal().len();
        let env = self.env();
        let mut all: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(extra);
        p.cachet_cargo(&["build", "--offline"], &all);
        p.journal().split_off(before)
    }

    fn plain_build(&self) {
        let env = self.env();
        let all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.project().plain_cargo(&["build", "--offline"], &all);
    }

    fn run(&self, target: &str) -> Behaviour {
        let exe = self.root.join(target).join("debug").join(self.case.bin);
        // `cargo test` puts the toolchain's libraries in LD_LIBRARY_PATH; a program must find
        // its libraries by itself (its rpath), as it would for a user.
        let out = Command::new(&exe)
            .current_dir(&self.root)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let text = |b: &[u8]| String::from_utf8_lossy(b).replace("target-plain", "target");
        Behaviour {
            status: out.status.code(),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    /// Builds both ways; a difference in behaviour is added to `failures`.
    fn compare(&self, when: &str, failures: &mut Vec<String>) -> Vec<Record> {
        let records = self.cachet_build(&[]);
        self.plain_build();
        let (cached, plain) = (self.run("target"), self.run("target-plain"));
        if cached != plain {
            failures.push(format!(
                "{when}: through cachet {cached:?}, plain {plain:?}"
            ));
        }
        records
    }
}

/// Writes a case's files under `root`.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Copies a checkout without its build directories.
fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("target") {
            continue;
        }
        let target = to.join(&name);
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_sources(&entry.path(), &target);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs a case through all three places; returns the second checkout's journal records.
pub fn check(case: &Case) -> Vec<Record> {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let first = Checkout {
        case,
        root: tmp.path().join("one/proj"),
        cache: cache.clone(),
    };
    write_files(&first.root, case.files);
    if let Some(setup) = case.setup {
        setup(&first.root);
    }
    // Every step is checked even after one fails, so that each form's result is known.
    let mut failures = Vec::new();
    first.compare("first build", &mut failures);
    for step in case.steps {
        (step.edit)(&first.root);
        first.compare(&format!("after {}", step.name), &mut failures);
    }

    let second = Checkout {
        case,
        root: tmp.path().join("two/levels/deeper/proj"),
        cache,
    };
    copy_sources(&first.root, &second.root);
    if let Some(setup) = case.setup {
        setup(&second.root);
    }
    std::fs::remove_dir_all(tmp.path().join("one")).unwrap();
    let records = second.compare(
        "in a second checkout at another path and depth",
        &mut failures,
    );
    assert!(
        failures.is_empty(),
        "case {:?}: the program built through cachet behaves differently from a plain \
         build's:\n{}",
        case.name,
        failures.join("\n")
    );

    if case.reproducible {
        let fresh = second.root.join("target-fresh");
        second.cachet_build(&[
            ("CACHET_RECACHE", "1"),
            ("CARGO_TARGET_DIR", fresh.to_str().unwrap()),
        ]);
        let restored = std::fs::read(second.root.join("target/debug").join(case.bin)).unwrap();
        let compiled = std::fs::read(fresh.join("debug").join(case.bin)).unwrap();
        assert!(
            restored == compiled,
            "case {:?}: the program restored in the second checkout differs from a fresh \
             compile there",
            case.name
        );
    }
    records
}

/// Replaces `from` by `to` in a file of the checkout.
pub fn replace(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// Makes cargo rebuild a crate whose input it does not track: the file's mtime moves on, its
/// contents stay (so cachet's key does not change because of it).
pub fn touch(root: &Path, file: &str) {
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let f = std::fs::File::options()
        .write(true)
        .open(root.join(file))
        .unwrap();
    f.set_modified(later).unwrap();
}
