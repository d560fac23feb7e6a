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

/// Rewrites the targets of a dep-info file recorded in `old_dir` so they name `new_dir`.
/// Dependencies (sources) are left alone: they are part of the key, so they are this build's.
pub fn rewrite_targets(text: &str, old_dir: &str, new_dir: &str) -> String {
    if old_dir == new_dir {
        return text.to_string();
    }
    let old_prefix = format!("{}/", escape_path(old_dir.trim_end_matches('/')));
    let new_prefix = format!("{}/", escape_path(new_dir.trim_end_matches('/')));
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.strip_prefix(old_prefix.as_str()) {
            Some(rest) if !line.starts_with('#') => {
                out.push_str(&new_prefix);
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Moves paths from old directories to new ones (`(old, new)`, longest old first): escaped as
/// Makefile paths in rules, as env values in `# env-dep:` lines.
pub fn move_paths(text: &str, moves: &[(String, String)]) -> String {
    if moves.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut line = line.to_string();
        for (old, new) in moves {
            line = if line.starts_with("# env-dep:") {
                let esc = |p: &str| p.replace('\\', "\\\\").replace('\n', "\\n");
                crate::paths::replace_path(&line, &esc(old), &esc(new))
            } else if line.starts_with('#') {
                line
            } else {
                crate::paths::replace_path(&line, &escape_path(old), &escape_path(new))
            };
        }
        out.push_str(&line);
    }
    out
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
    fn rewrites_only_targets() {
        let r = rewrite_targets(SAMPLE, "/t/deps", "/u/x y/deps");
        assert!(r.starts_with("/u/x\\ y/deps/depa-c1.d: /src/depa/src/lib.rs"));
        assert!(r.contains("/u/x\\ y/deps/libdepa-c1.rlib: "));
        assert_eq!(parse(&r).files, parse(SAMPLE).files);
        assert_eq!(rewrite_targets(SAMPLE, "/t/deps", "/t/deps"), SAMPLE);
    }

    #[test]
    fn moves_rules_and_env_values_with_their_own_escaping() {
        let text = "/old dir/t/x.d: /old dir/src/lib.rs\n\n/old dir/src/lib.rs:\n\n# env-dep:OUT_DIR=/old dir/t/out\n";
        let moved = move_paths(text, &[("/old dir".into(), "/new place".into())]);
        // Rules escape spaces; env values do not.
        let text = text
            .replace(
                "/old dir/t/x.d: /old dir/src",
                "/old\\ dir/t/x.d: /old\\ dir/src",
            )
            .replace("\n/old dir/src/lib.rs:", "\n/old\\ dir/src/lib.rs:");
        let moved2 = move_paths(&text, &[("/old dir".into(), "/new place".into())]);
        assert!(
            moved2.starts_with("/new\\ place/t/x.d: /new\\ place/src/lib.rs"),
            "{moved2}"
        );
        assert!(
            moved2.contains("# env-dep:OUT_DIR=/new place/t/out"),
            "{moved2}"
        );
        assert_eq!(
            parse(&moved2).env,
            vec![("OUT_DIR".to_string(), Some("/new place/t/out".to_string()))]
        );
        assert!(moved.contains("# env-dep:OUT_DIR=/new place/t/out"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "(?s).{0,400}") {
            let _ = parse(&text);
            let _ = rewrite_targets(&text, "/a", "/b");
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
