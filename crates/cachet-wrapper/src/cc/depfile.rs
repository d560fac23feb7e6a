//! The `-MMD` dependency file, written from the full one.
//!
//! `-MMD` asks for a dependency file without system headers, but the key needs every file the
//! compile read, and one compiler run writes only one dependency file. So a `-MMD` compile
//! runs with `-MD` instead (into the same file), its inputs are taken from that full list, and
//! the user's file is then rewritten without the headers found in system directories, in
//! gcc's layout (wrapped at 72 columns; with `-MP`, one empty rule per header). The entry
//! stores the rewritten file, so a hit restores what the miss wrote.
//!
//! Which headers a compiler leaves out is decided by where it found them (and, for gcc, by
//! whether the including file was itself a system header), which the full list does not show.
//! The rewrite therefore errs on the side of listing: a header is left out only when it lies
//! under a built-in system directory or an `-isystem`/`-idirafter` directory and under no
//! `-I`/`-iquote` directory, and the source is always kept. A user header reached only through
//! a system header may thus be listed where the compiler would not list it; for Make that is
//! one more prerequisite, never a missed rebuild. Byte for byte the file can differ from the
//! compiler's own (clang wraps at other columns); its rules are the same.

/// Splits the first rule of a Makefile-syntax dependency file into its targets, as written
/// (up to the `:`), and its prerequisites, each as written (escapes kept).
fn first_rule(text: &str) -> Option<(&str, Vec<&str>)> {
    let bytes = text.as_bytes();
    let colon = (0..bytes.len()).find(|&i| {
        bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\n' | b'\r' | b'\t'))
    })?;
    let targets = &text[..colon];
    let mut deps = Vec::new();
    let mut i = colon + 1;
    let mut start: Option<usize> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if matches!(bytes.get(i + 1), Some(b'\n')) => {
                if let Some(s) = start.take() {
                    deps.push(&text[s..i]);
                }
                i += 2;
                continue;
            }
            b'\\'
                if matches!(bytes.get(i + 1), Some(b'\r')) && bytes.get(i + 2) == Some(&b'\n') =>
            {
                if let Some(s) = start.take() {
                    deps.push(&text[s..i]);
                }
                i += 3;
                continue;
            }
            // An escaped character (`\ `, `\#`) belongs to the name.
            b'\\' if i + 1 < bytes.len() => {
                start.get_or_insert(i);
                i += 2;
                continue;
            }
            b'\n' => {
                if let Some(s) = start.take() {
                    deps.push(&text[s..i]);
                }
                break;
            }
            b' ' | b'\t' | b'\r' => {
                if let Some(s) = start.take() {
                    deps.push(&text[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        deps.push(&text[s..]);
    }
    Some((targets, deps))
}

/// A prerequisite's path: `\ ` and `\#` unescaped, `$$` to `$`.
fn unescape(raw: &str) -> String {
    raw.replace("\\ ", " ")
        .replace("\\#", "#")
        .replace("$$", "$")
}

/// The dependency file `full` without the prerequisites `is_system` says are system headers
/// (never the first, the source), in gcc's `-MMD` layout; `phony` adds `-MP`'s empty rules.
/// `None` when `full` has no rule to read.
pub fn without_system(full: &str, is_system: impl Fn(&str) -> bool, phony: bool) -> Option<String> {
    let (targets, deps) = first_rule(full)?;
    let kept: Vec<&str> = deps
        .iter()
        .enumerate()
        .filter(|(i, d)| *i == 0 || !is_system(&unescape(d)))
        .map(|(_, d)| *d)
        .collect();
    let mut out = String::with_capacity(full.len() / 2);
    out.push_str(targets);
    out.push(':');
    // gcc's mkdeps: wrap before a name that would pass column 72.
    let mut col = targets.rsplit('\n').next().unwrap_or("").len() + 1;
    for d in &kept {
        if col + d.len() > 72 {
            out.push_str(" \\\n");
            col = 0;
        }
        out.push(' ');
        out.push_str(d);
        col += d.len() + 1;
    }
    out.push('\n');
    if phony {
        for d in kept.iter().skip(1) {
            out.push_str(d);
            out.push_str(":\n");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `full` rewritten without the headers under `system`.
    fn rewrite(full: &str, system: &str, phony: bool) -> String {
        without_system(full, |p| p.starts_with(system), phony).unwrap()
    }

    #[test]
    fn keeps_user_headers_in_gccs_layout() {
        let full = "a.o: a.c /usr/include/stdc-predef.h /usr/include/stdio.h \\\n x.h \\\n /usr/include/x86_64-linux-gnu/bits/types.h inc/y.h\n/usr/include/stdio.h:\nx.h:\ninc/y.h:\n";
        // What gcc 12 writes for `-MMD -MP` on the same compile.
        assert_eq!(
            rewrite(full, "/usr/include/", true),
            "a.o: a.c x.h inc/y.h\nx.h:\ninc/y.h:\n"
        );
        assert_eq!(
            rewrite(full, "/usr/include/", false),
            "a.o: a.c x.h inc/y.h\n"
        );
    }

    #[test]
    fn escaped_names_and_long_lists() {
        let full = "out/a\\ b.o: src/a\\ b.c /usr/include/x.h my\\ dir/h.h\n";
        assert_eq!(
            rewrite(full, "/usr/", false),
            "out/a\\ b.o: src/a\\ b.c my\\ dir/h.h\n"
        );
        let names: Vec<String> = (0..8).map(|i| format!("include/header_{i}.h")).collect();
        let full = format!("obj/x.o: x.c {}\n", names.join(" "));
        let out = rewrite(&full, "/nowhere/", false);
        assert!(out.lines().all(|l| l.len() <= 74), "{out}");
        let (_, deps) = first_rule(&out).unwrap();
        assert_eq!(deps.len(), 9);
        assert!(without_system("", |_| false, false).is_none());
    }
}
