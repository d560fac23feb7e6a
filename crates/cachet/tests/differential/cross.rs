//! Cross builds (`--target`) shared across checkouts. cargo tags `target/<triple>/` with its
//! own `CACHEDIR.TAG`; the target anchor used to stop there, the host's
//! `-L dependency=/abs/target/debug/deps` stayed literal in every target-side key, and a
//! second checkout missed for every target-side crate (outputs right, never shared). Now the
//! target directory is `target/` for both sides (`paths.rs`). The target directories are
//! beside the checkout here: inside it, the host path would be under the workspace's own
//! anchor and the case would not see the target anchor at all.
//!
//! Two forms: target-side crates that only search the host's `deps/` (a build script's
//! `rustc-env`), and a target-side crate that loads host artifacts by name
//! (`--extern derive=/abs/target/release/deps/libderive-*.so`, a proc-macro) in a release
//! profile, where cargo's host profile directory is `release/` beside `<triple>/release/`.

use cachet_wrapper::journal::Outcome;

use super::{check, Case, BUILD};
use crate::util::cacheable;

const TRIPLE_OUT: &str = "x86_64-unknown-linux-musl/debug";

const CASE: Case = Case {
    name: "cross build to musl",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"lib\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "lib/Cargo.toml",
            "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
        ),
        (
            "lib/build.rs",
            "fn main() { println!(\"cargo:rustc-env=LIB_TARGET={}\", std::env::var(\"TARGET\").unwrap()); }\n",
        ),
        (
            "lib/src/lib.rs",
            "pub fn target() -> &'static str { env!(\"LIB_TARGET\") }\n",
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlib = { path = \"../lib\" }\n",
        ),
        (
            "app/src/main.rs",
            "fn main() { println!(\"built for {}\", lib::target()); }\n",
        ),
    ],
    cargo: &["build", "--target", "x86_64-unknown-linux-musl"],
    out: TRIPLE_OUT,
    reproducible: true,
    targets_beside: true,
    ..BUILD
};

/// A proc-macro (host) used by a target-side library, and a program whose build script (host)
/// generates the code it includes, built with `--release`.
const WITH_HOST_CRATES: Case = Case {
    name: "cross build with a proc-macro and a build script, release",
    files: &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"derive\", \"lib\", \"app\"]\nresolver = \"2\"\n",
        ),
        (
            "derive/Cargo.toml",
            "[package]\nname = \"derive\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nproc-macro = true\n",
        ),
        (
            "derive/src/lib.rs",
            "use proc_macro::TokenStream;\n#[proc_macro_derive(Named)]\npub fn named(input: TokenStream) -> TokenStream {\n    let text = input.to_string();\n    let name = text.split_whitespace().skip_while(|w| *w != \"struct\").nth(1).unwrap().trim_end_matches(';').to_string();\n    format!(\"impl {name} {{ pub fn name() -> &'static str {{ {name:?} }} }}\").parse().unwrap()\n}\n",
        ),
        (
            "lib/Cargo.toml",
            "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nderive = { path = \"../derive\" }\n",
        ),
        (
            "app/build.rs",
            "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    let target = std::env::var(\"TARGET\").unwrap();\n    std::fs::write(format!(\"{out}/gen.rs\"), format!(\"pub const TARGET: &str = {target:?};\\n\")).unwrap();\n}\n",
        ),
        (
            "lib/src/lib.rs",
            "#[derive(derive::Named)]\npub struct Widget;\n",
        ),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n\n[dependencies]\nlib = { path = \"../lib\" }\n",
        ),
        (
            "app/src/main.rs",
            "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\nfn main() { println!(\"{} built for {}\", lib::Widget::name(), TARGET); }\n",
        ),
    ],
    cargo: &["build", "--release", "--target", "x86_64-unknown-linux-musl"],
    out: "x86_64-unknown-linux-musl/release",
    reproducible: true,
    targets_beside: true,
    ..BUILD
};

/// Every crate of `case` is restored in its second checkout.
fn all_restored_in_second_checkout(case: &Case) {
    let records = check(case);
    let calls = cacheable(&records);
    assert!(calls.len() >= 2, "{records:#?}");
    for r in calls {
        assert_eq!(r.outcome, Outcome::HitLocal, "{r:#?}");
    }
}

#[test]
fn a_cross_build_is_restored_in_a_second_checkout() {
    all_restored_in_second_checkout(&CASE);
}

#[test]
fn host_crates_of_a_cross_build_are_shared_across_checkouts() {
    all_restored_in_second_checkout(&WITH_HOST_CRATES);
}
