//! `cachet status`: is the setup working? The local cache, and the shared server as this
//! client sees it (reachable, version, this token's scopes, round-trip time).
//!
//! Exit codes: 0 when everything configured works, 1 when the server is configured but
//! unreachable or rejects the token.

use std::process::ExitCode;
use std::time::Instant;

use cachet_core::format_size;
use cachet_wrapper::config::Config;
use cachet_wrapper::remote::Remote;
use cachet_wrapper::tiers::Tiers;

/// Arguments of `cachet status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the status of the local cache and the server.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_env();
    let state = cachet_wrapper::call::CallState::default();
    let tiers = Tiers::new(&config, &state);
    let (size, objects) = tiers.local.usage();
    let mut report = serde_json::json!({
        "local": {
            "dir": config.dir,
            "size_bytes": size,
            "limit_bytes": config.cache_size,
            "objects": objects,
        },
        "pending_uploads": tiers.pending_count(),
    });
    for w in &config.warnings {
        // The wrapper's prefix (notice.rs), so a user sees one kind of warning from cachet.
        eprintln!("warning: cachet: {w}");
    }
    let mut ok = true;
    if let Some(rc) = &config.remote {
        let mut server = serde_json::json!({
            "url": rc.url,
            "namespace": rc.namespace,
            "dashboard": format!("{}/ui", rc.url.trim_end_matches('/')),
        });
        match Remote::new(rc.clone()).and_then(|r| probe(&r)) {
            Ok(probe) => {
                server["reachable"] = true.into();
                server["round_trip_ms"] = probe.round_trip_ms.into();
                server["version"] = probe.version.into();
                server["scopes"] = probe.scopes.clone().into();
                if probe.scopes.is_empty() {
                    ok = false;
                }
            }
            Err(e) => {
                ok = false;
                server["reachable"] = false.into();
                server["error"] = e.to_string().into();
            }
        }
        report["server"] = server;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", render(&report))?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Probe {
    round_trip_ms: f64,
    version: String,
    scopes: Vec<String>,
}

fn probe(remote: &Remote) -> Result<Probe, cachet_wrapper::remote::RemoteError> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        remote.get_path("/healthz")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let ns = &remote.config().namespace;
    let (status, body) = remote.get_path(&format!("/_whoami?namespace={ns}"))?;
    let who: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let version = who["version"].as_str().unwrap_or("unknown").to_string();
    let scopes = match status {
        200 => who["scopes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        401 => {
            return Err(cachet_wrapper::remote::RemoteError::Unauthorized {
                url: remote.config().url.clone(),
            })
        }
        _ => Vec::new(),
    };
    Ok(Probe {
        round_trip_ms: times[times.len() / 2],
        version,
        scopes,
    })
}

fn render(r: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<20}{value}\n"));
    let local = &r["local"];
    line(
        "Local cache",
        format!(
            "{} ({} of {}, {} objects)",
            local["dir"].as_str().unwrap_or("?"),
            format_size(local["size_bytes"].as_u64().unwrap_or(0)),
            format_size(local["limit_bytes"].as_u64().unwrap_or(0)),
            local["objects"]
        ),
    );
    match r.get("server") {
        None => line("Server", "none (set CACHET_SERVER to share a cache)".into()),
        Some(s) => {
            line(
                "Server",
                format!(
                    "{} (namespace {})",
                    s["url"].as_str().unwrap_or("?"),
                    s["namespace"].as_str().unwrap_or("?")
                ),
            );
            if s["reachable"] == true {
                line(
                    "  reachable",
                    format!("yes, cachet {}", s["version"].as_str().unwrap_or("?")),
                );
                line(
                    "  round trip",
                    format!(
                        "{:.2} ms (median of 5)",
                        s["round_trip_ms"].as_f64().unwrap_or(0.0)
                    ),
                );
                let scopes: Vec<&str> = s["scopes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                line(
                    "  token scopes",
                    if scopes.is_empty() {
                        "none: this token can neither read nor write here".into()
                    } else {
                        scopes.join(", ")
                    },
                );
            } else {
                line(
                    "  reachable",
                    format!("no: {}", s["error"].as_str().unwrap_or("?")),
                );
            }
            line(
                "  dashboard",
                s["dashboard"].as_str().unwrap_or("?").to_string(),
            );
        }
    }
    line("Pending uploads", r["pending_uploads"].to_string());
    out
}
