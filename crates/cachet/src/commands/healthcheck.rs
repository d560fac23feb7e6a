//! `cachet healthcheck`: the container image's `HEALTHCHECK`. The server image is `FROM scratch`
//! (no shell, no curl), so the check is the cachet binary itself: one `GET /healthz` over plain
//! TCP with a short timeout, exit 0 when the answer is `200`, 1 otherwise.
//!
//! The address is `--url`, else `CACHET_LISTEN` (a wildcard host such as `0.0.0.0` becomes the
//! loopback address), else `127.0.0.1:4226`. With TLS configured (`CACHET_TLS_CERT`), the check
//! only verifies that the port accepts connections: speaking TLS would pull a TLS client into
//! this path for no gain in a loopback probe.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cachet_core::env_vars;

/// Arguments of `cachet healthcheck`.
#[derive(clap::Args)]
pub struct HealthcheckArgs {
    /// Address to probe, `HOST:PORT` or `http://HOST:PORT` (default: `CACHET_LISTEN`, else
    /// 127.0.0.1:4226).
    #[arg(long)]
    pub url: Option<String>,
    /// Give up after this long (humantime, e.g. `2s`).
    #[arg(long, default_value = "3s")]
    pub timeout: humantime::Duration,
}

/// Probes the server; exit 0 when healthy.
pub fn run(args: &HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let addr = match &args.url {
        Some(url) => strip_scheme(url).to_string(),
        None => std::env::var(env_vars::CACHET_LISTEN)
            .map(|listen| loopback_for(&listen))
            .unwrap_or_else(|_| "127.0.0.1:4226".to_string()),
    };
    let timeout: Duration = args.timeout.into();
    if std::env::var_os(env_vars::CACHET_TLS_CERT).is_some() && args.url.is_none() {
        connect(&addr, timeout)?;
        outln!("{addr} accepts connections (TLS: /healthz not probed)")?;
        return Ok(ExitCode::SUCCESS);
    }
    let (status, body) = http_request(&addr, "GET", "/healthz", None, timeout)?;
    if status == 200 {
        outln!("healthy: {addr} answered {}", body.trim())?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("unhealthy: {addr} answered /healthz with status {status}");
        Ok(ExitCode::FAILURE)
    }
}

/// `http://h:p/` → `h:p`.
fn strip_scheme(url: &str) -> &str {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    rest.trim_end_matches('/')
}

/// The address a local probe uses for a listen address: wildcard hosts become loopback.
fn loopback_for(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "" | "::", port)) => format!("127.0.0.1:{port}"),
        _ => listen.to_string(),
    }
}

fn connect(addr: &str, timeout: Duration) -> anyhow::Result<std::net::TcpStream> {
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("failed to resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))?;
    std::net::TcpStream::connect_timeout(&sock, timeout)
        .with_context(|| format!("failed to connect to {addr}: is the server running?"))
}

/// One HTTP/1.0 request on a fresh connection; returns the status and the body. Small and
/// dependency-free on purpose: it only talks to cachet's own ops routes.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = connect(addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .with_context(|| format!("failed to send {method} {path} to {addr}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("failed to read the answer to {method} {path} from {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("{addr} did not answer HTTP to {method} {path}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_probed_on_loopback() {
        assert_eq!(loopback_for("0.0.0.0:4226"), "127.0.0.1:4226");
        assert_eq!(loopback_for("[::]:80"), "127.0.0.1:80");
        assert_eq!(loopback_for("10.0.0.2:4226"), "10.0.0.2:4226");
        assert_eq!(strip_scheme("http://cachet:4226/"), "cachet:4226");
    }
}
