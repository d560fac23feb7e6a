//! What one cacheable call works with, gathered once, and the two views of it that lookup
//! and store share: where the call is (its location) and which files may be its inputs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::call::CallState;
use crate::clock::ClockMarker;
use crate::compiler::Compiler;
use crate::config::Config;
use crate::driver::Programs;
use crate::file_hash::FileHasher;
use crate::invocation::CachePlan;
use crate::manifest::InputPolicy;
use crate::paths::Anchors;
use crate::tiers::Tiers;

/// Everything one cacheable call works with, gathered once.
pub(super) struct Call<'a> {
    pub(super) config: &'a Config,
    pub(super) plan: &'a CachePlan,
    /// What cargo asked to run: rustc, or a workspace wrapper and rustc.
    pub(super) programs: &'a Programs<'a>,
    pub(super) args: &'a [OsString],
    /// The compiler's identity.
    pub(super) compiler: &'a Compiler,
    /// L1 and L2.
    pub(super) tiers: Tiers<'a>,
    /// Hashes inputs, remembering large settled files.
    pub(super) hasher: FileHasher,
    /// The filesystem clock before anything was hashed or compiled.
    pub(super) marker: Option<ClockMarker>,
    /// Directories written relative in keys and remapped in outputs.
    pub(super) anchors: Anchors,
    pub(super) cwd: PathBuf,
    pub(super) out_dir: PathBuf,
    /// The name its explain records are kept under (see [`explain_name`]).
    pub(super) explain_name: String,
    /// What the caller holds: output started, the tiers' events.
    pub(super) state: &'a CallState,
}

/// Where this call's outputs go and its anchors are, as one value: a candidate whose outputs
/// embed the checkout's location records it under [`crate::manifest::LOCATION`], and matches
/// only where it is the same.
pub(super) fn location(anchors: &Anchors, out_dir: &Path) -> String {
    let mut s = format!("out-dir={}", out_dir.display());
    for (name, path) in anchors.pairs() {
        s.push_str(&format!("\n{name}={path}"));
    }
    s
}

/// The name a crate's explain records are kept under (`explain.rs`, the last few per name):
/// the crate's name, followed by its package's when the two differ. Every package's build script
/// is the crate `build_script_build`, and programs and tests are often named alike in several
/// packages (`cli`, `integration`); under the crate's name alone, a workspace's dozens of build
/// scripts evicted one another's records, and a miss was compared with another package's crate
/// ("its build.rs is new, another's is gone") instead of with its own earlier compile. A
/// library named after its package (`my-pkg` as `my_pkg`) keeps the plain name. A package
/// name cannot hold a `.`, so the two parts cannot be mistaken for another crate's name.
pub(super) fn explain_name(crate_name: &str, package: Option<&str>) -> String {
    match package {
        Some(package) if !package.is_empty() && package.replace('-', "_") != crate_name => {
            format!("{crate_name}.{package}")
        }
        _ => crate_name.to_string(),
    }
}

/// Which files a manifest candidate may name for this call (see `manifest.rs`).
pub(super) fn input_policy(call: &Call<'_>) -> InputPolicy {
    let anchored = |name: &str| call.anchors.paths_named(name);
    let mut sources = anchored("WORKSPACE");
    sources.extend(anchored("CARGO_HOME"));
    sources.push(call.cwd.clone());
    let mut built = anchored("TARGET");
    built.push(call.out_dir.clone());
    built.push(call.compiler.sysroot.clone());
    built.extend(call.plan.args.sysroot.iter().map(|s| call.cwd.join(s)));
    built.extend(
        call.plan
            .args
            .search_paths
            .iter()
            .map(|s| call.cwd.join(&s.path)),
    );
    built.extend(std::env::var_os("OUT_DIR").map(PathBuf::from));
    InputPolicy::new(&call.cwd, &call.anchors, &sources, &built, call.plan.links)
}
