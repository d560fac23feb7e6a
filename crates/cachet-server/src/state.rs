//! What every request handler shares: the store, the counters, the tokens, the limits and the
//! dashboard's history. Its own module so the handlers (`api`, `dashboard`, `ui`) depend on it
//! and not on each other.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::storage::Store;

/// What one upload may hold in memory: the disk store's write buffer (a chunk arriving from
/// the network on top of it is not counted).
pub const UPLOAD_BUFFER: u64 = crate::storage::disk::WRITE_BUFFER as u64;
/// What every request handler shares.
pub struct AppState {
    /// Where objects live.
    pub store: Arc<dyn Store>,
    /// Counters for `/metrics` and `/stats` (shared with the connection registry).
    pub metrics: Arc<Metrics>,
    /// Who may do what; replaced whole by a reload (SIGHUP), read once per request.
    pub tokens: std::sync::RwLock<Arc<Tokens>>,
    /// Larger uploads get 413.
    pub max_object_size: u64,
    /// Longest stall allowed between two chunks of an upload.
    pub body_timeout: Duration,
    /// `/stats` and `/metrics` need a token with `read` on `*` (when tokens are configured).
    pub protect_stats: bool,
    /// Bytes of upload buffers that may be held across all connections and a chain's copies to
    /// its shared tier: each upload takes what it may buffer (up to [`UPLOAD_BUFFER`]) before
    /// it reads its body, and more as its store's buffers grow
    /// ([`crate::storage::Upload::buffered`]).
    pub upload_memory: Arc<crate::storage::budget::UploadBudget>,
    /// The dashboard's history: clients' call reports and what this server saw.
    pub history: Arc<crate::history::History>,
    /// The rates call reports are let in at: per client and server-wide, so a flood of
    /// reports cannot take the CPU object requests need.
    pub report_limits: crate::report_limit::ReportLimits,
    /// The dashboard's sign-in cookie is `Secure` (the server serves TLS).
    pub secure_cookies: bool,
}

impl AppState {
    /// The tokens in force now.
    pub fn tokens(&self) -> Arc<Tokens> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the tokens: every request from now on is checked against `tokens`.
    pub fn set_tokens(&self, tokens: Tokens) {
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tokens);
    }
}
