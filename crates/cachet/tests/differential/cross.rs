//! Cross builds (`--target`) shared across checkouts. cargo tags `target/<triple>/` with its
//! own `CACHEDIR.TAG`; the target anchor used to stop there, the host's
//! `-L dependency=/abs/target/debug/deps` stayed literal in every target-side key, and a
//! second checkout missed for every target-side crate (outputs right, never shared). Now the
//! target directory is `target/` for both sides (`paths.rs`). The target directories are
//! beside the checkout here: inside it, the host path would be under the workspace's own
//! anchor and the case would not see the target anchor at all.

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

#[test]
fn a_cross_build_is_restored_in_a_second_checkout() {
    let records = check(&CASE);
    let calls = cacheable(&records);
    assert!(calls.len() >= 2, "{records:#?}");
    for r in calls {
        assert_eq!(r.outcome, Outcome::HitLocal, "{r:#?}");
    }
}
