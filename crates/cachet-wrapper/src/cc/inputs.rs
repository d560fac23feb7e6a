//! What a C compile read, from its own dependency file: the manifest candidate of the entry.
//!
//! The compiler writes every file it opened (`-MD` includes system headers) in Makefile
//! syntax; cachet adds `-MD -MF <temporary>` when the user did not ask for a dependency file,
//! so neither a hit nor a miss pays an extra preprocessor pass. Each file is hashed, and a hit
//! later requires every hash to match (`manifest.rs`).
//!
//! A dependency file lists what was read, not what was looked for. Three cases would turn
//! that into a false hit, and each is closed here:
//!
//! - **Shadowing**: a header found in a later include directory is hidden once a file of the
//!   same relative name appears in an earlier one (or in the including file's directory). For
//!   every such place that is empty now, the candidate records that it must stay empty.
//! - **`__has_include`**: a probe for a header that does not exist reads nothing. Every name
//!   probed by a file outside the system directories is recorded, present or absent, in every
//!   place it could be found; a probe whose argument is a macro makes the result unstored.
//! - **What the preprocessor does not see**: `.incbin` and the assembler's `.include` read
//!   files the dependency file never lists, and `__DATE__`/`__TIME__`/`__TIMESTAMP__` change
//!   the object without any input changing; such compiles are not stored.
//!
//! Finally, an object that still contains an anchor's path (a `-D` value naming the checkout,
//! or a compiler without `-ffile-prefix-map`) is pinned to that checkout: the anchor's path
//! enters the candidate as a pseudo-variable only the same checkout matches.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use cachet_core::Digest;

use crate::absence::AbsenceProbe;
use crate::clock::ClockMarker;
use crate::dep_info;
use crate::file_hash::{FileHasher, Fingerprint};
use crate::link::ABSENT;
use crate::manifest::Candidate;
use crate::paths::{absolute, Anchors};
use crate::reason::NotStoredReason;

use super::args::{CcPlan, Language, SearchKind};
use super::identity::CcCompiler;

/// The prefix of pseudo-variables pinning an entry to a checkout (`=` cannot start a real
/// variable's name).
pub const ANCHOR_PIN: &str = "=anchor:";

/// The files of a Makefile-syntax dependency file, without duplicates.
pub fn depfile_files(text: &str) -> Vec<String> {
    // Continuation lines become one rule; `$$` is an escaped `$`.
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in joined.lines() {
        let one = dep_info::parse(&format!("{line}\n"));
        for f in one.files {
            let f = f.replace("$$", "$").replace("\\#", "#");
            if seen.insert(f.clone()) {
                out.push(f);
            }
        }
    }
    out
}

/// Everything `collect` needs about the call.
pub struct Context<'a> {
    /// The compile.
    pub plan: &'a CcPlan,
    /// The compiler.
    pub compiler: &'a CcCompiler,
    /// The working directory.
    pub cwd: &'a Path,
    /// Path anchors.
    pub anchors: &'a Anchors,
    /// Hashes files.
    pub hasher: &'a FileHasher,
    /// The filesystem clock before the compile started.
    pub marker: Option<&'a ClockMarker>,
    /// The precise clock before the compile started, when there is no marker.
    pub start_ns: i64,
}

/// Coarse timestamps can lag the precise clock by a tick (see `pipeline.rs`).
const SETTLE_SLOP_NS: i64 = 10_000_000;

fn changed_since_start(ctx: &Context<'_>, fp: &Fingerprint) -> bool {
    match ctx.marker {
        Some(m) if m.dev() == fp.dev() => !m.is_after(fp),
        _ => fp.changed_ns() >= ctx.start_ns - SETTLE_SLOP_NS,
    }
}

/// True when `path` lies below `dir` (both absolute and lexically clean).
pub fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Builds the candidate from the files the compile read (`deps`, as written in the dependency
/// file) and the object it wrote, read in chunks from `object`. `Err` is the reason the result
/// is not stored.
pub fn collect(
    ctx: &Context<'_>,
    deps: &[String],
    object: &mut dyn Read,
) -> Result<Candidate, NotStoredReason> {
    let plan = ctx.plan;
    let mut files: Vec<(String, Digest)> = Vec::new();
    let mut probes: Vec<(String, bool, PathBuf)> = Vec::new();
    let system_dirs: Vec<String> = ctx.compiler.system_dirs.clone();
    let in_system = |abs: &str| system_dirs.iter().any(|d| is_under(abs, d));
    let asm = matches!(plan.language, Language::Asm | Language::AsmCpp);
    let mut all = deps.to_vec();
    if !all.contains(&plan.source) {
        // `.s` files have no dependency file; the source is their only input.
        all.insert(0, plan.source.clone());
    }
    for f in &all {
        let path = ctx.cwd.join(f);
        let meta = fs::metadata(&path).map_err(|_| NotStoredReason::InputVanished)?;
        if !meta.is_file() {
            return Err(NotStoredReason::InputNotAFile);
        }
        if changed_since_start(ctx, &Fingerprint::of(&meta)) {
            return Err(NotStoredReason::InputModified);
        }
        if f.ends_with(".gch") || f.ends_with(".pch") {
            return Err(NotStoredReason::PrecompiledHeader);
        }
        let abs = absolute(&path);
        let digest = if in_system(&abs) {
            ctx.hasher
                .hash_known(&path, &meta)
                .map_err(|_| NotStoredReason::InputUnreadable)?
        } else {
            let bytes = fs::read(&path).map_err(|_| NotStoredReason::InputUnreadable)?;
            scan(&bytes, asm)?;
            let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            for (name, quoted) in has_include_probes(&bytes)? {
                probes.push((name, quoted, dir.clone()));
            }
            Digest::of(&bytes)
        };
        let after = fs::metadata(&path).map_err(|_| NotStoredReason::InputVanished)?;
        if Fingerprint::of(&after) != Fingerprint::of(&meta) {
            return Err(NotStoredReason::InputModified);
        }
        files.push((ctx.anchors.normalize(f), digest));
    }
    // Where headers could have been found: the directories of the user's files (quoted
    // includes), then the include directories in search order.
    let mut search: Vec<String> = Vec::new();
    let mut includer_dirs: Vec<String> = Vec::new();
    for f in &all {
        let abs = absolute(&ctx.cwd.join(f));
        // System headers include each other with `<...>`, which skips the includer's directory;
        // a file appearing inside a system directory is a change of the installation.
        if in_system(&abs) {
            continue;
        }
        if let Some(parent) = Path::new(&abs).parent() {
            let p = parent.to_string_lossy().into_owned();
            if !includer_dirs.contains(&p) {
                includer_dirs.push(p);
            }
        }
    }
    let mut dirs: Vec<(SearchKind, String)> = plan.include_dirs.clone();
    dirs.sort_by_key(|d| d.0);
    let after_system = dirs.iter().position(|d| d.0 == SearchKind::After);
    let (before, after) = dirs.split_at(after_system.unwrap_or(dirs.len()));
    for (_, d) in before {
        search.push(absolute(&ctx.cwd.join(d)));
    }
    search.extend(system_dirs.iter().cloned());
    for (_, d) in after {
        search.push(absolute(&ctx.cwd.join(d)));
    }
    let mut places: BTreeSet<String> = BTreeSet::new();
    for f in &all {
        let abs = absolute(&ctx.cwd.join(f));
        for (j, d) in search.iter().enumerate() {
            if !is_under(&abs, d) {
                continue;
            }
            let rel = &abs[d.trim_end_matches('/').len() + 1..];
            for earlier in includer_dirs.iter().chain(&search[..j]) {
                places.insert(format!("{}/{rel}", earlier.trim_end_matches('/')));
            }
        }
    }
    for (name, quoted, dir) in &probes {
        if *quoted {
            places.insert(format!("{}/{name}", dir.to_string_lossy()));
        }
        for d in &search {
            places.insert(format!("{}/{name}", d.trim_end_matches('/')));
        }
    }
    let read: BTreeSet<String> = all.iter().map(|f| absolute(&ctx.cwd.join(f))).collect();
    places.retain(|p| !read.contains(p));
    let absent = absent_places(&places);
    for place in places {
        if absent.contains(&place) {
            files.push((ctx.anchors.normalize(&place), ABSENT));
            continue;
        }
        match fs::metadata(&place) {
            // A file that exists and was not read matters only if a probe asked for it.
            Ok(m)
                if m.is_file()
                    && probes
                        .iter()
                        .any(|(name, ..)| place.ends_with(&format!("/{name}"))) =>
            {
                let d = ctx
                    .hasher
                    .hash(Path::new(&place))
                    .map_err(|_| NotStoredReason::InputUnreadable)?;
                files.push((ctx.anchors.normalize(&place), d));
            }
            _ => {}
        }
    }
    let found = contains_any(object, ctx.anchors.0.iter().map(|a| a.path.as_bytes()))
        .map_err(|_| NotStoredReason::OutputMissing)?;
    let env = ctx
        .anchors
        .0
        .iter()
        .zip(found)
        .filter(|(_, f)| *f)
        .map(|(a, _)| (format!("{ANCHOR_PIN}{}", a.name), Some(a.path.clone())))
        .collect();
    Ok(Candidate { files, env })
}

/// Which of `needles` occur in what `reader` yields, read in chunks (an object can be tens of
/// megabytes: it is never held whole). Consecutive chunks overlap by the longest needle's
/// length less one, so a needle across a chunk boundary is found.
pub fn contains_any<'n>(
    reader: &mut dyn Read,
    needles: impl Iterator<Item = &'n [u8]>,
) -> std::io::Result<Vec<bool>> {
    let finders: Vec<_> = needles.map(memchr::memmem::Finder::new).collect();
    let mut found = vec![false; finders.len()];
    let keep = finders
        .iter()
        .map(|f| f.needle().len())
        .max()
        .unwrap_or(1)
        .max(1)
        - 1;
    let mut buf = vec![0u8; (256 << 10) + keep];
    let mut held = 0;
    loop {
        let n = match reader.read(&mut buf[held..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = held + n;
        for (f, hit) in finders.iter().zip(found.iter_mut()) {
            *hit = *hit || f.find(&buf[..end]).is_some();
        }
        let tail = keep.min(end);
        buf.copy_within(end - tail..end, 0);
        held = tail;
    }
    Ok(found)
}

/// The places (absolute, lexically clean) where nothing is now, answered as a hit will ask
/// (`absence.rs`): shallowest first, from directory listings where several places share a
/// directory, so that a thousand places cost a few dozen listings instead of a `stat` each.
fn absent_places(places: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = |p: &str| p.rsplit_once('/').map_or("", |(d, _)| d).len();
    let mut per_dir: HashMap<&str, usize> = HashMap::new();
    for p in places {
        *per_dir.entry(&p[..parent(p)]).or_default() += 1;
    }
    let mut by_depth: Vec<&String> = places.iter().collect();
    by_depth.sort_by_cached_key(|p| p.bytes().filter(|&b| b == b'/').count());
    let mut probe = AbsenceProbe::default();
    by_depth
        .into_iter()
        .filter(|p| probe.is_absent(Path::new(p), per_dir[&p[..parent(p)]] > 2))
        .cloned()
        .collect()
}

/// The value a pseudo-variable of [`ANCHOR_PIN`] has in this call.
pub fn anchor_value(anchors: &Anchors, name: &str) -> Option<String> {
    let anchor = name.strip_prefix(ANCHOR_PIN)?;
    anchors
        .0
        .iter()
        .find(|a| a.name == anchor)
        .map(|a| a.path.clone())
}

/// Refuses sources whose object depends on more than their dependency file shows.
fn scan(bytes: &[u8], asm: bool) -> Result<(), NotStoredReason> {
    let has = |n: &str| memchr::memmem::find(bytes, n.as_bytes()).is_some();
    // One pass finds both `__TIME__` and `__TIMESTAMP__` (a source can be megabytes).
    let time = memchr::memmem::find_iter(bytes, b"__TIME").any(|at| {
        let rest = &bytes[at + 6..];
        rest.starts_with(b"__") || rest.starts_with(b"STAMP__")
    });
    if time || has("__DATE__") {
        return Err(NotStoredReason::DateOrTime);
    }
    if has(".incbin") {
        return Err(NotStoredReason::Incbin);
    }
    if asm && (has(".include") || has(".INCLUDE")) {
        return Err(NotStoredReason::AsmInclude);
    }
    Ok(())
}

/// The header names probed with `__has_include` / `__has_include_next`, with whether the
/// name was quoted. A probe whose argument is not a literal name cannot be followed.
fn has_include_probes(bytes: &[u8]) -> Result<Vec<(String, bool)>, NotStoredReason> {
    let mut out = Vec::new();
    let needle = b"__has_include";
    let mut at = 0;
    while let Some(pos) = memchr::memmem::find(&bytes[at..], needle) {
        let mut i = at + pos + needle.len();
        if bytes[i..].starts_with(b"_next") {
            i += 5;
        }
        at = i;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'(') {
            // `#ifdef __has_include`, `defined(__has_include)`.
            continue;
        }
        i += 1;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        let (close, quoted) = match bytes.get(i) {
            Some(b'<') => (b'>', false),
            Some(b'"') => (b'"', true),
            _ => return Err(NotStoredReason::ComputedHasInclude),
        };
        let start = i + 1;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == close || b == b'\n')
            .ok_or(NotStoredReason::ComputedHasInclude)?;
        let name = String::from_utf8_lossy(&bytes[start..start + end]).into_owned();
        out.push((name, quoted));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gcc_dependency_files() {
        let text = "out/a.o: src/a.c /usr/include/stdio.h \\\n include/my\\ h.h \\\n /x/$$y.h\n\ninclude/my\\ h.h:\n";
        assert_eq!(
            depfile_files(text),
            vec![
                "/usr/include/stdio.h",
                "/x/$y.h",
                "include/my h.h",
                "src/a.c"
            ]
        );
    }

    #[test]
    fn finds_has_include_probes() {
        let src = b"#if defined(__has_include)\n#if __has_include(<sys/x.h>)\n#endif\n#if __has_include_next( \"y.h\" )\n#endif\n#ifdef __has_include\n#endif\n";
        assert_eq!(
            has_include_probes(src).unwrap(),
            vec![("sys/x.h".to_string(), false), ("y.h".to_string(), true)]
        );
        assert!(has_include_probes(b"#if __has_include(HEADER)\n").is_err());
    }

    #[test]
    fn refuses_what_the_dependency_file_cannot_show() {
        assert!(scan(b"const char *d = __DATE__;", false).is_err());
        assert!(scan(b"int __TIMER; const char *t = __TIME__;", false).is_err());
        assert!(scan(b"const char *t = __TIMESTAMP__", false).is_err());
        assert!(scan(b"int __TIMESTAMP, __TIME", false).is_ok());
        assert!(scan(b"asm(\".incbin \\\"blob\\\"\");", false).is_err());
        assert!(scan(b".include \"macros.s\"", true).is_err());
        assert!(scan(b"int x; /* see foo.include */", false).is_ok());
    }

    #[test]
    fn needles_across_chunk_boundaries_are_found() {
        /// Hands out at most 1000 bytes per read, as a pipe or a slow file might.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(1000).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut object = vec![b'x'; 600 << 10];
        for at in [(256 << 10) - 3, 2995] {
            object[at..at + 10].copy_from_slice(b"/work/proj");
        }
        let needles: [&[u8]; 3] = [b"/work/proj", b"/elsewhere", b"xxxx"];
        let found = contains_any(&mut &object[..], needles.into_iter()).unwrap();
        assert_eq!(found, vec![true, false, true]);
        let mut only_at_boundary = vec![b'x'; 5000];
        only_at_boundary[995..1005].copy_from_slice(b"/work/proj");
        let found = contains_any(&mut Trickle(&only_at_boundary), needles.into_iter()).unwrap();
        assert_eq!(found, vec![true, false, true]);
    }
}
