//! rustc's dep-info (`.d`) files: which files and environment variables a compile read.
//!
//! rustc writes Makefile syntax: one rule per output (`out: dep dep ...`), an empty rule per
//! dependency, and `# env-dep:NAME=VALUE` comments for every variable read through `env!` or
//! `option_env!` (`# env-dep:NAME` when it was unset). Spaces in paths are escaped as `\ `;
//! newlines and backslashes in env values as `\n` and `\\`.

use std::collections::BTreeSet;

/// The inputs a compile read, as recorded in its dep-info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DepInfo {
    /// Every dependency path, as written (relative to rustc's working directory or absolute),
    /// sorted and without duplicates.
    pub files: Vec<String>,
    /// Every environment variable read, with its value (`None` when it was unset), sorted.
    pub env: Vec<(String, Option<String>)>,
}

/// Reads a dep-info file's text. Unknown comment lines are ignored; nothing here panics.
pub fn parse(text: &str) -> DepInfo {
    let mut files = BTreeSet::new();
    let mut env = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# env-dep:") {
            let (name, value) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(unescape_env(v))),
                None => (rest, None),
            };
            env.insert(name.to_string(), value);
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(colon) = find_rule_colon(line) else {
            continue;
        };
        for dep in split_paths(&line[colon + 1..]) {
            files.insert(dep);
        }
    }
    DepInfo {
        files: files.into_iter().collect(),
        env: env.into_iter().collect(),
    }
}

/// The position of the `:` that separates a rule's target from its dependencies: the first
/// `": "` or a `:` at the end of the line that is not escaped.
fn find_rule_colon(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b':' if i + 1 == bytes.len() || bytes[i + 1] == b' ' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Splits a dependency list at unescaped spaces, unescaping `\ ` inside paths.
fn split_paths(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = list.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                cur.push(' ');
                chars.next();
            }
            ' ' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unescape_env(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Moves a dep-info file recorded by another build to this one: its targets from the recorded
/// out-dir `old_dir` to `new_dir`, and the paths under the recorded build's anchors to this
/// build's (`moves`: `(old, new)`, longest old first).
///
/// rustc writes one rule per output, `OUT_DIR/NAME: deps`, at the start of a line, with the
/// target path as it is (spaces and newlines not escaped; `names` are the outputs' file names);
/// dependencies escape spaces as `\ ` but not newlines; the `# env-dep:` lines after the rules
/// escape newlines and backslashes. A path may therefore span lines, so the rules are
/// rewritten as one text, not line by line.
pub fn relocate(
    text: &str,
    (old_dir, new_dir): (&str, &str),
    names: &[&str],
    moves: &[(String, String)],
) -> String {
    let (old_dir, new_dir) = (old_dir.trim_end_matches('/'), new_dir.trim_end_matches('/'));
    // The comments (`# env-dep:`, `# checksum:`) come after every rule.
    let comments_at = if text.starts_with('#') {
        0
    } else {
        text.find("\n#").map_or(text.len(), |i| i + 1)
    };
    let (rules, comments) = text.split_at(comments_at);
    // A leading newline makes "at the start of a line" one pattern for every rule.
    let rules = format!("\n{rules}");
    let mut targets: Vec<(usize, usize, &str)> = Vec::new();
    for name in names {
        let pattern = format!("\n{old_dir}/{name}:");
        for (at, _) in rules.match_indices(&pattern) {
            targets.push((at, at + pattern.len(), name));
        }
    }
    targets.sort();
    let move_deps = |part: &str| {
        let mut part = part.to_string();
        for (old, new) in moves {
            part = crate::paths::replace_path(&part, &escape_path(old), &escape_path(new));
        }
        part
    };
    let mut out = String::with_capacity(text.len() + 64);
    let mut done = 0;
    for (start, end, name) in targets {
        if start < done {
            continue;
        }
        out.push_str(&move_deps(&rules[done..start]));
        out.push_str(&format!("\n{new_dir}/{name}:"));
        done = end;
    }
    out.push_str(&move_deps(&rules[done..]));
    out.remove(0);
    for line in comments.split_inclusive('\n') {
        let mut line = line.to_string();
        if line.starts_with("# env-dep:") {
            let esc = |p: &str| p.replace('\\', "\\\\").replace('\n', "\\n");
            for (old, new) in moves {
                line = crate::paths::replace_path(&line, &esc(old), &esc(new));
            }
        }
        out.push_str(&line);
    }
    out
}

/// Moves paths from old directories to new ones (`(old, new)`, longest old first) in a
/// Makefile-style dependency file, its targets included: [`relocate`] without an out-dir.
pub fn move_paths(text: &str, moves: &[(String, String)]) -> String {
    relocate(text, ("", ""), &[], moves)
}

fn escape_path(p: &str) -> String {
    p.replace(' ', "\\ ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str =
        "/t/deps/depa-c1.d: /src/depa/src/lib.rs /src/depa/src/my\\ mod.rs data.txt\n\n\
/t/deps/libdepa-c1.rlib: /src/depa/src/lib.rs /src/depa/src/my\\ mod.rs data.txt\n\n\
/src/depa/src/lib.rs:\n/src/depa/src/my\\ mod.rs:\ndata.txt:\n\n\
# env-dep:HOME=/root\n# env-dep:NOPE_X\n# env-dep:MULTI=a\\nb\\\\c\n";

    #[test]
    fn reads_files_and_env() {
        let d = parse(SAMPLE);
        assert_eq!(
            d.files,
            vec![
                "/src/depa/src/lib.rs",
                "/src/depa/src/my mod.rs",
                "data.txt"
            ]
        );
        assert_eq!(
            d.env,
            vec![
                ("HOME".into(), Some("/root".into())),
                ("MULTI".into(), Some("a\nb\\c".into())),
                ("NOPE_X".into(), None),
            ]
        );
    }

    #[test]
    fn relocates_targets_as_rustc_writes_them() {
        let names = ["depa-c1.d", "libdepa-c1.rlib"];
        let r = relocate(SAMPLE, ("/t/deps", "/u/x y/deps"), &names, &[]);
        // rustc does not escape the targets' spaces.
        assert!(r.starts_with("/u/x y/deps/depa-c1.d: /src/depa/src/lib.rs"));
        assert!(r.contains("\n/u/x y/deps/libdepa-c1.rlib: "));
        assert_eq!(
            relocate(SAMPLE, ("/t/deps", "/t/deps"), &names, &[]),
            SAMPLE
        );
        // Back again, through a directory with a newline.
        let odd = relocate(&r, ("/u/x y/deps", "/v/new\nline/deps"), &names, &[]);
        assert!(odd.starts_with("/v/new\nline/deps/depa-c1.d: /src/depa/src/lib.rs"));
        assert_eq!(
            relocate(&odd, ("/v/new\nline/deps", "/t/deps"), &names, &[]),
            SAMPLE
        );
        assert_eq!(parse(&odd).files, parse(SAMPLE).files);
    }

    #[test]
    fn moves_rules_and_env_values_with_their_own_escaping() {
        let text = "/old dir/t/x.d: /old\\ dir/src/lib.rs\n\n/old\\ dir/src/lib.rs:\n\n\
# env-dep:OUT_DIR=/old dir/t/out\n";
        let moves = [("/old dir".to_string(), "/new place".to_string())];
        let moved = relocate(text, ("/old dir/t", "/new place/t"), &["x.d"], &moves);
        assert_eq!(
            moved,
            "/new place/t/x.d: /new\\ place/src/lib.rs\n\n/new\\ place/src/lib.rs:\n\n\
# env-dep:OUT_DIR=/new place/t/out\n"
        );
        assert_eq!(
            parse(&moved).env,
            vec![("OUT_DIR".to_string(), Some("/new place/t/out".to_string()))]
        );
    }

    #[test]
    fn moves_paths_that_hold_newlines() {
        // As rustc writes them: targets and dependencies raw, spaces escaped in dependencies,
        // a newline escaped in env values.
        let text = "/old\nt/d/x.d: /old\nt/b/out/gen\\ 1.rs\n\n/old\nt/b/out/gen\\ 1.rs:\n\n\
# env-dep:OUT_DIR=/old\\nt/b/out\n";
        let moves = [("/old\nt".to_string(), "/new dir".to_string())];
        let moved = relocate(text, ("/old\nt/d", "/new dir/d"), &["x.d"], &moves);
        assert_eq!(
            moved,
            "/new dir/d/x.d: /new\\ dir/b/out/gen\\ 1.rs\n\n/new\\ dir/b/out/gen\\ 1.rs:\n\n\
# env-dep:OUT_DIR=/new dir/b/out\n"
        );
        assert_eq!(
            parse(&moved).files,
            vec!["/new dir/b/out/gen 1.rs".to_string()]
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "(?s).{0,400}") {
            let _ = parse(&text);
            let _ = relocate(&text, ("/a", "/b"), &["x.d"], &[("/a".into(), "/b".into())]);
        }

        #[test]
        fn escaped_paths_round_trip(paths in proptest::collection::vec("[a-z /._-]{1,20}", 1..6)) {
            let paths: Vec<String> = paths.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty() && !p.ends_with(':')).collect();
            prop_assume!(!paths.is_empty());
            let deps: Vec<String> = paths.iter().map(|p| escape_path(p)).collect();
            let text = format!("out.d: {}\n", deps.join(" "));
            let mut want: Vec<String> = paths;
            want.sort();
            want.dedup();
            prop_assert_eq!(parse(&text).files, want);
        }
    }
}
