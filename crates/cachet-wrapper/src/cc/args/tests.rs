//! Unit tests of the command-line reader: what is cached, with which key and outputs, and
//! what runs unchanged with which reason.

use super::*;

fn p(compiler: &str, args: &[&str]) -> Result<CcPlan, PassReason> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    plan(compiler, &args, &|_| None)
}

#[test]
fn reads_a_cc_crate_compile() {
    let plan = p(
        "cc",
        &[
            "-O0",
            "-ffunction-sections",
            "-fPIC",
            "-g",
            "-m64",
            "-I",
            "/src/include",
            "-Wall",
            "-DFOO=1",
            "-o",
            "/out/x.o",
            "-c",
            "/src/x.c",
        ],
    )
    .unwrap();
    assert_eq!(plan.source, "/src/x.c");
    assert_eq!(plan.language, Language::C);
    assert_eq!(plan.output, "/out/x.o");
    assert_eq!(plan.user_depfile, None);
    assert!(plan.key_args.contains(&KeyArg::Path("/src/include".into())));
    assert!(plan.key_args.contains(&KeyArg::Literal("-DFOO=1".into())));
    assert!(!plan
        .key_args
        .iter()
        .any(|a| matches!(a, KeyArg::Literal(s) | KeyArg::Path(s) if s.contains("x.o"))));
    assert_eq!(
        plan.include_dirs,
        vec![(SearchKind::Normal, "/src/include".into())]
    );
}

#[test]
fn languages_and_depfiles() {
    assert_eq!(p("gcc", &["-c", "a.S"]).unwrap().language, Language::AsmCpp);
    assert_eq!(p("gcc", &["-c", "a.s"]).unwrap().language, Language::Asm);
    assert_eq!(p("g++", &["-c", "a.c"]).unwrap().language, Language::Cxx);
    assert_eq!(p("gcc", &["-c", "a.cpp"]).unwrap().language, Language::Cxx);
    assert_eq!(
        p("gcc", &["-x", "c++", "-c", "a.inc"]).unwrap().language,
        Language::Cxx
    );
    assert_eq!(p("gcc", &["-c", "a.c"]).unwrap().output, "a.o");
    let cmake = p(
        "cc",
        &[
            "-MD",
            "-MT",
            "o/a.c.o",
            "-MF",
            "o/a.c.o.d",
            "-o",
            "o/a.c.o",
            "-c",
            "/s/a.c",
        ],
    )
    .unwrap();
    assert_eq!(cmake.user_depfile.as_deref(), Some("o/a.c.o.d"));
    let default = p("cc", &["-MD", "-o", "o/a.o", "-c", "a.c"]).unwrap();
    assert_eq!(default.user_depfile.as_deref(), Some("o/a.d"));
    assert!(!default.user_depfile_without_system);
    // `-MMD` is cached: the compile writes the full list, the user gets it without system
    // headers; it is part of the key, so a `-MD` compile never restores its file.
    let mmd = p("cc", &["-MMD", "-MP", "-o", "o/a.o", "-c", "a.c"]).unwrap();
    assert_eq!(mmd.user_depfile.as_deref(), Some("o/a.d"));
    assert!(mmd.user_depfile_without_system && mmd.phony_targets);
    assert!(mmd.key_args.contains(&KeyArg::Literal("-MMD".into())));
}

#[test]
fn everything_else_runs_unchanged_with_a_reason() {
    let cases: &[(&[&str], PassReason)] = &[
        (&["a.o", "-o", "prog"], PassReason::NotCompile),
        (&["--version"], PassReason::NotCompile),
        (&["-E", "a.c"], PassReason::Preprocess),
        (&["-M", "a.c"], PassReason::Preprocess),
        (&["-S", "a.c"], PassReason::AssemblyOutput),
        (&["-c", "a.c", "b.c"], PassReason::SeveralSources),
        (&["-c", "a.f90"], PassReason::UnsupportedLanguage),
        (&["-c", "a.c", "--frobnicate"], PassReason::UnknownOption),
        (&["-c", "a.c", "-march=native"], PassReason::NativeCpu),
        (&["-c", "a.c", "-fprofile-use=x"], PassReason::Profile),
        (&["-c", "@args"], PassReason::ResponseFile),
        (&["-c", "a.c", "-o", "-"], PassReason::Stdio),
        (&["-c", "a.c", "-specs=x"], PassReason::UntrackedFile),
        (
            &["-c", "a.c", "-Wa,-adhln=x.lst"],
            PassReason::UntrackedFile,
        ),
    ];
    for (args, reason) in cases {
        assert_eq!(p("cc", args).err(), Some(*reason), "{args:?}");
    }
    let env = |k: &str| (k == "DEPENDENCIES_OUTPUT").then(|| "x".to_string());
    assert_eq!(
        plan("cc", &["-c".into(), "a.c".into()], &env).err(),
        Some(PassReason::DependencyEnv)
    );
}
