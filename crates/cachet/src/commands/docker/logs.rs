//! `cachet docker logs`: the server container's log lines (`docker logs`), optionally limited
//! to a time window and a minimum level. Lines without a level (continuations of a multi-line
//! message) follow the decision for the line before them.

use std::process::ExitCode;

use anyhow::bail;

use super::{check_daemon, docker_output, require_container, DEFAULT_NAME};

/// Log levels, least to most severe.
const LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// Arguments of `cachet docker logs`.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// Container name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// Only lines newer than this (`5m`, `1h`, or a timestamp, as `docker logs --since`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines at this level or above: trace, debug, info, warn, error.
    #[arg(long)]
    pub level: Option<String>,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<u32>,
}

/// Prints the logs.
pub fn run(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let min = match &args.level {
        None => 0,
        Some(level) => match LEVELS.iter().position(|l| {
            l.eq_ignore_ascii_case(level) || (*l == "WARN" && level.eq_ignore_ascii_case("warning"))
        }) {
            Some(i) => i,
            None => bail!("unknown --level {level:?}: use trace, debug, info, warn or error"),
        },
    };
    require_container(&args.name)?;
    let mut argv = vec!["logs".to_string()];
    if let Some(since) = &args.since {
        argv.extend(["--since".into(), since.clone()]);
    }
    if let Some(tail) = args.tail {
        argv.extend(["--tail".into(), tail.to_string()]);
    }
    argv.push(args.name.clone());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = docker_output(&argv)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        check_daemon(&err)?;
        bail!("`docker logs` failed: {}", err.trim());
    }
    // The server logs to stderr; docker keeps the two streams apart. Show both, stdout first.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out!("{}", filter(&text, min))?;
    Ok(ExitCode::SUCCESS)
}

/// Keeps the lines at level index `min` or above.
fn filter(text: &str, min: usize) -> String {
    let mut keep = true;
    let mut out = String::new();
    for line in text.lines() {
        let plain = strip_ansi(line);
        if let Some(level) = level_of(&plain) {
            keep = level >= min;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The level index of a tracing line (`2026-... WARN target: msg`), if it has one.
fn level_of(line: &str) -> Option<usize> {
    line.split_whitespace()
        .take(3)
        .find_map(|word| LEVELS.iter().position(|l| *l == word))
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_filter_keeps_continuations_of_kept_lines() {
        let text = "2026-01-01T00:00:00Z  INFO cachet_server: listening\n\
                    2026-01-01T00:00:01Z  WARN cachet_server: no tokens\n  details\n\
                    2026-01-01T00:00:02Z \u{1b}[31mERROR\u{1b}[0m cachet_server: boom\n";
        let kept = filter(text, 3);
        assert!(!kept.contains("listening"));
        assert!(kept.contains("no tokens\n  details"));
        assert!(kept.contains("boom"));
    }
}
