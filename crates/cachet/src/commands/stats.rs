//! `cachet stats`: what the local cache did, and what it saved.

use std::collections::BTreeMap;
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
    /// Show the server's dashboard summary (every client of this namespace) instead of this
    /// client's statistics.
    #[arg(long)]
    pub server: bool,
    /// With --server: how far back, e.g. 24h, 7d, 30d.
    #[arg(long, default_value = "7d", requires = "server")]
    pub since: String,
}

/// Prints the statistics of the local cache.
pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    if args.server {
        return server_stats(&config, args);
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

fn server_stats(config: &Config, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let rc = config.remote.clone().context(
        "no server configured: set CACHET_SERVER (or `server` in ~/.config/cachet/config.toml)",
    )?;
    humantime::parse_duration(&args.since)
        .with_context(|| format!("--since {:?} is not a duration such as 7d", args.since))?;
    let (url, namespace) = (rc.url.clone(), rc.namespace.clone());
    let remote = Remote::new(rc)?;
    let query = format!("?namespace={namespace}&since={}", args.since);
    let get = |endpoint: &str| -> anyhow::Result<Option<serde_json::Value>> {
        let path = format!("{}/{endpoint}{query}", cachet_core::report::API_PREFIX);
        let (status, body) = remote.get_path(&path)?;
        match status {
            200 => Ok(Some(
                serde_json::from_slice(&body)
                    .with_context(|| format!("the server's {path} is not JSON"))?,
            )),
            404 => Ok(None),
            401 | 403 => anyhow::bail!(
                "the server refused GET {path} ({status}): the token needs read access to namespace {namespace} (CACHET_TOKEN)"
            ),
            s => anyhow::bail!("the server answered {s} to GET {path}"),
        }
    };
    let Some(summary) = get("summary")? else {
        anyhow::bail!(
            "the server at {url} has no dashboard (GET {}/summary answered 404): it runs an older cachet; upgrade it to see every client's numbers",
            cachet_core::report::API_PREFIX
        );
    };
    let crates = get("crates")?.unwrap_or_default();
    let clients = get("clients")?.unwrap_or_default();
    if args.json {
        let all = serde_json::json!({"summary": summary, "crates": crates, "clients": clients});
        outln!("{}", serde_json::to_string_pretty(&all)?)?;
    } else {
        out!(
            "{}",
            render_server(&url, &namespace, &args.since, &summary, &crates, &clients)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration for people: seconds, minutes or hours, whichever reads best.
pub fn human_ms(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 90.0 {
        format!("{s:.1} s")
    } else if s < 5400.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn percent(rate: &serde_json::Value) -> String {
    rate.as_f64()
        .map(|r| format!("{:.1} %", r * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// The dashboard's overview as text: the same numbers as the page at `/ui`.
pub fn render_server(
    url: &str,
    namespace: &str,
    since: &str,
    summary: &serde_json::Value,
    crates: &serde_json::Value,
    clients: &serde_json::Value,
) -> String {
    use serde_json::Value;
    let mut out = String::new();
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let t = summary
        .get("namespaces")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|ns| ns["namespace"] == namespace))
        .unwrap_or(&summary["total"]);
    out.push_str(&format!(
        "Dashboard of {url}, namespace {namespace}, last {since} ({url}/ui)\n"
    ));
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<30}{value}\n"));
    let hits = n(t, "hits_local") + n(t, "hits_remote");
    let misses = n(t, "misses") + n(t, "misses_not_stored");
    line(
        "Calls reported",
        format!("{} from {} clients", n(t, "calls"), n(t, "clients")),
    );
    line(
        "Hit rate",
        format!(
            "{} ({hits} hits: {} local, {} from the server; {misses} misses)",
            percent(&t["hit_rate"]),
            n(t, "hits_local"),
            n(t, "hits_remote")
        ),
    );
    line(
        "Time saved",
        format!(
            "{} (per hit: its recorded compile time minus the time to serve it, summed over crates)",
            human_ms(n(t, "saved_ms"))
        ),
    );
    line("Time lost to misses", human_ms(n(t, "lost_ms")));
    line("Passed through", n(t, "pass_through").to_string());
    let server = &t["server"];
    if server.is_object() {
        line(
            "Object requests seen",
            format!(
                "{} hits, {} misses (every client, also those that do not report)",
                n(server, "hits"),
                n(server, "misses")
            ),
        );
    }
    let causes = t["causes"].as_array().cloned().unwrap_or_default();
    if !causes.is_empty() {
        out.push_str("Why calls missed\n");
        for c in &causes {
            out.push_str(&format!(
                "  {:<40}{:>6} misses {:>10} compiling\n",
                c["description"].as_str().unwrap_or("?"),
                n(c, "count"),
                human_ms(n(c, "compile_ms"))
            ));
        }
    }
    let rows = |v: &Value, key: &str| -> Vec<Value> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["namespace"] == namespace)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let crate_rows: Vec<Value> = rows(crates, "crates")
        .into_iter()
        .filter(|r| n(r, "lost_ms") > 0 || n(r, "misses") > 0)
        .take(10)
        .collect();
    if !crate_rows.is_empty() {
        out.push_str("Crates that lost the most time to misses\n");
        let cols = [Col::Name, Col::Num(7), Col::Num(7), Col::Num(11), Col::Rest];
        let header = ["crate", "hits", "misses", "lost", "top causes"];
        row(&mut out, &cols, &header.map(String::from));
        for r in &crate_rows {
            let top: Vec<String> = r["causes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .take(2)
                        .map(|c| {
                            format!(
                                "{} ({})",
                                c["description"].as_str().unwrap_or("?"),
                                n(c, "count")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let cells = [
                r["crate"].as_str().unwrap_or("?").to_string(),
                (n(r, "hits_local") + n(r, "hits_remote")).to_string(),
                (n(r, "misses") + n(r, "misses_not_stored")).to_string(),
                human_ms(n(r, "lost_ms")),
                top.join(", "),
            ];
            row(&mut out, &cols, &cells);
        }
    }
    let client_rows: Vec<Value> = rows(clients, "clients").into_iter().take(20).collect();
    if !client_rows.is_empty() {
        out.push_str("Clients\n");
        let cols = [
            Col::Name,
            Col::Num(7),
            Col::Num(10),
            Col::Num(11),
            Col::Num(11),
        ];
        let header = ["client", "calls", "hit rate", "saved", "lost"];
        row(&mut out, &cols, &header.map(String::from));
        for r in &client_rows {
            let cells = [
                r["client"].as_str().unwrap_or("?").to_string(),
                n(r, "calls").to_string(),
                percent(&r["hit_rate"]),
                human_ms(n(r, "saved_ms")),
                human_ms(n(r, "lost_ms")),
            ];
            row(&mut out, &cols, &cells);
        }
    }
    out
}

/// A column of the overview's tables.
enum Col {
    /// The name: left-aligned in 28 characters.
    Name,
    /// A number: right-aligned in this many characters.
    Num(usize),
    /// Free text after two spaces (the last column).
    Rest,
}

/// Appends one row of a table, indented by two spaces.
fn row(out: &mut String, cols: &[Col], cells: &[String]) {
    out.push_str("  ");
    for (col, cell) in cols.iter().zip(cells) {
        match col {
            Col::Name => out.push_str(&format!("{cell:<28}")),
            Col::Num(w) => out.push_str(&format!("{cell:>w$}")),
            Col::Rest => out.push_str(&format!("  {cell}")),
        }
    }
    out.push('\n');
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
    // A count by reason: its total, then one line per reason.
    let mut by_reason = |title: &str, counts: &BTreeMap<String, u64>| {
        line(title, counts.values().sum::<u64>().to_string());
        for (reason, n) in counts {
            line(&format!("  {reason}"), n.to_string());
        }
    };
    by_reason("Passed through", &s.pass_through);
    by_reason("Compiled, not stored", &s.not_stored);
    if !s.stored_per_checkout.is_empty() {
        by_reason("Stored for this checkout only", &s.stored_per_checkout);
    }
    by_reason("Errors (build went on)", &s.errors);
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
    // Over the hits: each one's recorded compile time minus the time to serve it (the journal
    // holds each hit's share as `saved_ms`). Summed per crate, it is compiler time, not a
    // build's wall-clock time: cargo compiles several crates at once, so a build ends sooner by
    // less than this (see docs/dashboard.md, "Time saved, honestly").
    line(
        "Compile time avoided",
        format!(
            "{} (summed over the crates that hit; not wall-clock time)",
            secs(s.saved_millis)
        ),
    );
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
