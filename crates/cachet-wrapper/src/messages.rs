//! Messages name real files: rustc's diagnostics with the path remapping taken back out.
//!
//! cachet compiles with `--remap-path-prefix` for each anchor (see `paths.rs`) so that outputs
//! do not depend on the checkout's location. rustc applies the remapping to its diagnostics as
//! well, and `--remap-path-scope=object` cannot be used instead: it leaves this build's real
//! paths in the crate's metadata, which then differs between checkouts (tested with rustc
//! 1.95). So the outputs keep the remapped names, and what cargo reads is mapped back, on a
//! miss as rustc writes it and on a hit as it is replayed: a file named `./X` is this call's
//! working directory's `X`, `$CARGO_HOME/X` and `$TARGET/X` are under this build's
//! `CARGO_HOME` and target directory.
//!
//! Only places that name a file are rewritten, never the text of a message or a source line:
//! the `file_name` of every span in JSON messages (diagnostics and future-incompatibility
//! reports, at any depth), and the location lines of rendered text (`--> FILE:L:C` and
//! `::: FILE:L:C`, after any ANSI colour codes), in JSON strings and in human output.
//!
//! `./X` is unambiguous because a package whose sources are given by absolute path under its
//! own directory (a path dependency outside the workspace) does not get the working directory
//! as an anchor (see `Anchors::for_input`): only workspace crates, all compiled in the same
//! working directory, produce `./` names, in their own messages and in the metadata their
//! dependents read.

use std::borrow::Cow;

use crate::paths::Anchors;

/// The inverse of an invocation's `--remap-path-prefix` arguments, for its messages.
#[derive(Clone, Debug, Default)]
pub struct Unmap {
    /// `(remapped prefix with its trailing '/', real prefix with its trailing '/')`.
    prefixes: Vec<(String, String)>,
}

/// What introduces a file name in rendered text.
const LOCATION_MARKERS: [&str; 2] = ["--> ", "::: "];
/// The start of an ANSI escape in raw text and inside a JSON string.
const ANSI_STARTS: [&str; 2] = ["\x1b[", "\\u001b["];

impl Unmap {
    /// The inverse of `anchors.remap_args()`.
    pub fn new(anchors: &Anchors) -> Unmap {
        let prefixes = anchors
            .0
            .iter()
            .map(|a| {
                let remapped = Anchors::remapped_name(a.name);
                (format!("{remapped}/"), format!("{}/", a.path))
            })
            .collect();
        Unmap { prefixes }
    }

    /// True when there is nothing to map back.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Rewrites one line of rustc's stderr (with or without its newline).
    pub fn line<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]> {
        if self.is_empty() {
            return Cow::Borrowed(line);
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return Cow::Borrowed(line);
        };
        if !self.prefixes.iter().any(|(v, _)| text.contains(v.as_str())) {
            return Cow::Borrowed(line);
        }
        let json = text.starts_with('{');
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        while let Some(at) = self.next_file_name(rest, json) {
            out.push_str(&rest[..at]);
            let (virtual_prefix, real) = self
                .prefixes
                .iter()
                .find(|(v, _)| rest[at..].starts_with(v.as_str()))
                .expect("next_file_name found a prefix");
            out.push_str(&if json { json_inner(real) } else { real.clone() });
            rest = &rest[at + virtual_prefix.len()..];
        }
        out.push_str(rest);
        Cow::Owned(out.into_bytes())
    }

    /// Rewrites a whole recorded stderr, line by line.
    pub fn text(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(&self.line(line));
        }
        out
    }

    /// The position of the next remapped file name in `text` (the start of its prefix).
    fn next_file_name(&self, text: &str, json: bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut consider = |at: usize| {
            if self
                .prefixes
                .iter()
                .any(|(v, _)| text[at..].starts_with(v.as_str()))
                && best.is_none_or(|b| at < b)
            {
                best = Some(at);
            }
        };
        if json {
            for (i, _) in text.match_indices("\"file_name\":\"") {
                consider(i + "\"file_name\":\"".len());
            }
        }
        for marker in LOCATION_MARKERS {
            for (i, _) in text.match_indices(marker) {
                if starts_a_line(text, i) {
                    consider(skip_ansi(text, i + marker.len()));
                }
            }
        }
        best
    }
}

/// Whether only spaces and ANSI escapes stand between the start of a line and `at` (a line
/// starts the text, follows a newline, raw or JSON-escaped, or opens a `rendered` string).
fn starts_a_line(text: &str, at: usize) -> bool {
    let mut before = &text[..at];
    loop {
        before = before.trim_end_matches(' ');
        let Some(body) = before.strip_suffix('m') else {
            break;
        };
        let digits = body.trim_end_matches(|c: char| c.is_ascii_digit() || c == ';');
        match ANSI_STARTS.iter().find_map(|s| digits.strip_suffix(s)) {
            Some(rest) => before = rest,
            None => break,
        }
    }
    before.is_empty()
        || before.ends_with('\n')
        || (before.ends_with("\\n") && !before.ends_with("\\\\n"))
        || before.ends_with("\"rendered\":\"")
}

/// The position after any ANSI escapes (`ESC [ ... m`, raw or JSON-escaped) at `at`.
fn skip_ansi(text: &str, mut at: usize) -> usize {
    'outer: loop {
        for start in ANSI_STARTS {
            if text[at..].starts_with(start) {
                let body = &text[at + start.len()..];
                let len = body
                    .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                    .unwrap_or(body.len());
                if body[len..].starts_with('m') {
                    at += start.len() + len + 1;
                    continue 'outer;
                }
            }
        }
        return at;
    }
}

/// `s` as it appears between the quotes of a JSON string.
fn json_inner(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

/// Streams lines through an [`Unmap`]: complete lines are rewritten as they arrive (cargo reads
/// rustc's artifact notifications as they come), a partial line waits for its end.
pub struct LineRewriter<'a> {
    unmap: &'a Unmap,
    pending: Vec<u8>,
}

impl<'a> LineRewriter<'a> {
    /// A rewriter with nothing pending.
    pub fn new(unmap: &'a Unmap) -> LineRewriter<'a> {
        LineRewriter {
            unmap,
            pending: Vec::new(),
        }
    }

    /// Takes a chunk of output and returns what can be written now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.pending.split_off(end + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        self.unmap.text(&complete)
    }

    /// What is left at the end of the output.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        self.unmap.line(&rest).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmap() -> Unmap {
        Unmap::new(&Anchors::from_pairs([
            ("WORKSPACE", "/home/dev/proj"),
            ("TARGET", "/home/dev/proj/target"),
            ("CARGO_HOME", "/home/dev/my \"cargo\""),
        ]))
    }

    fn line(u: &Unmap, s: &str) -> String {
        String::from_utf8(u.line(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn maps_back_json_file_names_and_rendered_locations() {
        let u = unmap();
        let msg = r#"{"$message_type":"diagnostic","message":"unused variable: `x` in \"./a\"","spans":[{"file_name":"$TARGET/debug/build/x/out/gen.rs","line_start":2,"expansion":{"span":{"file_name":"./src/lib.rs"}}}],"children":[{"spans":[{"file_name":"$CARGO_HOME/registry/src/i/itoa-1.0.10/src/lib.rs"}]}],"rendered":"warning: x\n  \u001b[0m\u001b[1m\u001b[38;5;12m--> \u001b[0m\u001b[0m$TARGET/debug/build/x/out/gen.rs:2:9\n   |\n2  |     let p = \"./src/lib.rs --> ./x\";\n  ::: $CARGO_HOME/registry/src/i/itoa-1.0.10/src/lib.rs:5:1\n"}"#;
        let out = line(&u, msg);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["spans"][0]["file_name"],
            "/home/dev/proj/target/debug/build/x/out/gen.rs"
        );
        assert_eq!(
            v["spans"][0]["expansion"]["span"]["file_name"],
            "/home/dev/proj/src/lib.rs"
        );
        assert_eq!(
            v["children"][0]["spans"][0]["file_name"],
            "/home/dev/my \"cargo\"/registry/src/i/itoa-1.0.10/src/lib.rs"
        );
        let rendered = v["rendered"].as_str().unwrap();
        assert!(
            rendered.contains("\x1b[0m/home/dev/proj/target/debug/build/x/out/gen.rs:2:9\n"),
            "{rendered}"
        );
        assert!(rendered
            .contains("  ::: /home/dev/my \"cargo\"/registry/src/i/itoa-1.0.10/src/lib.rs:5:1\n"));
        // Source text and message text are left alone.
        assert!(rendered.contains("let p = \"./src/lib.rs --> ./x\";"));
        assert_eq!(v["message"], "unused variable: `x` in \"./a\"");
    }

    #[test]
    fn maps_back_human_locations_and_leaves_other_lines() {
        let u = unmap();
        assert_eq!(
            line(&u, " --> ./src/lib.rs:1:5\n"),
            " --> /home/dev/proj/src/lib.rs:1:5\n"
        );
        assert_eq!(line(&u, "src/lib.rs:1:5 ./x\n"), "src/lib.rs:1:5 ./x\n");
        let artifact =
            r#"{"artifact":"/home/dev/proj/target/debug/deps/libx.rmeta","emit":"metadata"}"#;
        assert_eq!(line(&u, artifact), artifact);
    }

    #[test]
    fn rewrites_streamed_lines_once_complete() {
        let u = unmap();
        let mut r = LineRewriter::new(&u);
        assert!(r.push(b" --> ./src/").is_empty());
        assert_eq!(
            r.push(b"a.rs:1:1\n --> $TARGET/x"),
            b" --> /home/dev/proj/src/a.rs:1:1\n"
        );
        assert_eq!(r.finish(), b" --> /home/dev/proj/target/x");
    }
}
