//! Path-independent keys: the directories that differ between checkouts and machines.
//!
//! A crate built in `/home/dev/proj` with `CARGO_HOME=/home/dev/.cargo` should be a hit for a
//! CI runner in `/builds/runner-7/proj` with another `CARGO_HOME` (sccache issues #35, #2652).
//! Three anchors are found for each call: the workspace (rustc's working directory, unless it
//! is a package under `CARGO_HOME`), `CARGO_HOME`, and the target directory (found from the
//! out-dir by cargo's layout, `target/<profile>/deps` with `.fingerprint` beside it, so that a
//! `target/` created before cargo ran, which has no `CACHEDIR.TAG`, is found too; else the
//! ancestor holding cargo's `CACHEDIR.TAG`; for a `--target` build, `target/` and not
//! `target/<triple>/`). Inside the key every path under an anchor is
//! written relative to it (`{WORKSPACE}`, `{CARGO_HOME}`, `{TARGET}`); file contents are still
//! hashed, so checkouts whose files differ never share an entry.
//!
//! What rustc embeds in its outputs is made the same everywhere with `--remap-path-prefix`:
//! the workspace becomes `.`, `CARGO_HOME` becomes `$CARGO_HOME`, the target directory
//! `$TARGET` (as cargo's `trim-paths` does). Backtraces and `file!()` then show
//! `./src/lib.rs` or `$CARGO_HOME/registry/src/...`; see docs/design.md for debuggers.
//! Values read through `env!` that contain an anchor stay literal in the key unless every read
//! is proven to be an `include!` of a file (see `env_proof.rs`), so such crates remain
//! per-checkout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One directory that differs between checkouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// `WORKSPACE`, `CARGO_HOME` or `TARGET`.
    pub name: &'static str,
    /// The absolute path, without a trailing `/`.
    pub path: String,
}

/// The anchors of one call, longest path first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anchors(pub Vec<Anchor>);

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~' | '+' | '@')
}

/// Replaces `from` by `to` where `from` stands as a whole path prefix: not preceded by a path
/// character or `/`, not followed by a path character (so `/proj` does not match `/project`).
pub fn replace_path(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() || !text.contains(from) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(pos) = rest.find(from) {
        let before = rest[..pos].chars().last().or(prev);
        let after = rest[pos + from.len()..].chars().next();
        let starts = before.is_none_or(|c| !is_path_char(c) && c != '/');
        let ends = after.is_none_or(|c| !is_path_char(c));
        out.push_str(&rest[..pos]);
        if starts && ends {
            out.push_str(to);
        } else {
            out.push_str(from);
        }
        prev = from.chars().last();
        rest = &rest[pos + from.len()..];
    }
    out.push_str(rest);
    out
}

/// A profile directory of cargo's layout (`target/debug`, `target/<triple>/release`): cargo
/// creates `.fingerprint` and `deps` in it before it runs any compiler.
fn is_profile_dir(d: &Path) -> bool {
    d.join(".fingerprint").is_dir() && d.join("deps").is_dir()
}

/// The target directory of an out-dir in cargo's layout: the parent of the profile directory
/// above it (`deps/`, `build/<pkg>-<hash>/`, `build/<pkg>-<hash>/out`, `examples/`), or, in a
/// `--target` build (`target/<triple>/<profile>`), the directory that also holds the host's
/// profile directory of the same name (cargo always lays out the host side). cargo writes
/// `CACHEDIR.TAG` only into a target directory it creates itself, so a `target/` made before
/// the first build (a CI cache mount, `mkdir target`) has none: found this way, its keys are
/// the same as a tagged one's.
fn layout_target_dir(out_dir: &Path) -> Option<PathBuf> {
    let profile = out_dir.ancestors().take(6).find(|d| is_profile_dir(d))?;
    let root = profile.parent()?;
    match (root.parent(), profile.file_name()) {
        (Some(outer), Some(name)) if is_profile_dir(&outer.join(name)) => Some(outer.to_path_buf()),
        _ => Some(root.to_path_buf()),
    }
}

fn trimmed(p: &Path) -> String {
    let s = p.to_string_lossy();
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

/// `p` made absolute, with `.` and `..` resolved lexically (links are not followed).
pub fn absolute(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut parts: Vec<&str> = Vec::new();
    let s = abs.to_string_lossy().into_owned();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Anchors {
    /// Finds the anchors for a call in `cwd` writing to `out_dir`, reading `CARGO_HOME` and
    /// `HOME` through `env`.
    pub fn discover(
        cwd: &Path,
        out_dir: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Anchors {
        let mut list = Vec::new();
        let cargo_home = env("CARGO_HOME")
            .filter(|v| !v.is_empty())
            .or_else(|| env("HOME").map(|h| format!("{}/.cargo", h.trim_end_matches('/'))));
        if let Some(ch) = cargo_home.filter(|c| Path::new(c).is_absolute() && c != "/") {
            list.push(Anchor {
                name: "CARGO_HOME",
                path: trimmed(Path::new(&ch)),
            });
        }
        // The target directory is found from the out-dir (or from the crate's OUT_DIR, for
        // build-script probes that compile elsewhere): by cargo's layout, else as the
        // ancestor holding cargo's CACHEDIR.TAG.
        let out_dir_env = env("OUT_DIR").map(std::path::PathBuf::from);
        let starts: Vec<PathBuf> = out_dir
            .map(|o| cwd.join(o))
            .into_iter()
            .chain(out_dir_env)
            .collect();
        let by_layout = starts.iter().find_map(|s| layout_target_dir(s));
        let target = by_layout.or_else(|| {
            starts
                .iter()
                .flat_map(|start| start.ancestors().take(8))
                .find(|d| d.join("CACHEDIR.TAG").is_file() && !d.ends_with("registry"))
                // With `--target`, cargo tags `target/<triple>` too: the target dir is its
                // parent, so host paths (`-L dependency=target/debug/deps`) are anchored too.
                .map(|d| match d.parent() {
                    Some(p) if p.join("CACHEDIR.TAG").is_file() => p.to_path_buf(),
                    _ => d.to_path_buf(),
                })
        });
        if let Some(target) = target {
            list.push(Anchor {
                name: "TARGET",
                path: trimmed(&target),
            });
        }
        let ws = trimmed(cwd);
        let under_cargo_home = list.iter().any(|a| {
            a.name == "CARGO_HOME" && (ws == a.path || ws.starts_with(&format!("{}/", a.path)))
        });
        if !under_cargo_home && ws != "/" {
            list.push(Anchor {
                name: "WORKSPACE",
                path: ws,
            });
        }
        Anchors::sorted(list)
    }

    /// The anchors in `list`, longest path first, so that a nested anchor (`TARGET` inside
    /// `WORKSPACE`) is replaced before the one that holds it.
    pub fn sorted(mut list: Vec<Anchor>) -> Anchors {
        list.sort_by_key(|a| std::cmp::Reverse(a.path.len()));
        Anchors(list)
    }

    /// The anchors named by `(name, path)` pairs, longest path first.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'static str, &'a str)>) -> Anchors {
        Anchors::sorted(
            pairs
                .into_iter()
                .map(|(name, path)| Anchor {
                    name,
                    path: path.to_string(),
                })
                .collect(),
        )
    }

    /// Writes paths under an anchor relative to it (`{NAME}/rest`).
    pub fn normalize(&self, text: &str) -> String {
        let mut out = text.to_string();
        for a in &self.0 {
            out = replace_path(&out, &a.path, &format!("{{{}}}", a.name));
        }
        out
    }

    /// The inverse of [`Anchors::normalize`] with this call's anchors.
    ///
    /// A C hit resolves about a thousand paths, so the `{NAME}` pattern is matched in place
    /// rather than formatted and searched for once per anchor and path.
    pub fn denormalize(&self, text: &str) -> String {
        let mut out = text.to_string();
        for a in &self.0 {
            if out.contains('{') {
                out = replace_braced(&out, a.name, &a.path);
            }
        }
        out
    }

    /// What rustc writes instead of an anchor's path (see [`Anchors::remap_args`]).
    pub fn remapped_name(name: &str) -> &'static str {
        match name {
            "WORKSPACE" => ".",
            "CARGO_HOME" => "$CARGO_HOME",
            _ => "$TARGET",
        }
    }

    /// `--remap-path-prefix` arguments, shortest path first so that the more specific mapping
    /// (given later) wins in rustc.
    pub fn remap_args(&self) -> Vec<OsString> {
        let mut list: Vec<&Anchor> = self.0.iter().collect();
        list.sort_by_key(|a| a.path.len());
        list.iter()
            .map(|a| {
                let to = Self::remapped_name(a.name);
                OsString::from(format!("--remap-path-prefix={}={to}", a.path))
            })
            .collect()
    }

    /// The anchors of a call compiling `input` in `cwd`. cargo gives a workspace crate's
    /// sources relative to the workspace root it runs rustc in, and a path dependency outside
    /// the workspace by absolute path, run in its own directory. The working directory is no
    /// anchor for the latter: its files would be named `./src/lib.rs` in its metadata, which
    /// its dependents, compiled in the workspace root, would print as a workspace file (see
    /// `messages.rs`). Such a crate keys its paths literally and is compiled per checkout.
    pub fn for_input(mut self, cwd: &Path, input: &str) -> Anchors {
        let absolute_under_cwd =
            Path::new(input).is_absolute() && Path::new(input).starts_with(cwd);
        if absolute_under_cwd {
            self.0.retain(|a| a.name != "WORKSPACE");
        }
        self
    }

    /// The directories anchored under `name` (`WORKSPACE`, `CARGO_HOME`, `TARGET`...).
    pub fn paths_named(&self, name: &str) -> Vec<std::path::PathBuf> {
        let named = self.0.iter().filter(|a| a.name == name);
        named.map(|a| std::path::PathBuf::from(&a.path)).collect()
    }

    /// `(name, path)` pairs, as recorded in an entry.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|a| (a.name.to_string(), a.path.clone()))
            .collect()
    }

    /// For each anchor recorded as `recorded` that this call also has: (old path, new path),
    /// longest old path first, for rewriting recorded output.
    pub fn moves_from(&self, recorded: &[(String, String)]) -> Vec<(String, String)> {
        let mut moves: Vec<(String, String)> = recorded
            .iter()
            .filter_map(|(name, old)| {
                let new = self.0.iter().find(|a| a.name == name)?;
                (new.path != *old).then(|| (old.clone(), new.path.clone()))
            })
            .collect();
        moves.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
        moves
    }
}

/// `text` with every `{name}` replaced by `with`, as `str::replace` would (the occurrences
/// cannot overlap: each starts with `{` and ends with `}`).
fn replace_braced(text: &str, name: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        let after = &rest[at + 1..];
        match after.strip_prefix(name).and_then(|t| t.strip_prefix('}')) {
            Some(tail) => {
                out.push_str(&rest[..at]);
                out.push_str(with);
                rest = tail;
            }
            None => {
                out.push_str(&rest[..=at]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn braced_names_are_replaced_as_str_replace_does() {
        for text in [
            "{A}/x",
            "{{A}}",
            "{A",
            "a{B}{A}{A}b",
            "{}",
            "",
            "{AB}{A}",
            "x{A}}{",
        ] {
            assert_eq!(replace_braced(text, "A", "/p"), text.replace("{A}", "/p"));
        }
    }

    fn anchors() -> Anchors {
        Anchors::from_pairs([
            ("WORKSPACE", "/home/dev/proj"),
            ("TARGET", "/home/dev/proj/target"),
            ("CARGO_HOME", "/home/dev/.cargo"),
        ])
    }

    #[test]
    fn normalizes_whole_prefixes_only() {
        let a = anchors();
        assert_eq!(
            a.normalize("-L dependency=/home/dev/proj/target/debug/deps"),
            "-L dependency={TARGET}/debug/deps"
        );
        assert_eq!(
            a.normalize("/home/dev/proj/src/lib.rs"),
            "{WORKSPACE}/src/lib.rs"
        );
        assert_eq!(
            a.normalize("/home/dev/project/src"),
            "/home/dev/project/src"
        );
        assert_eq!(a.normalize("/x/home/dev/proj"), "/x/home/dev/proj");
        assert_eq!(
            a.normalize("/home/dev/.cargo/registry/src/x"),
            "{CARGO_HOME}/registry/src/x"
        );
        let s = "/home/dev/proj/target/a /home/dev/.cargo/b";
        assert_eq!(a.denormalize(&a.normalize(s)), s);
    }

    #[test]
    fn remaps_the_more_specific_path_last() {
        let args: Vec<String> = anchors()
            .remap_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.last().unwrap(),
            "--remap-path-prefix=/home/dev/proj/target=$TARGET"
        );
        assert!(args.contains(&"--remap-path-prefix=/home/dev/proj=.".to_string()));
    }

    #[test]
    fn discovers_cargo_home_workspace_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("target/debug/deps")).unwrap();
        std::fs::write(ws.join("target/CACHEDIR.TAG"), "").unwrap();
        let home = dir.path().join("home");
        let env = |k: &str| (k == "HOME").then(|| home.to_string_lossy().into_owned());
        let a = Anchors::discover(&ws, Some(Path::new("target/debug/deps")), env);
        let names: Vec<&str> = a.0.iter().map(|x| x.name).collect();
        assert!(
            names.contains(&"TARGET")
                && names.contains(&"CARGO_HOME")
                && names.contains(&"WORKSPACE")
        );
        // A cross build: cargo tags target/<triple> as well; the anchor is still target/.
        std::fs::create_dir_all(ws.join("target/x86_64-unknown-linux-musl/debug/deps")).unwrap();
        std::fs::write(ws.join("target/x86_64-unknown-linux-musl/CACHEDIR.TAG"), "").unwrap();
        let c = Anchors::discover(
            &ws,
            Some(Path::new("target/x86_64-unknown-linux-musl/debug/deps")),
            env,
        );
        assert_eq!(
            c.normalize(&format!("{}/target/debug/deps", ws.display())),
            "{TARGET}/debug/deps"
        );
        // A target directory created before cargo ran has no CACHEDIR.TAG: cargo's layout
        // finds it, native or cross, and the keys are the same as a tagged one's.
        let bare = dir.path().join("bare");
        for profile in ["target/debug", "target/x86_64-unknown-linux-musl/debug"] {
            std::fs::create_dir_all(bare.join(profile).join(".fingerprint")).unwrap();
            std::fs::create_dir_all(bare.join(profile).join("deps")).unwrap();
            std::fs::create_dir_all(bare.join(profile).join("build/x-1/out")).unwrap();
        }
        for out_dir in [
            "target/debug/deps",
            "target/debug/build/x-1",
            "target/x86_64-unknown-linux-musl/debug/deps",
            "target/x86_64-unknown-linux-musl/debug/build/x-1/out",
        ] {
            let d = Anchors::discover(&bare, Some(Path::new(out_dir)), env);
            let target = d.0.iter().find(|a| a.name == "TARGET");
            assert_eq!(
                target.map(|a| a.path.clone()),
                Some(bare.join("target").to_string_lossy().into_owned()),
                "{out_dir}"
            );
        }
        // A registry package's directory is not a workspace anchor.
        let pkg = home.join(".cargo/registry/src/idx/serde-1.0.0");
        std::fs::create_dir_all(&pkg).unwrap();
        let b = Anchors::discover(&pkg, None, env);
        assert!(b.0.iter().all(|x| x.name != "WORKSPACE"));
        assert!(b
            .normalize(&pkg.to_string_lossy())
            .starts_with("{CARGO_HOME}/registry/src/idx"));
    }

    proptest! {
        #[test]
        fn normalize_round_trips(tail in "[a-z/._-]{0,20}", other in "/[a-z]{1,8}/[a-z/]{0,10}") {
            let a = anchors();
            for s in [format!("/home/dev/proj/{tail}"), format!("/home/dev/.cargo/{tail}"), other] {
                prop_assert_eq!(a.denormalize(&a.normalize(&s)), s.clone());
            }
        }
    }

    #[test]
    fn absolute_is_lexical() {
        assert_eq!(absolute(Path::new("/a/b/../c/./d.h")), "/a/c/d.h");
    }
}
