//! The built-in defaults, in one place: [`Config::resolve`](super::Config::resolve) parses
//! them with the same code as a given value (so [`Config::with_storage`](super::Config::with_storage)
//! and a server started without settings cannot disagree), the binary writes them into
//! `cachet server --help`, and a test checks that `default-config.toml`, `docs/server.md` and
//! `cachet --help`'s variable list say the same.

/// The commented default configuration file, shown by `cachet server --print-default-config`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default-config.toml");

/// The default of every setting that has a fixed one, as a user would write it.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// `--listen`.
    pub listen: &'static str,
    /// `--max-size`.
    pub max_size: &'static str,
    /// `--max-object-size` (lowered to `--max-size` when that is smaller).
    pub max_object_size: &'static str,
    /// `--log-format`.
    pub log_format: &'static str,
    /// `--body-timeout`.
    pub body_timeout: &'static str,
    /// `--header-timeout`.
    pub header_timeout: &'static str,
    /// `--idle-timeout`.
    pub idle_timeout: &'static str,
    /// `--handshake-timeout`.
    pub handshake_timeout: &'static str,
    /// `--protect-stats`.
    pub protect_stats: &'static str,
    /// `--upload-memory`.
    pub upload_memory: &'static str,
    /// `--report-rate` (records per second per client).
    pub report_rate: &'static str,
    /// `--report-requests` (requests per second per client).
    pub report_requests: &'static str,
    /// `--report-ceiling` (records per second, all clients).
    pub report_ceiling: &'static str,
}

/// The defaults. The storage (`dir:<platform data dir>/cachet/server`), `--max-age` (never)
/// and `--max-connections` (from the open-file limit) have none fixed.
pub const DEFAULTS: Defaults = Defaults {
    listen: "127.0.0.1:4226",
    max_size: "10G",
    max_object_size: "1G",
    log_format: "text",
    body_timeout: "30s",
    header_timeout: "30s",
    idle_timeout: "60s",
    handshake_timeout: "10s",
    protect_stats: "false",
    upload_memory: "128M",
    report_rate: "200",
    report_requests: "5",
    report_ceiling: "20000",
};

impl Defaults {
    /// `(flag, TOML key, default)` of each setting with a fixed default, for the checks that
    /// the docs agree.
    pub fn table(&self) -> [(&'static str, &'static str, &'static str); 13] {
        [
            ("--listen", "listen", self.listen),
            ("--max-size", "max_size", self.max_size),
            ("--max-object-size", "max_object_size", self.max_object_size),
            ("--log-format", "log_format", self.log_format),
            ("--body-timeout", "body_timeout", self.body_timeout),
            ("--header-timeout", "header_timeout", self.header_timeout),
            ("--idle-timeout", "idle_timeout", self.idle_timeout),
            (
                "--handshake-timeout",
                "handshake_timeout",
                self.handshake_timeout,
            ),
            ("--protect-stats", "protect_stats", self.protect_stats),
            ("--upload-memory", "upload_memory", self.upload_memory),
            ("--report-rate", "report_rate", self.report_rate),
            ("--report-requests", "report_requests", self.report_requests),
            ("--report-ceiling", "report_ceiling", self.report_ceiling),
        ]
    }
}
