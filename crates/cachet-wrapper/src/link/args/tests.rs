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

/// What rustc emits (Linux GNU and musl targets, with the defaults and the usual `-C` options)
/// and what build scripts and `RUSTFLAGS` commonly add (`-C link-arg(s)`, cc-rs'
/// `cargo:rustc-link-arg`, hardening flags of distributions): each must be understood, or
/// every program using it is compiled on every build.
const REAL_WORLD: &[&[&str]] = &[
    // rustc, x86_64-unknown-linux-gnu, lld by default.
    &[
        "-m64",
        "-Wl,--as-needed",
        "-Wl,-Bstatic",
        "-Wl,-Bdynamic",
        "-lgcc_s",
        "-lutil",
        "-lrt",
        "-lpthread",
        "-lm",
        "-ldl",
        "-lc",
    ],
    &[
        "-Wl,--eh-frame-hdr",
        "-Wl,-z,noexecstack",
        "-L",
        "/s/lib",
        "-o",
        "/t/app",
        "-Wl,--gc-sections",
        "-pie",
        "-Wl,-z,relro,-z,now",
        "-nodefaultlibs",
    ],
    &[
        "-B/s/bin/gcc-ld",
        "-fuse-ld=lld",
        "-Wl,-O1",
        "-Wl,--strip-debug",
        "-Wl,--strip-all",
        "-s",
    ],
    // musl, static, self-contained start files.
    &[
        "-nostartfiles",
        "-static-pie",
        "-Wl,--no-undefined-version",
        "-Wl,-z,text",
        "-static",
        "-no-pie",
    ],
    // cdylib, dylib, -C rpath, -C prefer-dynamic.
    &[
        "-shared",
        "-Wl,-soname=libx.so",
        "-Wl,--version-script=/t/list",
        "-Wl,-rpath,$ORIGIN/../lib",
        "-Wl,--enable-new-dtags",
        "-Wl,-z,origin",
        "-Wl,--whole-archive",
        "-lfoo",
        "-Wl,--no-whole-archive",
    ],
    // Build scripts and RUSTFLAGS.
    &[
        "-Wl,--no-as-needed",
        "-Wl,-Bsymbolic",
        "-Wl,-Bsymbolic-functions",
        "-Wl,--export-dynamic",
        "-rdynamic",
        "-Wl,--allow-multiple-definition",
    ],
    &[
        "-Wl,-z,stack-size=1048576",
        "-Wl,--defsym=__x=0",
        "-Wl,--wrap=malloc",
        "-Wl,--undefined=keep",
        "-Wl,-u,keep2",
        "-Wl,--exclude-libs,ALL",
    ],
    &[
        "-Wl,--build-id=sha1",
        "-Wl,--hash-style=gnu",
        "-Wl,--icf=all",
        "-Wl,--threads=4",
        "-Wl,--compress-debug-sections=zlib",
        "-Wl,--sort-common",
        "-Wl,--warn-unresolved-symbols",
    ],
    &[
        "-Wl,--no-rosegment",
        "-Wl,-z,pack-relative-relocs",
        "-Wl,--pack-dyn-relocs=relr",
        "-Wl,-z,separate-code",
        "-Wl,--fatal-warnings",
        "-Wl,--no-undefined",
        "-Wl,--lto-O3",
    ],
    &[
        "-Wl,--no-warn-rwx-segments",
        "-Wl,--no-warn-execstack",
        "-Wl,--error-limit=0",
        "-Wl,--color-diagnostics",
        "-Wl,--start-group",
        "-la",
        "-lb",
        "-Wl,--end-group",
        "-Wl,-Map=/t/app.map",
    ],
    &[
        "-fstack-protector-strong",
        "-fstack-clash-protection",
        "-fcf-protection=full",
        "-flto=thin",
        "-march=x86-64-v3",
        "-O2",
        "-g",
        "-Wl,--unresolved-symbols=ignore-all",
    ],
    &[
        "-Xlinker",
        "--gc-sections",
        "-Xlinker",
        "-rpath",
        "-Xlinker",
        "/opt/lib",
        "-static-libgcc",
        "-pthread",
        "-lstdc++",
        "-l:libbundled.a",
    ],
];

#[test]
fn real_world_link_args_are_understood() {
    for args in REAL_WORLD {
        if let Err(e) = words(args) {
            panic!("{args:?}: {e}");
        }
    }
}

#[test]
fn an_unknown_option_naming_a_file_is_refused_in_every_form() {
    for bad in [
        &["-Wl,--remap-inputs-file=/t/remap"][..],
        &["-Wl,--remap-inputs-file,/t/remap"],
        &["-Xlinker", "--remap-inputs-file=/t/remap"],
        &["-Wl,--thinlto-cache-dir=/t/cache"],
        &["-specs=/t/link.specs"],
        &["-specs", "/t/link.specs"],
        &["-fsanitize=address"],
        &["-fprofile-generate"],
        &["--coverage"],
        &["-fopenmp"],
        &["-stdlib=libc++"],
        &["--rtlib=compiler-rt"],
        &["-mllvm", "-x"],
    ] {
        assert_eq!(words(bad), Err(Refusal::LinkOptionNotUnderstood), "{bad:?}");
    }
}
