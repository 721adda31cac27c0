//! `gateway.toml`: where to listen, the limits, and the upstream servers.
//!
//! ```toml
//! [listen]
//! address = "127.0.0.1:8787"                  # loopback unless you say otherwise
//! allowed_hosts = ["localhost", "127.0.0.1"]  # Host/Origin allow-list (DNS rebinding protection)
//!
//! [limits]
//! max_body_bytes = 4194304
//! max_json_depth = 64
//!
//! [upstreams.expenses]                        # the same fields as an mcpServers entry
//! command = "switchboard"
//! args = ["serve", "expenses"]
//! max_in_flight = 16                          # gateway-only: calls in flight to this upstream
//!
//! [upstreams.remote]
//! url = "https://mcp.example.com/mcp"
//! headers = { Authorization = "Bearer ${API_TOKEN}" }
//!
//! [upstreams.billing]
//! url = "https://billing.example.com/mcp"
//! [upstreams.billing.oauth]                   # an upstream that requires OAuth: the gateway
//! client_id = "switchboard-gateway"           # gets its own tokens (client credentials)
//! client_secret_env = "BILLING_CLIENT_SECRET" # or private_key_env (PEM, private_key_jwt)
//! ```
//!
//! The library does no I/O: the caller passes the text, the path (for messages) and an
//! environment lookup for `${VAR}`, for the JWT secret named by `security.jwt.hs256_secret_env`
//! and for [`REDIS_URL_VAR`].
//!
//! # Security
//!
//! `[security]` is `switchboard_policy::config::SecurityConfig` (see that module for every
//! field). When it is present it must name at least one way to authenticate (API keys or
//! JWTs), and everything it needs must be at hand (the JWT secret's variable set): otherwise
//! the gateway refuses to start, rather than run open while the file asks for protection.
//!
//! Without `[security]` the HTTP front is unauthenticated, which is only safe on loopback: a
//! gateway whose listener is not on a loopback address refuses to serve unless
//! `[listen] allow_unauthenticated = true` says that is intended (then it logs a warning).

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use indexmap::IndexMap;
use serde::Deserialize;
use switchboard_config::{Config, Secret, ServerName, parse_config};
use switchboard_policy::config::SecurityConfig;

use crate::error::GatewayError;

/// Where the gateway listens by default: loopback only.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8787";

/// The environment variable that names the Redis shared by replicas, when
/// `security.rate_limits.redis_url` does not.
pub const REDIS_URL_VAR: &str = "REDIS_URL";

/// The keys of an `[upstreams.NAME]` table that belong to the gateway, not to the server entry.
const GATEWAY_UPSTREAM_KEYS: [&str; 4] = ["max_in_flight", "timeout_secs", "prefix", "oauth"];

/// `[upstreams.NAME.oauth]`: how the gateway authorizes to an upstream that requires OAuth.
/// Nobody is there to consent, so it is the client-credentials grant (SEP-1046), with a
/// secret or a signed assertion (`private_key_jwt`), both read from the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamOAuth {
    client_id: String,
    client_secret_env: Option<String>,
    /// A variable holding a PKCS#8 PEM private key.
    private_key_env: Option<String>,
    /// The assertion's algorithm: ES256 (the default), ES384 or RS256.
    algorithm: Option<String>,
}

/// The whole gateway configuration, validated.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: ListenConfig,
    pub limits: Limits,
    /// The upstream servers, as the host connects them.
    pub upstreams: Config,
    /// Per-upstream gateway settings, by name.
    pub upstream_limits: HashMap<ServerName, UpstreamLimits>,
    /// How the upstreams that require OAuth are authorized (`[upstreams.NAME.oauth]`).
    pub upstream_oauth: HashMap<ServerName, switchboard_client::oauth::Grant>,
    /// The one upstream, if any, whose names and URIs are served as they are (`prefix =
    /// false`): a gateway that stands in for a single server.
    pub unprefixed: Option<ServerName>,
    /// The file this came from, for messages.
    pub origin: Option<PathBuf>,
    /// `[security]`: authentication, scopes, rate limits and audit; `None` serves without them
    /// (loopback only, see the module docs).
    pub security: Option<SecurityConfig>,
    /// The HS256 secret, read from the variable `security.jwt.hs256_secret_env` names.
    pub jwt_secret: Option<Secret>,
    /// The Redis that replicas share (rate-limit counters, the session routing table):
    /// `security.rate_limits.redis_url`, else [`REDIS_URL_VAR`].
    pub redis_url: Option<Secret>,
}

/// `[listen]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// The address of the HTTP front.
    #[serde(default = "default_address")]
    pub address: SocketAddr,
    /// Host names (without port) that the `Host` and `Origin` headers may name.
    #[serde(default = "default_allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Serve on a non-loopback address without `[security]`. Off: such a gateway refuses to
    /// start, since anyone who can reach it could use every upstream.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// The URL other replicas reach this one at (e.g. `http://10.0.0.5:8787`), for legacy
    /// sessions shared through Redis. Default: `http://` + the listening address, unless
    /// that is unspecified (`0.0.0.0`), in which case sessions stay on their replica.
    #[serde(default)]
    pub advertise_url: Option<String>,
    /// Threads that serve HTTP connections, each running a connection and its calls from
    /// start to end. Default: one per CPU.
    #[serde(default)]
    pub threads: Option<usize>,
}

impl ListenConfig {
    /// The number of HTTP front threads: `threads`, or one per CPU.
    pub fn front_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            address: default_address(),
            allowed_hosts: default_allowed_hosts(),
            allow_unauthenticated: false,
            advertise_url: None,
            threads: None,
        }
    }
}

fn default_address() -> SocketAddr {
    // A constant that parses; the fallback is the same address spelled as a value.
    DEFAULT_ADDRESS
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8787)))
}

fn default_allowed_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
}

/// `[limits]`: every input and every wait is bounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects in a request body (HTTP 400 above it).
    pub max_json_depth: usize,
    /// Requests in flight at once from one client (HTTP 429 above it): the authenticated
    /// client, or its IP address without `[security]`.
    pub max_in_flight_per_client: usize,
    /// Calls in flight at once to one upstream, unless its table sets `max_in_flight`
    /// (`-32000`, retryable, above it).
    pub max_in_flight_per_upstream: usize,
    /// Time to receive a request's headers; also how long an idle keep-alive connection is kept.
    pub header_timeout_secs: u64,
    /// Time for a request to be answered (until its response starts; event streams then run
    /// on), and for one upstream call without progress.
    pub request_timeout_secs: u64,
    /// Time for an upstream to start and finish its handshake.
    pub connect_timeout_secs: u64,
    /// On shutdown, how long in-flight requests get to finish.
    pub shutdown_grace_secs: u64,
    /// Most open legacy sessions (and, separately, WebSocket sessions).
    pub max_sessions: usize,
    /// A legacy HTTP session unused for this long is ended (its client initializes again).
    pub session_idle_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            max_json_depth: 64,
            max_in_flight_per_client: 64,
            max_in_flight_per_upstream: 32,
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            connect_timeout_secs: 30,
            shutdown_grace_secs: 10,
            max_sessions: 10_000,
            session_idle_secs: 900,
        }
    }
}

impl Limits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs)
    }
}

/// The gateway's own settings of one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamLimits {
    pub max_in_flight: usize,
    /// Time for one call without progress.
    pub timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    listen: ListenConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    upstreams: IndexMap<String, toml::Table>,
    #[serde(default)]
    security: Option<SecurityConfig>,
}

/// Whether `name` is a valid upstream name: what qualified names and gateway URIs can carry
/// without escaping.
fn valid_upstream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl GatewayConfig {
    /// Parse `gateway.toml`. `origin` names the file in messages; `env` resolves `${VAR}` in
    /// upstream entries.
    pub fn parse(
        text: &str,
        origin: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GatewayConfig, GatewayError> {
        let file = origin.map_or_else(
            || "<gateway config>".to_owned(),
            |p| p.display().to_string(),
        );
        let raw: RawFile = toml::from_str(text).map_err(|error| GatewayError::Config {
            file: file.clone(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        let config_error = |key: String, message: String| GatewayError::Config {
            file: file.clone(),
            message: format!("{key}: {message}"),
        };
        let mut jwt_secret = None;
        if let Some(security) = &raw.security {
            security.validate().map_err(|error| GatewayError::Config {
                file: file.clone(),
                message: error.to_string(),
            })?;
            if security.api_keys.is_empty() && security.jwt.is_none() {
                return Err(config_error(
                    "security".into(),
                    "names no way to authenticate; add [[security.api_keys]] or [security.jwt] \
                     (without them every request would be refused)"
                        .into(),
                ));
            }
            if let Some(var) = security
                .jwt
                .as_ref()
                .and_then(|jwt| jwt.hs256_secret_env.as_deref())
            {
                match env(var) {
                    Some(secret) if !secret.is_empty() => jwt_secret = Some(Secret::new(secret)),
                    _ => {
                        return Err(config_error(
                            "security.jwt.hs256_secret_env".into(),
                            format!(
                                "the environment variable {var} is not set or empty, so tokens \
                                 cannot be checked; the gateway refuses to start without it"
                            ),
                        ));
                    }
                }
            }
        }
        let redis_url = raw
            .security
            .as_ref()
            .and_then(|s| s.rate_limits.redis_url.clone())
            .or_else(|| env(REDIS_URL_VAR).filter(|url| !url.is_empty()))
            .map(Secret::new);
        if raw.listen.allowed_hosts.is_empty() {
            return Err(config_error(
                "listen.allowed_hosts".into(),
                "is empty, so every request would be refused; list the host names clients use"
                    .into(),
            ));
        }
        if raw.listen.threads == Some(0) {
            return Err(config_error(
                "listen.threads".into(),
                "must be at least 1 (leave it out for one thread per CPU)".into(),
            ));
        }
        let limits = &raw.limits;
        for (key, value) in [
            ("max_body_bytes", limits.max_body_bytes),
            ("max_json_depth", limits.max_json_depth),
            ("max_in_flight_per_client", limits.max_in_flight_per_client),
            (
                "max_in_flight_per_upstream",
                limits.max_in_flight_per_upstream,
            ),
            ("max_sessions", limits.max_sessions),
            (
                "session_idle_secs",
                usize::try_from(limits.session_idle_secs).unwrap_or(usize::MAX),
            ),
            (
                "header_timeout_secs",
                usize::try_from(limits.header_timeout_secs).unwrap_or(usize::MAX),
            ),
            (
                "request_timeout_secs",
                usize::try_from(limits.request_timeout_secs).unwrap_or(usize::MAX),
            ),
            (
                "connect_timeout_secs",
                usize::try_from(limits.connect_timeout_secs).unwrap_or(usize::MAX),
            ),
        ] {
            if value == 0 {
                return Err(config_error(
                    format!("limits.{key}"),
                    "must be at least 1".into(),
                ));
            }
        }
        if raw.upstreams.is_empty() {
            return Err(config_error(
                "upstreams".into(),
                "no upstream servers; add an [upstreams.NAME] table with command or url".into(),
            ));
        }

        let mut servers = serde_json::Map::new();
        let mut upstream_limits = HashMap::new();
        let mut upstream_oauth = HashMap::new();
        let mut unprefixed: Option<ServerName> = None;
        for (name, table) in &raw.upstreams {
            let key = format!("upstreams.{name}");
            if !valid_upstream_name(name) {
                return Err(config_error(
                    key,
                    "an upstream name is 1 to 64 characters of A-Z a-z 0-9 _ -".into(),
                ));
            }
            let mut entry = table.clone();
            let number = |field: &str| -> Result<Option<u64>, GatewayError> {
                match entry_value(table, field) {
                    None => Ok(None),
                    Some(toml::Value::Integer(n)) if *n >= 1 => Ok(Some(n.unsigned_abs())),
                    Some(_) => Err(config_error(
                        format!("{key}.{field}"),
                        "must be a whole number of at least 1".into(),
                    )),
                }
            };
            let max_in_flight = number("max_in_flight")?
                .map_or(limits.max_in_flight_per_upstream, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                });
            let timeout =
                number("timeout_secs")?.map_or(limits.request_timeout(), Duration::from_secs);
            let prefixed = match entry_value(table, "prefix") {
                None | Some(toml::Value::Boolean(true)) => true,
                Some(toml::Value::Boolean(false)) => false,
                Some(_) => {
                    return Err(config_error(
                        format!("{key}.prefix"),
                        "must be true or false".into(),
                    ));
                }
            };
            let oauth = match entry_value(table, "oauth") {
                None => None,
                Some(value) => Some(
                    upstream_grant(table, value, env)
                        .map_err(|message| config_error(format!("{key}.oauth"), message))?,
                ),
            };
            for gateway_key in GATEWAY_UPSTREAM_KEYS {
                entry.remove(gateway_key);
            }
            let json = serde_json::to_value(&entry)
                .map_err(|error| config_error(key.clone(), error.to_string()))?;
            servers.insert(name.clone(), json);
            let server = ServerName::new(name.as_str())
                .map_err(|error| config_error(key.clone(), error.to_string()))?;
            if !prefixed {
                if let Some(first) = &unprefixed {
                    return Err(config_error(
                        format!("{key}.prefix"),
                        format!("only one upstream can be unprefixed, and {first} already is"),
                    ));
                }
                unprefixed = Some(server.clone());
            }
            if let Some(grant) = oauth {
                upstream_oauth.insert(server.clone(), grant);
            }
            upstream_limits.insert(
                server,
                UpstreamLimits {
                    max_in_flight,
                    timeout,
                },
            );
        }
        let text = serde_json::json!({ "mcpServers": servers }).to_string();
        let mut upstreams = parse_config(&text, None, env).map_err(|error| {
            // Positions refer to the JSON made from the TOML, so only the message is kept; it
            // names the server and the field.
            let message = error.to_string();
            let message = strip_position(&message);
            GatewayError::Config {
                file: file.clone(),
                message: format!("upstreams: {message}"),
            }
        })?;
        upstreams.origin = origin.map(Path::to_path_buf);
        Ok(GatewayConfig {
            listen: raw.listen,
            limits: raw.limits,
            upstreams,
            upstream_limits,
            upstream_oauth,
            unprefixed,
            origin: origin.map(Path::to_path_buf),
            security: raw.security,
            jwt_secret,
            redis_url,
        })
    }

    /// Whether serving on `address` is allowed: a non-loopback address needs `[security]`
    /// or `listen.allow_unauthenticated`. `Ok(true)` means allowed but open to the network
    /// without authentication (the caller warns).
    pub fn check_exposure(&self, address: SocketAddr) -> Result<bool, GatewayError> {
        if self.security.is_some() || address.ip().is_loopback() {
            return Ok(false);
        }
        if self.listen.allow_unauthenticated {
            return Ok(true);
        }
        Err(GatewayError::Config {
            file: self.origin.as_ref().map_or_else(
                || "<gateway config>".to_owned(),
                |p| p.display().to_string(),
            ),
            message: format!(
                "listen: {address} is not a loopback address and there is no [security] section, \
                 so anyone who can reach it could use every upstream; add [security] (API keys or \
                 JWTs) or set listen.allow_unauthenticated = true if something in front of the \
                 gateway authenticates"
            ),
        })
    }

    /// The limits of `server` (the defaults for one not in the file).
    pub fn upstream_limits(&self, server: &ServerName) -> UpstreamLimits {
        self.upstream_limits
            .get(server)
            .copied()
            .unwrap_or(UpstreamLimits {
                max_in_flight: self.limits.max_in_flight_per_upstream,
                timeout: self.limits.request_timeout(),
            })
    }
}

/// The grant of `[upstreams.NAME.oauth]` (`value`) for the upstream `table`, its secrets read
/// with `env`.
fn upstream_grant(
    table: &toml::Table,
    value: &toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<switchboard_client::oauth::Grant, String> {
    use switchboard_client::oauth::{ClientAuthentication, Grant, SigningAlgorithm};
    let over_http = entry_value(table, "url")
        .and_then(toml::Value::as_str)
        .is_some_and(|url| url.starts_with("http://") || url.starts_with("https://"));
    if !over_http {
        return Err(
            "applies to upstreams reached by an http:// or https:// url (OAuth is part of \
             Streamable HTTP)"
                .into(),
        );
    }
    let raw: RawUpstreamOAuth = value.clone().try_into().map_err(|e| e.to_string())?;
    if raw.client_id.trim().is_empty() {
        return Err("client_id must not be empty".into());
    }
    let read = |field: &str, var: &str| match env(var) {
        Some(value) if !value.is_empty() => Ok(Secret::new(value)),
        _ => Err(format!(
            "{field}: the environment variable {var} is not set or empty"
        )),
    };
    let authentication = match (&raw.client_secret_env, &raw.private_key_env) {
        (Some(var), None) => {
            if raw.algorithm.is_some() {
                return Err("algorithm goes with private_key_env, not client_secret_env".into());
            }
            ClientAuthentication::Secret(read("client_secret_env", var)?)
        }
        (None, Some(var)) => {
            let name = raw.algorithm.as_deref().unwrap_or("ES256");
            let algorithm = SigningAlgorithm::from_name(name)
                .ok_or_else(|| format!("algorithm: {name} is not one of ES256, ES384, RS256"))?;
            ClientAuthentication::PrivateKeyJwt {
                key_pem: read("private_key_env", var)?,
                algorithm,
            }
        }
        _ => {
            return Err("needs exactly one of client_secret_env and private_key_env".into());
        }
    };
    Ok(Grant::ClientCredentials {
        client_id: raw.client_id,
        authentication,
    })
}

fn entry_value<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    table.get(key)
}

/// `<config>:1:19: rest` → `rest`.
fn strip_position(message: &str) -> &str {
    let Some(rest) = message.strip_prefix("<config>:") else {
        return message;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(line), Some(column), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return message;
    };
    if line.chars().all(|c| c.is_ascii_digit()) && column.chars().all(|c| c.is_ascii_digit()) {
        tail.trim_start()
    } else {
        message
    }
}

/// The config `switchboard gateway init` writes: it fronts our own expenses and bookmarks
/// servers.
pub const EXAMPLE_CONFIG: &str = r#"# Switchboard gateway: one MCP endpoint in front of many servers.
# Run it with: switchboard gateway --config gateway.toml
# Clients connect to http://127.0.0.1:8787/mcp (both protocol eras), or run
# `switchboard gateway --config gateway.toml --stdio` as a stdio server.

[listen]
# Loopback only by default. To serve other machines, bind 0.0.0.0, put the gateway behind
# TLS and add a [security] section (without one, a non-loopback address is refused unless
# allow_unauthenticated = true).
address = "127.0.0.1:8787"
# The Host and Origin headers must name one of these (protection against DNS rebinding).
# Add the public name clients use when the gateway sits behind a proxy.
allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
# Threads that serve HTTP connections (default: one per CPU).
# threads = 4

[limits]
# Largest request body (bytes) and deepest JSON nesting accepted.
max_body_bytes = 4194304
max_json_depth = 64
# Requests in flight at once from one client address, and calls to one upstream.
max_in_flight_per_client = 64
max_in_flight_per_upstream = 32
# Seconds: to receive request headers (and keep an idle connection), to answer a request,
# for an upstream to start, and to drain in-flight calls on shutdown.
header_timeout_secs = 10
request_timeout_secs = 60
connect_timeout_secs = 30
shutdown_grace_secs = 10
# Open legacy sessions at most, and seconds after which an unused one is ended.
max_sessions = 10000
session_idle_secs = 900

# One table per upstream server, with the fields of an mcpServers entry:
# command/args/env/cwd for a local process, url/headers for a remote one
# (http(s):// is Streamable HTTP, ws(s):// is WebSocket). ${VAR} reads the environment.
# Their tools appear as NAME__TOOL, their prompts as NAME__PROMPT, and their resources
# as gateway://NAME/ORIGINAL-URI.

[upstreams.expenses]
command = "switchboard"
args = ["serve", "expenses"]
# Gateway-only settings for this upstream:
max_in_flight = 16
timeout_secs = 30

[upstreams.bookmarks]
command = "switchboard"
args = ["serve", "bookmarks"]

# A remote server:
# [upstreams.remote]
# url = "https://mcp.example.com/mcp"
# headers = { Authorization = "Bearer ${REMOTE_TOKEN}" }

# A remote server that requires OAuth: the gateway gets its own tokens (client credentials).
# [upstreams.billing]
# url = "https://billing.example.com/mcp"
# [upstreams.billing.oauth]
# client_id = "switchboard-gateway"
# client_secret_env = "BILLING_CLIENT_SECRET"   # or private_key_env = "..." (a PEM key)

# Authentication, scopes, rate limits and audit (see the README's Security section):
# [security]
# public_base_url = "https://mcp.example.com"
# [[security.api_keys]]                # echo -n "$KEY" | switchboard gateway hash-key
# client_id = "ci-bot"
# sha256 = "..."
# scopes = ["expenses:read"]
# [security.audit]
# sink = "jsonl"
# path = "audit.jsonl"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_example_config_parses() {
        let config = GatewayConfig::parse(EXAMPLE_CONFIG, Some(Path::new("gateway.toml")), &no_env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.listen.address.to_string(), "127.0.0.1:8787");
        let names: Vec<&str> = config
            .upstreams
            .enabled()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["expenses", "bookmarks"]);
        let expenses = ServerName::new("expenses").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.upstream_limits(&expenses).max_in_flight, 16);
        assert_eq!(
            config.upstream_limits(&expenses).timeout,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let error = |text: &str| {
            GatewayConfig::parse(text, Some(Path::new("gw.toml")), &no_env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let unknown = error("[listen]\nadress = \"127.0.0.1:1\"\n[upstreams.a]\ncommand = \"x\"\n");
        assert!(
            unknown.starts_with("gw.toml: ") && unknown.contains("adress"),
            "{unknown}"
        );
        let empty = error("[upstreams.a]\nargs = [\"x\"]\n");
        assert!(
            empty.starts_with("gw.toml: upstreams: server \"a\": has neither"),
            "{empty}"
        );
        let bad_name = error("[upstreams.\"a b\"]\ncommand = \"x\"\n");
        assert!(
            bad_name.contains("upstreams.a b: an upstream name"),
            "{bad_name}"
        );
        let no_threads = error("[listen]\nthreads = 0\n[upstreams.a]\ncommand = \"x\"\n");
        assert!(
            no_threads.contains("listen.threads: must be at least 1"),
            "{no_threads}"
        );
        let zero = error("[limits]\nmax_json_depth = 0\n[upstreams.a]\ncommand = \"x\"\n");
        assert!(
            zero.contains("limits.max_json_depth: must be at least 1"),
            "{zero}"
        );
        let security = error("[security]\nrequire_auth = true\n[upstreams.a]\ncommand = \"x\"\n");
        assert!(
            security.starts_with("gw.toml: ") && security.contains("require_auth"),
            "{security}"
        );
        let no_method = error("[security]\n[upstreams.a]\ncommand = \"x\"\n");
        assert!(
            no_method.contains("security: names no way to authenticate"),
            "{no_method}"
        );
        let no_secret = error(
            "[security.jwt]\nissuer = \"i\"\naudience = [\"a\"]\nhs256_secret_env = \"GW_TEST_SECRET\"\n[upstreams.a]\ncommand = \"x\"\n",
        );
        assert!(
            no_secret.contains("GW_TEST_SECRET is not set")
                && no_secret.contains("refuses to start"),
            "{no_secret}"
        );
        let none = error("[listen]\n");
        assert!(none.contains("upstreams: no upstream servers"), "{none}");
        let unset = error("[upstreams.a]\nurl = \"https://${NOPE}/mcp\"\n");
        assert!(unset.contains("NOPE"), "{unset}");
        let flight = error("[upstreams.a]\ncommand = \"x\"\nmax_in_flight = 0\n");
        assert!(flight.contains("upstreams.a.max_in_flight"), "{flight}");
        let two = error(
            "[upstreams.a]\ncommand = \"x\"\nprefix = false\n[upstreams.b]\ncommand = \"y\"\nprefix = false\n",
        );
        assert!(
            two.contains(
                "upstreams.b.prefix: only one upstream can be unprefixed, and a already is"
            ),
            "{two}"
        );
    }

    #[test]
    fn a_public_address_needs_security_or_an_explicit_opt_out() {
        let open = GatewayConfig::parse("[upstreams.a]\ncommand = \"x\"\n", None, &no_env)
            .unwrap_or_else(|e| panic!("{e}"));
        let public: SocketAddr = "0.0.0.0:8787".parse().unwrap_or_else(|e| panic!("{e}"));
        let loopback: SocketAddr = "127.0.0.1:8787".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(!open.check_exposure(loopback).unwrap_or(true));
        let refused = open.check_exposure(public).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|m| m.contains("allow_unauthenticated")),
            "{refused:?}"
        );
        let opted = GatewayConfig::parse(
            "[listen]\nallow_unauthenticated = true\n[upstreams.a]\ncommand = \"x\"\n",
            None,
            &no_env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(opted.check_exposure(public).unwrap_or(false));
        let secured = GatewayConfig::parse(
            "[[security.api_keys]]\nclient_id = \"a\"\nsha256 = \"4c806362b613f7496abf284146efd31da90e4b16169fe001841ca17290f427c4\"\n[upstreams.a]\ncommand = \"x\"\n",
            None,
            &|name| (name == REDIS_URL_VAR).then(|| "redis://127.0.0.1:1".to_owned()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!secured.check_exposure(public).unwrap_or(true));
        assert_eq!(
            secured.redis_url.as_ref().map(Secret::expose),
            Some("redis://127.0.0.1:1")
        );
    }

    #[test]
    fn an_upstream_oauth_table_becomes_client_credentials() {
        use switchboard_client::oauth::{ClientAuthentication, Grant};
        let env = |name: &str| match name {
            "SECRET" => Some("s3cret".to_owned()),
            "KEY" => Some("-----BEGIN PRIVATE KEY-----".to_owned()),
            _ => None,
        };
        let parse = |oauth: &str| {
            let text = format!(
                "[upstreams.up]\nurl = \"https://up.example/mcp\"\n[upstreams.up.oauth]\n{oauth}"
            );
            GatewayConfig::parse(&text, Some(Path::new("gw.toml")), &env)
        };
        let up = ServerName::new("up").unwrap_or_else(|e| panic!("{e}"));
        let config = parse("client_id = \"gw\"\nclient_secret_env = \"SECRET\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        match config.upstream_oauth.get(&up) {
            Some(Grant::ClientCredentials {
                client_id,
                authentication: ClientAuthentication::Secret(secret),
            }) => {
                assert_eq!(client_id, "gw");
                assert_eq!(secret.expose(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        let keyed = parse("client_id = \"gw\"\nprivate_key_env = \"KEY\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            keyed.upstream_oauth.get(&up),
            Some(Grant::ClientCredentials {
                authentication: ClientAuthentication::PrivateKeyJwt { .. },
                ..
            })
        ));
        let error = |oauth: &str| {
            parse(oauth)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        for (oauth, expected) in [
            (
                "client_id = \"gw\"\nclient_secret_env = \"UNSET\"\n",
                "upstreams.up.oauth: client_secret_env: the environment variable UNSET is not set",
            ),
            (
                "client_id = \"gw\"\n",
                "upstreams.up.oauth: needs exactly one of client_secret_env and private_key_env",
            ),
            (
                "client_id = \"gw\"\nclient_secret_env = \"SECRET\"\nprivate_key_env = \"KEY\"\n",
                "needs exactly one of",
            ),
            (
                "client_id = \"gw\"\nprivate_key_env = \"KEY\"\nalgorithm = \"HS256\"\n",
                "algorithm: HS256 is not one of ES256, ES384, RS256",
            ),
            (
                "client_id = \"gw\"\nclient_secrets_env = \"SECRET\"\n",
                "client_secrets_env",
            ),
            (
                "client_id = \"\"\nclient_secret_env = \"SECRET\"\n",
                "client_id must not be empty",
            ),
        ] {
            let message = error(oauth);
            assert!(message.starts_with("gw.toml: "), "{message}");
            assert!(message.contains(expected), "{oauth}: {message}");
        }
        let stdio = GatewayConfig::parse(
            "[upstreams.up]\ncommand = \"x\"\n[upstreams.up.oauth]\nclient_id = \"gw\"\nclient_secret_env = \"SECRET\"\n",
            None,
            &env,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            stdio.contains("upstreams.up.oauth: applies to upstreams reached by an http"),
            "{stdio}"
        );
    }
}
