//! The rustc command line as cachet understands it, and the decision it leads to.
//!
//! cachet forwards rustc's argv untouched; this module only reads it. Parsing is strict on
//! purpose: an argument it does not know could change the output in a way the key would not
//! see, so anything unknown makes the invocation a pass-through (rustc runs as if cachet were
//! not there) with the reason counted in the statistics. Known flags are normalised into
//! `key_args`: destination-only paths are dropped, `--cfg`/`--check-cfg` are sorted, and
//! everything whose order matters (lint levels, `-C` options) keeps its order.
//!
//! `-C incremental=DIR` is read like any other option: whether the crate is compiled
//! incrementally goes into the key (rustc partitions code differently then), the directory
//! does not (it is rustc's private cache and never reaches an output). See docs/design.md,
//! "Incremental compilation".

mod args;
mod reason;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use args::{CrateType, Emit, EmitKind, Extern, NativeLib, RustcArgs, SearchPath};
pub use reason::PassReason;

/// What a cacheable invocation will write, and where.
#[derive(Clone, Debug)]
pub struct CachePlan {
    /// The parsed arguments.
    pub args: RustcArgs,
    /// The crate name.
    pub crate_name: String,
    /// The input file as given.
    pub input: String,
    /// The out-dir as given (relative paths are relative to the working directory).
    pub out_dir: PathBuf,
    /// The file names of every output, inside `out_dir`.
    pub outputs: Vec<String>,
    /// The dep-info file's name, inside `out_dir`.
    pub dep_info: String,
    /// True when the system linker produces an output (executables, dynamic libraries,
    /// proc-macros): the key then also covers what the link reads.
    pub links: bool,
}

/// What to do with an invocation, with the arguments read to decide it (so nothing reads
/// argv again: the crate name, the kind of crate and the remapping of an uncached linked
/// crate come from here).
#[derive(Clone, Debug)]
pub enum Plan {
    /// Serve from the cache, or compile and store.
    Cache(Box<CachePlan>),
    /// Run rustc unchanged, for this reason.
    PassThrough(PassReason, Box<RustcArgs>),
}

impl Plan {
    /// The arguments read.
    pub fn args(&self) -> &RustcArgs {
        match self {
            Plan::Cache(plan) => &plan.args,
            Plan::PassThrough(_, args) => args,
        }
    }
}

/// Decides whether an invocation can be cached and, if so, which files it writes.
pub fn plan(args: &[OsString]) -> Plan {
    let parsed = RustcArgs::parse(args);
    match plan_parsed(&parsed) {
        Ok(mut p) => {
            p.args = parsed;
            Plan::Cache(Box::new(p))
        }
        Err(reason) => Plan::PassThrough(reason, Box::new(parsed)),
    }
}

/// The plan for `a`, its `args` left empty for the caller to fill (no copy of them is made).
fn plan_parsed(a: &RustcArgs) -> Result<CachePlan, PassReason> {
    if a.query {
        return Err(PassReason::Query);
    }
    if let Some(problem) = a.problem.clone() {
        return Err(problem);
    }
    if a.inputs.len() != 1 {
        return Err(PassReason::NoSingleInput);
    }
    // `--test` builds the test harness: an executable, whatever `--crate-type` says.
    let crate_types = if a.test {
        vec![CrateType::Bin]
    } else {
        a.crate_types.clone()
    };
    if crate_types.is_empty() {
        return Err(PassReason::NoCrateType);
    }
    if let Some(flavor) = a.codegen_value("linker-flavor") {
        if crate_types.iter().any(|t| t.is_linked()) && !matches!(flavor, "gcc" | "gnu-cc") {
            // Other flavors call a linker directly, whose search rules cachet does not model.
            return Err(PassReason::UnsupportedCodegenOption(format!(
                "linker-flavor={flavor}"
            )));
        }
    }
    if let Some(e) = a.emits.iter().find(|e| e.kind == EmitKind::Other) {
        return Err(PassReason::UnsupportedEmit(e.name.clone()));
    }
    if a.output.is_some() || a.emits.iter().any(|e| e.path.is_some()) {
        return Err(PassReason::ExplicitOutputPath);
    }
    if let Some(t) = &a.target {
        if t.contains("windows") || t.contains("wasm") || t.contains("apple") {
            return Err(PassReason::UnsupportedTarget(t.clone()));
        }
    }
    let Some(out_dir) = a.out_dir.clone() else {
        return Err(PassReason::NoOutDir);
    };
    let Some(crate_name) = a.crate_name.clone() else {
        return Err(PassReason::NoCrateName);
    };
    if !a.emits(EmitKind::DepInfo) {
        return Err(PassReason::NoDepInfo);
    }
    let extra = a.codegen_value("extra-filename").unwrap_or("");
    let stem = format!("{crate_name}{extra}");
    let mut outputs = Vec::new();
    // rustc's default emit is `link` when `--emit` is absent, but cargo always passes it and we
    // require dep-info, so `emits` is never empty here.
    for e in &a.emits {
        match e.kind {
            EmitKind::Link => {
                for t in &crate_types {
                    // File names on the Unix-like targets cachet accepts (see the check above).
                    let name = match t {
                        CrateType::Lib | CrateType::Rlib => format!("lib{stem}.rlib"),
                        CrateType::Staticlib => format!("lib{stem}.a"),
                        CrateType::Bin => stem.clone(),
                        CrateType::Dylib | CrateType::Cdylib | CrateType::ProcMacro => {
                            format!("lib{stem}.so")
                        }
                    };
                    if !outputs.contains(&name) {
                        outputs.push(name);
                    }
                }
            }
            EmitKind::Metadata => outputs.push(format!("lib{stem}.rmeta")),
            EmitKind::DepInfo => outputs.push(format!("{stem}.d")),
            EmitKind::Other => unreachable!("rejected above"),
        }
    }
    outputs.dedup();
    if outputs
        .iter()
        .any(|o| !cachet_core::entry::is_safe_file_name(o))
    {
        return Err(PassReason::UnknownArgument(
            "--crate-name with a path separator".into(),
        ));
    }
    Ok(CachePlan {
        crate_name,
        links: crate_types.iter().any(|t| t.is_linked()) && a.emits(EmitKind::Link),
        input: a.inputs[0].clone(),
        out_dir,
        dep_info: format!("{stem}.d"),
        outputs,
        args: RustcArgs::default(),
    })
}

impl CachePlan {
    /// The out-dir resolved against the working directory.
    pub fn out_dir_in(&self, cwd: &Path) -> PathBuf {
        cwd.join(&self.out_dir)
    }
}

#[cfg(test)]
mod tests;
