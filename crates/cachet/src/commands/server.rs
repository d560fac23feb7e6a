//! `cachet server`: the command line of the shared cache server (see the `cachet-server`
//! crate). The flags are declared here, so the server library does not depend on clap; it
//! takes them as plain [`cachet_server::ServerArgs`] and layers them over the config file and
//! its defaults. The defaults shown in `--help` come from [`DEFAULTS`], the same values the
//! library falls back on, so the help cannot name another one.
//!
//! Every flag is an `Option` without a clap default: a clap default would make the flag look
//! given and hide the config file's value (precedence is flags > variables > file > defaults).
//!
//! The server runs in its own executable, `cachet-server` (`src/bin/cachet-server.rs`, which
//! includes this file), installed beside `cachet`: `cachet server ARGS` checks the arguments
//! here and then replaces itself with `cachet-server ARGS`. The `cachet` binary is started for
//! every rustc call, and linking the server into it (tokio, hyper, rustls, the Redis and S3
//! clients) tripled what the dynamic loader relocates before `main` on each of those calls.

use std::path::PathBuf;

use cachet_core::env_vars as ev;
use cachet_server::config::DEFAULTS;
use cachet_server::{PruneArgs, ServerAction, ServerArgs, Settings};

/// `TEXT [default: VALUE]`, as clap would show a default of its own.
fn with_default(text: &str, value: &str) -> String {
    format!("{text} [default: {value}]")
}

/// Command-line arguments of `cachet server`.
///
/// Every setting can also come from the `CACHET_*` variable of the same name or from the TOML
/// file given by `--config`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerCommand {
    /// Maintenance commands (without one, the server runs).
    #[command(subcommand)]
    pub action: Option<ServerActionCommand>,
    /// TOML configuration file (see --print-default-config).
    #[arg(long, env = ev::CACHET_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, env = ev::CACHET_LISTEN, value_name = "ADDR",
        help = with_default("Address to listen on", DEFAULTS.listen))]
    pub listen: Option<String>,
    /// Storage: `dir:PATH`, `ephemeral`, `redis://HOST:PORT[/DB][?prefix=P]` (`rediss://` for
    /// TLS, `redis+cluster://H1:P1,H2:P2` for a cluster), `s3://BUCKET[/PREFIX][?region=R&
    /// endpoint=URL&path_style=true]`, or a local tier in front of a shared one:
    /// `dir:/var/cachet,s3://bucket/prefix` [default: dir:<platform data dir>/cachet/server].
    #[arg(long, env = ev::CACHET_STORAGE, value_name = "SPEC")]
    pub storage: Option<String>,
    #[arg(long, env = ev::CACHET_MAX_SIZE, value_name = "SIZE", help = with_default(
        "Size limit of the store; least recently used objects are evicted past it",
        DEFAULTS.max_size,
    ))]
    pub max_size: Option<String>,
    /// Objects not read or written for this long are pruned, e.g. `30d` [default: never].
    #[arg(long, env = ev::CACHET_MAX_AGE, value_name = "DURATION")]
    pub max_age: Option<String>,
    #[arg(long, env = ev::CACHET_MAX_OBJECT_SIZE, value_name = "SIZE", help = with_default(
        "Largest accepted object; larger uploads get 413",
        &format!("{}, at most --max-size", DEFAULTS.max_object_size),
    ))]
    pub max_object_size: Option<String>,
    /// File with one token per line: `TOKEN SCOPES [NAMESPACES]` (see docs/server.md).
    #[arg(long, env = ev::CACHET_TOKEN_FILE, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Tokens given inline, in the token-file syntax; `;` also separates entries.
    #[arg(long, env = ev::CACHET_TOKENS, value_name = "TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// TLS certificate chain (PEM); serves HTTPS (HTTP/2 by ALPN) when given with --tls-key.
    #[arg(long, env = ev::CACHET_TLS_CERT, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = ev::CACHET_TLS_KEY, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    #[arg(long, env = ev::CACHET_LOG_FORMAT, value_name = "FORMAT", help = format!(
        "{}. The filter is CACHET_LOG (default info)",
        with_default("Log line format: `text` or `json`", DEFAULTS.log_format),
    ))]
    pub log_format: Option<String>,
    #[arg(long, env = ev::CACHET_BODY_TIMEOUT, value_name = "DURATION", help = with_default(
        "Longest pause allowed while a client sends a body, or reads a response",
        DEFAULTS.body_timeout,
    ))]
    pub body_timeout: Option<String>,
    #[arg(long, env = ev::CACHET_HEADER_TIMEOUT, value_name = "DURATION", help = with_default(
        "Time a new connection (or a TLS connection once its handshake is done) has to send its \
         first request's headers",
        DEFAULTS.header_timeout,
    ))]
    pub header_timeout: Option<String>,
    #[arg(long, env = ev::CACHET_IDLE_TIMEOUT, value_name = "DURATION", help = with_default(
        "A connection with no request in progress (HTTP/1.1 keep-alive or HTTP/2) is closed \
         after this long",
        DEFAULTS.idle_timeout,
    ))]
    pub idle_timeout: Option<String>,
    #[arg(long, env = ev::CACHET_HANDSHAKE_TIMEOUT, value_name = "DURATION", help = with_default(
        "Time a client has to finish its TLS handshake",
        DEFAULTS.handshake_timeout,
    ))]
    pub handshake_timeout: Option<String>,
    /// Most connections open at once; past it, idle connections are closed and new ones wait
    /// [default: (open-file limit - 64) / 2, at most 10000].
    #[arg(long, env = ev::CACHET_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: Option<String>,
    #[arg(long, env = ev::CACHET_PROTECT_STATS, value_name = "BOOL", help = with_default(
        "`true`: `/stats` and `/metrics` need a token with `read` on every namespace (`*`) when \
         tokens are configured",
        DEFAULTS.protect_stats,
    ))]
    pub protect_stats: Option<String>,
    #[arg(long, env = ev::CACHET_UPLOAD_MEMORY, value_name = "SIZE", help = with_default(
        "Most bytes of uploads buffered in memory across all connections; past it, uploads wait \
         briefly, then get 503 with Retry-After",
        DEFAULTS.upload_memory,
    ))]
    pub upload_memory: Option<String>,
    #[arg(long, env = ev::CACHET_REPORT_RATE, value_name = "N", help = with_default(
        "Dashboard call records one client (its token and name, else its address) may send per \
         second; it may send a minute's worth at once. Past it, 429 with Retry-After",
        DEFAULTS.report_rate,
    ))]
    pub report_rate: Option<String>,
    #[arg(long, env = ev::CACHET_REPORT_REQUESTS, value_name = "N", help = with_default(
        "Dashboard call-report requests one client may send per second (a minute's worth at once)",
        DEFAULTS.report_requests,
    ))]
    pub report_requests: Option<String>,
    #[arg(long, env = ev::CACHET_REPORT_CEILING, value_name = "N", help = with_default(
        "Dashboard call records all clients together may send per second (5 s worth at once)",
        DEFAULTS.report_ceiling,
    ))]
    pub report_ceiling: Option<String>,
    /// Once listening, write the bound port to FILE (written whole, then renamed into place):
    /// with `--listen 127.0.0.1:0` a script or test learns the port the system picked. The
    /// address is also logged on stderr at every log level (`cachet server listening on
    /// http://ADDR`).
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Check the configuration, print it, and exit without serving.
    #[arg(long)]
    pub check_config: bool,
    /// Print a commented default configuration file and exit.
    #[arg(long)]
    pub print_default_config: bool,
}

/// `cachet server` maintenance commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServerActionCommand {
    /// Remove objects not used for longer than --older-than from every tier of the storage
    /// (Redis: idle time; S3: time since written), then exit. Safe while servers run.
    Prune(PruneCommand),
}

/// Arguments of `cachet server prune`.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneCommand {
    /// Age past which objects are removed, e.g. `30d`.
    #[arg(long, value_name = "DURATION")]
    pub older_than: String,
    /// TOML configuration file whose `storage` to prune.
    #[arg(long, env = ev::CACHET_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The storage to prune (same syntax as the server's --storage).
    #[arg(long, env = ev::CACHET_STORAGE, value_name = "SPEC")]
    pub storage: Option<String>,
}

impl From<ServerCommand> for ServerArgs {
    fn from(c: ServerCommand) -> ServerArgs {
        ServerArgs {
            action: c.action.map(|ServerActionCommand::Prune(p)| {
                ServerAction::Prune(PruneArgs {
                    older_than: p.older_than,
                    config: p.config,
                    storage: p.storage,
                })
            }),
            config: c.config,
            settings: Settings {
                listen: c.listen,
                storage: c.storage,
                max_size: c.max_size,
                max_age: c.max_age,
                max_object_size: c.max_object_size,
                token_file: c.token_file,
                tokens: c.tokens,
                tls_cert: c.tls_cert,
                tls_key: c.tls_key,
                log_format: c.log_format,
                body_timeout: c.body_timeout,
                header_timeout: c.header_timeout,
                idle_timeout: c.idle_timeout,
                handshake_timeout: c.handshake_timeout,
                max_connections: c.max_connections,
                protect_stats: c.protect_stats,
                upload_memory: c.upload_memory,
                report_rate: c.report_rate,
                report_requests: c.report_requests,
                report_ceiling: c.report_ceiling,
            },
            port_file: c.port_file,
            check_config: c.check_config,
            print_default_config: c.print_default_config,
        }
    }
}
