//! `cachet stats`: what the local cache did, and what it saved.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use cachet_core::format_size;
use cachet_wrapper::config::Config;
use cachet_wrapper::local_store::LocalStore;
use cachet_wrapper::remote::Remote;
use cachet_wrapper::stats::{self, Stats};

/// Arguments of `cachet stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show the shared server's own statistics instead of this client's.
    #[arg(long)]
    pub server: bool,
}

/// Prints the statistics of the local cache.
pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    if args.server {
        return server_stats(&config, args.json);
    }
    let s = stats::read(&config.dir);
    let store = LocalStore::new(&config.dir, config.cache_size);
    let (size, objects) = store.usage();
    if args.json {
        let out = serde_json::json!({
            "stats": s,
            "cache": {
                "dir": config.dir,
                "size_bytes": size,
                "limit_bytes": config.cache_size,
                "objects": objects,
            },
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        out!("{}", render(&s, &config, size, objects))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn server_stats(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let rc = config.remote.clone().context(
        "no server configured: set CACHET_SERVER (or `server` in ~/.config/cachet/config.toml)",
    )?;
    let remote = Remote::new(rc)?;
    let (status, body) = remote.get_path("/stats")?;
    anyhow::ensure!(status == 200, "the server answered {status} to GET /stats");
    let v: serde_json::Value =
        serde_json::from_slice(&body).context("the server's /stats is not JSON")?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else if let Some(map) = v.as_object() {
        outln!(
            "Server {}",
            config
                .remote
                .as_ref()
                .map(|r| r.url.as_str())
                .unwrap_or_default()
        )?;
        for (k, val) in map {
            let shown = match (k.as_str(), val.as_u64()) {
                (k, Some(n)) if k.contains("bytes") || k == "max_size" => format_size(n),
                _ => val.to_string(),
            };
            outln!("  {k:<28}{shown}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn secs(millis: u64) -> String {
    format!("{:.1} s", millis as f64 / 1000.0)
}

/// The statistics as a table for people.
pub fn render(s: &Stats, config: &Config, size: u64, objects: usize) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut line = |label: &str, value: String| rows.push((label.to_string(), value));
    line("Cache directory", config.dir.display().to_string());
    if s.since_unix > 0 {
        let since = UNIX_EPOCH + Duration::from_secs(s.since_unix);
        line(
            "Counting since",
            humantime::format_rfc3339_seconds(since).to_string(),
        );
    }
    line("Calls", s.calls.to_string());
    line("  cacheable", s.cacheable_calls.to_string());
    line("  hits (local cache)", s.hits_local.to_string());
    line("  hits (server)", s.hits_remote.to_string());
    line("  misses", s.misses.to_string());
    line("  misses on the server", s.misses_remote.to_string());
    let looked_up = s.hits() + s.misses;
    if looked_up > 0 {
        line(
            "  hit rate",
            format!("{:.1} %", 100.0 * s.hits() as f64 / looked_up as f64),
        );
    }
    line("  compile failures", s.compile_failures.to_string());
    line("Passed through", s.pass_through_total().to_string());
    for (reason, n) in &s.pass_through {
        line(&format!("  {reason}"), n.to_string());
    }
    line(
        "Compiled, not stored",
        s.not_stored.values().sum::<u64>().to_string(),
    );
    for (reason, n) in &s.not_stored {
        line(&format!("  {reason}"), n.to_string());
    }
    if !s.stored_per_checkout.is_empty() {
        line(
            "Stored for this checkout only",
            s.stored_per_checkout.values().sum::<u64>().to_string(),
        );
        for (reason, n) in &s.stored_per_checkout {
            line(&format!("  {reason}"), n.to_string());
        }
    }
    line(
        "Errors (build went on)",
        s.errors.values().sum::<u64>().to_string(),
    );
    for (kind, n) in &s.errors {
        line(&format!("  {kind}"), n.to_string());
    }
    for (lang, n) in &s.languages {
        line(
            &format!("Calls ({lang})"),
            format!(
                "{}: {} hits, {} misses, {} passed through, {} not stored",
                n.calls, n.hits, n.misses, n.pass_through, n.not_stored
            ),
        );
    }
    line("Entries written", s.entries_written.to_string());
    line("Bytes read from cache", format_size(s.bytes_read));
    line("Bytes written to cache", format_size(s.bytes_written));
    line(
        "Uploads to the server",
        format!(
            "{} ({}), {} failed",
            s.uploads,
            format_size(s.bytes_uploaded),
            s.upload_failures
        ),
    );
    line(
        "Downloaded from the server",
        format_size(s.bytes_downloaded),
    );
    line("Time compiling (misses)", secs(s.compile_millis));
    line("Time serving hits", secs(s.hit_millis));
    line("Time saved (estimate)", secs(s.saved_millis));
    line(
        "Cache size",
        format!(
            "{} of {} ({objects} objects)",
            format_size(size),
            format_size(config.cache_size)
        ),
    );
    columns(&rows)
}

/// `rows` as two columns: the values start two spaces after the longest label (at least at
/// column 34), so a long reason never runs into its count.
fn columns(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(label, _)| label.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(34);
    rows.iter()
        .map(|(label, value)| format!("{label:<width$}{value}\n"))
        .collect()
}
