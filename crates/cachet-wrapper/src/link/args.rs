//! The words of a link command: which of them name files the link reads, which search
//! directories and libraries, and which are values the linker writes into its output.
//!
//! The C driver (`cc`) and the linker accept hundreds of options, and an option's argument may
//! be attached (`-lfoo`, `--library=foo`), separate (`-L dir`, `-Xlinker -rpath -Xlinker DIR`),
//! inside a comma list (`-Wl,--library-path=D,--library=x`) or in a response file (`@FILE` to
//! the driver, `-Wl,@FILE` to the linker). A word that names a file the link reads and is not
//! followed would let a changed file restore an old link, so this parser is an allowlist: every
//! option it accepts is classified (no argument, a keyword argument, an output, an input file,
//! a search directory, a library, a value embedded in the output), and any other option means
//! the result is not stored (`link option not understood`).

use std::fs;
use std::path::{Path, PathBuf};

/// How a `-l` library may be satisfied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibMode {
    /// A shared library first, then a static one.
    Dynamic,
    /// Only a static archive (`-Bstatic`).
    Static,
}

/// What a link command reads and embeds, as written in it (relative paths are relative to
/// rustc's working directory).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkWords {
    /// Files read as they are named: objects, archives, version scripts, response files.
    pub files: Vec<PathBuf>,
    /// Library search directories (`-L`), in order.
    pub search: Vec<PathBuf>,
    /// Libraries to resolve through the search path.
    pub libs: Vec<(String, LibMode)>,
    /// The driver's program prefixes (`-B`).
    pub prefixes: Vec<PathBuf>,
    /// `-fuse-ld=` value.
    pub fuse_ld: Option<String>,
    /// Linker scripts (`-T`), searched in the working directory and the search path.
    pub scripts: Vec<String>,
    /// Values the linker writes into the output as paths (`-rpath`, `--dynamic-linker`).
    pub embedded_paths: Vec<String>,
    /// `-static` or `-static-pie` given to the driver: every library is static.
    pub all_static: bool,
}

/// Why a link command cannot be followed.
pub type Refusal = crate::reason::NotStoredReason;

/// The argument an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    /// None (`=value` accepted for the options that take an optional one).
    Nothing,
    /// A keyword or symbol that names no file.
    Keyword,
    /// An output file (not read).
    Output,
    /// An input file.
    File,
    /// A linker script.
    Script,
    /// A library search directory.
    Dir,
    /// A library name.
    Lib,
    /// A path written into the output.
    Embedded,
}

/// Linker options (GNU ld and lld spellings, without leading dashes).
const LINKER_OPTIONS: &[(&str, Takes)] = {
    use Takes::*;
    &[
        ("as-needed", Nothing),
        ("no-as-needed", Nothing),
        ("eh-frame-hdr", Nothing),
        ("no-eh-frame-hdr", Nothing),
        ("gc-sections", Nothing),
        ("no-gc-sections", Nothing),
        ("print-gc-sections", Nothing),
        ("strip-debug", Nothing),
        ("strip-all", Nothing),
        ("s", Nothing),
        ("S", Nothing),
        ("whole-archive", Nothing),
        ("no-whole-archive", Nothing),
        ("export-dynamic", Nothing),
        ("no-export-dynamic", Nothing),
        ("E", Nothing),
        ("no-undefined", Nothing),
        ("no-undefined-version", Nothing),
        ("undefined-version", Nothing),
        ("allow-shlib-undefined", Nothing),
        ("no-allow-shlib-undefined", Nothing),
        ("pie", Nothing),
        ("pic-executable", Nothing),
        ("no-pie", Nothing),
        ("shared", Nothing),
        ("Bshareable", Nothing),
        ("Bsymbolic", Nothing),
        ("Bsymbolic-functions", Nothing),
        ("Bno-symbolic", Nothing),
        ("allow-multiple-definition", Nothing),
        ("start-group", Nothing),
        ("end-group", Nothing),
        ("(", Nothing),
        (")", Nothing),
        ("fatal-warnings", Nothing),
        ("no-fatal-warnings", Nothing),
        ("enable-new-dtags", Nothing),
        ("disable-new-dtags", Nothing),
        ("copy-dt-needed-entries", Nothing),
        ("no-copy-dt-needed-entries", Nothing),
        ("color-diagnostics", Nothing),
        ("warn-common", Nothing),
        ("v", Nothing),
        ("verbose", Nothing),
        ("discard-all", Nothing),
        ("x", Nothing),
        ("discard-locals", Nothing),
        ("X", Nothing),
        ("relax", Nothing),
        ("no-relax", Nothing),
        ("push-state", Nothing),
        ("pop-state", Nothing),
        ("nostdlib", Nothing),
        ("no-dynamic-linker", Nothing),
        ("O0", Nothing),
        ("O1", Nothing),
        ("O2", Nothing),
        ("O3", Nothing),
        ("demangle", Nothing),
        ("no-demangle", Nothing),
        ("build-id", Nothing),
        ("icf", Nothing),
        ("hash-style", Nothing),
        ("compress-debug-sections", Nothing),
        ("threads", Nothing),
        ("no-keep-memory", Nothing),
        ("gdb-index", Nothing),
        ("rosegment", Nothing),
        ("no-rosegment", Nothing),
        ("error-unresolved-symbols", Nothing),
        ("warn-unresolved-symbols", Nothing),
        ("sort-common", Nothing),
        ("emit-relocs", Nothing),
        ("q", Nothing),
        ("no-warn-rwx-segments", Nothing),
        ("no-warn-execstack", Nothing),
        ("warn-once", Nothing),
        ("warn-backrefs", Nothing),
        ("no-warn-mismatch", Nothing),
        ("apply-dynamic-relocs", Nothing),
        ("Bsymbolic-non-weak-functions", Nothing),
        ("fix-cortex-a53-843419", Nothing),
        ("ignore-data-address-equality", Nothing),
        ("ignore-function-address-equality", Nothing),
        ("print-map", Nothing),
        ("cref", Nothing),
        ("stats", Nothing),
        ("trace", Nothing),
        ("t", Nothing),
        ("print-memory-usage", Nothing),
        ("lto-O0", Nothing),
        ("lto-O1", Nothing),
        ("lto-O2", Nothing),
        ("lto-O3", Nothing),
        ("Bstatic", Nothing),
        ("Bdynamic", Nothing),
        ("dn", Nothing),
        ("dy", Nothing),
        ("static", Nothing),
        ("non_shared", Nothing),
        ("call_shared", Nothing),
        ("z", Keyword),
        ("soname", Keyword),
        ("h", Keyword),
        ("e", Keyword),
        ("entry", Keyword),
        ("m", Keyword),
        ("u", Keyword),
        ("undefined", Keyword),
        ("defsym", Keyword),
        ("exclude-libs", Keyword),
        ("wrap", Keyword),
        ("require-defined", Keyword),
        ("export-dynamic-symbol", Keyword),
        ("image-base", Keyword),
        ("section-start", Keyword),
        ("oformat", Keyword),
        ("Ttext", Keyword),
        ("Tdata", Keyword),
        ("Tbss", Keyword),
        ("Ttext-segment", Keyword),
        ("y", Keyword),
        ("trace-symbol", Keyword),
        ("plugin-opt", Keyword),
        ("sort-section", Keyword),
        ("init", Keyword),
        ("fini", Keyword),
        ("rpath-link", Keyword),
        ("pack-dyn-relocs", Keyword),
        ("error-limit", Keyword),
        ("package-metadata", Keyword),
        ("undefined-glob", Keyword),
        ("thinlto-jobs", Keyword),
        ("unresolved-symbols", Keyword),
        ("o", Output),
        ("output", Output),
        ("Map", Output),
        ("out-implib", Output),
        ("dependency-file", Output),
        ("version-script", File),
        ("dynamic-list", File),
        ("retain-symbols-file", File),
        ("just-symbols", File),
        ("export-dynamic-symbol-list", File),
        ("symbol-ordering-file", File),
        ("call-graph-ordering-file", File),
        ("plugin", File),
        ("T", Script),
        ("script", Script),
        ("dT", Script),
        ("default-script", Script),
        ("L", Dir),
        ("library-path", Dir),
        ("l", Lib),
        ("library", Lib),
        ("rpath", Embedded),
        ("R", Embedded),
        ("dynamic-linker", Embedded),
        ("I", Embedded),
    ]
};

/// Single-letter linker options whose argument may be attached (`-lfoo`, `-znow`).
const LINKER_ATTACHED: &[char] = &['l', 'L', 'T', 'z', 'h', 'e', 'o', 'R', 'u', 'y', 'm', 'I'];

/// Options the driver passes on with their argument, or takes itself.
const DRIVER_OPTIONS: &[(&str, Takes)] = {
    use Takes::*;
    &[
        ("-o", Output),
        ("-L", Dir),
        ("-l", Lib),
        ("-T", Script),
        ("-z", Keyword),
        ("-u", Keyword),
        ("-e", Keyword),
        ("-target", Keyword),
        ("--ld-path", File),
    ]
};

/// Driver flags without an argument that read no file.
const DRIVER_FLAGS: &[&str] = &[
    "-m64",
    "-m32",
    "-mx32",
    "-pie",
    "-no-pie",
    "-shared",
    "-nodefaultlibs",
    "-nostartfiles",
    "-nostdlib",
    "-nolibc",
    "-rdynamic",
    "-s",
    "-pthread",
    "-static-libgcc",
    "-shared-libgcc",
    "-static-libstdc++",
    "-symbolic",
    "-v",
    "-w",
    "-fPIC",
    "-fpic",
    "-fPIE",
    "-fpie",
    "-fno-pie",
    "-fno-PIE",
    "-fno-plt",
    "-flto",
    "-fno-lto",
    "-fuse-linker-plugin",
    "-fno-use-linker-plugin",
    "-fno-omit-frame-pointer",
    "-fomit-frame-pointer",
    "-fdata-sections",
    "-ffunction-sections",
    "-funwind-tables",
    "-fasynchronous-unwind-tables",
    "-fexceptions",
    "-fno-exceptions",
    "-fno-stack-protector",
    "-fstack-protector",
    "-fstack-protector-strong",
    "-fstack-protector-all",
    "-fstack-clash-protection",
    "-fno-stack-clash-protection",
    "-fcf-protection",
    "-fcf-protection=full",
    "-fcf-protection=branch",
    "-fcf-protection=return",
    "-fcf-protection=none",
    "-fno-semantic-interposition",
    "-fvisibility=hidden",
    "-fvisibility=default",
    "-fno-common",
    "-fno-strict-aliasing",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-no-canonical-prefixes",
    "-Qunused-arguments",
    "-nostdlib++",
];

/// Reads the words of a response file as the GNU tools do (libiberty's `buildargv`):
/// whitespace separates words, single and double quotes group, a backslash escapes.
pub fn response_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            (q, Some(open)) if q == open => quote = None,
            (_, Some(_)) => word.push(c),
            ('\'' | '"', None) => {
                quote = Some(c);
                in_word = true;
            }
            (c, None) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (c, None) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The parser's state across words (an option's argument may be the next word).
struct Parser<'a> {
    cwd: &'a Path,
    words: LinkWords,
    mode: LibMode,
    /// A linker option waiting for its argument.
    pending_linker: Option<Takes>,
    /// Response files being read, to refuse a cycle.
    depth: usize,
}

fn lookup(table: &[(&str, Takes)], name: &str) -> Option<Takes> {
    table.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

impl Parser<'_> {
    fn take(&mut self, takes: Takes, value: &str) -> Result<(), Refusal> {
        let w = &mut self.words;
        match takes {
            Takes::Nothing | Takes::Keyword | Takes::Output => {}
            Takes::File => w.files.push(PathBuf::from(value)),
            Takes::Script => w.scripts.push(value.to_string()),
            Takes::Dir => w.search.push(PathBuf::from(value)),
            Takes::Lib => w.libs.push((value.to_string(), self.mode)),
            Takes::Embedded => w.embedded_paths.push(value.to_string()),
        }
        Ok(())
    }

    /// Reads a response file: it is an input itself, and its words are read in place.
    fn response_file(&mut self, name: &str, linker: bool) -> Result<(), Refusal> {
        if self.depth > 8 {
            return Err(Refusal::ResponseFilesTooDeep);
        }
        let path = self.cwd.join(name);
        let text = fs::read_to_string(&path).map_err(|_| Refusal::ResponseFileUnreadable)?;
        self.words.files.push(PathBuf::from(name));
        self.depth += 1;
        for word in response_words(&text) {
            if linker {
                self.linker_word(&word)?;
            } else {
                self.driver_words(&mut std::iter::once(word))?;
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// One word the linker sees (from `-Wl,`, `-Xlinker` or a linker response file).
    fn linker_word(&mut self, word: &str) -> Result<(), Refusal> {
        if let Some(takes) = self.pending_linker.take() {
            return self.take(takes, word);
        }
        if let Some(file) = word.strip_prefix('@') {
            return self.response_file(file, true);
        }
        if !word.starts_with('-') || word == "-" {
            self.words.files.push(PathBuf::from(word));
            return Ok(());
        }
        let bare = word.strip_prefix("--").unwrap_or(&word[1..]);
        let (name, value) = match bare.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (bare, None),
        };
        if matches!(name, "sysroot" | "error-handling-script") {
            return Err(Refusal::LinkerOptionNamesFiles);
        }
        if let Some(takes) = lookup(LINKER_OPTIONS, name) {
            match name {
                "Bstatic" | "dn" | "static" | "non_shared" => self.mode = LibMode::Static,
                "Bdynamic" | "dy" | "call_shared" => self.mode = LibMode::Dynamic,
                _ => {}
            }
            return match (takes, value) {
                (Takes::Nothing, _) => Ok(()),
                (t, Some(v)) => self.take(t, v),
                (t, None) => {
                    self.pending_linker = Some(t);
                    Ok(())
                }
            };
        }
        // A single-letter option with its argument attached: `-lfoo`, `-L/dir`, `-znow`.
        if !word.starts_with("--") {
            let mut chars = word[1..].chars();
            if let Some(c) = chars.next().filter(|c| LINKER_ATTACHED.contains(c)) {
                let takes = lookup(LINKER_OPTIONS, &c.to_string()).unwrap_or(Takes::Keyword);
                return self.take(takes, chars.as_str());
            }
        }
        Err(not_understood(word))
    }

    /// Words given to the driver; an option's argument is read from the same iterator.
    fn driver_words(&mut self, words: &mut dyn Iterator<Item = String>) -> Result<(), Refusal> {
        while let Some(word) = words.next() {
            let w = word.as_str();
            let mut next = || words.next().ok_or(Refusal::LinkCommandTruncated);
            if let Some(list) = w.strip_prefix("-Wl,") {
                for part in list.split(',') {
                    self.linker_word(part)?;
                }
            } else if w == "-Xlinker" {
                let value = next()?;
                self.linker_word(&value)?;
            } else if let Some(file) = w.strip_prefix('@') {
                self.response_file(file, false)?;
            } else if !w.starts_with('-') || w == "-" {
                self.words.files.push(PathBuf::from(w));
            } else if DRIVER_FLAGS.contains(&w) || is_driver_flag(w) {
            } else if matches!(w, "-static" | "-static-pie") {
                self.words.all_static = true;
            } else if let Some(ld) = w.strip_prefix("-fuse-ld=") {
                if ld.contains('/') {
                    self.words.files.push(PathBuf::from(ld));
                } else {
                    self.words.fuse_ld = Some(ld.to_string());
                }
            } else if let Some(dir) = w.strip_prefix("-B") {
                let dir = if dir.is_empty() {
                    next()?
                } else {
                    dir.to_string()
                };
                self.words.prefixes.push(PathBuf::from(dir));
            } else if let Some(takes) = lookup(DRIVER_OPTIONS, w) {
                let value = next()?;
                self.take(takes, &value)?;
            } else if let Some((name, value)) = w.split_once('=') {
                let takes = lookup(DRIVER_OPTIONS, name).ok_or_else(|| not_understood(w))?;
                self.take(takes, value)?;
            } else if let Some(c) = ['L', 'l', 'T', 'z', 'u', 'e', 'o']
                .into_iter()
                .find(|c| w[1..].starts_with(*c))
            {
                let takes = lookup(DRIVER_OPTIONS, &format!("-{c}")).unwrap_or(Takes::Keyword);
                self.take(takes, &w[2..])?;
            } else {
                return Err(not_understood(w));
            }
        }
        Ok(())
    }
}

/// The refusal of a word the allowlist does not hold; the word itself is in the debug log
/// (`CACHET_LOG=debug`), the counted reason stays one stable string.
fn not_understood(word: &str) -> Refusal {
    tracing::debug!(option = word, "link option not understood");
    Refusal::LinkOptionNotUnderstood
}

/// Driver flags recognised by their shape: optimisation and debug levels, warnings and
/// machine options, none of which names a file.
fn is_driver_flag(w: &str) -> bool {
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.' | '+' | ','))
    };
    (w.starts_with("-O") && w.len() <= 6 && plain(w))
        || (w.starts_with("-g") && plain(w))
        || (w.starts_with("-m") && plain(w))
        || (w.starts_with("-W")
            && !w.starts_with("-Wl,")
            && !w.starts_with("-Wp,")
            && !w.starts_with("-Wa,")
            && plain(w))
        || (w.starts_with("--target=") && plain(w))
        || (w.starts_with("-flto=") && plain(w))
}

/// Classifies every word of the driver's arguments. `Err` says why the link cannot be
/// followed (the result is then not stored).
pub fn classify(args: &[String], cwd: &Path) -> Result<LinkWords, Refusal> {
    let mut p = Parser {
        cwd,
        words: LinkWords::default(),
        mode: LibMode::Dynamic,
        pending_linker: None,
        depth: 0,
    };
    p.driver_words(&mut args.iter().cloned())?;
    if p.pending_linker.is_some() {
        return Err(Refusal::LinkCommandTruncated);
    }
    Ok(p.words)
}

#[cfg(test)]
mod tests;
