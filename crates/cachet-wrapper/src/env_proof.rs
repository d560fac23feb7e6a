//! When a path-valued variable read through `env!` may be keyed relative to its anchor.
//!
//! A crate that reads `env!("OUT_DIR")` or `env!("CARGO_MANIFEST_DIR")` depends on where the
//! checkout is, unless the value is only used to find a file at compile time:
//! `include!(concat!(env!("OUT_DIR"), "/private.rs"))` (serde, thiserror, rustversion) reads a
//! file that dep-info lists and cachet hashes, and the file's path reaches the outputs only
//! through spans, which `--remap-path-prefix` makes the same in every checkout. Anywhere else
//! the value can be baked into the program, transformed (`env!("X").len()`) or hidden in LTO
//! bitcode, so looking for its bytes in the outputs proves nothing. The value is keyed
//! literally (the crate is compiled per checkout) unless this module proves that every read of
//! the variable is of that form.
//!
//! The proof is syntactic, over every file dep-info lists (the crate's modules and every file
//! it `include!`s: generated code is scanned too), tokenised as rustc would. `env!("X")` can be
//! evaluated in this crate only where a macro invocation expands to it, so the proof accounts
//! for every macro that can run:
//!
//! 1. Every `env!`/`option_env!` in the tokens has a single string literal argument (not
//!    `env!($name)` in a local macro, not `env!(concat!(..))`), and for each variable to prove,
//!    every such read is exactly `include!`/`include_str!`/`include_bytes!` of
//!    `concat!(env!("X"), "literal", ...)`.
//! 2. Those builtin names mean the builtins: no local `macro_rules!` defines `include`,
//!    `concat`, `env`, ... and no `use` item brings or renames anything to those names.
//! 3. No macro from another crate can run, when the crate has any dependency crate at all
//!    (`--extern`, or a `-L crate=`/`-L all=` directory `extern crate` could search): every
//!    bang macro invoked is defined by a local `macro_rules!` or is a standard-library macro
//!    (not shadowed: no glob import, no `#[macro_use] extern crate`, no `use` naming it), every
//!    attribute is a builtin one, every derive a builtin derive. A macro of a dependency could
//!    otherwise expand to `env!("OUT_DIR")` in this crate (macro_rules bodies are in the
//!    dependency's metadata, proc-macros are programs), and this crate's source would not
//!    show it. Metavariable invocations (`$m!`) count as foreign.
//!
//! Standard-library macros do not read cargo's path variables. A proc-macro that reads the
//! variable itself with `std::env::var` is invisible to every cache (see docs/design.md and
//! `CACHET_KEY_ENV`). Tokenising costs a few milliseconds for the crates it runs for: only
//! those whose dep-info records a variable holding an anchored path, once per compile.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

use crate::reason::EnvUnproven;

/// Standard-library macros (prelude and `std::`/`core::` paths). None reads a cargo-set
/// variable.
const STD_MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "cfg",
    "column",
    "compile_error",
    "concat",
    "dbg",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "env",
    "eprint",
    "eprintln",
    "file",
    "format",
    "format_args",
    "include",
    "include_bytes",
    "include_str",
    "line",
    "matches",
    "module_path",
    "option_env",
    "panic",
    "print",
    "println",
    "stringify",
    "thread_local",
    "todo",
    "try",
    "unimplemented",
    "unreachable",
    "vec",
    "write",
    "writeln",
    "addr_of",
    "addr_of_mut",
    "offset_of",
    "pin",
    "asm",
    "global_asm",
    "naked_asm",
    "is_x86_feature_detected",
    "const_format_args",
];

/// The builtins the include form relies on.
const FORM_MACROS: &[&str] = &[
    "include",
    "include_str",
    "include_bytes",
    "concat",
    "env",
    "option_env",
];

/// Attributes that run no macro.
const BUILTIN_ATTRIBUTES: &[&str] = &[
    "cfg",
    "cfg_attr",
    "test",
    "ignore",
    "should_panic",
    "bench",
    "derive",
    "doc",
    "allow",
    "warn",
    "deny",
    "forbid",
    "expect",
    "inline",
    "cold",
    "must_use",
    "deprecated",
    "repr",
    "path",
    "macro_export",
    "macro_use",
    "no_mangle",
    "export_name",
    "link_section",
    "link",
    "link_name",
    "link_ordinal",
    "non_exhaustive",
    "automatically_derived",
    "track_caller",
    "target_feature",
    "used",
    "no_std",
    "no_main",
    "no_implicit_prelude",
    "no_core",
    "crate_type",
    "crate_name",
    "recursion_limit",
    "type_length_limit",
    "windows_subsystem",
    "global_allocator",
    "proc_macro",
    "proc_macro_derive",
    "proc_macro_attribute",
    "feature",
    "collapse_debuginfo",
    "debugger_visualizer",
    "instruction_set",
    "unsafe",
    "panic_handler",
    "naked",
    "optimize",
    "coverage",
    "register_tool",
];

/// Tool attribute namespaces (`#[rustfmt::skip]`, `#[clippy::...]`, `#[diagnostic::...]`).
const TOOL_NAMESPACES: &[&str] = &[
    "rustfmt",
    "clippy",
    "diagnostic",
    "rustdoc",
    "rust_analyzer",
];

/// Derives the compiler implements.
const BUILTIN_DERIVES: &[&str] = &[
    "Clone",
    "Copy",
    "Debug",
    "Default",
    "Eq",
    "Hash",
    "Ord",
    "PartialEq",
    "PartialOrd",
];

/// What the scan of a crate's tokens found.
#[derive(Debug, Default)]
struct Findings {
    /// Names defined by `macro_rules!`.
    local_macros: HashSet<String>,
    /// Single-segment bang macros invoked.
    invoked: HashSet<String>,
    /// Something that can only be a macro of another crate (a path to one, a non-builtin
    /// attribute or derive, a `$m!`).
    foreign: bool,
    /// A glob import, or `#[macro_use] extern crate`: names of other crates may shadow.
    may_shadow: bool,
    /// Names brought in or renamed by `use` items.
    imported: HashSet<String>,
    /// An `env!`/`option_env!` whose argument is not one string literal.
    dynamic_env: bool,
    /// Variables read by `env!`/`option_env!` outside the include form.
    bare_reads: HashSet<String>,
}

fn is_punct(t: &TokenTree, c: char) -> bool {
    matches!(t, TokenTree::Punct(p) if p.as_char() == c)
}

fn ident(t: &TokenTree) -> Option<String> {
    match t {
        TokenTree::Ident(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The value of a plain string literal token (`"..."` without escapes that matter for a
/// variable name), or `None`.
fn string_literal(t: &TokenTree) -> Option<String> {
    let TokenTree::Literal(l) = t else {
        return None;
    };
    let text = l.to_string();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then(|| inner.to_string())
}

/// The single string literal inside a macro's group (`("X")` or `("X",)`).
fn sole_literal(group: &TokenStream) -> Option<String> {
    let tokens: Vec<TokenTree> = group.clone().into_iter().collect();
    match tokens.as_slice() {
        [lit] => string_literal(lit),
        [lit, comma] if is_punct(comma, ',') => string_literal(lit),
        _ => None,
    }
}

/// True for `concat!(env!("X"), "lit", ...)` with a literal name; returns the name.
fn concat_of_env(tokens: &[TokenTree]) -> Option<String> {
    let [c, bang, TokenTree::Group(args)] = tokens else {
        return None;
    };
    if ident(c).as_deref() != Some("concat") || !is_punct(bang, '!') {
        return None;
    }
    let inner: Vec<TokenTree> = args.stream().into_iter().collect();
    let [e, bang, TokenTree::Group(env_args), rest @ ..] = inner.as_slice() else {
        return None;
    };
    if ident(e).as_deref() != Some("env") || !is_punct(bang, '!') {
        return None;
    }
    let name = sole_literal(&env_args.stream())?;
    // The rest: `, "lit"` pairs, with an optional trailing comma.
    let mut rest = rest.iter();
    while let Some(t) = rest.next() {
        if !is_punct(t, ',') {
            return None;
        }
        match rest.next() {
            None => break,
            Some(l) if string_literal(l).is_some() => {}
            Some(_) => return None,
        }
    }
    Some(name)
}

impl Findings {
    fn scan(&mut self, stream: TokenStream) {
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            // `#[attr]` / `#![attr]`
            if is_punct(t, '#') {
                let mut j = i + 1;
                if tokens.get(j).is_some_and(|t| is_punct(t, '!')) {
                    j += 1;
                }
                if let Some(TokenTree::Group(g)) = tokens.get(j) {
                    if g.delimiter() == Delimiter::Bracket {
                        self.attribute(g.stream());
                        let macro_use = g.stream().to_string() == "macro_use";
                        let next: Vec<Option<String>> =
                            tokens[j + 1..].iter().take(2).map(ident).collect();
                        if macro_use && next.first().cloned().flatten().as_deref() == Some("extern")
                        {
                            self.may_shadow = true;
                        }
                        i = j + 1;
                        continue;
                    }
                }
            }
            // `$m!` in a macro body: the macro invoked is the caller's choice.
            if is_punct(t, '$') {
                if let (Some(TokenTree::Ident(_)), Some(b)) = (tokens.get(i + 1), tokens.get(i + 2))
                {
                    if is_punct(b, '!') && !tokens.get(i + 3).is_some_and(|t| is_punct(t, '=')) {
                        self.foreign = true;
                    }
                }
            }
            if let Some(name) = ident(t) {
                if name == "use" {
                    i = self.use_item(&tokens, i + 1);
                    continue;
                }
                let bang = tokens.get(i + 1).is_some_and(|b| {
                    is_punct(b, '!')
                        && !matches!(b, TokenTree::Punct(p) if p.spacing() == Spacing::Joint)
                });
                if bang {
                    i = self.invocation(&tokens, i);
                    continue;
                }
            }
            if let TokenTree::Group(g) = t {
                self.scan(g.stream());
            }
            i += 1;
        }
    }

    /// `name!` at `tokens[i]`, possibly the last segment of a path; returns the next index.
    fn invocation(&mut self, tokens: &[TokenTree], i: usize) -> usize {
        let name = ident(&tokens[i]).unwrap_or_default();
        // The path before the name: `a::b::name!`.
        let mut root = None;
        let mut k = i;
        while k >= 3 && is_punct(&tokens[k - 1], ':') && is_punct(&tokens[k - 2], ':') {
            match ident(&tokens[k - 3]) {
                Some(seg) => {
                    root = Some(seg);
                    k -= 3;
                }
                None => {
                    // `$crate::name!` or `::name!`
                    root = Some(if k >= 4 && is_punct(&tokens[k - 4], '$') {
                        "$crate".to_string()
                    } else {
                        "::".to_string()
                    });
                    break;
                }
            }
        }
        if k == i && k >= 2 && is_punct(&tokens[k - 1], ':') && is_punct(&tokens[k - 2], ':') {
            root = Some("::".to_string());
        }
        if name == "macro_rules" {
            if let Some(defined) = tokens.get(i + 2).and_then(ident) {
                self.local_macros.insert(defined);
            }
            if let Some(TokenTree::Group(body)) = tokens.get(i + 3) {
                self.scan(body.stream());
            }
            return i + 4;
        }
        match root.as_deref() {
            None => {
                self.invoked.insert(name.clone());
            }
            Some("std" | "core" | "alloc") if STD_MACROS.contains(&name.as_str()) => {}
            // `$crate::m!` and `crate::m!` name this crate's macros (defined locally).
            Some("$crate" | "crate" | "self" | "super") => {
                self.invoked.insert(name.clone());
            }
            Some(_) => self.foreign = true,
        }
        let Some(TokenTree::Group(args)) = tokens.get(i + 2) else {
            return i + 2;
        };
        if name == "env" || name == "option_env" {
            match sole_literal(&args.stream()) {
                Some(var) => {
                    self.bare_reads.insert(var);
                }
                None => self.dynamic_env = true,
            }
            return i + 3;
        }
        if matches!(name.as_str(), "include" | "include_str" | "include_bytes") {
            let inner: Vec<TokenTree> = args.stream().into_iter().collect();
            if let Some(_var) = concat_of_env(&inner) {
                // The include form: the read is accounted for; `concat` and `env` are invoked.
                self.invoked.insert("concat".into());
                self.invoked.insert("env".into());
                return i + 3;
            }
        }
        self.scan(args.stream());
        i + 3
    }

    /// An attribute's contents: `path`, `path(...)`, `path = ...`.
    fn attribute(&mut self, stream: TokenStream) {
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let mut path = Vec::new();
        let mut k = 0;
        while let Some(seg) = tokens.get(k).and_then(ident) {
            path.push(seg);
            if tokens.get(k + 1).is_some_and(|t| is_punct(t, ':'))
                && tokens.get(k + 2).is_some_and(|t| is_punct(t, ':'))
            {
                k += 3;
            } else {
                k += 1;
                break;
            }
        }
        let builtin = match path.as_slice() {
            [one] => BUILTIN_ATTRIBUTES.contains(&one.as_str()),
            [ns, ..] => TOOL_NAMESPACES.contains(&ns.as_str()),
            [] => false,
        };
        if !builtin {
            self.foreign = true;
        }
        let args = match tokens.get(k) {
            Some(TokenTree::Group(g)) => Some(g.stream()),
            _ => None,
        };
        match (path.first().map(String::as_str), args) {
            (Some("derive"), Some(list)) => {
                for item in split_commas(list) {
                    let last = item.iter().rev().find_map(ident);
                    if !last.is_some_and(|n| BUILTIN_DERIVES.contains(&n.as_str())) {
                        self.foreign = true;
                    }
                }
            }
            (Some("cfg_attr"), Some(list)) => {
                // `cfg_attr(predicate, attr, attr...)`: each attr is an attribute.
                for item in split_commas(list).into_iter().skip(1) {
                    self.attribute(item.into_iter().collect());
                }
            }
            _ => {
                // `#[doc = include_str!(..)]`, `#[path = ".."]`: scan the value.
                self.scan(tokens[k.min(tokens.len())..].iter().cloned().collect());
            }
        }
    }

    /// A `use` item starting at `tokens[i]`; returns the index after its `;`.
    fn use_item(&mut self, tokens: &[TokenTree], i: usize) -> usize {
        let end = tokens[i..]
            .iter()
            .position(|t| is_punct(t, ';'))
            .map_or(tokens.len(), |p| i + p);
        self.use_tree(&tokens[i..end]);
        end + 1
    }

    fn use_tree(&mut self, tokens: &[TokenTree]) {
        for (k, t) in tokens.iter().enumerate() {
            match t {
                TokenTree::Group(g) => self.use_tree(&g.stream().into_iter().collect::<Vec<_>>()),
                TokenTree::Punct(p) if p.as_char() == '*' => self.may_shadow = true,
                TokenTree::Ident(name) => {
                    // A leaf: followed by nothing, `,`, or `as`; a rename: after `as`.
                    let next = tokens.get(k + 1);
                    let leaf =
                        next.is_none_or(|n| is_punct(n, ',') || ident(n).as_deref() == Some("as"));
                    let renamed = k > 0 && ident(&tokens[k - 1]).as_deref() == Some("as");
                    if leaf || renamed {
                        self.imported.insert(name.to_string());
                    }
                }
                _ => {}
            }
        }
    }
}

/// Splits a token stream at its top-level commas.
fn split_commas(stream: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut out = vec![Vec::new()];
    for t in stream {
        if is_punct(&t, ',') {
            out.push(Vec::new());
        } else {
            out.last_mut().unwrap().push(t);
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

/// Why a variable could not be proven absent from the outputs (or `Ok` when it is).
pub type Verdict = Result<(), EnvUnproven>;

/// Whether every read of each of `vars` in the crate whose dep-info lists `files` is the
/// include form, and no macro the proof cannot see can add one. `has_dependencies` is true
/// when the crate can load other crates (any `--extern`, or a crate search directory).
pub fn prove_only_included(files: &[&Path], vars: &[&str], has_dependencies: bool) -> Verdict {
    let mut f = Findings::default();
    for path in files {
        let Ok(text) = std::fs::read_to_string(path) else {
            // Not text: a file for include_bytes!, never Rust code.
            continue;
        };
        if let Ok(stream) = TokenStream::from_str(strip_shebang(&text)) {
            f.scan(stream);
        }
        // A file that is not Rust tokens cannot be a module or an include! of code.
    }
    if f.dynamic_env {
        return Err(EnvUnproven::ComputedName);
    }
    if vars.iter().any(|v| f.bare_reads.contains(*v)) {
        return Err(EnvUnproven::OutsideInclude);
    }
    if FORM_MACROS
        .iter()
        .any(|m| f.local_macros.contains(*m) || f.imported.contains(*m))
    {
        return Err(EnvUnproven::BuiltinShadowed);
    }
    if has_dependencies {
        if f.foreign || f.may_shadow {
            return Err(EnvUnproven::ForeignMacros);
        }
        let unknown = f.invoked.iter().any(|m| {
            !f.local_macros.contains(m)
                && (!STD_MACROS.contains(&m.as_str()) || f.imported.contains(m))
        });
        if unknown {
            return Err(EnvUnproven::ForeignMacros);
        }
    }
    Ok(())
}

/// rustc skips a `#!` line at the top of a file that is not an inner attribute.
fn strip_shebang(text: &str) -> &str {
    if text.starts_with("#!") && !text.starts_with("#![") {
        text.find('\n').map_or("", |n| &text[n..])
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
