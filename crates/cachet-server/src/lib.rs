//! The shared cachet cache server, as a library: the `cachet server` subcommand is a thin
//! wrapper around [`run_from_args`], and tests call [`run`] with their own listener.
//!
//! Data flows one way: `request → route → auth → store → response`, one module each
//! ([`route`], [`auth`], [`storage`], [`api`]), with [`server`] owning connections and
//! shutdown, [`config`] the start-up settings, and [`metrics`] the counters. See
//! `docs/server.md` for the HTTP API and the design notes.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod cause;
pub mod config;
pub mod conn;
pub mod dashboard;
pub mod error;
pub mod histogram;
pub mod history;
pub mod http_util;
pub mod metrics;
pub mod report_limit;
pub mod route;
pub mod server;
pub mod stall;
pub mod state;
pub mod storage;
pub mod tls;
pub mod ui;
pub mod webdav;

use std::io::Write as _;

use anyhow::Context as _;

pub use config::{Config, PruneArgs, ServerAction, ServerArgs, Settings, StorageSpec};
pub use server::{run, ServerError};

/// Runs the server with the given arguments until SIGTERM or SIGINT; SIGHUP reloads the
/// tokens and the TLS certificate (the arguments are kept to re-read the configuration).
pub fn run_from_args(args: ServerArgs) -> anyhow::Result<()> {
    if let Some(ServerAction::Prune(prune)) = &args.action {
        return prune_from_args(prune);
    }
    if args.print_default_config {
        std::io::stdout().write_all(config::DEFAULT_CONFIG_TOML.as_bytes())?;
        return Ok(());
    }
    let config = Config::resolve(&args).context("failed to read the server configuration")?;
    if args.check_config {
        if let Some(paths) = &config.tls {
            tls::acceptor(paths).context("failed to load the TLS certificate and key")?;
        }
        // Written, not println!-ed: a closed stdout (`--check-config | head`) is an error the
        // caller treats as the end of the command, not a panic.
        let mut out = std::io::stdout().lock();
        writeln!(out, "configuration is valid:")?;
        writeln!(out, "  listen          {}", config.listen)?;
        writeln!(out, "  storage         {}", config.storage)?;
        writeln!(
            out,
            "  max size        {}",
            cachet_core::format_size(config.max_size)
        )?;
        writeln!(
            out,
            "  max object size {}",
            cachet_core::format_size(config.max_object_size)
        )?;
        writeln!(
            out,
            "  max age         {}",
            config
                .max_age
                .map(|d| humantime::format_duration(d).to_string())
                .unwrap_or_else(|| "none".into())
        )?;
        writeln!(out, "  tokens          {}", config.tokens.len())?;
        writeln!(out, "  tls             {}", config.tls.is_some())?;
        let duration = |d: std::time::Duration| humantime::format_duration(d).to_string();
        writeln!(out, "  header timeout  {}", duration(config.header_timeout))?;
        writeln!(out, "  idle timeout    {}", duration(config.idle_timeout))?;
        writeln!(out, "  body timeout    {}", duration(config.body_timeout))?;
        writeln!(
            out,
            "  max connections {}",
            config
                .max_connections
                .map(|n| n.to_string())
                .unwrap_or_else(|| "from the open-file limit".into())
        )?;
        return Ok(());
    }
    init_logging(config.log_format);
    server::raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cachet-server")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| {
                format!(
                    "failed to listen on {}: is another server using it? pick another with --listen",
                    config.listen
                )
            })?;
        announce(&listener, config.tls.is_some(), args.port_file.as_deref())?;
        let reloads = reload_on_sighup(args.clone())?;
        server::run_with_reload(listener, config, shutdown_signal(), Some(reloads))
            .await
            .context("the server failed")
    })
}

/// The log target of the line that says where the server listens: always logged, whatever
/// `CACHET_LOG` says, as scripts and tests read it.
pub const LISTENING: &str = "cachet_server::listening";

/// Says where the server listens: a log line on stderr whatever the log level
/// (`... cachet server listening on http://ADDR`, in the JSON format too), and the port in
/// `port_file` when given. With `--listen 127.0.0.1:0` this is how a test or script learns the
/// port the system picked, so nothing hands a port that was free a moment ago to the server.
fn announce(
    listener: &tokio::net::TcpListener,
    tls: bool,
    port_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let scheme = if tls { "https" } else { "http" };
    tracing::info!(target: LISTENING, "cachet server listening on {scheme}://{addr}");
    if let Some(path) = port_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", addr.port()))
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("failed to write the port file {}", path.display()))?;
    }
    Ok(())
}

/// `cachet server prune`: removes objects older than `--older-than` from every tier of the
/// storage, prints how many, and exits.
///
/// A local tier is opened without a size limit (nothing is evicted) and pruned once its index
/// of existing objects is complete; a shared tier is walked (Redis `SCAN`, S3 listing).
pub fn prune_from_args(args: &PruneArgs) -> anyhow::Result<()> {
    let older_than = humantime::parse_duration(&args.older_than)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| {
            format!(
                "invalid --older-than {:?}: expected a duration such as 30d or 12h",
                args.older_than
            )
        })?;
    let resolve = ServerArgs {
        config: args.config.clone(),
        settings: Settings {
            storage: args.storage.clone(),
            ..Settings::default()
        },
        ..ServerArgs::default()
    };
    let config = Config::resolve(&resolve).context("failed to read the server configuration")?;
    let dir = config.storage.local_dir();
    if let Some(dir) = dir.filter(|d| !d.join("VERSION").is_file()) {
        anyhow::bail!(
            "no cachet store at {}: check --storage (a server creates it on first start)",
            dir.display()
        );
    }
    init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let removed = runtime.block_on(async {
        let store = storage::open::open_for_prune(&config.storage)
            .with_context(|| format!("failed to open the storage {}", config.storage))?;
        while !store.usage().index_ready {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        store
            .prune(older_than)
            .await
            .with_context(|| format!("failed to prune {}", config.storage))
    })?;
    writeln!(
        std::io::stdout().lock(),
        "pruned {removed} objects older than {} from {}",
        humantime::format_duration(older_than),
        config.storage
    )?;
    Ok(())
}

/// Re-reads the configuration (the config file, the token file, the TLS certificate and key)
/// on every SIGHUP and sends it to the server; a configuration that does not resolve is
/// logged and skipped. Installed before serving, so a SIGHUP never ends the server.
fn reload_on_sighup(args: ServerArgs) -> anyhow::Result<tokio::sync::mpsc::Receiver<Config>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups =
            signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("received SIGHUP: reloading the tokens and the TLS certificate");
                match Config::resolve(&args) {
                    Ok(config) => {
                        if tx.send(config).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => tracing::error!(
                        cause = %cause::chain(&err),
                        "failed to reload: keeping the previous tokens and TLS certificate"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop((args, tx));
    Ok(rx)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = term => tracing::info!("received SIGTERM"),
    }
}

/// Logs to stderr, filtered by `CACHET_LOG` (env-filter syntax, default `info`). Colours only
/// on a terminal: `docker logs` and files get plain text.
fn init_logging(format: config::LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(cachet_core::env_vars::CACHET_LOG)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(
            format!("{LISTENING}=info")
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
}
