//! What a finished compile read and wrote: the manifest candidate (every input with its
//! hash, checked to be unchanged since the compile started) and the outputs, opened before the
//! entry is keyed. Anything that makes storing unsound ends in a not-stored reason.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tracing::info;

use super::context::{input_policy, location, Call};
use crate::call::PerCheckout;
use crate::clock::ClockMarker;
use crate::dep_info;
use crate::file_hash::Fingerprint;
use crate::manifest::Candidate;
use crate::reason::{NotStoredReason, PerCheckoutReason};

/// On a filesystem without a clock marker, an input changed less than this before the compile
/// started cannot be proven unchanged during it: file timestamps come from the kernel's coarse
/// clock, which lags the precise one by up to a tick (10 ms at HZ=100).
const SETTLE_SLOP_NS: i64 = 10_000_000;

/// True when an input with this fingerprint may have changed after the compile started.
fn changed_since_start(fp: &Fingerprint, marker: Option<&ClockMarker>, start_ns: i64) -> bool {
    match marker {
        Some(m) if m.dev() == fp.dev() => !m.is_after(fp),
        _ => fp.changed_ns() >= start_ns - SETTLE_SLOP_NS,
    }
}

/// True when a link input may have changed after the linker read it. The files a link reads
/// are mostly outputs of the crate's dependencies, finished moments before this call started,
/// often in the marker's own clock tick; the linker runs at the end of the compile, many ticks
/// later, so only a change in a later tick than the marker's can be one it did not see.
fn link_input_changed(fp: &Fingerprint, marker: Option<&ClockMarker>, start_ns: i64) -> bool {
    match marker {
        Some(m) if m.dev() == fp.dev() => m.is_before(fp),
        _ => changed_since_start(fp, marker, start_ns),
    }
}

/// What the link read (see `link.rs`), checked like dep-info files on lookup.
fn link_inputs(
    call: &Call<'_>,
    link_command: Option<&str>,
) -> Result<crate::link::LinkInputs, NotStoredReason> {
    let command =
        crate::link::parse_command(link_command.ok_or(NotStoredReason::LinkCommandUnknown)?)
            .ok_or(NotStoredReason::LinkCommandUnreadable)?;
    let path_env = std::env::var("PATH").ok();
    let linker = crate::link::resolve_linker(
        &call.plan.args,
        call.compiler,
        &call.cwd,
        path_env.as_deref(),
    )
    .ok_or(NotStoredReason::LinkerNotFound)?;
    let sysroot = call
        .plan
        .args
        .sysroot
        .as_ref()
        .map(|s| call.cwd.join(s))
        .unwrap_or_else(|| call.compiler.sysroot.clone());
    let extra = call.plan.args.codegen_value("extra-filename").unwrap_or("");
    let stem = format!("{}{extra}", call.plan.crate_name);
    let records = call.tiers.local.compiler_records();
    let ctx = crate::link::LinkContext {
        cwd: &call.cwd,
        out_dir: &call.out_dir,
        stem: &stem,
        compiler: call.compiler,
        sysroot: &sysroot,
        linker: &linker,
        anchors: &call.anchors,
        hasher: &call.hasher,
        records: Some(&records),
    };
    crate::link::link_inputs(&command, &ctx)
}

/// An output file of the compile, open since before the entry was keyed.
pub(super) struct Output {
    pub(super) name: String,
    pub(super) mode: u32,
    pub(super) file: fs::File,
    /// Its fingerprint when opened: the entry is abandoned if the file changes while read.
    pub(super) fingerprint: Fingerprint,
}

/// What a compile read (the manifest candidate), what it wrote, and why its entry hits only
/// in this checkout, if it does.
pub(super) type Collected = (Candidate, Vec<Output>, Option<PerCheckout>);

/// Collects what the compile read (the manifest candidate) and opens what it wrote.
/// `Err` carries the reason the result is not stored.
pub(super) fn collect(
    call: &Call<'_>,
    start_ns: i64,
    link_command: Option<&str>,
) -> Result<Collected, NotStoredReason> {
    let (plan, cwd, out_dir, hasher) = (call.plan, &call.cwd, &call.out_dir, &call.hasher);
    let marker = call.marker.as_ref();
    let dep_text = fs::read_to_string(out_dir.join(&plan.dep_info))
        .map_err(|_| NotStoredReason::DepInfoUnreadable)?;
    let deps = dep_info::parse(&dep_text);
    let mut files = Vec::with_capacity(deps.files.len());
    for f in &deps.files {
        let path = cwd.join(f);
        let meta = fs::metadata(&path).map_err(|_| NotStoredReason::InputVanished)?;
        if !meta.is_file() {
            return Err(NotStoredReason::InputNotAFile);
        }
        if changed_since_start(&Fingerprint::of(&meta), marker, start_ns) {
            // rustc may have read the old contents; what we would hash now is not what it saw.
            return Err(NotStoredReason::InputModified);
        }
        let digest = hasher
            .hash(&path)
            .map_err(|_| NotStoredReason::InputUnreadable)?;
        // A change while we were hashing would leave a hash of neither version.
        let after = fs::metadata(&path).map_err(|_| NotStoredReason::InputVanished)?;
        if Fingerprint::of(&after) != Fingerprint::of(&meta) {
            return Err(NotStoredReason::InputModified);
        }
        files.push((call.anchors.normalize(f), digest));
    }
    let mut location_dependent = false;
    if plan.links {
        let inputs = link_inputs(call, link_command)?;
        location_dependent = inputs.location_dependent;
        for (shown, digest) in inputs.files {
            if digest != crate::link::ABSENT {
                let path = cwd.join(call.anchors.denormalize(&shown));
                let meta = fs::metadata(&path).map_err(|_| NotStoredReason::LinkInputVanished)?;
                if link_input_changed(&Fingerprint::of(&meta), marker, start_ns) {
                    return Err(NotStoredReason::LinkInputModified);
                }
            }
            files.push((shown, digest));
        }
    }
    // A lookup hashes only files the input policy accepts (see manifest.rs): an entry naming
    // another one (`include_str!("/etc/…")`) could never be hit, only stored again.
    let policy = input_policy(call);
    for (shown, digest) in &files {
        if *digest != crate::link::ABSENT {
            policy
                .check(&policy.resolve(shown))
                .map_err(crate::manifest::Unsuitable::not_stored_reason)?;
        }
    }
    let mut outputs = Vec::with_capacity(plan.outputs.len());
    for name in &plan.outputs {
        let file =
            fs::File::open(out_dir.join(name)).map_err(|_| NotStoredReason::OutputMissing)?;
        let meta = file
            .metadata()
            .map_err(|_| NotStoredReason::OutputMissing)?;
        outputs.push(Output {
            name: name.clone(),
            mode: meta.permissions().mode() & 0o7777,
            fingerprint: Fingerprint::of(&meta),
            file,
        });
    }
    // A variable read by `env!` whose value holds an anchored path is keyed relative to the
    // anchor only when every read of it is proven to be an `include!` of a file (see
    // env_proof.rs); otherwise its literal value is keyed and the crate is compiled per
    // checkout.
    let anchored: Vec<&str> = deps
        .env
        .iter()
        .filter(|(_, v)| v.as_ref().is_some_and(|v| call.anchors.normalize(v) != *v))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut per_checkout = None;
    let proven = !anchored.is_empty()
        && {
            let paths: Vec<PathBuf> = deps.files.iter().map(|f| cwd.join(f)).collect();
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let verdict =
                crate::env_proof::prove_only_included(&refs, &anchored, plan.args.loads_crates());
            if let Err(why) = verdict {
                info!(krate = %plan.crate_name, vars = ?anchored, %why, "path-valued env! keyed literally");
                per_checkout = Some(PerCheckout {
                    label: PerCheckoutReason::PathValuedEnv,
                    reason: format!(
                        "env! {} keyed literally (hits only in this checkout): {why}",
                        anchored.join(", ")
                    ),
                });
            }
            verdict.is_ok()
        };
    let env: Vec<(String, Option<String>)> = deps
        .env
        .into_iter()
        .map(|(name, value)| {
            let value = value.map(|v| {
                if proven {
                    call.anchors.normalize(&v)
                } else {
                    v
                }
            });
            (name, value)
        })
        .collect();
    let mut env = env;
    // A proc-macro that could run here and is not proven not to read cargo's path variables
    // may have baked this checkout's path in (macro_proof.rs): stored for this checkout only,
    // unless no macro of another crate can run in this crate at all.
    let records = call.config.dir.join("proc-macro-proofs");
    if let Some(why) = crate::macro_proof::may_read_checkout_path(&plan.args, cwd, &records) {
        let paths: Vec<PathBuf> = deps.files.iter().map(|f| cwd.join(f)).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        if crate::env_proof::prove_only_included(&refs, &[], true).is_err() {
            info!(krate = %plan.crate_name, %why, "stored for this checkout only");
            location_dependent = true;
            per_checkout.get_or_insert(PerCheckout {
                label: PerCheckoutReason::ProcMacro,
                reason: format!("{why}: hits only in this checkout"),
            });
        }
    }
    if location_dependent {
        // The outputs name this checkout's directories: reuse them only here.
        env.push((
            crate::manifest::LOCATION.to_string(),
            Some(location(&call.anchors, out_dir)),
        ));
        per_checkout.get_or_insert(PerCheckout {
            label: PerCheckoutReason::LinkOutput,
            reason: "the link output names this checkout's directories (rpath): hits only in \
                     this checkout"
                .to_string(),
        });
    }
    Ok((Candidate { files, env }, outputs, per_checkout))
}
