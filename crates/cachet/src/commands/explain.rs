//! `cachet explain [CRATE]`: why the last build (or the last compile of a crate) missed.
//!
//! Reads the journal the wrapper keeps (one line per rustc call). A miss lists the key inputs
//! that differ from the nearest earlier entry of the same crate; a pass-through or an unstored
//! result gives its reason. The calls of one build are those with the same parent process
//! (cargo) as the latest call.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use cachet_wrapper::config::Config;
use cachet_wrapper::journal::{self, Outcome, Record};

/// Arguments of `cachet explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Explain the most recent compile of this crate (as in `--crate-name`, e.g. `serde_json`)
    /// instead of the whole last build.
    pub krate: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Also list the hits.
    #[arg(long)]
    pub all: bool,
}

/// Prints the explanation.
pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    let records = journal::read(&config.dir);
    let Some(last) = records.last() else {
        anyhow::bail!(
            "no compiler calls recorded in {}: build through cachet first (RUSTC_WRAPPER=cachet cargo build)",
            config.dir.display()
        );
    };
    let selected: Vec<&Record> = match &args.krate {
        Some(k) => {
            let found = records
                .iter()
                .rev()
                .find(|r| r.krate.as_deref() == Some(k.as_str()));
            match found {
                Some(r) => vec![r],
                None => anyhow::bail!("no call for crate {k} in the journal (crate names use `_`, as in --crate-name)"),
            }
        }
        None => {
            let day = 24 * 3600 * 1000;
            records
                .iter()
                .filter(|r| r.parent == last.parent && r.time_ms + day >= last.time_ms)
                .collect()
        }
    };
    if args.json {
        let out = serde_json::json!({ "parent": last.parent, "calls": selected });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", render(&selected, args.all))?;
    Ok(ExitCode::SUCCESS)
}

fn label(o: Outcome) -> &'static str {
    match o {
        Outcome::HitLocal => "hit",
        Outcome::HitRemote => "hit (server)",
        Outcome::Miss => "miss",
        Outcome::MissNotStored => "not stored",
        Outcome::CompileFailed => "failed",
        Outcome::PassThrough => "passed",
    }
}

fn render(calls: &[&Record], all: bool) -> String {
    let mut out = String::new();
    let count = |f: &dyn Fn(Outcome) -> bool| calls.iter().filter(|r| f(r.outcome)).count();
    let hits = count(&|o| matches!(o, Outcome::HitLocal | Outcome::HitRemote));
    let misses = count(&|o| matches!(o, Outcome::Miss | Outcome::MissNotStored));
    let passed = count(&|o| o == Outcome::PassThrough);
    if let Some(first) = calls.first() {
        let when = UNIX_EPOCH + Duration::from_millis(first.time_ms);
        out.push_str(&format!(
            "{} compiler calls from {}: {hits} hits, {misses} misses, {passed} passed through\n",
            calls.len(),
            humantime::format_rfc3339_seconds(when)
        ));
    }
    for r in calls {
        let hit = matches!(r.outcome, Outcome::HitLocal | Outcome::HitRemote);
        if hit && !all {
            continue;
        }
        // cargo's own version and target queries carry no crate and say nothing useful.
        if r.krate.is_none() && r.reason.as_deref() == Some("version or print query") {
            continue;
        }
        let krate = r.krate.as_deref().unwrap_or("-");
        let head = format!("{:<12}{:<24}", label(r.outcome), krate);
        let mut lines: Vec<String> = Vec::new();
        if let Some(reason) = &r.reason {
            lines.push(reason.clone());
        }
        // A miss that is not stored is compared like a stored one; `None` there means the
        // crate had no record to compare with.
        let compared = r.outcome == Outcome::Miss
            || (r.outcome == Outcome::MissNotStored && r.changes.is_some());
        if compared {
            match &r.changes {
                None => lines.push("first compile of this crate in this cache".into()),
                Some(c) if c.is_empty() => lines
                    .push("same inputs as an earlier entry, which was evicted or removed".into()),
                Some(changes) => {
                    for c in changes {
                        let what = if c.name.is_empty() {
                            c.kind.clone()
                        } else {
                            format!("{} {}", c.kind, c.name)
                        };
                        lines.push(match (&c.before, &c.after) {
                            (Some(b), Some(a)) if c.kind == "argument" => {
                                format!("{what}: {b} → {a}")
                            }
                            (Some(b), Some(a)) => format!("{what} changed: {b} → {a}"),
                            (None, Some(_)) => format!("{what} added"),
                            (Some(_), None) => format!("{what} removed"),
                            (None, None) => what,
                        });
                    }
                }
            }
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
        for (i, l) in lines.iter().enumerate() {
            let prefix = if i == 0 {
                head.clone()
            } else {
                " ".repeat(head.len())
            };
            out.push_str(&format!("{prefix}{l}\n"));
        }
    }
    out
}
