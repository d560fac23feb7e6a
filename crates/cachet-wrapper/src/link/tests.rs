use std::fs;
use std::path::Path;

use cachet_core::Digest;

use super::driver::in_path;
use super::search::script_inputs;
use super::*;
use crate::compiler::Compiler;
use crate::file_hash::FileHasher;
use crate::paths::Anchors;
use crate::reason::NotStoredReason;

#[test]
fn parses_rustc_link_commands() {
    let text =
        r#"LC_ALL="C" PATH="/a:/b" "cc" "-m64" "/t/x.o" "-Wl,-Bstatic" "q\"uote\\d" "\u{e9}""#;
    let c = parse_command(text).unwrap();
    assert_eq!(
        c.env,
        vec![
            ("LC_ALL".into(), "C".into()),
            ("PATH".into(), "/a:/b".into())
        ]
    );
    assert_eq!(c.program, "cc");
    assert_eq!(
        c.args,
        vec!["-m64", "/t/x.o", "-Wl,-Bstatic", "q\"uote\\d", "é"]
    );
    assert_eq!(parse_command(r#""cc" "\xff""#), None);
    assert_eq!(parse_command(r#""cc" unquoted"#), None);
    assert_eq!(parse_command(r#""cc" "open"#), None);
}

/// A link context for `cc` from PATH, with a made-up sysroot and out-dir.
fn with_context<T>(f: impl FnOnce(&LinkContext<'_>, &Path) -> T) -> T {
    let path_env = "/usr/local/bin:/usr/bin:/bin";
    let cc = in_path("cc", Some(path_env))
        .and_then(|p| fs::canonicalize(p).ok())
        .expect("a C compiler driver `cc` on PATH (scripts/setup.sh installs gcc)");
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path().join("sysroot");
    let out_dir = dir.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let compiler = Compiler {
        path: sysroot.join("bin/rustc"),
        version_verbose: String::new(),
        sysroot: sysroot.clone(),
        host: "x86_64-unknown-linux-gnu".into(),
        digest: Digest::of(b"rustc"),
    };
    let hasher = FileHasher::new(None, None);
    let anchors = Anchors::default();
    let ctx = LinkContext {
        cwd: dir.path(),
        out_dir: &out_dir,
        stem: "app-1234",
        compiler: &compiler,
        sysroot: &sysroot,
        linker: &cc,
        anchors: &anchors,
        hasher: &hasher,
        records: None,
    };
    f(&ctx, dir.path())
}

fn command(args: &[&str]) -> LinkCommand {
    LinkCommand {
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        program: "cc".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

#[test]
fn libraries_resolve_as_the_linker_does_and_earlier_probes_must_stay_absent() {
    with_context(|ctx, dir| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("libfoo.a"), b"!<arch>\nfoo").unwrap();
        let inputs = link_inputs(
            &command(&[
                "-L",
                "a",
                "-L",
                "b",
                "-Wl,-Bstatic",
                "-lfoo",
                "-o",
                "out/app",
            ]),
            ctx,
        )
        .unwrap()
        .files;
        let get = |p: &Path| {
            inputs
                .iter()
                .find(|(k, _)| Path::new(k) == p)
                .map(|(_, d)| *d)
        };
        assert_eq!(get(&a.join("libfoo.a")), Some(ABSENT));
        assert_eq!(get(&b.join("libfoo.a")), Some(Digest::of(b"!<arch>\nfoo")));
        // Static mode: no shared library was looked for.
        assert_eq!(get(&a.join("libfoo.so")), None);
        // The driver's own start files are inputs too.
        assert!(
            inputs.iter().any(|(k, _)| k.ends_with("crti.o")),
            "{inputs:?}"
        );
    });
}

#[test]
fn what_cannot_be_identified_is_not_stored() {
    with_context(|ctx, _| {
        assert_eq!(
            link_inputs(&command(&["/nonexistent/dir/x.o"]), ctx),
            Err(NotStoredReason::LinkInputMissing)
        );
        assert_eq!(
            link_inputs(&command(&["-Wl,--sysroot=/elsewhere"]), ctx),
            Err(NotStoredReason::LinkerOptionNamesFiles)
        );
        assert_eq!(
            link_inputs(&command(&["-lno_such_library_anywhere"]), ctx),
            Err(NotStoredReason::NativeLibNotFound)
        );
        // Files rustc made for this link and removed are skipped, not missing.
        let temp = ctx.out_dir.join("rustcAbC123/symbols.o");
        assert!(link_inputs(&command(&[temp.to_str().unwrap()]), ctx).is_ok());
        let mut other = command(&[]);
        other.program = "/bin/true".into();
        assert_eq!(
            link_inputs(&other, ctx),
            Err(NotStoredReason::LinkerDiffers)
        );
    });
}

#[test]
fn reads_linker_scripts_like_libc_so() {
    let script = "/* GNU ld script\n   Use the shared library. */\nOUTPUT_FORMAT(elf64-x86-64)\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc_nonshared.a  AS_NEEDED ( /lib64/ld-linux-x86-64.so.2 ) )\n";
    assert_eq!(
        script_inputs(script),
        vec![
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc_nonshared.a",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
    assert_eq!(script_inputs("INPUT(-lfoo)"), vec!["-lfoo"]);
}
