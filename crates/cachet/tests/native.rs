//! C, C++ and assembly through cachet: build scripts' `cc` compiles, CMake's launcher, the
//! musl cross compiler. Real compilers are counted with a logging `cc` first on `PATH`, not
//! with cachet's own counters, and every program is compared with a plain build's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cachet_wrapper::journal::{Outcome, Record};

use crate::util::{cachet_bin, copy_tree, fixture, run_ok, write_script, Project};

/// The pinned native workload beside the project.
fn workload_native() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/workloads/native");
    assert!(
        p.join("Cargo.lock").is_file(),
        "the pinned workload is missing at {}",
        p.display()
    );
    p
}

/// A directory holding a `cc` that logs its arguments to `log`, one line per run, and runs
/// the real one.
fn logging_cc(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("logbin");
    fs::create_dir_all(&bin).unwrap();
    write_script(
        &bin.join("cc"),
        &format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec /usr/bin/cc \"$@\"\n",
            log.display()
        ),
    );
    bin
}

/// Compiles in a log: runs with `-c`. The `cc` crate's own probes are not the build's
/// compiles: its `-E` family probe, and its flag checks (`flag_check.c`), which it runs with
/// the bare compiler, never through a wrapper (cc's `is_flag_supported`).
fn compiles_in(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == "-c"))
        .filter(|l| !l.ends_with("/flag_check.c"))
        .map(str::to_string)
        .collect()
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The documented environment for the `cc` crate: cachet as a known wrapper of the host's
/// compiler.
fn cc_env(path: &str) -> Vec<(String, String)> {
    let bin = cachet_bin().display().to_string();
    vec![
        ("CC_KNOWN_WRAPPER_CUSTOM".into(), "cachet".into()),
        ("CC_x86_64_unknown_linux_gnu".into(), format!("{bin} cc")),
        ("CXX_x86_64_unknown_linux_gnu".into(), format!("{bin} c++")),
        ("PATH".into(), path.into()),
    ]
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Journal records of C, C++ and assembly compiles (their `krate` is the source path).
fn c_records(records: &[Record]) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| {
            r.krate
                .as_deref()
                .is_some_and(|k| k.ends_with(".c") || k.ends_with(".S") || k.ends_with(".cpp"))
        })
        .collect()
}

/// Builds `p` through cachet and checks that no C compiler ran (the logging `cc` wrote no
/// compile to `log`) and that every C call was restored from L1; returns how many were.
fn build_restoring_all_c(p: &Project, env: &[(String, String)], log: &Path, what: &str) -> usize {
    let before = p.journal().len();
    p.cachet_cargo(&["build", "--locked", "--offline"], &as_refs(env));
    let records = p.journal().split_off(before);
    assert_eq!(compiles_in(log), Vec::<String>::new(), "{what} compiled C");
    let c = c_records(&records);
    assert!(
        c.iter().all(|r| r.outcome == Outcome::HitLocal),
        "{what}: {:?}",
        c.iter().map(|r| r.outcome).collect::<Vec<_>>()
    );
    c.len()
}

/// The native workload (zstd, SQLite, ring, zlib): cold through cachet, `cargo clean`, warm;
/// then a second checkout with a second `CARGO_HOME`; then a musl cross build set up by
/// `cachet setup`. The warm builds run no C compile at all, and every program prints what
/// the plain build's prints.
#[test]
fn native_workload_warm_builds_run_no_c_compile() {
    let p = Project::copy_of(&workload_native());
    p.cachet_cargo(&["fetch", "--locked"], &[]);
    p.plain_cargo(&["build", "--locked", "--offline"], &[]);
    let plain = p.run_program("target-plain", "debug", "wl-native");

    let log = p.tmp.path().join("cc.log");
    let path = path_with(&logging_cc(p.tmp.path(), &log));
    let env = cc_env(&path);
    p.cachet_cargo(&["build", "--locked", "--offline"], &as_refs(&env));
    assert_eq!(p.run_program("target", "debug", "wl-native"), plain);
    let cold = compiles_in(&log);
    assert!(
        cold.len() > 50,
        "the cold build compiled {} C files",
        cold.len()
    );
    let stats = p.stats();
    for lang in ["c", "asm", "rust"] {
        assert!(
            stats.languages.get(lang).is_some_and(|l| l.calls > 0),
            "no {lang} calls counted: {:?}",
            stats.languages
        );
    }

    fs::remove_file(&log).unwrap();
    p.cachet_cargo(&["clean"], &[]);
    let restored = build_restoring_all_c(&p, &env, &log, "the warm build");
    assert!(
        restored > 50,
        "the warm build restored {restored} C objects"
    );
    assert_eq!(p.run_program("target", "debug", "wl-native"), plain);

    // Another checkout at another path, with another CARGO_HOME (the C sources of zstd,
    // SQLite, ring and zlib live under it): still no C compile, the same program.
    let q_root = p.tmp.path().join("elsewhere/second checkout");
    copy_tree(&workload_native(), &q_root);
    let home = p.tmp.path().join("other-cargo-home");
    let q = Project {
        tmp: tempfile::tempdir().unwrap(),
        root: q_root,
        cache: p.cache.clone(),
    };
    let mut q_env = env;
    q_env.push(("CARGO_HOME".into(), home.display().to_string()));
    q.cachet_cargo(&["fetch", "--locked"], &as_refs(&q_env));
    build_restoring_all_c(&q, &q_env, &log, "the second checkout");
    assert_eq!(q.run_program("target", "debug", "wl-native"), plain);

    // A musl cross build right after, set up with `cachet setup`: the musl target's own
    // compiler runs (through cachet), never the host's objects.
    let config = p.tmp.path().join("cargo-config.toml");
    run_ok({
        let mut c = Command::new(cachet_bin());
        c.args(["setup", "--config"]).arg(&config);
        c
    });
    let written = fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("CC_x86_64_unknown_linux_musl"),
        "{written}"
    );
    let before = p.journal().len();
    p.cachet_cargo(
        &[
            "build",
            "--locked",
            "--offline",
            "--target",
            "x86_64-unknown-linux-musl",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("PATH", &path)],
    );
    let musl = p.journal().split_off(before);
    let c = c_records(&musl);
    assert!(
        c.len() > 50 && c.iter().all(|r| r.outcome == Outcome::Miss),
        "the musl build's C compiles: {:?}",
        c.iter().map(|r| r.outcome).collect::<Vec<_>>()
    );
    assert_eq!(
        p.run_program("target/x86_64-unknown-linux-musl", "debug", "wl-native"),
        plain
    );
}

/// Each input of a build script's C compile, changed one at a time, reaches the program
/// exactly as in a plain build: a header, a `-D` from `CFLAGS`, the compiler itself (a
/// wrapper script with the same `--version`), an assembly file, a generated header, a header
/// that shadows another; then a second checkout at another path restores every C object.
#[test]
fn each_c_input_change_shows_as_in_a_plain_build() {
    let p = Project::copy_of(&fixture("cc-fixture"));
    let bin = p.tmp.path().join("compiler");
    fs::create_dir_all(&bin).unwrap();
    let cc = bin.join("cc");
    write_script(&cc, "#!/bin/sh\nexec /usr/bin/cc \"$@\"\n");
    let path = path_with(&bin);
    let env = cc_env(&path);
    let mut extra: Vec<(String, String)> = Vec::new();
    let check = |extra: &[(String, String)], expect: &str| -> Vec<Record> {
        let mut plain_env = vec![("PATH".to_string(), path.clone())];
        plain_env.extend_from_slice(extra);
        p.plain_cargo(&["build", "--locked", "--offline"], &as_refs(&plain_env));
        let plain = p.run_program("target-plain", "debug", "ccfix");
        assert_eq!(plain.trim(), expect);
        let mut with = env.clone();
        with.extend_from_slice(extra);
        let before = p.journal().len();
        p.cachet_cargo(&["build", "--locked", "--offline"], &as_refs(&with));
        assert_eq!(p.run_program("target", "debug", "ccfix"), plain);
        p.journal().split_off(before)
    };
    let first = check(&extra, "config=1 gen=7 define=0 wrapped=0 asm=5");
    assert_eq!(c_records(&first).len(), 2);

    fs::write(
        p.root.join("c/include/config.h"),
        "#define CONFIG_VALUE 2\n",
    )
    .unwrap();
    let header = check(&extra, "config=2 gen=7 define=0 wrapped=0 asm=5");
    // `cachet explain` names the header that made the C file miss.
    assert!(
        c_records(&header).iter().any(|r| r
            .changes
            .as_ref()
            .is_some_and(|c| c.iter().any(|ch| ch.name.ends_with("config.h")))),
        "{header:?}"
    );

    extra.push(("CFLAGS".into(), "-DFIX_DEFINE=3".into()));
    check(&extra, "config=2 gen=7 define=3 wrapped=0 asm=5");

    // The same path and `--version`, another program: the build script reruns because a
    // source is touched, and the compiler's identity must change.
    write_script(&cc, "#!/bin/sh\nexec /usr/bin/cc -DWRAPPED=4 \"$@\"\n");
    let lib = p.root.join("c/lib.c");
    fs::write(&lib, fs::read_to_string(&lib).unwrap()).unwrap();
    check(&extra, "config=2 gen=7 define=3 wrapped=4 asm=5");

    let asm = p.root.join("c/value.S");
    fs::write(&asm, fs::read_to_string(&asm).unwrap().replace("$5", "$6")).unwrap();
    check(&extra, "config=2 gen=7 define=3 wrapped=4 asm=6");

    extra.push(("FIX_GEN".into(), "9".into()));
    let last = check(&extra, "config=2 gen=9 define=3 wrapped=4 asm=6");
    assert!(c_records(&last).iter().any(|r| r.outcome == Outcome::Miss));

    // Back to an earlier state: both objects come from the cache.
    fs::write(
        p.root.join("c/include/config.h"),
        "#define CONFIG_VALUE 1\n",
    )
    .unwrap();
    extra.clear();
    write_script(&cc, "#!/bin/sh\nexec /usr/bin/cc \"$@\"\n");
    fs::write(&asm, fs::read_to_string(&asm).unwrap().replace("$6", "$5")).unwrap();
    let back = check(&extra, "config=1 gen=7 define=0 wrapped=0 asm=5");
    let c = c_records(&back);
    assert!(
        c.len() == 2 && c.iter().all(|r| r.outcome == Outcome::HitLocal),
        "{c:?}"
    );

    // A header that appears beside the C file shadows the generated one found through `-I`
    // (the includer's directory is searched first): it must be compiled, not restored.
    let shadow = p.root.join("c/gen.h");
    fs::write(&shadow, "#define GEN_VALUE 8\n").unwrap();
    let shadowed = check(&extra, "config=1 gen=8 define=0 wrapped=0 asm=5");
    assert!(c_records(&shadowed)
        .iter()
        .any(|r| r.outcome == Outcome::Miss));
    fs::remove_file(&shadow).unwrap();

    // A second checkout at another path restores both objects and prints the same.
    let q_root = p.tmp.path().join("another/checkout");
    copy_tree(&p.root, &q_root);
    let _ = fs::remove_dir_all(q_root.join("target-plain"));
    let q = Project {
        tmp: tempfile::tempdir().unwrap(),
        root: q_root,
        cache: p.cache.clone(),
    };
    let before = q.journal().len();
    q.cachet_cargo(&["build", "--locked", "--offline"], &as_refs(&env));
    let c_q = q.journal().split_off(before);
    let c = c_records(&c_q);
    assert!(
        c.len() == 2 && c.iter().all(|r| r.outcome == Outcome::HitLocal),
        "{c:?}"
    );
    assert_eq!(
        q.run_program("target", "debug", "ccfix").trim(),
        "config=1 gen=7 define=0 wrapped=0 asm=5"
    );
}

/// CMake with `CMAKE_C_COMPILER_LAUNCHER=cachet` (and the C++ one): a rebuild after a clean
/// restores the C and the C++ object, and CMake's own dependency files, named by CMake's
/// `-MD -MF`, are restored too.
#[test]
fn cmake_launcher_caches_c_and_cxx() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.13)\nproject(tiny C CXX)\nadd_executable(tiny main.c twice.cpp)\n",
    )
    .unwrap();
    fs::write(
        src.join("main.c"),
        "#include <stdio.h>\nint twice(int);\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n",
    )
    .unwrap();
    fs::write(
        src.join("twice.cpp"),
        "#include <vector>\nextern \"C\" int twice(int x) { std::vector<int> v{x, x}; return v[0] + v[1]; }\n",
    )
    .unwrap();
    let build = tmp.path().join("build");
    let cache = tmp.path().join("cache");
    let launcher = cachet_bin();
    let cmake = |args: &[&str]| {
        let mut c = Command::new("cmake");
        c.args(args).env("CACHET_DIR", &cache);
        run_ok(c)
    };
    cmake(&[
        "-S",
        src.to_str().unwrap(),
        "-B",
        build.to_str().unwrap(),
        &format!("-DCMAKE_C_COMPILER_LAUNCHER={}", launcher.display()),
        &format!("-DCMAKE_CXX_COMPILER_LAUNCHER={}", launcher.display()),
    ]);
    cmake(&["--build", build.to_str().unwrap()]);
    cmake(&["--build", build.to_str().unwrap(), "--target", "clean"]);
    let before = cachet_wrapper::journal::read(&cache).len();
    cmake(&["--build", build.to_str().unwrap()]);
    let records = cachet_wrapper::journal::read(&cache).split_off(before);
    let c = c_records(&records);
    assert_eq!(c.len(), 2, "{records:?}");
    assert!(c.iter().all(|r| r.outcome == Outcome::HitLocal), "{c:?}");
    let out = run_ok(Command::new(build.join("tiny")));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let stats = cachet_wrapper::stats::read(&cache);
    assert_eq!(stats.languages.get("c").map(|l| l.hits), Some(1));
    assert_eq!(stats.languages.get("c++").map(|l| l.hits), Some(1));
    // CMake's dependency file was restored, naming this build's files.
    let mut depfiles = Vec::new();
    find_files(&build, ".d", &mut depfiles);
    assert!(
        depfiles.iter().any(|d| fs::read_to_string(d)
            .unwrap_or_default()
            .contains("twice.cpp")),
        "{depfiles:?}"
    );
}

fn find_files(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            find_files(&p, suffix, out);
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
}

/// A C compile through a server that does not answer still succeeds, and is stored locally.
#[test]
fn c_compile_through_an_unreachable_server_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.c"), "int a(void) { return 1; }\n").unwrap();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Command::new(cachet_bin());
    c.args(["cc", "-c", "a.c", "-o", "a.o"])
        .current_dir(tmp.path())
        .env("CACHET_DIR", tmp.path().join("cache"))
        .env("CACHET_SERVER", format!("http://127.0.0.1:{port}"));
    let out = run_ok(c);
    assert!(tmp.path().join("a.o").is_file(), "{out:?}");
    let records = cachet_wrapper::journal::read(&tmp.path().join("cache"));
    assert_eq!(records.last().map(|r| r.outcome), Some(Outcome::Miss));
}

/// A compile that fails is replayed as it is (exit code, the compiler's error) and never
/// stored: the next call compiles again and fails again.
#[test]
fn c_compile_failure_is_replayed_and_never_stored() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("bad.c"), "int bad(void) { return nope; }\n").unwrap();
    let cache = tmp.path().join("cache");
    for _ in 0..2 {
        let out = Command::new(cachet_bin())
            .args(["cc", "-c", "bad.c", "-o", "bad.o"])
            .current_dir(tmp.path())
            .env("CACHET_DIR", &cache)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nope"),
            "{out:?}"
        );
        assert!(!tmp.path().join("bad.o").exists());
    }
    let outcomes: Vec<Outcome> = cachet_wrapper::journal::read(&cache)
        .iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![Outcome::CompileFailed, Outcome::CompileFailed]
    );
}
