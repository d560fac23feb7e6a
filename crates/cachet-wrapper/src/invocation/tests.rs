//! Tests of reading rustc's arguments and planning a call.

use super::args::{FLAGS, TAKES_VALUE};
use super::*;
use proptest::prelude::*;

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn cargo_lib_args() -> Vec<OsString> {
    os(&[
        "--crate-name",
        "depa",
        "--edition=2021",
        "/src/depa/src/lib.rs",
        "--error-format=json",
        "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
        "--crate-type",
        "lib",
        "--emit=dep-info,metadata,link",
        "-C",
        "embed-bitcode=no",
        "-C",
        "debuginfo=2",
        "--check-cfg",
        "cfg(docsrs,test)",
        "--cfg",
        "feature=\"b\"",
        "--cfg",
        "feature=\"a\"",
        "-C",
        "metadata=5cc52cfb061906c9",
        "-C",
        "extra-filename=-c18aefc0bffb0014",
        "--out-dir",
        "/t/debug/deps",
        "-L",
        "dependency=/t/debug/deps",
        "--extern",
        "serde=/t/debug/deps/libserde-1.rmeta",
        "--cap-lints",
        "allow",
    ])
}

#[test]
fn cargo_library_is_cacheable_with_predicted_outputs() {
    let Plan::Cache(p) = plan(&cargo_lib_args()) else {
        panic!("expected cacheable")
    };
    assert_eq!(p.crate_name, "depa");
    assert_eq!(
        p.outputs,
        vec![
            "depa-c18aefc0bffb0014.d",
            "libdepa-c18aefc0bffb0014.rmeta",
            "libdepa-c18aefc0bffb0014.rlib"
        ]
    );
    assert_eq!(p.out_dir, PathBuf::from("/t/debug/deps"));
    assert_eq!(p.args.externs[0].name, "serde");
}

#[test]
fn out_dir_and_extern_paths_stay_out_of_the_key() {
    let a = RustcArgs::parse(&cargo_lib_args());
    let joined = a.key_args.join(" ");
    assert!(!joined.contains("/t/debug/deps/libserde"), "{joined}");
    assert!(!joined.contains("--out-dir"), "{joined}");
}

#[test]
fn cfg_order_does_not_matter_but_lint_order_does() {
    let mut swapped = cargo_lib_args();
    let a = swapped.iter().position(|x| x == "feature=\"b\"").unwrap();
    let b = swapped.iter().position(|x| x == "feature=\"a\"").unwrap();
    swapped.swap(a, b);
    assert_eq!(
        RustcArgs::parse(&cargo_lib_args()).key_args,
        RustcArgs::parse(&swapped).key_args
    );
    let l1 = RustcArgs::parse(&os(&["-A", "x", "-D", "x"])).key_args;
    let l2 = RustcArgs::parse(&os(&["-D", "x", "-A", "x"])).key_args;
    assert_ne!(l1, l2);
}

#[test]
fn inline_and_separate_values_mean_the_same() {
    let a = RustcArgs::parse(&os(&["-Copt-level=3", "-Lnative=/x", "--edition", "2021"]));
    let b = RustcArgs::parse(&os(&[
        "-C",
        "opt-level=3",
        "-L",
        "native=/x",
        "--edition=2021",
    ]));
    assert_eq!(a.key_args, b.key_args);
    assert_eq!(a.search_paths, b.search_paths);
}

fn reason(v: &[&str]) -> PassReason {
    let mut args = cargo_lib_args();
    args.extend(os(v));
    match plan(&args) {
        Plan::PassThrough(r, _) => r,
        Plan::Cache(_) => panic!("expected pass-through for {v:?}"),
    }
}

#[test]
fn incremental_is_keyed_by_presence_not_directory() {
    let mut a = cargo_lib_args();
    a.extend(os(&["-C", "incremental=/t/debug/incremental"]));
    let mut b = cargo_lib_args();
    b.extend(os(&["-Cincremental=/elsewhere/inc"]));
    let Plan::Cache(pa) = plan(&a) else {
        panic!("an incremental call is cacheable")
    };
    let Plan::Cache(pb) = plan(&b) else {
        panic!("an incremental call is cacheable")
    };
    assert_eq!(
        pa.args.incremental.as_deref(),
        Some(Path::new("/t/debug/incremental"))
    );
    assert_eq!(pa.args.key_args, pb.args.key_args);
    assert!(!pa.args.key_args.join(" ").contains("/t/debug/incremental"));
    assert_ne!(
        pa.args.key_args,
        RustcArgs::parse(&cargo_lib_args()).key_args,
        "an incremental compile is keyed apart from a plain one"
    );
    assert_eq!(
        reason(&["-C", "incremental"]),
        PassReason::IncrementalWithoutDir
    );
}

#[test]
fn uncacheable_invocations_say_why() {
    assert_eq!(
        reason(&["--emit=asm"]),
        PassReason::UnsupportedEmit("asm".into())
    );
    assert_eq!(
        reason(&["--crate-type", "bin", "-C", "linker-flavor=ld.lld"]),
        PassReason::UnsupportedCodegenOption("linker-flavor=ld.lld".into())
    );
    assert_eq!(
        reason(&["--frobnicate"]),
        PassReason::UnknownArgument("--frobnicate".into())
    );
    assert_eq!(reason(&["@args.txt"]), PassReason::ArgFile);
    assert_eq!(
        reason(&["-C", "target-cpu=native"]),
        PassReason::UnsupportedCodegenOption("target-cpu=native".into())
    );
    assert_eq!(
        reason(&["-C", "save-temps"]),
        PassReason::UnsupportedCodegenOption("save-temps".into())
    );
    assert_eq!(
        reason(&["-Z", "self-profile"]),
        PassReason::UnsupportedUnstableOption("self-profile".into())
    );
    assert_eq!(reason(&["other.rs"]), PassReason::NoSingleInput);
    assert!(matches!(
        plan(&os(&["-vV"])),
        Plan::PassThrough(PassReason::Query, _)
    ));
    assert!(matches!(
        plan(&os(&["-", "--crate-name", "___", "--print=file-names"])),
        Plan::PassThrough(PassReason::Query, _)
    ));
    assert!(matches!(
        plan(&os(&["-", "--crate-name", "x"])),
        Plan::PassThrough(PassReason::Stdin, _)
    ));
}

#[test]
fn staticlib_and_check_builds_are_cacheable() {
    let Plan::Cache(p) = plan(&os(&[
        "--crate-name",
        "s",
        "src/lib.rs",
        "--crate-type",
        "staticlib",
        "--crate-type",
        "rlib",
        "--emit=dep-info,link",
        "--out-dir",
        "o",
    ])) else {
        panic!()
    };
    assert_eq!(p.outputs, vec!["s.d", "libs.a", "libs.rlib"]);
    let Plan::Cache(p) = plan(&os(&[
        "--crate-name",
        "c",
        "src/lib.rs",
        "--crate-type",
        "lib",
        "--emit=dep-info,metadata",
        "--out-dir",
        "o",
    ])) else {
        panic!()
    };
    assert_eq!(p.outputs, vec!["c.d", "libc.rmeta"]);
}

#[test]
fn native_libs_are_read() {
    let a = RustcArgs::parse(&os(&[
        "-l",
        "static:-bundle=foo",
        "-lstatic=bar:baz",
        "-l",
        "z",
    ]));
    assert!(!a.native_libs[0].is_bundled());
    assert!(a.native_libs[1].is_bundled());
    assert_eq!(a.native_libs[1].name, "bar");
    assert_eq!(a.native_libs[2].kind, "");
}

proptest! {
    #[test]
    fn parser_never_panics(args in proptest::collection::vec("[-=@a-zA-Z0-9_,./:\"]{0,12}", 0..16)) {
        let os: Vec<OsString> = args.iter().map(OsString::from).collect();
        let _ = plan(&os);
    }

    #[test]
    fn parser_never_panics_on_known_flags(picks in proptest::collection::vec((0usize..TAKES_VALUE.len() + FLAGS.len(), "[a-z0-9=,/.-]{0,8}"), 0..12)) {
        let mut os = Vec::new();
        for (i, v) in picks {
            let f = if i < TAKES_VALUE.len() { TAKES_VALUE[i] } else { FLAGS[i - TAKES_VALUE.len()] };
            os.push(OsString::from(f));
            os.push(OsString::from(v));
        }
        let _ = plan(&os);
    }

    #[test]
    fn predicted_outputs_are_plain_file_names(name in "[a-z_./]{1,10}", extra in "[-a-z0-9./]{0,10}") {
        let os: Vec<OsString> = ["--crate-name", &name, "x.rs", "--crate-type", "lib", "--emit=dep-info,link",
            "--out-dir", "o", "-C", &format!("extra-filename={extra}")].iter().map(OsString::from).collect();
        if let Plan::Cache(p) = plan(&os) {
            for o in p.outputs {
                prop_assert!(cachet_core::entry::is_safe_file_name(&o));
            }
        }
    }
}
