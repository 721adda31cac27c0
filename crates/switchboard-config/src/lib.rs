//! Switchboard's configuration model.
//!
//! This crate turns the `mcpServers` JSON that users already keep for Claude Desktop, Cursor,
//! Windsurf, Cline, Claude Code and VS Code into a validated [`Config`], and builds ad-hoc servers
//! from command-line flags. It does no I/O: the caller passes the text, the path it came from (for
//! messages) and a closure that looks up environment variables, so only the CLI touches files and
//! the process environment.
//!
//! ```
//! use switchboard_config::{Transport, parse_config};
//! use std::path::Path;
//!
//! let text = r#"{
//!   // Comments and trailing commas are fine, as in VS Code.
//!   "mcpServers": {
//!     "time": { "command": "uvx", "args": ["mcp-server-time"], "env": { "TZ": "${env:ZONE}" } },
//!     "docs": { "url": "https://docs.example.com/mcp", "disabled": true },
//!   }
//! }"#;
//! let env = |name: &str| (name == "ZONE").then(|| "Europe/Berlin".to_owned());
//! let config = parse_config(text, Some(Path::new("mcp.json")), &env)?;
//!
//! let Transport::Stdio { command, args, env: variables, .. } = &config.servers["time"].transport else {
//!     panic!("time is a local server");
//! };
//! assert_eq!(command, "uvx");
//! assert_eq!(args, &["mcp-server-time"]);
//! assert_eq!(variables["TZ"].expose(), "Europe/Berlin");
//! assert_eq!(format!("{:?}", variables["TZ"]), "<redacted>");
//!
//! let enabled: Vec<&str> = config.enabled().map(|entry| entry.name.as_str()).collect();
//! assert_eq!(enabled, ["time"]);
//!
//! let error = parse_config(r#"{ "mcpServers": { "x": { "args": "a" } } }"#, None, &env).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     r#"<config>:1:19: server "x": has neither "command" nor "url"; add "command" to run a local server or "url" to connect to a remote one"#,
//! );
//! # Ok::<(), switchboard_config::ConfigError>(())
//! ```
//!
//! # Accepted shapes
//!
//! The server list is the top-level `mcpServers` object (Claude Desktop, Cursor, Windsurf, Cline,
//! Claude Code's `.mcp.json`), the top-level `servers` object (VS Code's `.vscode/mcp.json`) or
//! `mcp.servers` (VS Code's `settings.json`). Exactly one of them must be present; every other
//! top-level key is ignored. The text is JSON with comments and trailing commas, as VS Code accepts.
//!
//! In an entry:
//!
//! - `command` (string), `args` (array of strings), `env` (object of strings) and `cwd` (string)
//!   describe a local server ([`Transport::Stdio`]);
//! - `url` (Windsurf also writes `serverUrl`) and `headers` (object of strings) describe a remote one;
//! - `type`, or its synonym `transport`, is one of `stdio`, `http`, `streamable-http`,
//!   `streamableHttp`, `sse`, `ws`, `websocket`. Without it a `ws://`/`wss://` URL means
//!   [`Transport::WebSocket`] and any other URL [`Transport::StreamableHttp`] (whose client falls back
//!   to legacy SSE by itself);
//! - `switchboard` (object) holds Switchboard's own resilience settings ([`Resilience`]), which
//!   other hosts ignore;
//! - `disabled` (boolean) keeps the server listed but out of [`Config::enabled`];
//! - `envFile` is refused, because this crate reads no files;
//! - any other field is ignored, because real configs carry client-specific extras, and a `null`
//!   field counts as absent. A non-empty field that belongs to the other kind of server (`args` next
//!   to a `url`, `headers` next to a `command`) is an error rather than being silently dropped.
//!
//! # Variables
//!
//! `command`, `args`, `cwd`, `url`, and the values of `env` and `headers` may use `${NAME}` or
//! `${env:NAME}` (VS Code), and `${NAME:-default}` (Claude Code; the default also applies when the
//! variable is empty). `$$` is a literal `$`; a `$` not followed by `{` is kept as it is. A variable
//! that is not set is an error, except in a disabled server, where the reference is left in place
//! so that switching off a server whose credentials are missing works. VS Code's own variables
//! (`${input:...}`, `${workspaceFolder}` and other `${kind:...}` forms) are errors that say so.
//!
//! # Errors
//!
//! Every [`ConfigError`] message is one sentence that starts with `path:line:column` and names the
//! server entry where there is one; the variants carry the same facts as fields. Underlying errors
//! (URL parser, command-line splitter) are the error's `source`, so print the whole chain.

mod adhoc;
mod error;
mod expand;
mod model;
mod parse;
mod resilience;

pub use adhoc::{adhoc_stdio, adhoc_url, dedupe_names};
pub use error::{ConfigError, Location};
pub use model::{
    Config, InvalidServerName, MAX_SERVER_NAME_CHARS, Secret, ServerEntry, ServerName, Transport,
    display_safe_url,
};
pub use parse::{MAX_CONFIG_BYTES, parse_config};
pub use resilience::{
    BreakerSettings, HealthSettings, RESILIENCE_KEY, RateLimitSettings, ReconnectSettings,
    Resilience, RetrySettings, ToolSettings,
};
