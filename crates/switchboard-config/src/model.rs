//! The validated configuration model: what the rest of Switchboard consumes.

use std::borrow::Borrow;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use indexmap::IndexMap;
use url::Url;

use crate::error::ConfigError;

/// Longest accepted server name, in characters.
///
/// Names appear in tool addresses (`server/tool`), log lines and terminal tables, so a bound keeps
/// those readable.
pub const MAX_SERVER_NAME_CHARS: usize = 64;

/// A server's name: the key under `mcpServers`.
///
/// It is non-empty, at most [`MAX_SERVER_NAME_CHARS`] characters, contains no `/` (the CLI addresses
/// tools as `server/tool` and splits at the first `/`), no control characters, and no leading or
/// trailing whitespace.
///
/// `ServerName` borrows as `str`, so maps keyed by it can be indexed with a plain `&str`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ServerName(String);

impl ServerName {
    /// Validates `name` as a server name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidServerName> {
        let name = name.into();
        let reason = if name.is_empty() {
            "it is empty"
        } else if name.chars().count() > MAX_SERVER_NAME_CHARS {
            "it is longer than 64 characters"
        } else if name.contains('/') {
            "it contains '/'"
        } else if name.chars().any(char::is_control) {
            "it contains a control character"
        } else if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
            "it starts or ends with whitespace"
        } else {
            return Ok(Self(name));
        };
        Err(InvalidServerName { name, reason })
    }

    /// Wraps a name that the caller built so that it satisfies the rules above; checked in debug
    /// builds only.
    pub(crate) fn from_valid(name: String) -> Self {
        debug_assert!(Self::new(name.as_str()).is_ok(), "{name:?} is not valid");
        Self(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ServerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Hash and Eq of `ServerName` are those of its inner `String`, which agree with `str`'s, so this
// borrow is sound for map lookups.
impl Borrow<str> for ServerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServerName {
    type Error = InvalidServerName;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl FromStr for ServerName {
    type Err = InvalidServerName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
    }
}

impl From<ServerName> for String {
    fn from(name: ServerName) -> Self {
        name.0
    }
}

/// Why a string is not a valid [`ServerName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("server name {} is invalid: {reason}", quoted_prefix(.name))]
pub struct InvalidServerName {
    /// The rejected name, exactly as given.
    pub name: String,
    /// What is wrong with it, as a clause such as `it contains '/'`.
    pub reason: &'static str,
}

/// Quotes `text` for an error message, shortening it so that a pathological key cannot flood the
/// terminal.
fn quoted_prefix(text: &str) -> String {
    const SHOWN_CHARS: usize = 80;
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let prefix: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{prefix:?}…")
    }
}

/// A string that must not end up in logs: header values (such as `Authorization`) and environment
/// values.
///
/// `Debug` and `Display` print `<redacted>`; call [`Secret::expose`] at the one place that hands the
/// value to a process or an HTTP client.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach a server.
///
/// This enum is deliberately exhaustive: a new transport must make every `match` in the client fail to
/// compile rather than fall into a wildcard arm.
#[derive(Clone, PartialEq, Eq)]
pub enum Transport {
    /// A local process speaking JSON-RPC over its stdin and stdout.
    Stdio {
        /// The program to run, looked up on `PATH` by the client when it is not a path.
        command: String,
        /// Arguments passed to the program.
        args: Vec<String>,
        /// Variables added to the program's environment.
        env: IndexMap<String, Secret>,
        /// Working directory for the program; the client's own when `None`.
        cwd: Option<PathBuf>,
    },
    /// Streamable HTTP (the client falls back to legacy HTTP+SSE itself if the server is older).
    StreamableHttp {
        /// The MCP endpoint, `http` or `https`.
        url: Url,
        /// Headers sent with every request.
        headers: IndexMap<String, Secret>,
    },
    /// Legacy HTTP+SSE transport (2024-11-05), only when the config says type "sse".
    Sse {
        /// The SSE endpoint, `http` or `https`.
        url: Url,
        /// Headers sent with every request.
        headers: IndexMap<String, Secret>,
    },
    /// JSON-RPC messages over a WebSocket.
    WebSocket {
        /// The endpoint, `ws` or `wss`.
        url: Url,
        /// Headers sent with the opening handshake.
        headers: IndexMap<String, Secret>,
    },
}

impl Transport {
    /// A short, stable label for tables and logs: `stdio`, `streamable-http`, `sse` or `websocket`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::StreamableHttp { .. } => "streamable-http",
            Self::Sse { .. } => "sse",
            Self::WebSocket { .. } => "websocket",
        }
    }

    /// The endpoint of a remote transport; `None` for stdio.
    pub fn url(&self) -> Option<&Url> {
        match self {
            Self::Stdio { .. } => None,
            Self::StreamableHttp { url, .. }
            | Self::Sse { url, .. }
            | Self::WebSocket { url, .. } => Some(url),
        }
    }
}

// Hand-written so that credentials in a URL (user info, query values such as `?api_key=`) never reach
// a log line through `{:?}`; header and env values are already `Secret`s.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", env)
                .field("cwd", cwd)
                .finish(),
            Self::StreamableHttp { url, headers } => f
                .debug_struct("StreamableHttp")
                .field("url", &display_safe_url(url))
                .field("headers", headers)
                .finish(),
            Self::Sse { url, headers } => f
                .debug_struct("Sse")
                .field("url", &display_safe_url(url))
                .field("headers", headers)
                .finish(),
            Self::WebSocket { url, headers } => f
                .debug_struct("WebSocket")
                .field("url", &display_safe_url(url))
                .field("headers", headers)
                .finish(),
        }
    }
}

/// Renders `url` for humans with its user name, password and query values replaced by `REDACTED`.
///
/// Remote MCP endpoints often carry an API key in the query string (`?api_key=...`) or in the user
/// info, and URLs end up in logs and tables.
pub fn display_safe_url(url: &Url) -> String {
    let mut safe = url.clone();
    if !safe.username().is_empty() {
        // Only fails for URLs that cannot have credentials, and those have none to hide.
        let _ = safe.set_username("REDACTED");
    }
    if safe.password().is_some() {
        let _ = safe.set_password(Some("REDACTED"));
    }
    if safe.query().is_some() {
        let names: Vec<String> = safe
            .query_pairs()
            .map(|(name, _)| name.into_owned())
            .collect();
        safe.query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|name| (name.as_str(), "REDACTED")));
    }
    safe.to_string()
}

/// One configured server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerEntry {
    /// The server's name, unique within a [`Config`].
    pub name: ServerName,
    /// How to reach it.
    pub transport: Transport,
    /// Whether the config switched it off (Cline's `"disabled": true`); disabled servers stay in the
    /// model so the CLI can list them.
    pub disabled: bool,
    /// Timeouts, retries, breaker, rate limit, reconnection, health checks, replicas and
    /// per-tool settings (the entry's `"switchboard"` object).
    pub resilience: crate::Resilience,
}

impl ServerEntry {
    /// An enabled server.
    pub fn new(name: ServerName, transport: Transport) -> Self {
        Self {
            name,
            transport,
            disabled: false,
            resilience: crate::Resilience::default(),
        }
    }
}

/// A parsed configuration: servers in file order, then ad-hoc servers from the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Servers by name, in the order they were defined.
    pub servers: IndexMap<ServerName, ServerEntry>,
    /// The file the servers came from, if any; used in messages.
    pub origin: Option<PathBuf>,
}

impl Config {
    /// A configuration without servers or file, for runs that only use ad-hoc servers.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The servers that are not disabled, in order.
    pub fn enabled(&self) -> impl Iterator<Item = &ServerEntry> {
        self.servers.values().filter(|entry| !entry.disabled)
    }

    /// Appends ad-hoc servers (from `--stdio` / `--url`) after the file's servers.
    ///
    /// A name that is already taken is an error, [`ConfigError::DuplicateServer`], and leaves `self`
    /// unchanged; call [`dedupe_names`](crate::dedupe_names) first to rename ad-hoc entries instead.
    pub fn merge_adhoc(&mut self, entries: Vec<ServerEntry>) -> Result<(), ConfigError> {
        // Check everything before inserting anything so that a failed merge has no effect.
        for (index, entry) in entries.iter().enumerate() {
            let clashes_with_earlier = entries[..index].iter().any(|e| e.name == entry.name);
            if clashes_with_earlier || self.servers.contains_key(&entry.name) {
                return Err(ConfigError::DuplicateServer {
                    server: entry.name.clone(),
                    path: self.origin.clone(),
                });
            }
        }
        for entry in entries {
            self.servers.insert(entry.name.clone(), entry);
        }
        Ok(())
    }
}
