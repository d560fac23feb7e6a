//! `cachet docker purge`: empties the cache through the server's admin API
//! (`DELETE /_admin/namespaces/<ns>`, one call per namespace), so the running server's index
//! and counters stay consistent (deleting files under a live server would not).
//!
//! The server has no namespace listing, so the namespaces are the known clients' (`cachet`,
//! `sccache`, `ccache`), any `--namespace` given, and, in persistent mode, every directory
//! under the host data directory's `objects-v1/`. Persistent data is only deleted after a
//! confirmation (or `--yes`).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use super::{host_address, require_container, DEFAULT_NAME};
use crate::commands::healthcheck::http_request;

/// Namespaces used by the clients cachet knows.
const KNOWN_NAMESPACES: &[&str] = &["cachet", "sccache", "ccache"];

/// Arguments of `cachet docker purge`.
#[derive(clap::Args)]
pub struct PurgeArgs {
    /// Container name.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// Do not ask before deleting a persistent store.
    #[arg(long, short)]
    pub yes: bool,
    /// Also purge this namespace (repeatable).
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
    /// Admin token, when the server has tokens (default: `CACHET_TOKEN`).
    #[arg(long, env = "CACHET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Purges every namespace it can find.
pub fn run(args: &PurgeArgs) -> anyhow::Result<ExitCode> {
    let state = require_container(&args.name)?;
    if state.status != "running" {
        bail!(
            "container {} is {}: start it first (`cachet docker start --name {}`); the purge goes \
             through the running server",
            args.name,
            state.status,
            args.name
        );
    }
    let addr = host_address(&args.name, &state)?;
    let mut namespaces: Vec<String> = KNOWN_NAMESPACES.iter().map(|s| s.to_string()).collect();
    namespaces.extend(args.namespaces.iter().cloned());
    if let Some(dir) = &state.data_dir {
        let objects = std::path::Path::new(dir).join("objects-v1");
        if let Ok(entries) = std::fs::read_dir(&objects) {
            for entry in entries.flatten() {
                if entry.path().is_dir() {
                    namespaces.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        namespaces.sort();
        namespaces.dedup();
        if !args.yes && !confirm(dir, &namespaces)? {
            outln!("nothing purged")?;
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut total = 0u64;
    for (i, ns) in namespaces.iter().enumerate() {
        let path = format!("/_admin/namespaces/{ns}");
        let (status, body) = http_request(
            &addr,
            "DELETE",
            &path,
            args.token.as_deref(),
            Duration::from_secs(60),
        )?;
        match status {
            200 => {
                let purged = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["purged_objects"].as_u64())
                    .unwrap_or(0);
                total += purged;
                eprintln!("[{}/{}] {ns}: {purged} objects", i + 1, namespaces.len());
            }
            401 | 403 => bail!(
                "the server refused the purge ({status}): pass an admin token with --token or \
                 CACHET_TOKEN (a token with scope `admin` in the server's token file)"
            ),
            _ => bail!(
                "the server answered {status} to DELETE {path}: {}",
                body.trim()
            ),
        }
    }
    outln!(
        "purged {total} objects from {} namespaces on {}",
        namespaces.len(),
        args.name
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; refuses without one.
fn confirm(dir: &str, namespaces: &[String]) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to delete the persistent store in {dir} without confirmation: pass --yes");
    }
    eprint!(
        "delete every object of namespaces {} in {dir}? [y/N] ",
        namespaces.join(", ")
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("failed to read the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
