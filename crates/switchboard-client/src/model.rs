//! Switchboard's own view of the MCP objects the host works with.
//!
//! These types are parsed from the wire JSON (not from rmcp's types), so that the crates above the
//! client never name `rmcp::` and an rmcp major upgrade stays a local edit in this crate. Every
//! type keeps the exact JSON it came from in `raw`, because `--json` output and the gateway must
//! pass results on without losing fields we do not model.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which protocol era a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Era {
    /// Revision 2026-07-28 and later: stateless, `server/discover`, per-request `_meta`.
    Modern,
    /// Revisions 2025-11-25, 2025-06-18, 2025-03-26 and 2024-11-05: `initialize` handshake.
    Legacy,
}

impl std::fmt::Display for Era {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Era::Modern => "modern",
            Era::Legacy => "legacy",
        })
    }
}

/// Which way a JSON-RPC message travelled, seen from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent it to the server.
    Outgoing,
    /// The server sent it to us.
    Incoming,
}

/// What we know about the server after the handshake (legacy) or discovery (modern).
#[derive(Debug, Clone, Serialize)]
pub struct ServerDescription {
    pub era: Era,
    pub protocol_version: String,
    /// `serverInfo.name` / `version` when the server sent them (optional in the modern era).
    pub implementation: Option<Implementation>,
    pub capabilities: Capabilities,
    pub instructions: Option<String>,
    /// The transport actually in use, for display: `stdio`, `streamable-http`, ...
    pub transport: &'static str,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Implementation {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The server capabilities the host acts on, plus the raw object for display.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    pub tools: bool,
    pub resources: bool,
    pub prompts: bool,
    pub logging: bool,
    pub completions: bool,
    pub tools_list_changed: bool,
    pub resources_list_changed: bool,
    pub prompts_list_changed: bool,
    pub resource_subscribe: bool,
    pub raw: Value,
}

impl Capabilities {
    pub(crate) fn from_json(raw: Value) -> Self {
        let flag = |section: &str, key: &str| {
            raw.get(section)
                .and_then(|s| s.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let has = |section: &str| raw.get(section).is_some_and(|v| !v.is_null());
        Capabilities {
            tools: has("tools"),
            resources: has("resources"),
            prompts: has("prompts"),
            logging: has("logging"),
            completions: has("completions"),
            tools_list_changed: flag("tools", "listChanged"),
            resources_list_changed: flag("resources", "listChanged"),
            prompts_list_changed: flag("prompts", "listChanged"),
            resource_subscribe: flag("resources", "subscribe"),
            raw,
        }
    }
}

/// Behaviour hints a server gives for a tool. Absent hints take the spec's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// A tool as the server listed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    /// How the tool runs: `{"taskSupport": "optional"}` says it can run as a task (the
    /// 2026-07-28 tasks extension). Kept as the server sent it, so a gateway relays it as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Map<String, Value>>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Whether a tool can run as a task, from its `execution.taskSupport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    /// The tool runs as a task when the client asks for one, and as a plain call otherwise.
    Optional,
    /// The tool runs only as a task: a client must declare the tasks extension to call it.
    Required,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

impl Tool {
    /// True when the server says the tool does not modify its environment.
    pub fn is_read_only(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false)
    }

    /// Whether the tool can run as a task. `"forbidden"`, no `execution`, and a value this
    /// client does not know all mean it runs as a plain call.
    pub fn task_support(&self) -> Option<TaskSupport> {
        match self.execution.as_ref()?.get("taskSupport")?.as_str()? {
            "optional" => Some(TaskSupport::Optional),
            "required" => Some(TaskSupport::Required),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub uri: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    pub uri_template: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptArgument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: Vec<PromptArgument>,
}

/// One item of tool-result or prompt-message content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    Image {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    Audio {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    ResourceLink {
        uri: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(rename = "mimeType", default)]
        mime_type: Option<String>,
    },
    Resource {
        resource: ResourceContents,
    },
    /// A content type newer than this client; kept so nothing is dropped silently.
    #[serde(other)]
    Unknown,
}

/// The contents of a resource, text or binary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContents {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Base64 data for binary contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
}

/// The result of `tools/call`, parsed, with the exact result JSON kept in `raw`.
#[derive(Debug, Clone)]
pub struct ToolResult {
    pub content: Vec<Content>,
    pub structured_content: Option<Value>,
    pub is_error: bool,
    pub raw: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolResultWire {
    #[serde(default)]
    content: Vec<Content>,
    #[serde(default)]
    structured_content: Option<Value>,
    #[serde(default)]
    is_error: Option<bool>,
}

impl ToolResult {
    /// Parse a `tools/call` result object.
    pub fn from_json(raw: Value) -> Result<Self, serde_json::Error> {
        let wire = ToolResultWire::deserialize(&raw)?;
        Ok(ToolResult {
            content: wire.content,
            structured_content: wire.structured_content,
            is_error: wire.is_error.unwrap_or(false),
            raw,
        })
    }
}

/// The result of `resources/read`.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub contents: Vec<ResourceContents>,
    pub raw: Value,
}

/// One message of a `prompts/get` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptMessage {
    pub role: String,
    pub content: Content,
}

/// The result of `prompts/get`.
#[derive(Debug, Clone)]
pub struct PromptResult {
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
    pub raw: Value,
}

/// What `completion/complete` completes an argument of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionTarget {
    /// An argument of the prompt with this name.
    Prompt(String),
    /// A variable of the resource template with this URI template.
    Resource(String),
}

/// The result of `completion/complete`: candidate values for the argument, at most 100.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    #[serde(default)]
    pub values: Vec<String>,
    /// How many values there are in all, when the server says.
    #[serde(default)]
    pub total: Option<u64>,
    /// Whether there are more values than these.
    #[serde(default)]
    pub has_more: Option<bool>,
}

/// A `notifications/progress` for a request we made.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// A `notifications/message` log entry from the server.
#[derive(Debug, Clone)]
pub struct LogMessage {
    pub level: String,
    pub logger: Option<String>,
    pub data: Value,
}

/// Something the server told us outside of a response.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    ToolsChanged,
    ResourcesChanged,
    PromptsChanged,
    ResourceUpdated { uri: String },
    Log(LogMessage),
}

/// How long a 2026-07-28 result may be reused, from its `ttlMs` and `cacheScope` (absent on
/// legacy servers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHint {
    /// `ttlMs`: `Some(0)` says the result is stale at once.
    pub ttl: Option<std::time::Duration>,
    /// `cacheScope`: `private` (this client only) or `public` (may be shared).
    pub scope: Option<String>,
}

impl CacheHint {
    /// Longest `ttlMs` honoured (one day), so that a broken hint cannot pin a list forever.
    pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

    pub(crate) fn from_result(result: &Value) -> Self {
        CacheHint {
            ttl: result
                .get("ttlMs")
                .and_then(Value::as_u64)
                .map(|ms| std::time::Duration::from_millis(ms).min(Self::MAX_TTL)),
            scope: result
                .get("cacheScope")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}
