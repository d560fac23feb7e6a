//! Restored outputs are what a plain build of this build would have made: permission bits
//! under this build's umask, dep-info files naming this target directory whatever characters
//! its path holds, and cross builds (`--target`) restored in another checkout.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use cachet_wrapper::journal::Outcome;

use crate::util::{cacheable, cachet_bin, copy_tree, run_ok, Project};

/// A workspace with a library, a program using it, and a build script generating code that
/// the program includes from `OUT_DIR`.
fn small_workspace() -> Project {
    Project::from_files(&[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"app\", \"helper\"]\nresolver = \"2\"\n",
        ),
        (
            "helper/Cargo.toml",
            "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        (
            "helper/src/lib.rs",
            "pub fn double(x: u32) -> u32 {\n    x * 2\n}\n",
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
[dependencies]\nhelper = { path = \"../helper\" }\n",
        ),
        (
            "app/build.rs",
            "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    \
std::fs::write(format!(\"{out}/gen.rs\"), \"pub fn generated() -> u32 { 21 }\").unwrap();\n}\n",
        ),
        (
            "app/src/main.rs",
            "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n\n\
fn main() {\n    println!(\"{}\", helper::double(generated()));\n}\n",
        ),
    ])
}

/// Runs cargo in `p` under `umask`, through cachet or plainly.
fn cargo_under_umask(p: &Project, umask: &str, args: &[&str], cachet: bool) -> Output {
    let script = format!("umask {umask} && exec cargo \"$@\"");
    let mut cmd = p.command_for("sh", &["-c", &script, "sh"]);
    cmd.args(args);
    if cachet {
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &p.cache);
    }
    run_ok(cmd)
}

/// Permission bits of every file directly in `dir`, by name.
fn modes(dir: &Path) -> BTreeMap<String, u32> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            (e.file_name().to_string_lossy().into_owned(), mode)
        })
        .collect()
}

/// Regression: restored files kept the permission bits recorded by the build that stored them
/// (`755`/`644`), where a plain build under `umask 077` makes `700`/`600`.
#[test]
fn restored_files_follow_this_builds_umask() {
    let p = small_workspace();
    cargo_under_umask(&p, "022", &["build"], true);
    cargo_under_umask(&p, "022", &["clean"], true);
    let (_, records) = p.records_during(|| cargo_under_umask(&p, "077", &["build"], true));
    assert!(cacheable(&records)
        .iter()
        .all(|r| r.outcome == Outcome::HitLocal));
    let restored = modes(&p.root.join("target/debug/deps"));

    let plain = p.root.join("target-plain");
    let plain_args = ["build", "--target-dir", plain.to_str().unwrap()];
    cargo_under_umask(&p, "077", &plain_args, false);
    let expected = modes(&plain.join("debug/deps"));
    assert_eq!(restored, expected);
    assert!(restored.values().any(|&m| m == 0o700), "{restored:?}");
    assert!(restored.values().all(|&m| m == 0o700 || m == 0o600));
    let program = p.root.join("target/debug/app");
    assert_eq!(
        fs::metadata(program).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// The dep-info files of `target/debug/deps`, by name.
fn dep_infos(target: &Path) -> BTreeMap<String, String> {
    fs::read_dir(target.join("debug/deps"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".d"))
        .map(|e| {
            let text = fs::read_to_string(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect()
}

/// Regression: a `.d` file restored into an out-dir whose path holds a space or a newline kept
/// the first build's targets (rustc writes targets unescaped; the rewrite expected `\ `), and
/// the generated source under `OUT_DIR` kept the first build's path when it held a newline.
#[test]
fn dep_info_names_this_target_dir_with_spaces_and_newlines() {
    let p = small_workspace();
    let first = p.root.join("tar get");
    p.cachet_cargo(&["build"], &[("CARGO_TARGET_DIR", first.to_str().unwrap())]);
    for name in ["other tar get", "new\nline dir"] {
        let target: PathBuf = p.root.join(name);
        let env = [("CARGO_TARGET_DIR", target.to_str().unwrap())];
        let records = p.cachet_cargo_records(&["build"], &env);
        let hits = cacheable(&records)
            .iter()
            .filter(|r| r.outcome == Outcome::HitLocal)
            .count();
        assert!(hits >= 3, "{records:#?}");
        let restored = dep_infos(&target);
        assert!(restored
            .values()
            .all(|d| d.starts_with(&target.join("debug/deps").to_string_lossy().into_owned())));
        // What a plain build writes in the same directory.
        p.plain_cargo(&["clean"], &env);
        p.plain_cargo(&["build"], &env);
        assert_eq!(restored, dep_infos(&target), "in {name:?}");
    }
}

const MUSL: &str = "x86_64-unknown-linux-musl";

/// Regression: with `--target`, cargo also tags `target/<triple>/` as a cache directory; the
/// target anchor stopped there, the host `-L dependency=TARGET/debug/deps` stayed literal
/// (when the target dir is not inside the workspace), and a cross build in a second checkout
/// with another target dir missed for every crate built for the target.
#[test]
fn cross_builds_are_restored_in_another_checkout() {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&installed.stdout)
            .lines()
            .any(|l| l == MUSL),
        "the {MUSL} target is missing: run `rustup target add {MUSL}` (scripts/setup.sh does)"
    );
    let run = |target: &Path| {
        let exe = target.join(MUSL).join("debug/app");
        let out = std::process::Command::new(&exe).output().unwrap();
        assert!(out.status.success(), "{}", exe.display());
        String::from_utf8(out.stdout).unwrap()
    };
    let p = small_workspace();
    let first_target = p.tmp.path().join("targets/first");
    let env = [("CARGO_TARGET_DIR", first_target.to_str().unwrap())];
    p.cachet_cargo(&["build", "--target", MUSL], &env);
    assert_eq!(run(&first_target), "42\n");

    let root = p.tmp.path().join("a/deeper/second checkout");
    copy_tree(&p.root, &root);
    let q = Project {
        tmp: tempfile::tempdir().unwrap(),
        root,
        cache: p.cache,
    };
    let second_target = q.tmp.path().join("elsewhere/target dir");
    let env = [("CARGO_TARGET_DIR", second_target.to_str().unwrap())];
    let records = q.cachet_cargo_records(&["build", "--target", MUSL], &env);
    for krate in ["helper", "app", "build_script_build"] {
        let outcomes = crate::util::outcomes_for(&records, krate);
        assert_eq!(outcomes, vec![Outcome::HitLocal], "{krate}: {records:#?}");
    }
    assert_eq!(run(&second_target), "42\n");
}
