//! A link's inputs, put together: the command rustc printed is checked against the linker the
//! pre-key resolved, its words are classified (`args.rs`), the C driver is asked for its search
//! directories, start files and programs (`driver.rs`), and every file, library, script and
//! program is resolved and hashed (`search.rs`). Anything that cannot be identified is a
//! reason not to store.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use cachet_core::Digest;

use super::args::{classify, LibMode, LinkWords};
use super::command::LinkCommand;
use super::driver::{driver_info, driver_output, in_path};
use super::search::{Collector, LinkContext};
use crate::compiler;
use crate::paths::Anchors;
use crate::reason::NotStoredReason;

/// True when a path the linker writes into the output (an rpath, the dynamic linker) depends
/// on where the checkout is: it names a directory under an anchor, or is relative to the
/// output's own location (`$ORIGIN`), which moves with the out-dir.
fn embeds_location(value: &str, anchors: &Anchors) -> bool {
    value.split(':').any(|part| {
        part.contains("$ORIGIN")
            || part.contains("${ORIGIN}")
            || (Path::new(part).is_absolute() && anchors.normalize(part) != part)
    })
}

/// What a link read, and whether its output depends on the checkout's location.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkInputs {
    /// Files as stored (anchored path, digest), [`ABSENT`](crate::absence::ABSENT) for probes that found nothing.
    pub files: Vec<(String, Digest)>,
    /// The linker writes a path that depends on where the checkout is (see [`embeds_location`]):
    /// the result may be reused only at the same location.
    pub location_dependent: bool,
}

/// The inputs of the link rustc printed as `command`.
pub fn link_inputs(
    command: &LinkCommand,
    ctx: &LinkContext<'_>,
) -> Result<LinkInputs, NotStoredReason> {
    let path_env = command
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let program =
        in_path(&command.program, path_env).and_then(|p| fs::canonicalize(ctx.cwd.join(p)).ok());
    if program.as_deref() != Some(ctx.linker) {
        // rustc ran another linker than the one in the pre-key.
        return Err(NotStoredReason::LinkerDiffers);
    }
    let driver_digest = ctx
        .hasher
        .hash(ctx.linker)
        .map_err(|_| NotStoredReason::LinkerUnreadable)?;
    let info = driver_info(ctx.linker, &driver_digest, &command.env, ctx.records)
        .ok_or(NotStoredReason::LinkerNotADriver)?;
    let words = classify(&command.args, ctx.cwd)?;
    let LinkWords {
        files,
        search,
        libs,
        prefixes,
        fuse_ld,
        scripts,
        embedded_paths,
        all_static,
    } = words;
    let location_dependent = embedded_paths
        .iter()
        .any(|v| embeds_location(v, ctx.anchors));
    let mut dirs = search;
    dirs.extend(info.search_dirs.iter().cloned());
    let mut c = Collector {
        ctx,
        dirs: dirs.clone(),
        seen: HashSet::new(),
        inputs: Vec::new(),
    };
    for f in &files {
        let p = ctx.cwd.join(f);
        if !p.exists() && !c.generated(&p) {
            return Err(NotStoredReason::LinkInputMissing);
        }
        c.file(&p)?;
    }
    // -B directories: the driver looks for its programs there first.
    for dir in &prefixes {
        let dir = ctx.cwd.join(dir);
        if c.in_sysroot(&dir) {
            continue;
        }
        for (name, _) in compiler::list_files(&dir) {
            c.file(&dir.join(name))?;
        }
    }
    if let Some(ld) = fuse_ld {
        let name = format!("ld.{ld}");
        if !prefixes
            .iter()
            .any(|d| ctx.cwd.join(d).join(&name).is_file())
        {
            let answer = driver_output(
                ctx.linker,
                &command.env,
                &format!("-print-prog-name={name}"),
            )
            .ok_or(NotStoredReason::LinkerProgramNotFound)?;
            if !c.program(&answer, &info.program_dirs, path_env)? {
                return Err(NotStoredReason::LinkerProgramNotFound);
            }
        }
    }
    // `-R FILE` reads a file's symbols (`-R DIR` is an rpath).
    for value in &embedded_paths {
        let p = ctx.cwd.join(value);
        if p.is_file() {
            c.file(&p)?;
        }
    }
    for script in scripts {
        let found = std::iter::once(ctx.cwd.to_path_buf())
            .chain(dirs.iter().map(|d| ctx.cwd.join(d)))
            .map(|d| d.join(&script))
            .find(|p| p.is_file());
        match found {
            Some(p) => c.file(&p)?,
            None if c.generated(&ctx.cwd.join(&script)) => {}
            None => return Err(NotStoredReason::LinkerScriptNotFound),
        }
    }
    for (name, m) in libs {
        let m = if all_static { LibMode::Static } else { m };
        c.library(&name, m)?;
    }
    for f in &info.files {
        if f.is_file() {
            c.file(f)?;
        }
    }
    for p in &info.programs {
        // `collect2` finds `ld` itself; a program found nowhere was not run.
        c.program(p, &info.program_dirs, path_env)?;
    }
    Ok(LinkInputs {
        files: c.inputs,
        location_dependent,
    })
}
