//! What cargo prints through cachet names the files a plain build names: the same files,
//! lines and columns, in human and JSON output, on a miss and on a hit, in a second checkout.
//!
//! What broke: `--remap-path-prefix` applies to diagnostics too, so a warning in a path
//! dependency outside the workspace named `./src/lib.rs` (a file of the workspace), generated
//! code under `OUT_DIR` showed as `$TARGET/...`, and a note pointing into a crates.io crate as
//! `$CARGO_HOME/registry/src/...`, also in the JSON `file_name` fields editors follow.
//!
//! One difference stays, as docs/design.md says: a note pointing into a dependency compiled
//! by cachet shows no source snippet (the dependency's metadata names its files by their
//! remapped names, which rustc cannot open), so only headlines and locations are compared.

use std::path::Path;
use std::process::Output;

use cachet_wrapper::journal::Outcome;

use crate::util::{cachet_bin, copy_tree, outcomes_for, write_file, Project};

/// A workspace (`ws/`) whose members warn (`app`, with generated code in `OUT_DIR`) and fail
/// (`bad`, with notes into `app`'s generated code, a path dependency outside the workspace,
/// `outside/pdep`, and the crates.io crate `itoa`).
fn write_tree(root: &Path) {
    let write = |path: &str, text: &str| write_file(root, path, text);
    write(
        "ws/Cargo.toml",
        "[workspace]\nmembers = [\"app\", \"bad\"]\nresolver = \"2\"\n",
    );
    write(
        "ws/app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "ws/app/build.rs",
        "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    \
std::fs::write(format!(\"{out}/gen.rs\"), \"pub fn generated(x: u32) -> u32 {\\n    let unused_gen = 1;\\n    x\\n}\\n\").unwrap();\n}\n",
    );
    write(
        "ws/app/src/lib.rs",
        "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n\n\
pub fn lib_value() -> u32 {\n    let unused_lib = 2;\n    3\n}\n",
    );
    write(
        "ws/bad/Cargo.toml",
        "[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
app = { path = \"../app\" }\npdep = { path = \"../../outside/pdep\" }\nitoa = \"=1.0.10\"\n",
    );
    write(
        "ws/bad/src/main.rs",
        "fn main() {\n    let unused_main = 1;\n    let _a = app::generated(1, 2);\n    \
let _b = pdep::value(5);\n    let mut buf = itoa::Buffer::new();\n    let _c = buf.format(\"x\");\n}\n",
    );
    write(
        "outside/pdep/Cargo.toml",
        "[package]\nname = \"pdep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "outside/pdep/src/lib.rs",
        "pub fn value() -> u32 {\n    let unused_dep = 4;\n    7\n}\n",
    );
}

/// Runs `cargo build -j1 --offline ARGS` in `tree/ws` (one job: messages in a fixed order);
/// the build fails (`bad` does not compile).
fn build(p: &Project, ws: &Path, args: &[&str], cachet: bool) -> Output {
    let mut cmd = p.cargo_command(&["build", "-j1", "--offline"]);
    cmd.args(args).current_dir(ws);
    if cachet {
        cmd.env("RUSTC_WRAPPER", cachet_bin())
            .env("CACHET_DIR", &p.cache);
    }
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "the build should fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn clean(p: &Project, ws: &Path) {
    let mut cmd = p.cargo_command(&["clean"]);
    cmd.current_dir(ws);
    assert!(cmd.status().unwrap().success());
}

/// Headlines and locations of cargo's human output, in order.
fn human_locations(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            l.starts_with("warning") || l.starts_with("error") || location_line(l).is_some()
        })
        .map(str::to_string)
        .collect()
}

/// The file and position of a rendered `--> FILE:L:C` or `::: FILE:L:C` line.
fn location_line(line: &str) -> Option<&str> {
    let l = line.trim_start();
    l.strip_prefix("--> ").or_else(|| l.strip_prefix("::: "))
}

/// Headlines, span positions and rendered locations of cargo's JSON messages, in order.
fn json_locations(out: &Output) -> Vec<String> {
    fn spans(v: &serde_json::Value, into: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(file) = map.get("file_name") {
                    into.push(format!(
                        "span {} {}:{}-{}:{}",
                        file,
                        map["line_start"],
                        map["column_start"],
                        map["line_end"],
                        map["column_end"]
                    ));
                }
                for (k, child) in map {
                    if k != "rendered" {
                        spans(child, into);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| spans(i, into)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["reason"] != "compiler-message" {
            continue;
        }
        let m = &v["message"];
        found.push(format!(
            "{} {}: {}",
            v["target"]["name"], m["level"], m["message"]
        ));
        spans(m, &mut found);
        for l in m["rendered"].as_str().unwrap_or_default().lines() {
            if let Some(at) = location_line(l) {
                found.push(format!("rendered {at}"));
            }
        }
    }
    found
}

/// Crates restored from the cache during the last build.
fn hits_since(p: &Project, before: usize) -> Vec<String> {
    let records = p.journal().split_off(before);
    ["app", "build_script_build", "itoa", "pdep"]
        .iter()
        .filter(|k| outcomes_for(&records, k).contains(&Outcome::HitLocal))
        .map(|k| k.to_string())
        .collect()
}

#[test]
fn messages_name_this_builds_files_on_miss_and_hit_in_any_checkout() {
    let p = Project::copy_of(tempfile::tempdir().unwrap().path());
    let first = p.root.join("first");
    let second = p.tmp.path().join("other/deeper place/second");
    write_tree(&first);
    copy_tree(&first, &second);
    for (tree, first_checkout) in [(&first, true), (&second, false)] {
        let ws = tree.join("ws");
        let plain_human = human_locations(&build(&p, &ws, &[], false));
        clean(&p, &ws);
        let json = ["--message-format=json"];
        let plain_json = json_locations(&build(&p, &ws, &json, false));
        clean(&p, &ws);
        // What the plain build names: this checkout's files, wherever they are.
        let text = plain_human.join("\n");
        for file in [
            "bad/src/main.rs:3:14".to_string(),
            format!("{}/outside/pdep/src/lib.rs:2:9", tree.display()),
            format!("{}/outside/pdep/src/lib.rs:1:8", tree.display()),
            "/out/gen.rs:2:9".to_string(),
            "/out/gen.rs:1:8".to_string(),
            "/registry/src/".to_string(),
        ] {
            assert!(text.contains(&file), "{file} not in:\n{text}");
        }
        for (format, plain) in [(&[][..], &plain_human), (&json[..], &plain_json)] {
            let runs = if first_checkout { 2 } else { 1 };
            for run in 0..runs {
                let before = p.journal().len();
                let out = build(&p, &ws, format, true);
                let shown = if format.is_empty() {
                    human_locations(&out)
                } else {
                    json_locations(&out)
                };
                assert_eq!(
                    &shown,
                    plain,
                    "{format:?}, run {run}, in {}",
                    tree.display()
                );
                let hits = hits_since(&p, before);
                if run == 1 {
                    assert_eq!(hits, ["app", "build_script_build", "itoa", "pdep"][..]);
                } else if !first_checkout && format.is_empty() {
                    // The path dependency outside the workspace keys its paths literally (the
                    // JSON build then finds the entry the human one stored in this checkout).
                    assert_eq!(hits, ["app", "build_script_build", "itoa"][..]);
                }
                clean(&p, &ws);
            }
        }
    }
}
