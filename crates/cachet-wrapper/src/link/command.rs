//! Command parsing: the link command rustc prints with `--print link-args=FILE` (the
//! environment it sets, then the program and its arguments, each a Rust string literal), and
//! the argument that asks for it.

use std::ffi::OsString;
use std::path::Path;

/// A link command as rustc printed it: the environment it sets, then the program and its
/// arguments, each a Rust string literal.
#[derive(Debug, PartialEq, Eq)]
pub struct LinkCommand {
    /// `NAME="value"` assignments before the program.
    pub env: Vec<(String, String)>,
    /// The program.
    pub program: String,
    /// The arguments.
    pub args: Vec<String>,
}

/// Reads one `"..."` literal (Rust's `Debug` escaping) from the start of `s`; returns it and
/// the rest. `None` for anything else, including escapes of non-UTF-8 bytes.
fn literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    '\\' | '"' | '\'' => out.push(e),
                    'u' => {
                        let (_, open) = chars.next()?;
                        if open != '{' {
                            return None;
                        }
                        let mut hex = String::new();
                        loop {
                            let (_, h) = chars.next()?;
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Parses `--print link-args` output.
pub fn parse_command(text: &str) -> Option<LinkCommand> {
    let mut rest = text.trim();
    let mut env = Vec::new();
    let mut words = Vec::new();
    while !rest.is_empty() {
        if rest.starts_with('"') {
            let (w, r) = literal(rest)?;
            words.push(w);
            rest = r;
        } else if words.is_empty() {
            let (name, r) = rest.split_once('=')?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let (value, r) = literal(r)?;
            env.push((name.to_string(), value));
            rest = r;
        } else {
            return None;
        }
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            return None;
        }
        rest = rest.trim_start();
    }
    let mut words = words.into_iter();
    Some(LinkCommand {
        env,
        program: words.next()?,
        args: words.collect(),
    })
}

/// The `--print link-args=FILE` argument that makes rustc write its link command to `file`.
pub fn print_arg(file: &Path) -> OsString {
    let mut a = OsString::from("--print=link-args=");
    a.push(file);
    a
}
