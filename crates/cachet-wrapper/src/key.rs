//! The cache key: every input that can change rustc's output, and nothing that cannot.
//!
//! The key has two stages, as ccache's direct mode does:
//!
//! 1. The **pre-key** covers what is known before compiling: the key schema, the compiler's
//!    identity and its standard library for the target, the normalised arguments (with
//!    destination-only paths left out), the working directory and input path, extern crates
//!    and bundled native libraries by content, a custom target spec by content, and the
//!    environment variables that cargo sets for the crate or that rustc itself reads.
//! 2. The **entry key** adds what only the compile itself reveals: the files rustc read
//!    (sources, modules, `include_str!` files) with their content hashes, and the environment
//!    variables read through `env!`/`option_env!` with their values, both from dep-info.
//!
//! A manifest (see `manifest.rs`) maps a pre-key to the file sets seen before, so a hit is
//! found by hashing files, without running rustc at all.
//!
//! Every input is recorded as a labelled line (`KeyInputs`), so a miss can be explained by
//! comparing the lines of two keys.

use std::path::{Path, PathBuf};

use cachet_core::{Digest, Hasher};

use crate::compiler::{self, Compiler};
use crate::config::ExtraKey;
use crate::file_hash::FileHasher;
use crate::invocation::CachePlan;
use crate::link;
use crate::paths::Anchors;

/// Version of the key schema. Bump it whenever what goes into a key changes meaning.
pub const KEY_SCHEMA: &str = "cachet-key-v2";

/// Environment variables rustc itself reads that can change its output or diagnostics.
const RUSTC_ENV: &[&str] = &[
    "RUSTC_BOOTSTRAP",
    "RUSTC_LOG",
    "RUST_TARGET_PATH",
    "RUSTC_FORCE_RUSTC_VERSION",
    "RUSTC_OVERRIDE_VERSION_STRING",
    "RUSTC_CTFE_BACKTRACE",
    "OUT_DIR",
];

/// Variables cargo sets for every crate it compiles. They are in the key even when not read
/// through `env!`, because proc-macros commonly read them with `std::env::var`, which
/// dep-info does not record. Variables a user sets for cargo's own configuration
/// (`CARGO_INCREMENTAL`, `CARGO_PROFILE_*`, ...) are not: cargo turns those into arguments.
fn is_cargo_set(name: &str) -> bool {
    name == "CARGO"
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || name.starts_with("__CARGO")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// True when the environment variable `name` is part of every key.
pub fn is_keyed_env(name: &str) -> bool {
    is_cargo_set(name) || RUSTC_ENV.contains(&name)
}

/// The labelled inputs of a key, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyInputs(pub Vec<(String, String)>);

impl KeyInputs {
    fn push(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.0.push((label.into(), value.into()));
    }

    /// The digest of all inputs.
    pub fn digest(&self) -> Digest {
        let mut h = Hasher::new(KEY_SCHEMA);
        for (label, value) in &self.0 {
            h.str(label, value);
        }
        h.finish()
    }
}

/// A pre-key could not be computed: the invocation is compiled but not cached.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An input file could not be read.
    #[error("failed to hash {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The linker of a linked crate was not found.
    #[error("linker {name} not found")]
    LinkerNotFound {
        /// `-C linker` or `cc`.
        name: String,
    },
    /// A `CACHET_KEY_FILES` glob is not a valid pattern.
    #[error("CACHET_KEY_FILES pattern {glob:?} is not valid: {message}")]
    BadGlob {
        /// The pattern as given.
        glob: String,
        /// What is wrong with it.
        message: String,
    },
    /// A GNU thin archive in a native search directory: its members are other files.
    #[error("thin archive {path} in a native search directory")]
    ThinArchive {
        /// The archive.
        path: PathBuf,
    },
    /// A bundled native library was not found in the `-L` directories.
    #[error("native library {name} not found in the -L search paths")]
    NativeLibNotFound {
        /// The library name.
        name: String,
    },
}

/// Everything the pre-key needs besides the plan.
pub struct KeyContext<'a> {
    /// The compiler.
    pub compiler: &'a Compiler,
    /// rustc's working directory.
    pub cwd: &'a Path,
    /// The process environment.
    pub env: &'a [(String, String)],
    /// Hashes files.
    pub hasher: &'a FileHasher,
    /// Where the compiler records live.
    pub compiler_records: Option<&'a Path>,
    /// Directories written relative in the key (see `paths.rs`).
    pub anchors: &'a Anchors,
    /// Inputs the user adds (`CACHET_KEY_ENV`, `CACHET_KEY_FILES`).
    pub extra: &'a ExtraKey,
}

fn hash_file(ctx: &KeyContext<'_>, path: &Path) -> Result<Digest, KeyError> {
    let full = ctx.cwd.join(path);
    ctx.hasher
        .hash(&full)
        .map_err(|source| KeyError::Unreadable { path: full, source })
}

/// Computes the pre-key inputs of a cacheable invocation.
pub fn pre_key(plan: &CachePlan, ctx: &KeyContext<'_>) -> Result<KeyInputs, KeyError> {
    let a = &plan.args;
    let mut k = KeyInputs::default();
    k.push("schema", KEY_SCHEMA);
    k.push("compiler", ctx.compiler.digest.to_hex());
    // The standard library linked for the target. A custom target spec is hashed by content.
    let target = a
        .target
        .clone()
        .unwrap_or_else(|| ctx.compiler.host.clone());
    let target_name = if target.ends_with(".json") {
        k.push("target-spec", hash_file(ctx, Path::new(&target))?.to_hex());
        Path::new(&target)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        if let Some(spec) = find_target_spec(&target, ctx) {
            k.push("target-spec", hash_file(ctx, &spec)?.to_hex());
        }
        target
    };
    let sysroot = a
        .sysroot
        .clone()
        .map(|s| ctx.cwd.join(s))
        .unwrap_or_else(|| ctx.compiler.sysroot.clone());
    let libs =
        compiler::target_libs_digest(&sysroot, &target_name, ctx.compiler_records, ctx.hasher)
            .map_err(|source| KeyError::Unreadable {
                path: sysroot.clone(),
                source,
            })?;
    k.push("target-libs", libs.to_hex());
    let norm = |s: &str| ctx.anchors.normalize(s);
    k.push("paths", "anchored-v1");
    k.push("cwd", norm(&ctx.cwd.to_string_lossy()));
    k.push("input", norm(&plan.input));
    for arg in &a.key_args {
        k.push("arg", norm(arg));
    }
    for ext in &a.externs {
        if let Some(path) = &ext.path {
            k.push(
                format!("extern {}", ext.name),
                hash_file(ctx, path)?.to_hex(),
            );
        }
    }
    for lib in a.native_libs.iter().filter(|l| l.is_bundled()) {
        let file =
            find_native_lib(plan, lib, ctx.cwd).ok_or_else(|| KeyError::NativeLibNotFound {
                name: lib.name.clone(),
            })?;
        k.push(
            format!("native-lib {}", lib.name),
            hash_file(ctx, &file)?.to_hex(),
        );
    }
    for (path, digest) in searched_files(plan, ctx)? {
        k.push(
            format!("searched {}", norm(&path.to_string_lossy())),
            digest.to_hex(),
        );
    }
    if plan.links {
        // What the link reads beyond rustc's inputs; the rest is learnt from the compile.
        let linker = linker_of(plan, ctx)?;
        k.push(
            "linker",
            format!("{} {}", linker.display(), hash_file(ctx, &linker)?.to_hex()),
        );
        let tools =
            link::tools_digest(ctx.compiler, &target_name, ctx.compiler_records, ctx.hasher)
                .map_err(|source| KeyError::Unreadable {
                    path: ctx.compiler.sysroot.clone(),
                    source,
                })?;
        k.push("link-tools", tools.to_hex());
    }
    extra_inputs(&mut k, plan, ctx)?;
    let mut env: Vec<&(String, String)> = ctx
        .env
        .iter()
        .filter(|(n, _)| is_keyed_env(n) || (plan.links && link::LINK_ENV.contains(&n.as_str())))
        .collect();
    env.sort();
    for (name, value) in env {
        k.push(format!("env {name}"), norm(value));
    }
    Ok(k)
}

/// The inputs the user adds to the key of this crate: variables by value, and the files
/// matching each glob (relative to the crate's `CARGO_MANIFEST_DIR`) by path and content. The
/// glob itself is keyed too, so a glob that matches nothing still separates the entries.
fn extra_inputs(k: &mut KeyInputs, plan: &CachePlan, ctx: &KeyContext<'_>) -> Result<(), KeyError> {
    let var = |name: &str| {
        ctx.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for item in ctx
        .extra
        .env
        .iter()
        .filter(|s| s.applies_to(&plan.crate_name))
    {
        let value = match var(&item.value) {
            Some(v) => format!("set {v}"),
            None => "unset".to_string(),
        };
        k.push(format!("key-env {}", item.value), value);
    }
    let base = var("CARGO_MANIFEST_DIR")
        .map(|d| ctx.cwd.join(d))
        .unwrap_or_else(|| ctx.cwd.to_path_buf());
    for item in ctx
        .extra
        .files
        .iter()
        .filter(|s| s.applies_to(&plan.crate_name))
    {
        k.push("key-glob", &item.value);
        let pattern = base.join(&item.value);
        let mut found: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
            .map_err(|e| KeyError::BadGlob {
                glob: item.value.clone(),
                message: e.msg.to_string(),
            })?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        for path in found {
            let digest = hash_file(ctx, &path)?;
            k.push(
                format!(
                    "key-file {}",
                    ctx.anchors.normalize(&path.to_string_lossy())
                ),
                digest.to_hex(),
            );
        }
    }
    Ok(())
}

/// The linker program of a linked crate, as rustc will find it.
pub fn linker_of(plan: &CachePlan, ctx: &KeyContext<'_>) -> Result<PathBuf, KeyError> {
    let path_env = ctx
        .env
        .iter()
        .find(|(n, _)| n == "PATH")
        .map(|(_, v)| v.as_str());
    link::resolve_linker(&plan.args, ctx.compiler, ctx.cwd, path_env).ok_or_else(|| {
        KeyError::LinkerNotFound {
            name: plan
                .args
                .codegen_value("linker")
                .unwrap_or("cc")
                .to_string(),
        }
    })
}

/// Files rustc may find by searching `-L` directories itself, with their content hashes; a
/// file added to, changed in or removed from such a directory changes the key.
///
/// - **Crates** named by `extern crate foo;` without `--extern` are searched in `-L crate=` and
///   `-L all=` (`-L DIR` given in `RUSTFLAGS`): every `lib*.rlib`, `lib*.rmeta` and `lib*.so`
///   there. (`-L dependency=` directories, cargo's, hold only the transitive dependencies of
///   `--extern` crates, which rustc accepts only with the exact hash their dependents record.)
/// - **Static libraries** bundled into a Rust library by a `#[link(name = "foo", kind =
///   "static")]` attribute in its source (the `-sys` crate pattern), which no argument names:
///   every archive in `-L native=` and `-L all=`, by name (`.a`, `.lib`) or by its `!<arch>`
///   magic (a `+verbatim` name can be any file name).
fn searched_files(
    plan: &CachePlan,
    ctx: &KeyContext<'_>,
) -> Result<Vec<(PathBuf, Digest)>, KeyError> {
    use crate::invocation::{CrateType, EmitKind};
    let a = &plan.args;
    let bundles = a.emits(EmitKind::Link)
        && a.crate_types
            .iter()
            .any(|t| matches!(t, CrateType::Lib | CrateType::Rlib | CrateType::Staticlib));
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for sp in &a.search_paths {
        let crates = matches!(sp.kind.as_str(), "all" | "crate");
        let archives = bundles && matches!(sp.kind.as_str(), "all" | "native");
        if !crates && !archives {
            continue;
        }
        let dir = ctx.cwd.join(&sp.path);
        for (name, _) in compiler::list_files(&dir) {
            let path = dir.join(&name);
            let is_crate = crates
                && name.starts_with("lib")
                && [".rlib", ".rmeta", ".so"].iter().any(|e| name.ends_with(e));
            let is_archive = archives && is_archive(&path, &name)?;
            if (is_crate || is_archive) && seen.insert(path.clone()) {
                let digest = hash_file(ctx, &path)?;
                out.push((path, digest));
            }
        }
    }
    Ok(out)
}

/// True for a static archive rustc could bundle: named `*.a` or `*.lib`, or starting with the
/// archive magic. A thin archive (members stored as paths) cannot be keyed by its content.
fn is_archive(path: &Path, name: &str) -> Result<bool, KeyError> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if read.is_ok() && &magic == b"!<thin>\n" {
        return Err(KeyError::ThinArchive {
            path: path.to_path_buf(),
        });
    }
    Ok(name.ends_with(".a") || name.ends_with(".lib") || (read.is_ok() && &magic == b"!<arch>\n"))
}

/// The file of a bundled static library, searched as rustc does in `-L native=`/`-L all=`.
fn find_native_lib(
    plan: &CachePlan,
    lib: &crate::invocation::NativeLib,
    cwd: &Path,
) -> Option<PathBuf> {
    let file = if lib.is_verbatim() {
        lib.name.clone()
    } else {
        format!("lib{}.a", lib.name)
    };
    plan.args
        .search_paths
        .iter()
        .filter(|s| s.kind == "native" || s.kind == "all")
        .map(|s| cwd.join(&s.path).join(&file))
        .find(|p| p.is_file())
}

/// A target spec file for a target given by name (`RUST_TARGET_PATH` or the sysroot).
fn find_target_spec(target: &str, ctx: &KeyContext<'_>) -> Option<PathBuf> {
    let file = format!("{target}.json");
    let from_env = ctx
        .env
        .iter()
        .find(|(n, _)| n == "RUST_TARGET_PATH")
        .and_then(|(_, v)| {
            std::env::split_paths(v)
                .map(|d| d.join(&file))
                .find(|p| p.is_file())
        });
    from_env.or_else(|| {
        let p = ctx
            .compiler
            .sysroot
            .join("lib/rustlib")
            .join(target)
            .join("target.json");
        p.is_file().then_some(p)
    })
}

/// The entry key: the pre-key plus the files and variables the compile read.
pub fn entry_key(
    pre: &Digest,
    files: &[(String, Digest)],
    env: &[(String, Option<String>)],
) -> Digest {
    let mut h = Hasher::new("cachet-entry-key-v1");
    h.digest("pre-key", pre);
    for (path, digest) in files {
        h.str("file", path);
        h.digest("content", digest);
    }
    for (name, value) in env {
        h.str("env", name);
        match value {
            Some(v) => h.str("set", v),
            None => h.str("unset", ""),
        };
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_key_separates_set_from_unset_and_files() {
        let pre = Digest::of(b"p");
        let f = vec![("src/lib.rs".to_string(), Digest::of(b"a"))];
        let a = entry_key(&pre, &f, &[("X".into(), Some(String::new()))]);
        let b = entry_key(&pre, &f, &[("X".into(), None)]);
        assert_ne!(a, b);
        let g = vec![("src/lib.rs".to_string(), Digest::of(b"b"))];
        assert_ne!(entry_key(&pre, &f, &[]), entry_key(&pre, &g, &[]));
    }

    #[test]
    fn keyed_env_is_what_cargo_sets_and_rustc_reads() {
        assert!(is_keyed_env("CARGO_PKG_VERSION"));
        assert!(is_keyed_env("CARGO_MANIFEST_DIR"));
        assert!(is_keyed_env("RUSTC_BOOTSTRAP"));
        assert!(is_keyed_env("OUT_DIR"));
        assert!(!is_keyed_env("CARGO_MAKEFLAGS"));
        assert!(!is_keyed_env("CARGO_INCREMENTAL"));
        assert!(!is_keyed_env("CARGO_REGISTRY_TOKEN"));
        assert!(!is_keyed_env("HOME"));
    }
}
