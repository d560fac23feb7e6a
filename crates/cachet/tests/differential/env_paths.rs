//! Path-valued variables read through `env!`/`option_env!` (`CARGO_MANIFEST_DIR`, `OUT_DIR`).
//! Before the fix such a value was keyed relative to its anchor whenever its bytes were not
//! found in the outputs, which proves nothing: a transform of the value (`.len()`) or LTO
//! bitcode hides them, and a second checkout received the first one's value. Now the value is
//! keyed literally unless every read is proven to be an `include!` of a file (env_proof.rs);
//! that form still hits in the second checkout.

use cachet_wrapper::journal::Outcome;

use super::{assert_restored, check, leak_files, Case};
use crate::util::outcomes_for;

fn package(name: &str, build: bool) -> String {
    let build = if build { "build = \"build.rs\"\n" } else { "" };
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{build}")
}

const GEN_BUILD_RS: &str = r#"
fn main() {
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(format!("{out}/gen.rs"), "pub const GENERATED: u32 = 7;\n").unwrap();
}
"#;

#[test]
fn path_values_are_keyed_literally_unless_only_included() {
    let workspace = "[workspace]\nmembers = [\"lenlib\", \"bitcode\", \"runtime\", \"included\", \"app\"]\nresolver = \"2\"\n\n[profile.dev]\nlto = true\n";
    let files: Vec<(String, String)> = vec![
        ("Cargo.toml".into(), workspace.into()),
        ("lenlib/Cargo.toml".into(), package("lenlib", false)),
        (
            "lenlib/src/lib.rs".into(),
            "pub const LEN: usize = env!(\"CARGO_MANIFEST_DIR\").len();\n".into(),
        ),
        ("bitcode/Cargo.toml".into(), package("bitcode", false)),
        (
            "bitcode/src/lib.rs".into(),
            "pub fn dir() -> &'static str { env!(\"CARGO_MANIFEST_DIR\") }\n".into(),
        ),
        ("runtime/Cargo.toml".into(), package("runtime", true)),
        ("runtime/build.rs".into(), "fn main() {}\n".into()),
        (
            "runtime/src/lib.rs".into(),
            "pub fn out_dir() -> Option<&'static str> { option_env!(\"OUT_DIR\") }\n".into(),
        ),
        ("included/Cargo.toml".into(), package("included", true)),
        ("included/build.rs".into(), GEN_BUILD_RS.into()),
        (
            "included/src/lib.rs".into(),
            "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n".into(),
        ),
        (
            "app/Cargo.toml".into(),
            format!(
                "{}\n[dependencies]\nlenlib = {{ path = \"../lenlib\" }}\nbitcode = {{ path = \"../bitcode\" }}\nruntime = {{ path = \"../runtime\" }}\nincluded = {{ path = \"../included\" }}\n",
                package("app", false)
            ),
        ),
        (
            "app/src/main.rs".into(),
            "fn main() {\n    println!(\"len={}\", lenlib::LEN);\n    println!(\"dir={}\", bitcode::dir());\n    println!(\"out={:?}\", runtime::out_dir());\n    println!(\"generated={}\", included::GENERATED);\n}\n".into(),
        ),
    ];
    let files = leak_files(files);
    let records = check(&Case {
        name: "path-valued env! variables",
        files,
        reproducible: true,
        ..super::BUILD
    });
    // The include! form is proven: restored in the second checkout.
    assert_restored(&records, &["included"]);
    for krate in ["lenlib", "bitcode", "runtime"] {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::Miss],
            "{krate}"
        );
    }
}

/// A dependency's `macro_rules!` that expands to `env!`: the crate expanding it says no `env!`
/// itself (or only the proven `include!` form), and the variable is this crate's own. Forms: a
/// `$crate`-path helper, `concat!(env!(..), ..)`, `#[macro_use] extern crate`, and a crate that
/// also has the proven form, whose own source alone would prove it. The proof refuses every
/// macro from another crate (env_proof.rs, rule 3): each is compiled in the second checkout and
/// prints that checkout's path.
const DIR_MACROS: &str = r#"
#[macro_export]
macro_rules! here { () => { $crate::__dir!() } }
#[doc(hidden)]
#[macro_export]
macro_rules! __dir { () => { env!("CARGO_MANIFEST_DIR") } }
#[macro_export]
macro_rules! data_path { () => { concat!(env!("CARGO_MANIFEST_DIR"), "/data.txt") } }
#[macro_export]
macro_rules! out_dir { () => { env!("OUT_DIR") } }
"#;

#[test]
fn env_reads_in_another_crates_macros_are_keyed_literally() {
    let user = |name: &str, build: bool| {
        format!(
            "{}\n[dependencies]\ndirmacro = {{ path = \"../dirmacro\" }}\n",
            package(name, build)
        )
    };
    let files: Vec<(String, String)> = vec![
        (
            "Cargo.toml".into(),
            "[workspace]\nmembers = [\"dirmacro\", \"bycrate\", \"byconcat\", \"bymacrouse\", \"mixed\", \"app\"]\nresolver = \"2\"\n".into(),
        ),
        ("dirmacro/Cargo.toml".into(), package("dirmacro", false)),
        ("dirmacro/src/lib.rs".into(), DIR_MACROS.into()),
        ("bycrate/Cargo.toml".into(), user("bycrate", false)),
        (
            "bycrate/src/lib.rs".into(),
            "pub fn value() -> &'static str { dirmacro::here!() }\n".into(),
        ),
        ("byconcat/Cargo.toml".into(), user("byconcat", false)),
        (
            "byconcat/src/lib.rs".into(),
            "pub const VALUE: &str = dirmacro::data_path!();\n".into(),
        ),
        ("bymacrouse/Cargo.toml".into(), user("bymacrouse", false)),
        (
            "bymacrouse/src/lib.rs".into(),
            "#[macro_use]\nextern crate dirmacro;\npub fn value() -> &'static str { here!() }\n"
                .into(),
        ),
        ("mixed/Cargo.toml".into(), user("mixed", true)),
        ("mixed/build.rs".into(), GEN_BUILD_RS.into()),
        (
            "mixed/src/lib.rs".into(),
            "include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\npub fn out() -> &'static str { dirmacro::out_dir!() }\n".into(),
        ),
        (
            "app/Cargo.toml".into(),
            format!(
                "{}\n[dependencies]\nbycrate = {{ path = \"../bycrate\" }}\nbyconcat = {{ path = \"../byconcat\" }}\nbymacrouse = {{ path = \"../bymacrouse\" }}\nmixed = {{ path = \"../mixed\" }}\n",
                package("app", false)
            ),
        ),
        (
            "app/src/main.rs".into(),
            "fn main() {\n    println!(\"crate={}\", bycrate::value());\n    println!(\"concat={}\", byconcat::VALUE);\n    println!(\"macro_use={}\", bymacrouse::value());\n    println!(\"mixed={} {}\", mixed::out(), mixed::GENERATED);\n}\n".into(),
        ),
    ];
    let files = leak_files(files);
    let records = check(&Case {
        name: "env! through another crate's macro_rules!",
        files,
        reproducible: true,
        ..super::BUILD
    });
    // The macros' own crate reads nothing: restored.
    assert_restored(&records, &["dirmacro"]);
    for krate in ["bycrate", "byconcat", "bymacrouse", "mixed"] {
        assert_eq!(
            outcomes_for(&records, krate),
            vec![Outcome::Miss],
            "{krate}"
        );
    }
}
