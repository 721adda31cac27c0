//! Authorization by scope: which scope each tool, resource and prompt needs, whether a caller
//! may see and use it, per-client allow and deny lists of servers, and the two answers to a
//! refusal (HTTP 403 `insufficient_scope`, in-band JSON-RPC `-32001`).
//!
//! A tool's required scope comes from, in order:
//! 1. the config's policy (`server/tool` exactly, else `server/*`);
//! 2. the upstream tool's `_meta["dev.switchboard/scope"]` (our servers put it there);
//! 3. `SERVER:read` for a tool annotated `readOnlyHint: true`, else `SERVER:write`.
//!
//! Resources and prompts use the policy, else `SERVER:read`.

use std::collections::BTreeMap;

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    auth::{Principal, json_response},
    config::{ClientConfig, ScopePolicyConfig, SecurityConfig},
    wire::WireError,
};

/// The `_meta` key under which our servers declare a tool's scope (the same as
/// `switchboard_server::SCOPE_META_KEY`).
pub const SCOPE_META_KEY: &str = "dev.switchboard/scope";
/// The in-band JSON-RPC code for a call the caller's scopes do not allow.
pub const INSUFFICIENT_SCOPE_CODE: i64 = -32001;

/// A policy key: `server/name` or `server/*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pattern {
    Exact { server: String, name: String },
    Server(String),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let (server, name) = text
            .split_once('/')
            .ok_or_else(|| "a pattern is \"server/name\" or \"server/*\"".to_owned())?;
        if server.is_empty() || name.is_empty() || server == "*" {
            return Err("a pattern is \"server/name\" or \"server/*\"".to_owned());
        }
        Ok(if name == "*" {
            Pattern::Server(server.to_owned())
        } else {
            Pattern::Exact {
                server: server.to_owned(),
                name: name.to_owned(),
            }
        })
    }
}

/// Patterns to values, looked up exact first, then by server.
#[derive(Debug, Clone, Default)]
pub struct PatternMap<T> {
    exact: BTreeMap<(String, String), T>,
    servers: BTreeMap<String, T>,
}

impl<T: Clone> PatternMap<T> {
    pub fn from_config<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a T)>,
    ) -> Result<Self, String>
    where
        T: 'a,
    {
        let mut map = PatternMap {
            exact: BTreeMap::new(),
            servers: BTreeMap::new(),
        };
        for (pattern, value) in entries {
            match Pattern::parse(pattern).map_err(|reason| format!("\"{pattern}\": {reason}"))? {
                Pattern::Exact { server, name } => {
                    map.exact.insert((server, name), value.clone());
                }
                Pattern::Server(server) => {
                    map.servers.insert(server, value.clone());
                }
            }
        }
        Ok(map)
    }

    pub fn get(&self, server: &str, name: &str) -> Option<&T> {
        self.exact
            .get(&(server.to_owned(), name.to_owned()))
            .or_else(|| self.servers.get(server))
    }
}

/// What the scope decision needs to know about one upstream tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFacts {
    pub server: String,
    pub name: String,
    /// `_meta["dev.switchboard/scope"]`, if the upstream declared one.
    pub declared_scope: Option<String>,
    /// `annotations.readOnlyHint`.
    pub read_only: bool,
}

impl ToolFacts {
    /// Read the facts from a tool as it is on the wire (`{"name", "annotations", "_meta"}`).
    pub fn from_wire(server: &str, tool: &Value) -> ToolFacts {
        ToolFacts {
            server: server.to_owned(),
            name: tool
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            declared_scope: tool
                .pointer("/_meta")
                .and_then(|meta| meta.get(SCOPE_META_KEY))
                .and_then(Value::as_str)
                .map(str::to_owned),
            read_only: tool
                .pointer("/annotations/readOnlyHint")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// Why a caller may not use something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this call needs the scope {required_scope}")]
    InsufficientScope { required_scope: String },
    #[error("client {client_id} may not use server {server}")]
    ServerNotAllowed { client_id: String, server: String },
}

impl Refusal {
    /// HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`.
    pub fn http_response(&self) -> Response<Body> {
        let (challenge, body) = match self {
            Refusal::InsufficientScope { required_scope } => (
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{required_scope}\", error_description=\"the token lacks the required scope\""
                ),
                json!({"error": "insufficient_scope", "scope": required_scope}),
            ),
            Refusal::ServerNotAllowed { .. } => (
                "Bearer error=\"insufficient_scope\", error_description=\"this client may not use that server\"".to_owned(),
                json!({"error": "insufficient_scope", "error_description": "this client may not use that server"}),
            ),
        };
        let mut response = json_response(StatusCode::FORBIDDEN, &body);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    /// In-band: `-32001` with `data.required_scope` (or `data.server` when the client may not
    /// use the server at all).
    pub fn jsonrpc_error(&self) -> WireError {
        match self {
            Refusal::InsufficientScope { required_scope } => WireError {
                code: INSUFFICIENT_SCOPE_CODE,
                message: format!("insufficient scope: this call needs {required_scope}"),
                data: Some(json!({"required_scope": required_scope})),
            },
            Refusal::ServerNotAllowed { server, .. } => WireError {
                code: INSUFFICIENT_SCOPE_CODE,
                message: format!("this client may not use the server {server}"),
                data: Some(json!({"server": server})),
            },
        }
    }
}

/// The scope decisions for one gateway, built once from the config.
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    tools: PatternMap<String>,
    resources: PatternMap<String>,
    prompts: PatternMap<String>,
    clients: BTreeMap<String, ClientConfig>,
}

impl ScopePolicy {
    pub fn from_config(config: &SecurityConfig) -> Result<ScopePolicy, String> {
        let ScopePolicyConfig {
            tools,
            resources,
            prompts,
        } = &config.scopes;
        Ok(ScopePolicy {
            tools: PatternMap::from_config(tools)?,
            resources: PatternMap::from_config(resources)?,
            prompts: PatternMap::from_config(prompts)?,
            clients: config.clients.clone(),
        })
    }

    /// The scope a tool needs.
    pub fn tool_scope(&self, tool: &ToolFacts) -> String {
        if let Some(scope) = self.tools.get(&tool.server, &tool.name) {
            return scope.clone();
        }
        if let Some(scope) = tool.declared_scope.as_deref().filter(|s| !s.is_empty()) {
            return scope.to_owned();
        }
        if tool.read_only {
            format!("{}:read", tool.server)
        } else {
            format!("{}:write", tool.server)
        }
    }

    /// The scope reading a resource needs (`uri` as the upstream knows it).
    pub fn resource_scope(&self, server: &str, uri: &str) -> String {
        self.resources
            .get(server, uri)
            .cloned()
            .unwrap_or_else(|| format!("{server}:read"))
    }

    /// The scope getting a prompt needs.
    pub fn prompt_scope(&self, server: &str, prompt: &str) -> String {
        self.prompts
            .get(server, prompt)
            .cloned()
            .unwrap_or_else(|| format!("{server}:read"))
    }

    /// Whether the client's allow and deny lists let it use this server at all.
    pub fn check_server(&self, principal: &Principal, server: &str) -> Result<(), Refusal> {
        let allowed = match self.clients.get(&principal.client_id) {
            None => true,
            Some(client) => {
                !client.deny_servers.iter().any(|s| s == server)
                    && (client.allow_servers.is_empty()
                        || client.allow_servers.iter().any(|s| s == server))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::ServerNotAllowed {
                client_id: principal.client_id.clone(),
                server: server.to_owned(),
            })
        }
    }

    fn check(&self, principal: &Principal, server: &str, scope: String) -> Result<(), Refusal> {
        self.check_server(principal, server)?;
        if principal.has_scope(&scope) {
            Ok(())
        } else {
            Err(Refusal::InsufficientScope {
                required_scope: scope,
            })
        }
    }

    /// May this caller call this tool? Check before every call, also for tools it cannot
    /// see: a hidden tool called by its exact name is refused here.
    pub fn authorize_tool(&self, principal: &Principal, tool: &ToolFacts) -> Result<(), Refusal> {
        self.check(principal, &tool.server, self.tool_scope(tool))
    }

    pub fn authorize_resource(
        &self,
        principal: &Principal,
        server: &str,
        uri: &str,
    ) -> Result<(), Refusal> {
        self.check(principal, server, self.resource_scope(server, uri))
    }

    pub fn authorize_prompt(
        &self,
        principal: &Principal,
        server: &str,
        prompt: &str,
    ) -> Result<(), Refusal> {
        self.check(principal, server, self.prompt_scope(server, prompt))
    }

    /// Keep only the tools this caller may call (for `tools/list`).
    pub fn visible_tools<'a, T>(
        &'a self,
        principal: &'a Principal,
        tools: impl IntoIterator<Item = (ToolFacts, T)> + 'a,
    ) -> impl Iterator<Item = T> + 'a {
        tools
            .into_iter()
            .filter(move |(facts, _)| self.authorize_tool(principal, facts).is_ok())
            .map(|(_, item)| item)
    }

    pub fn is_tool_visible(&self, principal: &Principal, tool: &ToolFacts) -> bool {
        self.authorize_tool(principal, tool).is_ok()
    }

    pub fn is_resource_visible(&self, principal: &Principal, server: &str, uri: &str) -> bool {
        self.authorize_resource(principal, server, uri).is_ok()
    }

    pub fn is_prompt_visible(&self, principal: &Principal, server: &str, prompt: &str) -> bool {
        self.authorize_prompt(principal, server, prompt).is_ok()
    }
}
