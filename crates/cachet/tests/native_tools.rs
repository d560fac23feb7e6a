//! Compilers and build systems beyond the `cc` crate: `-MMD` dependency files, clang (with a
//! second checkout through `-ffile-prefix-map`), the aarch64 cross gcc, a Makefile with
//! `CC="cachet gcc"` (the autotools shape) and Meson. Each builds cold, cleans, and builds
//! again: the second build restores every object, and what it produces (program output,
//! objects, dependency files) is what the first produced.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cachet_wrapper::journal::{Outcome, Record};

use crate::util::{cachet_bin, copy_tree, run_ok, wait_for_clock_past};

/// Runs `cachet COMPILER ARGS` in `dir` with the cache `cache`.
fn cachet_cc(dir: &Path, cache: &Path, compiler: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(cachet_bin());
    c.arg(compiler)
        .args(args)
        .current_dir(dir)
        .env("CACHET_DIR", cache);
    run_ok(c)
}

fn outcomes(records: &[Record]) -> Vec<Outcome> {
    records.iter().map(|r| r.outcome).collect()
}

/// New journal records since `before`.
fn since(cache: &Path, before: usize) -> Vec<Record> {
    cachet_wrapper::journal::read(cache).split_off(before)
}

/// The files of a Makefile-syntax dependency file's first rule.
fn deps_of(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let first = joined.lines().next().unwrap_or("");
    let (_, deps) = first.split_once(": ").unwrap_or(("", ""));
    deps.split_whitespace().map(str::to_string).collect()
}

/// A source with a user header and a system header.
fn write_sources(dir: &Path) {
    fs::create_dir_all(dir.join("inc")).unwrap();
    fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\n#include \"inc/value.h\"\nint main(void) { printf(\"%d\\n\", VALUE); return 0; }\n",
    )
    .unwrap();
    fs::write(dir.join("inc/value.h"), "#define VALUE 41\n").unwrap();
}

/// `-MMD -MP` compiles are cached: the dependency file lists exactly what the compiler's own
/// `-MMD` lists (system headers left out), a hit restores it and the object, and an edited
/// user header is compiled again. Before, `-MMD` always ran uncached.
#[test]
fn mmd_compiles_are_cached_with_the_users_dependency_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path().join("src"), tmp.path().join("cache"));
    write_sources(&dir);
    let args = ["-MMD", "-MP", "-O1", "-c", "main.c", "-o", "main.o"];
    // The compiler's own answer.
    run_ok({
        let mut c = Command::new("cc");
        c.args(args).current_dir(&dir);
        c
    });
    let plain_d = fs::read_to_string(dir.join("main.d")).unwrap();
    let plain_o = fs::read(dir.join("main.o")).unwrap();
    assert_eq!(deps_of(&plain_d), ["main.c", "inc/value.h"], "{plain_d}");
    for f in ["main.d", "main.o"] {
        fs::remove_file(dir.join(f)).unwrap();
    }

    cachet_cc(&dir, &cache, "cc", &args);
    let miss_d = fs::read_to_string(dir.join("main.d")).unwrap();
    assert_eq!(
        miss_d, plain_d,
        "the -MMD file differs from the compiler's own"
    );
    let miss_o = fs::read(dir.join("main.o")).unwrap();
    for f in ["main.d", "main.o"] {
        fs::remove_file(dir.join(f)).unwrap();
    }
    let before = cachet_wrapper::journal::read(&cache).len();
    cachet_cc(&dir, &cache, "cc", &args);
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::HitLocal]);
    assert_eq!(fs::read_to_string(dir.join("main.d")).unwrap(), plain_d);
    assert_eq!(fs::read(dir.join("main.o")).unwrap(), miss_o);
    // Without -ffile-prefix-map differences (no -g), the object is the plain compiler's.
    assert_eq!(miss_o, plain_o);

    // A `-MD` compile of the same source never restores the `-MMD` file.
    let before = cachet_wrapper::journal::read(&cache).len();
    cachet_cc(
        &dir,
        &cache,
        "cc",
        &["-MD", "-O1", "-c", "main.c", "-o", "main.o"],
    );
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::Miss]);
    assert!(fs::read_to_string(dir.join("main.d"))
        .unwrap()
        .contains("stdio.h"));

    fs::write(dir.join("inc/value.h"), "#define VALUE 42\n").unwrap();
    // Written just now: in the same clock tick as the compile it would be soundly not stored.
    wait_for_clock_past(&dir.join("inc/value.h"));
    let before = cachet_wrapper::journal::read(&cache).len();
    cachet_cc(&dir, &cache, "cc", &args);
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::Miss]);
    run_ok({
        let mut c = Command::new("cc");
        c.args(["main.o", "-o", "main"]).current_dir(&dir);
        c
    });
    let out = run_ok(Command::new(dir.join("main")));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}

/// clang: cold, clean, warm from the cache; then a second checkout at another path gets the
/// same objects through `-ffile-prefix-map` and prints the same.
#[test]
fn clang_objects_are_restored_in_a_second_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let one = tmp.path().join("one");
    write_sources(&one);
    let args = ["-g", "-MD", "-c", "main.c", "-o", "main.o"];
    let build = |dir: &Path| -> String {
        cachet_cc(dir, &cache, "clang", &args);
        run_ok({
            let mut c = Command::new("clang");
            c.args(["main.o", "-o", "main"]).current_dir(dir);
            c
        });
        String::from_utf8_lossy(&run_ok(Command::new(dir.join("main"))).stdout).into_owned()
    };
    assert_eq!(build(&one).trim(), "41");
    let cold_o = fs::read(one.join("main.o")).unwrap();
    fs::remove_file(one.join("main.o")).unwrap();
    let before = cachet_wrapper::journal::read(&cache).len();
    assert_eq!(build(&one).trim(), "41");
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::HitLocal]);
    assert_eq!(fs::read(one.join("main.o")).unwrap(), cold_o);

    let two = tmp.path().join("elsewhere/two");
    copy_tree(&one, &two);
    for f in ["main.o", "main.d", "main"] {
        fs::remove_file(two.join(f)).unwrap();
    }
    let before = cachet_wrapper::journal::read(&cache).len();
    assert_eq!(build(&two).trim(), "41");
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::HitLocal]);
    // The restored dependency file names this checkout's files.
    let d = fs::read_to_string(two.join("main.d")).unwrap();
    assert!(!d.contains(one.to_str().unwrap()), "{d}");
    let stats = cachet_wrapper::stats::read(&cache);
    assert_eq!(stats.languages.get("c").map(|l| l.hits), Some(2));
}

/// The aarch64 cross gcc, by its target-prefixed name: cached, and the restored object is the
/// aarch64 object that was compiled (ELF machine 183), never the host's.
#[test]
fn aarch64_cross_gcc_is_cached_apart_from_the_host_compiler() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path().join("src"), tmp.path().join("cache"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("add.c"),
        "#include <stddef.h>\nsize_t add(size_t a, size_t b) { return a + b; }\n",
    )
    .unwrap();
    let args = ["-O2", "-c", "add.c", "-o", "add.o"];
    let machine = |p: &Path| {
        let b = fs::read(p).unwrap();
        u16::from_le_bytes([b[18], b[19]])
    };
    cachet_cc(&dir, &cache, "cc", &args);
    assert_eq!(machine(&dir.join("add.o")), 62, "x86-64");
    let before = cachet_wrapper::journal::read(&cache).len();
    cachet_cc(&dir, &cache, "aarch64-linux-gnu-gcc", &args);
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::Miss]);
    assert_eq!(machine(&dir.join("add.o")), 183, "aarch64");
    let cold = fs::read(dir.join("add.o")).unwrap();
    fs::remove_file(dir.join("add.o")).unwrap();
    let before = cachet_wrapper::journal::read(&cache).len();
    cachet_cc(&dir, &cache, "aarch64-linux-gnu-gcc", &args);
    assert_eq!(outcomes(&since(&cache, before)), [Outcome::HitLocal]);
    assert_eq!(fs::read(dir.join("add.o")).unwrap(), cold);
}

/// A project of three C files and a Makefile.
fn make_project(dir: &Path) {
    write_sources(dir);
    fs::write(dir.join("twice.c"), "int twice(int x) { return 2 * x; }\n").unwrap();
    fs::write(dir.join("half.c"), "int half(int x) { return x / 2; }\n").unwrap();
    fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\n#include \"inc/value.h\"\nint twice(int);\nint half(int);\nint main(void) { printf(\"%d\\n\", twice(half(VALUE + 1))); return 0; }\n",
    )
    .unwrap();
    // Automake's shape: `$(CC)` with `-MD -MP -MF` into a deps directory.
    fs::write(
        dir.join("Makefile"),
        "OBJS = main.o twice.o half.o\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%.o: %.c\n\t@mkdir -p .deps\n\t$(CC) -O1 -MT $@ -MD -MP -MF .deps/$*.Po -c -o $@ $<\nclean:\n\trm -f prog $(OBJS)\n-include $(wildcard .deps/*.Po)\n",
    )
    .unwrap();
}

fn journal_len(cache: &Path) -> usize {
    cachet_wrapper::journal::read(cache).len()
}

/// `CC="cachet gcc"` in a Makefile build (the autotools shape: `-MD -MP -MF .deps/x.Po`): cold,
/// `make clean`, warm: every compile is restored and the program prints the same.
#[test]
fn make_with_cc_cachet_gcc_restores_every_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path().join("proj"), tmp.path().join("cache"));
    make_project(&dir);
    let cc = format!("{} gcc", cachet_bin().display());
    let make = |target: &str| {
        let mut c = Command::new("make");
        c.arg(format!("CC={cc}"))
            .arg(target)
            .current_dir(&dir)
            .env("CACHET_DIR", &cache);
        run_ok(c);
    };
    make("prog");
    let program =
        || String::from_utf8_lossy(&run_ok(Command::new(dir.join("prog"))).stdout).into_owned();
    assert_eq!(program().trim(), "42");
    let cold = journal_len(&cache);
    make("clean");
    make("prog");
    let warm = since(&cache, cold);
    let compiles: Vec<_> = warm.iter().filter(|r| r.pre_key.is_some()).collect();
    assert_eq!(compiles.len(), 3, "{warm:?}");
    assert!(
        compiles.iter().all(|r| r.outcome == Outcome::HitLocal),
        "{warm:?}"
    );
    assert_eq!(program().trim(), "42");
    assert!(fs::read_to_string(dir.join(".deps/main.Po"))
        .unwrap()
        .contains("inc/value.h"));
}

/// Meson with `CC="cachet cc"`: Meson's own compiler checks go through cachet too; after
/// `ninja clean` every object of the project is restored and the program prints the same.
#[test]
fn meson_with_cc_cachet_restores_every_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache) = (tmp.path().join("proj"), tmp.path().join("cache"));
    make_project(&dir);
    fs::write(
        dir.join("meson.build"),
        "project('tiny', 'c')\nexecutable('prog', 'main.c', 'twice.c', 'half.c')\n",
    )
    .unwrap();
    let build = tmp.path().join("build");
    let run = |program: &str, args: &[&str]| {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(&dir)
            .env("CC", format!("{} cc", cachet_bin().display()))
            .env("CACHET_DIR", &cache);
        run_ok(c)
    };
    let b = build.to_str().unwrap();
    run("meson", &["setup", b]);
    run("ninja", &["-C", b]);
    let program =
        |p: PathBuf| String::from_utf8_lossy(&run_ok(Command::new(p)).stdout).into_owned();
    assert_eq!(program(build.join("prog")).trim(), "42");
    let cold = journal_len(&cache);
    run("ninja", &["-C", b, "clean"]);
    run("ninja", &["-C", b]);
    let warm = since(&cache, cold);
    let objects: Vec<_> = warm
        .iter()
        .filter(|r| r.krate.as_deref().is_some_and(|k| k.ends_with(".c")))
        .collect();
    assert_eq!(objects.len(), 3, "{warm:?}");
    assert!(
        objects.iter().all(|r| r.outcome == Outcome::HitLocal),
        "{warm:?}"
    );
    assert_eq!(program(build.join("prog")).trim(), "42");
}
