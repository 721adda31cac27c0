//! Every environment variable the CLI reads, in one place.

/// Path of the mcpServers config file.
pub const CONFIG: &str = "SWITCHBOARD_CONFIG";
/// Default for --connect-timeout, in seconds.
pub const CONNECT_TIMEOUT: &str = "SWITCHBOARD_CONNECT_TIMEOUT";
/// Default for --timeout, in seconds.
pub const TIMEOUT: &str = "SWITCHBOARD_TIMEOUT";
/// Directory for per-server stderr logs (default: the user's data directory).
pub const LOG_DIR: &str = "SWITCHBOARD_LOG_DIR";
/// Filter for Switchboard's own diagnostics on stderr, in `tracing` syntax (e.g. `debug`).
pub use switchboard_cli::serve::LOG;
// `serve` and `expenses` also read `DATABASE_URL` (default for --db) and `serve` reads
// `SWITCHBOARD_SERVE_IN_PROCESS`: see `switchboard_cli::serve`, which `switchboard-serve` shares.
/// Default for --model of `ask` and `chat` (provider/name).
pub const MODEL: &str = "SWITCHBOARD_MODEL";
