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
//! `PATH`; a step changes the environment by writing `case.env` in the checkout (`KEY=VALUE`
//! lines, copied to the second checkout; `UMASK=077` sets the builds' umask) and adds cargo
//! arguments by writing `case.args`. Besides the program, a case may compare what cargo prints
//! (diagnostics, human or JSON, each message whole, in sorted order), the permission bits of
//! the outputs and the dep-info files; a case whose build fails compares what cargo printed.
//! Everything is compared with `target-plain` written as `target`, the only difference the two
//! builds are allowed. A reproducible case compares every artifact the second checkout
//! restored (not only the program) with a fresh compile; a case that is not says why (nothing
//! is restored in its second checkout). One file per class of input; each case names the fix
//! it protects, and fails when that fix is taken out.

mod bundled;
mod clippy;
mod cross;
mod dep_files;
mod driver_path;
mod env_paths;
mod key_lever;
mod link_paths;
mod link_words;
mod macro_env;
mod messages;
mod search_dirs;
mod umask;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cachet_wrapper::journal::Record;

use crate::util::Project;

/// One change to the first checkout, followed by both builds and the comparison.
pub struct Step {
    /// What changes, for messages.
    pub name: &'static str,
    /// How the checkout changes.
    pub edit: Edit,
}

/// How a [`Step`] changes the checkout.
pub enum Edit {
    /// Replaces the first string by the second in a file of the checkout (see [`replace`]).
    Replace(&'static str, &'static str, &'static str),
    /// Anything else, given the checkout's root.
    Run(fn(&Path)),
}

impl Step {
    /// A step that replaces `from` by `to` in `file` (the usual one-input change).
    pub const fn replace(
        name: &'static str,
        file: &'static str,
        from: &'static str,
        to: &'static str,
    ) -> Step {
        Step {
            name,
            edit: Edit::Replace(file, from, to),
        }
    }

    /// A step that runs `edit` on the checkout's root.
    pub const fn run(name: &'static str, edit: fn(&Path)) -> Step {
        Step {
            name,
            edit: Edit::Run(edit),
        }
    }

    fn apply(&self, root: &Path) {
        match self.edit {
            Edit::Replace(file, from, to) => replace(root, file, from, to),
            Edit::Run(edit) => edit(root),
        }
    }
}

/// A case's files made at run time (texts with formatted paths or names), as the static
/// list [`Case`] takes: leaked, a few kilobytes for the test's duration.
pub fn leak_files(files: Vec<(String, String)>) -> &'static [(&'static str, &'static str)] {
    Box::leak(
        files
            .into_iter()
            .map(|(p, t)| (&*p.leak(), &*t.leak()))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
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
    /// rustc and the linker produce the same bytes for the same inputs here: compare what the
    /// second checkout restored with a fresh compile.
    pub reproducible: bool,
    /// cargo's command and arguments (`build`, `clippy`, `build --target TRIPLE`, ...).
    pub cargo: &'static [&'static str],
    /// Where the program is, under the target directory (`debug`, `TRIPLE/debug`).
    pub out: &'static str,
    /// Compare what cargo prints: diagnostics on stderr, and JSON compiler messages.
    pub messages: bool,
    /// Compare the permission bits of the program, of the files in `deps/` and of the build
    /// scripts' programs.
    pub modes: bool,
    /// Compare the dep-info (`.d`) files cargo and rustc leave.
    pub dep_info: bool,
    /// The target directories are beside the checkout (`../target`, `../target-plain`), outside
    /// the workspace, rather than in it: paths under them are then under no other anchor.
    pub targets_beside: bool,
    /// cargo fails (a crate has compile errors): both builds must fail. Only what cargo
    /// printed is compared then (set `bin` to `""`).
    pub fails: bool,
    /// Where the second checkout is, under the case's scratch directory.
    pub second: &'static str,
}

/// The defaults: `cargo build` of a program in `debug/`, compared by what it does.
pub const BUILD: Case = Case {
    name: "",
    files: &[],
    setup: None,
    bin: "app",
    env: &[],
    steps: &[],
    reproducible: false,
    cargo: &["build"],
    out: "debug",
    messages: false,
    modes: false,
    dep_info: false,
    targets_beside: false,
    fails: false,
    second: "two/levels/deeper/proj",
};

/// What one checkout of a case has.
struct Checkout<'a> {
    case: &'a Case,
    root: PathBuf,
    cache: PathBuf,
}

/// What a build shows a user: the program's behaviour, and what the case also compares.
#[derive(Debug, PartialEq, Eq)]
struct Behaviour {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    messages: Vec<String>,
    modes: Vec<(String, u32)>,
    dep_info: Vec<(String, String)>,
}

/// What cargo printed, with `target-plain` written as `target`: the diagnostics on its stderr
/// (not progress lines), one entry per diagnostic (its headline and every line up to the next
/// one), and the JSON compiler messages on its stdout, one entry each. The entries are sorted:
/// the order in which cargo runs crates that are ready at the same time depends on timing,
/// even between two plain builds, and only what each message says is compared.
fn diagnostics(out: &Output) -> Vec<String> {
    const PROGRESS: &[&str] = &[
        "Compiling",
        "Checking",
        "Finished",
        "Fresh",
        "Running",
        "Blocking",
        "Locking",
        "Building",
        "Dirty",
        "Adding",
        "Updating",
    ];
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace("target-plain", "target");
    let mut entries: Vec<String> = Vec::new();
    for line in text(&out.stderr)
        .lines()
        .filter(|l| !PROGRESS.iter().any(|p| l.trim_start().starts_with(p)))
    {
        match entries.last_mut() {
            Some(entry) if !line.starts_with("warning") && !line.starts_with("error") => {
                entry.push('\n');
                entry.push_str(line);
            }
            _ => entries.push(line.to_string()),
        }
    }
    for line in text(&out.stdout).lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if v["reason"] == "compiler-message" {
                entries.push(v["message"].to_string());
            }
        }
    }
    entries.sort();
    entries
}

/// Files under `dir` (recursively), as paths relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = rel.join(e.file_name());
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(name),
                Ok(t) if t.is_file() => out.push(name),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The build-script programs under `out_dir/build`, as paths relative to `out_dir`.
fn build_scripts(out_dir: &Path) -> Vec<PathBuf> {
    files_under(&out_dir.join("build"))
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap().to_string_lossy();
            name.starts_with("build_script_build") || name.starts_with("build-script-build")
        })
        .filter(|f| f.extension().is_none_or(|e| e != "d"))
        .map(|f| Path::new("build").join(f))
        .collect()
}

/// The files of `out_dir/deps`, as paths relative to `out_dir`.
fn deps_files(out_dir: &Path) -> Vec<PathBuf> {
    files_under(&out_dir.join("deps"))
        .into_iter()
        .map(|f| Path::new("deps").join(f))
        .collect()
}

impl Checkout<'_> {
    fn env(&self) -> Vec<(String, String)> {
        let root = self.root.to_string_lossy();
        let path = std::env::var("PATH").unwrap_or_default();
        let from_file = std::fs::read_to_string(self.root.join("case.env")).unwrap_or_default();
        let steps = from_file
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()));
        self.case
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(steps)
            .map(|(k, v)| {
                let v = v.replace("{ROOT}", &root).replace("{PATH}", &path);
                (k, v)
            })
            .collect()
    }

    /// Runs cargo with the case's arguments and environment (and umask), plainly or through
    /// cachet.
    fn cargo(&self, cachet: bool, extra: &[(&str, &str)]) -> Output {
        let p = self.project();
        let mut args: Vec<&str> = self.case.cargo.to_vec();
        args.push("--offline");
        // A step may add arguments (`-- -W clippy::pedantic`) in `case.args`.
        let extra_args = std::fs::read_to_string(self.root.join("case.args")).unwrap_or_default();
        args.extend(extra_args.split_whitespace());
        let cmd = p.cargo_command(&args);
        // The umask is set by a shell that then runs cargo with the same environment.
        let mut env = self.env();
        let umask = env
            .iter()
            .position(|(k, _)| k == "UMASK")
            .map(|i| env.remove(i).1);
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!(
                "umask {} && exec \"$0\" \"$@\"",
                umask.as_deref().unwrap_or("022")
            ))
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .current_dir(&self.root);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        if cachet {
            sh.env("RUSTC_WRAPPER", crate::util::cachet_bin())
                .env("CACHET_DIR", &self.cache)
                .env("CARGO_TARGET_DIR", self.target_dir("target"));
        } else {
            sh.env("CARGO_TARGET_DIR", self.target_dir("target-plain"));
        }
        sh.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        sh.envs(extra.iter().copied());
        let out = sh
            .output()
            .unwrap_or_else(|e| panic!("cannot run {sh:?}: {e}"));
        assert!(
            out.status.success() != self.case.fails,
            "{sh:?}: {} (the case says it {}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            if self.case.fails { "fails" } else { "succeeds" },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The target directory `name` (`target`, `target-plain`, `target-fresh`) of this checkout.
    fn target_dir(&self, name: &str) -> PathBuf {
        let dir = if self.case.targets_beside {
            self.root.parent().unwrap()
        } else {
            &self.root
        };
        dir.join(name)
    }

    fn project(&self) -> Project {
        Project {
            tmp: tempfile::tempdir().unwrap(),
            root: self.root.clone(),
            cache: self.cache.clone(),
        }
    }

    /// The case's cargo command through cachet; returns the journal records of the build and
    /// cargo's output.
    fn cachet_build(&self, extra: &[(&str, &str)]) -> (Vec<Record>, Output) {
        let p = self.project();
        let before = p.journal().len();
        let out = self.cargo(true, extra);
        (p.journal().split_off(before), out)
    }

    fn run(&self, target: &str, cargo: &Output) -> Behaviour {
        let case = self.case;
        let text = |b: &[u8]| String::from_utf8_lossy(b).replace("target-plain", "target");
        let out_dir = self.target_dir(target).join(case.out);
        let (status, stdout, stderr) = if case.bin.is_empty() {
            (None, String::new(), String::new())
        } else {
            let exe = out_dir.join(case.bin);
            // `cargo test` puts the toolchain's libraries in LD_LIBRARY_PATH; a program must
            // find its libraries by itself (its rpath), as it would for a user.
            let out = Command::new(&exe)
                .current_dir(&self.root)
                .env_remove("LD_LIBRARY_PATH")
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
            (out.status.code(), text(&out.stdout), text(&out.stderr))
        };
        let messages = if case.messages {
            diagnostics(cargo)
        } else {
            Vec::new()
        };
        let mut modes = Vec::new();
        if case.modes {
            let mut files = deps_files(&out_dir);
            files.extend(build_scripts(&out_dir));
            files.push(PathBuf::from(case.bin));
            for f in files {
                let meta = std::fs::metadata(out_dir.join(&f)).unwrap();
                modes.push((f.display().to_string(), meta.permissions().mode() & 0o7777));
            }
        }
        let mut dep_info = Vec::new();
        if case.dep_info {
            let mut files = deps_files(&out_dir);
            files.push(PathBuf::from(format!("{}.d", case.bin)));
            for f in files
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "d"))
            {
                let contents = text(&std::fs::read(out_dir.join(&f)).unwrap());
                dep_info.push((f.display().to_string(), contents));
            }
        }
        Behaviour {
            status,
            stdout,
            stderr,
            messages,
            modes,
            dep_info,
        }
    }

    /// Builds both ways; a difference in behaviour is added to `failures`.
    fn compare(&self, when: &str, failures: &mut Vec<String>) -> Vec<Record> {
        let (records, out) = self.cachet_build(&[]);
        let plain_out = self.cargo(false, &[]);
        let (cached, plain) = (
            self.run("target", &out),
            self.run("target-plain", &plain_out),
        );
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
        step.apply(&first.root);
        first.compare(&format!("after {}", step.name), &mut failures);
    }

    let second = Checkout {
        case,
        root: tmp.path().join(case.second),
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
        compare_with_fresh(&second, &records);
    }
    records
}

/// [`compare_with_fresh`] for a case that runs its builds itself, in the checkout at `root`
/// with the cache `cache`: the fresh compile runs `case.cargo` with `case.env`.
pub fn compare_restored_with_fresh(case: &Case, root: &Path, cache: &Path, records: &[Record]) {
    let checkout = Checkout {
        case,
        root: root.to_path_buf(),
        cache: cache.to_path_buf(),
    };
    compare_with_fresh(&checkout, records);
}

/// Compares every artifact the second checkout restored (its crates' rlibs, metadata,
/// programs and build scripts) with what cachet compiles fresh there (`CACHET_RECACHE=1`)
/// into another target directory.
fn compare_with_fresh(second: &Checkout<'_>, records: &[Record]) {
    let case = second.case;
    let fresh = second.target_dir("target-fresh");
    second.cachet_build(&[
        ("CACHET_RECACHE", "1"),
        ("CARGO_TARGET_DIR", fresh.to_str().unwrap()),
    ]);
    let restored: Vec<&str> = records
        .iter()
        .filter(|r| r.outcome == cachet_wrapper::journal::Outcome::HitLocal)
        .filter_map(|r| r.krate.as_deref())
        .collect();
    let target = second.target_dir("target");
    let mut compared = 0;
    for file in files_under(&target) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let of_restored = restored
            .iter()
            .any(|k| name.starts_with(&format!("{k}-")) || name.starts_with(&format!("lib{k}-")));
        if !of_restored || name.ends_with(".d") || !fresh.join(&file).is_file() {
            continue;
        }
        assert!(
            std::fs::read(target.join(&file)).unwrap() == std::fs::read(fresh.join(&file)).unwrap(),
            "case {:?}: {} restored in the second checkout differs from a fresh compile there",
            case.name,
            file.display()
        );
        compared += 1;
    }
    assert!(
        compared > 0,
        "case {:?}: nothing restored in the second checkout to compare: {records:#?}",
        case.name
    );
}

/// Asserts that each of `krates` was restored (one local hit, nothing compiled) in the build
/// whose journal `records` are.
pub fn assert_restored(records: &[Record], krates: &[&str]) {
    for krate in krates {
        assert_eq!(
            crate::util::outcomes_for(records, krate),
            vec![cachet_wrapper::journal::Outcome::HitLocal],
            "{krate}: {records:#?}"
        );
    }
}

/// Replaces `from` by `to` in a file of the checkout.
pub fn replace(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// Makes cargo rebuild a crate whose input it does not track: the file's mtime moves on to
/// now (past cargo's last build), its contents stay (so cachet's key does not change because
/// of it). Not into the future: a source stamped after the compile began is not stored, and a
/// case that restores a later state needs it stored.
pub fn touch(root: &Path, file: &str) {
    let later = std::time::SystemTime::now();
    let f = std::fs::File::options()
        .write(true)
        .open(root.join(file))
        .unwrap();
    f.set_modified(later).unwrap();
}
