use super::*;

fn words(args: &[&str]) -> Result<LinkWords, Refusal> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    classify(&args, Path::new("/nonexistent"))
}

#[test]
fn every_form_of_a_file_argument_is_found() {
    let w = words(&[
        "-Wl,/t/bare.o",
        "-Xlinker",
        "/t/xlinker.o",
        "-Wl,--library-path=/d,--library=x",
        "-Wl,--dynamic-list,/t/list",
        "-Wl,--version-script=/t/vs",
        "-Xlinker",
        "-T",
        "-Xlinker",
        "script.ld",
        "-T",
        "other.ld",
        "-Wl,-L/e,-ly",
        "-L",
        "/f",
        "-lz",
        "plain.o",
    ])
    .unwrap();
    assert_eq!(
        w.files,
        ["/t/bare.o", "/t/xlinker.o", "/t/list", "/t/vs", "plain.o"]
            .map(PathBuf::from)
            .to_vec()
    );
    assert_eq!(w.search, ["/d", "/e", "/f"].map(PathBuf::from).to_vec());
    assert_eq!(
        w.libs.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
        ["x", "y", "z"]
    );
    assert_eq!(w.scripts, ["script.ld", "other.ld"]);
}

#[test]
fn rustc_default_commands_are_understood() {
    let w = words(&[
        "-m64",
        "/tmp/rustcX/symbols.o",
        "-Wl,--as-needed",
        "-Wl,-Bstatic",
        "-lfoo",
        "-Wl,-Bdynamic",
        "-lgcc_s",
        "-B/sys/gcc-ld",
        "-fuse-ld=lld",
        "-Wl,--eh-frame-hdr",
        "-Wl,-z,noexecstack",
        "-o",
        "out",
        "-Wl,--gc-sections",
        "-pie",
        "-Wl,-z,relro,-z,now",
        "-Wl,-O1",
        "-Wl,--strip-debug",
        "-nodefaultlibs",
        "-Wl,-rpath,$ORIGIN/../lib,--enable-new-dtags,-z,origin",
    ])
    .unwrap();
    assert_eq!(w.libs[0], ("foo".to_string(), LibMode::Static));
    assert_eq!(w.libs[1], ("gcc_s".to_string(), LibMode::Dynamic));
    assert_eq!(w.embedded_paths, ["$ORIGIN/../lib"]);
    assert_eq!(w.fuse_ld.as_deref(), Some("lld"));
}

#[test]
fn unknown_forms_are_refused() {
    for bad in [
        &["-Wl,--frobnicate"][..],
        &["-specs=x"],
        &["-fprofile-use=x.profdata"],
        &["-Wl,--sysroot=/x"],
        &["-Wl,-rpath"],
        &["-Xlinker"],
    ] {
        assert!(words(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn response_files_are_inputs_and_read() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("args"), "'/t/a b.o' -Wl,@linker\n-lq").unwrap();
    fs::write(dir.path().join("linker"), "--version-script \"/t/v s\"").unwrap();
    let w = classify(&["@args".to_string()], dir.path()).unwrap();
    assert_eq!(
        w.files,
        ["args", "/t/a b.o", "linker", "/t/v s"]
            .map(PathBuf::from)
            .to_vec()
    );
    assert_eq!(w.libs, vec![("q".to_string(), LibMode::Dynamic)]);
    assert!(classify(&["@missing".to_string()], dir.path()).is_err());
}
