//! The pre-key of a C, C++ or assembler compile: everything known before it runs.
//!
//! It covers the compiler's identity and the name it was called by (`g++` compiles `.c` as
//! C++), the language, the normalised arguments (the object and dependency file paths left
//! out, include directories and the source written relative to the anchors of `paths.rs`),
//! the working directory, whether path maps were added, and the environment variables the
//! compiler reads. The files the compile reads come from its own dependency file and form the
//! entry key through a manifest, as on the rustc side (see `inputs.rs` and `manifest.rs`).

use std::path::Path;

use crate::key::KeyInputs;
use crate::paths::Anchors;

use super::args::{CcPlan, KeyArg};
use super::identity::CcCompiler;

/// Version of the C key schema.
pub const CC_KEY_SCHEMA: &str = "cachet-cc-key-v1";

/// Variables gcc and clang read that can change the object or the diagnostics.
pub const COMPILER_ENV: &[&str] = &[
    "CPATH",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "OBJC_INCLUDE_PATH",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
    "SOURCE_DATE_EPOCH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "GCC_COLORS",
    "GCC_URLS",
    "TERM_URLS",
    "REALGCC",
    "SDKROOT",
    "MACOSX_DEPLOYMENT_TARGET",
];

/// Computes the pre-key inputs.
pub fn pre_key(
    plan: &CcPlan,
    compiler: &CcCompiler,
    invoked: &str,
    cwd: &Path,
    anchors: &Anchors,
    remap: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> KeyInputs {
    let mut k = KeyInputs::default();
    let mut push = |label: &str, value: String| k.0.push((label.to_string(), value));
    push("schema", CC_KEY_SCHEMA.into());
    push("compiler", compiler.digest.to_hex());
    let name = Path::new(invoked)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    push("compiler-name", name);
    push("language", plan.language.label().into());
    push("remap", remap.to_string());
    push("cwd", anchors.normalize(&cwd.to_string_lossy()));
    push("input", norm_path(anchors, cwd, &plan.source));
    for a in &plan.key_args {
        match a {
            KeyArg::Literal(s) => push("arg", s.clone()),
            KeyArg::Path(p) => push("arg", norm_path(anchors, cwd, p)),
        }
    }
    // The user's dependency file names the object as its target.
    if let Some(d) = &plan.user_depfile {
        push("depfile-target", norm_path(anchors, cwd, &plan.output));
        push("depfile", norm_path(anchors, cwd, d));
    }
    for name in COMPILER_ENV {
        if let Some(v) = env(name) {
            push(&format!("env {name}"), v);
        }
    }
    k
}

/// A path argument written relative to the anchors (relative paths stay as given: the working
/// directory is in the key).
fn norm_path(anchors: &Anchors, _cwd: &Path, p: &str) -> String {
    anchors.normalize(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::Anchor;
    use cachet_core::Digest;

    #[test]
    fn checkouts_share_a_key_and_defines_stay_literal() {
        let compiler = CcCompiler {
            path: "/usr/bin/cc".into(),
            digest: Digest::of(b"gcc"),
            prefix_map: true,
            system_dirs: vec![],
        };
        let key_in = |root: &str| {
            let anchors = Anchors(vec![Anchor {
                name: "WORKSPACE",
                path: root.into(),
            }]);
            let args: Vec<String> = [
                "-I",
                &format!("{root}/include"),
                &format!("-DDATA=\"{root}/data\""),
                "-o",
                &format!("{root}/out/a.o"),
                "-c",
                &format!("{root}/a.c"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let plan = super::super::args::plan("cc", &args, &|_| None).unwrap();
            pre_key(
                &plan,
                &compiler,
                "cc",
                Path::new(root),
                &anchors,
                true,
                &|_| None,
            )
        };
        let (a, b) = (key_in("/one"), key_in("/two"));
        let differing: Vec<_> = a.0.iter().filter(|l| !b.0.contains(l)).collect();
        assert_eq!(differing.len(), 1, "{differing:?}");
        assert!(differing[0].1.contains("-DDATA"));
    }
}
