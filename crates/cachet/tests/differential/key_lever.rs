//! The documented lever for what no compiler cache can see: a proc-macro that reads an
//! environment variable and a file without telling rustc (sqlx's `query!` with
//! `DATABASE_URL` and `.sqlx/`). `CACHET_KEY_ENV` and `CACHET_KEY_FILES` add them to the key;
//! without them the crate would be restored with the old value baked in.

use crate::util::Project;

use super::{assert_restored, compare_restored_with_fresh, write_files, Case, BUILD};

const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[workspace]\nmembers = [\"reader\", \"app\"]\nresolver = \"2\"\n",
    ),
    (
        "reader/Cargo.toml",
        "[package]\nname = \"reader\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nproc-macro = true\n",
    ),
    (
        "reader/src/lib.rs",
        r#"
use proc_macro::TokenStream;
/// Reads a variable and a file of the calling crate, as sqlx's `query!` does.
#[proc_macro]
pub fn greeting(_: TokenStream) -> TokenStream {
    let word = std::env::var("LEVER_GREETING").unwrap_or_else(|_| "unset".into());
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let name = std::fs::read_to_string(format!("{dir}/templates/name.txt")).unwrap();
    format!("{:?}", format!("{word} {}", name.trim())).parse().unwrap()
}
"#,
    ),
    (
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nreader = { path = \"../reader\" }\n",
    ),
    (
        "app/src/main.rs",
        "fn main() { println!(\"{}\", reader::greeting!()); }\n",
    ),
    ("app/templates/name.txt", "world\n"),
];

/// The first state's environment: the variable the macro reads, then the lever's settings
/// (the variable and the files the macro reads).
const HELLO: &[(&str, &str)] = &[
    ("LEVER_GREETING", "hello"),
    ("CACHET_KEY_ENV", "LEVER_GREETING"),
    ("CACHET_KEY_FILES", "app:templates/*.txt"),
];

/// Builds through cachet and plainly with `greeting` set, after `cargo clean -p app` (cargo
/// does not track what the macro read either); returns what both programs print.
fn build(p: &Project, greeting: &str) -> (String, String) {
    let env = [&[("LEVER_GREETING", greeting)], &HELLO[1..]].concat();
    p.cachet_cargo(&["clean", "-p", "app"], &env);
    p.cachet_cargo(&["build", "--offline"], &env);
    p.plain_cargo(&["clean", "-p", "app"], &env);
    p.plain_cargo(&["build", "--offline"], &env);
    (
        p.run_program("target", "debug", "app"),
        p.run_program("target-plain", "debug", "app"),
    )
}

#[test]
fn key_env_and_key_files_cover_what_a_proc_macro_reads_behind_rustc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("proj");
    write_files(&root, FILES);
    let p = Project {
        root,
        cache: tmp.path().join("cache"),
        tmp,
    };
    assert_eq!(
        build(&p, "hello"),
        ("hello world\n".into(), "hello world\n".into())
    );
    // The variable changes: the crate that expanded the macro misses.
    assert_eq!(
        build(&p, "bonjour"),
        ("bonjour world\n".into(), "bonjour world\n".into())
    );
    // The file changes (the glob names it for `app` only).
    std::fs::write(p.root.join("app/templates/name.txt"), "there\n").unwrap();
    assert_eq!(
        build(&p, "bonjour"),
        ("bonjour there\n".into(), "bonjour there\n".into())
    );
    // Back to the first state: restored, not compiled.
    std::fs::write(p.root.join("app/templates/name.txt"), "world\n").unwrap();
    let before = p.journal().len();
    assert_eq!(
        build(&p, "hello"),
        ("hello world\n".into(), "hello world\n".into())
    );
    let records = p.journal().split_off(before);
    assert_restored(&records, &["app"]);
    // What was restored is what cachet compiles fresh from the same state.
    let case = Case {
        name: "key lever",
        env: HELLO,
        ..BUILD
    };
    compare_restored_with_fresh(&case, &p.root, &p.cache, &records);
}
