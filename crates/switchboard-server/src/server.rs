//! The dispatcher: one function from an incoming message to the bytes to send back.
//!
//! It is transport-agnostic (stdio and HTTP both call [`Server::handle`]) and era-aware:
//! a request whose `_meta` carries `io.modelcontextprotocol/protocolVersion` is a 2026-07-28
//! request, answered statelessly with `resultType`; anything else belongs to a legacy session
//! opened with `initialize`.
//!
//! A handler's future is polled once, inline, with a no-op waker. Most tools finish there, and
//! their answer is written straight into the caller's output buffer with no task, channel or
//! extra allocation. A handler that is still pending comes back as [`Pending`], which the
//! transport spawns; it can then be cancelled by `notifications/cancelled`.

use std::{
    borrow::Cow,
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll, Waker},
};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json, value::RawValue};
use tokio_util::sync::CancellationToken;

use tokio::sync::{broadcast, oneshot};

use crate::{
    announce::{Held, Subscriptions, Update, next_change, next_update},
    catalogue::{Catalogue, LIST_CHANGES_QUEUE, ListKind, ListRequest},
    context::{Caller, Era, LogLevel, Outbound, RequestContext},
    error::HandlerError,
    input::{ClientRequests, InputSource},
    model::{PromptOutput, ResourceContents, ToolOutput},
    registry::{Prompt, Resource, ResourceTemplate, Tool, encode},
    request_state::{Binding, StateKey},
    tasks::{self, MAX_TASKS, TASK_TTL, TASKS_EXTENSION, TaskStart, TaskSupport, Tasks},
    wire::{self, Envelope, ErrorObject, Kind, code},
};

/// The revision that needs no handshake.
pub const MODERN_VERSION: &str = "2026-07-28";
/// Legacy revisions we accept in `initialize`, newest first.
pub const LEGACY_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The `_meta` keys of a 2026-07-28 request.
pub mod meta_key {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
}
/// Methods of the legacy lifecycle that 2026-07-28 removed; a modern request for one gets
/// `-32601` (HTTP 404).
pub const REMOVED_IN_MODERN: [&str; 5] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];
/// Largest message accepted, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// What [`Server::dispatch`] did with a message.
pub enum Handled {
    /// An answer was written to `out`: a result, or an error from the method itself.
    Answered,
    /// The message was refused before any method ran (unparsable, not JSON-RPC, or missing or
    /// wrong protocol metadata); an error was written to `out`. HTTP answers these with 400.
    Rejected,
    /// A 2026-07-28 request for a method that does not exist in that revision (or at all);
    /// a `-32601` error was written to `out`. HTTP answers these with 404.
    UnknownMethod,
    /// A notification or a response: there is nothing to answer.
    Nothing,
    /// The handler is still running; spawn it.
    Pending(Pending),
}

impl std::fmt::Debug for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handled::Answered => "Answered",
            Handled::Rejected => "Rejected",
            Handled::UnknownMethod => "UnknownMethod",
            Handled::Nothing => "Nothing",
            Handled::Pending(_) => "Pending",
        })
    }
}

/// Why a request got an error: refused up front, no such method in its era, or failed in
/// its method.
enum Failure {
    Rejected(ErrorObject),
    UnknownMethod(ErrorObject),
    Method(ErrorObject),
}

impl From<ErrorObject> for Failure {
    fn from(error: ErrorObject) -> Self {
        Failure::Method(error)
    }
}

/// A handler still running after its first poll; the transport spawns it. It yields the
/// encoded response, or `None` when the request was cancelled (no response is sent then).
pub type Pending = BoxFuture<'static, Option<Vec<u8>>>;

#[derive(Debug, Clone, Serialize)]
struct Implementation {
    name: String,
    version: String,
}

struct Inner {
    info: Implementation,
    instructions: Option<String>,
    tools: HashMap<String, Tool>,
    resources: HashMap<String, Resource>,
    templates: Vec<ResourceTemplate>,
    prompts: HashMap<String, Prompt>,
    /// What `initialize` declares.
    capabilities: Value,
    /// What `server/discover` declares: the same, plus the extensions of 2026-07-28.
    modern_capabilities: Value,
    /// `{"tools":[...]}` and friends, encoded once at build time.
    tools_list: Vec<u8>,
    /// The tool list for legacy sessions, when it differs (no `execution` of tasks).
    legacy_tools_list: Option<Vec<u8>>,
    resources_list: Vec<u8>,
    templates_list: Vec<u8>,
    prompts_list: Vec<u8>,
    /// `"ttlMs":N,"cacheScope":"..."`, added to modern discover, list and read results.
    cache_hints: Arc<[u8]>,
    subscribable: bool,
    completer: Option<Arc<Completer>>,
    /// Signs the `requestState` of `input_required` results.
    state_key: StateKey,
    /// Lists and calls served at run time instead of the static registry.
    catalogue: Option<Arc<dyn Catalogue>>,
    /// Where list changes are announced; only a server with a catalogue has one.
    changes: Option<broadcast::Sender<ListKind>>,
    /// Where resource updates are announced; only a server that takes subscriptions has one.
    updates: Option<broadcast::Sender<Arc<str>>>,
    /// The tasks of tools that run as tasks; only a server with such tools has them.
    tasks: Option<Arc<Tasks>>,
}

/// An MCP server: its tools, resources and prompts, and the dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.inner.info.name)
            .field("tools", &self.inner.tools.len())
            .finish_non_exhaustive()
    }
}

/// Declares a server. Registration order is the order of the lists.
pub struct ServerBuilder {
    info: Implementation,
    instructions: Option<String>,
    tools: Vec<Tool>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    prompts: Vec<Prompt>,
    cache_ttl_ms: u64,
    cache_scope: CacheScope,
    subscribable: bool,
    completer: Option<Arc<Completer>>,
    request_state_key: Option<[u8; 32]>,
    catalogue: Option<Arc<dyn Catalogue>>,
    task_ttl: std::time::Duration,
    max_tasks: usize,
    task_id_prefix: String,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("info", &self.info)
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

/// Why a server could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("tool name {0:?} is invalid: use 1 to 64 characters of A-Z a-z 0-9 _ . / -")]
    InvalidToolName(String),
    #[error("{kind} {name:?} is registered twice")]
    Duplicate { kind: &'static str, name: String },
    #[error("the operating system gave no random key for signing requestState: {0}")]
    NoRandomKey(String),
    #[error(
        "a server with a catalogue serves all its items from it; register no static tools, resources, templates or prompts"
    )]
    CatalogueWithStaticItems,
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
}

impl ServerBuilder {
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// How long modern clients may reuse discover, list and read answers, and who may. The
    /// default, 0 ms and private, never lets a stale answer be used.
    pub fn cache_hints(mut self, ttl_ms: u64, scope: CacheScope) -> Self {
        self.cache_ttl_ms = ttl_ms;
        self.cache_scope = scope;
        self
    }

    /// Take resource subscriptions, and declare `resources.subscribe`: `resources/subscribe`
    /// and `unsubscribe` in legacy sessions, and `resourceSubscriptions` on a 2026-07-28
    /// `subscriptions/listen` stream. A subscriber hears `notifications/resources/updated` for
    /// the URIs it subscribed to whenever the server calls [`Server::notify_resource_updated`].
    pub fn resource_subscriptions(mut self) -> Self {
        self.subscribable = true;
        self
    }

    /// Sign `requestState` with this key instead of a random one made at build time. Servers
    /// that answer the same clients from several processes need one shared key (32 random
    /// bytes, kept secret), so that any of them accepts another's state.
    pub fn request_state_key(mut self, key: [u8; 32]) -> Self {
        self.request_state_key = Some(key);
        self
    }

    /// How long a task stays readable after it was created (its `ttlMs`; default
    /// [`crate::TASK_TTL`]). Only servers with tools that run as tasks keep any.
    pub fn task_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.task_ttl = ttl;
        self
    }

    /// Most tasks kept at once (default [`crate::MAX_TASKS`]); running tasks count, and ended
    /// ones until they expire.
    pub fn max_tasks(mut self, max: usize) -> Self {
        self.max_tasks = max;
        self
    }

    /// Begin every task id with `prefix` (ids are otherwise random). Several processes behind
    /// one address can tell from a task id which of them holds the task, and send a client's
    /// `tasks/*` request, whose `Mcp-Name` header is the id, to it.
    pub fn task_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.task_id_prefix = prefix.into();
        self
    }

    /// Answer `completion/complete` with `completer`.
    pub fn completions<F>(mut self, completer: F) -> Self
    where
        F: Fn(&CompletionRequest) -> Vec<String> + Send + Sync + 'static,
    {
        self.completer = Some(Arc::new(completer));
        self
    }

    /// Serve lists and calls from `catalogue`, which may change at run time (see
    /// [`crate::Catalogue`]). The server then declares `listChanged` for tools, resources and
    /// prompts, and [`Server::notify_list_changed`] announces changes.
    pub fn catalogue(mut self, catalogue: Arc<dyn Catalogue>) -> Self {
        self.catalogue = Some(catalogue);
        self
    }

    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.templates.push(template);
        self
    }

    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompts.push(prompt);
        self
    }

    /// Check names and encode the lists.
    pub fn build(self) -> Result<Server, BuildError> {
        let has_static_items = !(self.tools.is_empty()
            && self.resources.is_empty()
            && self.templates.is_empty()
            && self.prompts.is_empty());
        if self.catalogue.is_some() && has_static_items {
            return Err(BuildError::CatalogueWithStaticItems);
        }
        let mut capabilities = Map::new();
        if self.catalogue.is_some() {
            capabilities.insert("tools".into(), json!({"listChanged": true}));
            capabilities.insert(
                "resources".into(),
                json!({"listChanged": true, "subscribe": self.subscribable}),
            );
            capabilities.insert("prompts".into(), json!({"listChanged": true}));
            capabilities.insert("completions".into(), json!({}));
        }
        if !self.tools.is_empty() {
            capabilities.insert("tools".into(), json!({"listChanged": false}));
        }
        if !self.resources.is_empty() || !self.templates.is_empty() {
            capabilities.insert(
                "resources".into(),
                json!({"listChanged": false, "subscribe": self.subscribable}),
            );
        }
        if !self.prompts.is_empty() {
            capabilities.insert("prompts".into(), json!({"listChanged": false}));
        }
        if self.completer.is_some() {
            capabilities.insert("completions".into(), json!({}));
        }
        capabilities.insert("logging".into(), json!({}));
        let has_tasks = self.tools.iter().any(|t| t.task_support.is_some())
            || self.catalogue.as_ref().is_some_and(|c| c.runs_tasks());
        let mut modern_capabilities = capabilities.clone();
        if has_tasks {
            modern_capabilities.insert("extensions".into(), json!({TASKS_EXTENSION: {}}));
        }

        let tools_list =
            encode(&json!({"tools": self.tools.iter().map(|t| &t.descriptor).collect::<Vec<_>>()}));
        let legacy_tools_list = has_tasks.then(|| {
            let descriptors: Vec<_> = self
                .tools
                .iter()
                .map(|t| crate::model::ToolDescriptor {
                    execution: None,
                    ..t.descriptor.clone()
                })
                .collect();
            encode(&json!({"tools": descriptors}))
        });
        let resources_list = encode(
            &json!({"resources": self.resources.iter().map(|r| &r.descriptor).collect::<Vec<_>>()}),
        );
        let templates_list = encode(
            &json!({"resourceTemplates": self.templates.iter().map(|t| &t.descriptor).collect::<Vec<_>>()}),
        );
        let prompts_list = encode(
            &json!({"prompts": self.prompts.iter().map(|p| &p.descriptor).collect::<Vec<_>>()}),
        );

        let state_key = match self.request_state_key {
            Some(key) => StateKey::new(key),
            None => StateKey::random().map_err(|e| BuildError::NoRandomKey(e.to_string()))?,
        };
        let mut tools = HashMap::new();
        for tool in self.tools {
            let name = tool.descriptor.name.clone();
            if !valid_tool_name(&name) {
                return Err(BuildError::InvalidToolName(name));
            }
            if tools.insert(name.clone(), tool).is_some() {
                return Err(BuildError::Duplicate { kind: "tool", name });
            }
        }
        let mut resources = HashMap::new();
        for resource in self.resources {
            let uri = resource.descriptor.uri.clone();
            if resources.insert(uri.clone(), resource).is_some() {
                return Err(BuildError::Duplicate {
                    kind: "resource",
                    name: uri,
                });
            }
        }
        let mut prompts = HashMap::new();
        for prompt in self.prompts {
            let name = prompt.descriptor.name.clone();
            if prompts.insert(name.clone(), prompt).is_some() {
                return Err(BuildError::Duplicate {
                    kind: "prompt",
                    name,
                });
            }
        }
        Ok(Server {
            inner: Arc::new(Inner {
                info: self.info,
                instructions: self.instructions,
                tools,
                resources,
                templates: self.templates,
                prompts,
                capabilities: Value::Object(capabilities),
                modern_capabilities: Value::Object(modern_capabilities),
                tools_list,
                legacy_tools_list,
                tasks: has_tasks.then(|| {
                    Arc::new(Tasks::new(
                        self.task_ttl,
                        self.max_tasks,
                        self.task_id_prefix,
                    ))
                }),
                resources_list,
                templates_list,
                prompts_list,
                subscribable: self.subscribable,
                completer: self.completer,
                state_key,
                changes: self
                    .catalogue
                    .is_some()
                    .then(|| broadcast::channel(LIST_CHANGES_QUEUE).0),
                catalogue: self.catalogue,
                updates: self
                    .subscribable
                    .then(|| broadcast::channel(RESOURCE_UPDATES_QUEUE).0),
                cache_hints: Arc::from(
                    format!(
                        "\"ttlMs\":{},\"cacheScope\":\"{}\"",
                        self.cache_ttl_ms,
                        match self.cache_scope {
                            CacheScope::Public => "public",
                            CacheScope::Private => "private",
                        }
                    )
                    .into_bytes(),
                ),
            }),
        })
    }
}

/// The state of one connection: for stdio the whole process, for HTTP one legacy session.
/// Modern requests need none of it.
#[derive(Debug)]
pub struct Session {
    legacy_version: Option<&'static str>,
    /// Set by `logging/setLevel`; a legacy session hears every level until then.
    log_level: LogLevel,
    /// URIs the client subscribed to with `resources/subscribe`.
    subscriptions: Subscriptions,
    /// What the client declared in `initialize`, parsed once for the whole session.
    client_capabilities: Option<Arc<Value>>,
    outbound: Option<Outbound>,
    in_flight: Arc<Mutex<HashMap<String, CancellationToken>>>,
    /// Requests sent to the client (legacy elicitation, sampling, roots) awaiting answers.
    client_requests: Arc<ClientRequests>,
    /// Who sends the requests handled from now on, when the transport knows.
    caller: Option<Arc<Caller>>,
    /// Cancelled when the connection ends: `subscriptions/listen` streams stop.
    ended: CancellationToken,
    /// Whether `dispatch` polls a handler once before handing it back (see
    /// [`Session::handlers_polled_by_caller`]).
    poll_in_dispatch: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.client_requests.close();
    }
}

impl Session {
    /// A session whose notifications (progress, logs) go to `outbound`.
    pub fn new(outbound: Option<Outbound>) -> Self {
        Session {
            legacy_version: None,
            log_level: LogLevel::Debug,
            subscriptions: Subscriptions::default(),
            client_capabilities: None,
            outbound,
            in_flight: Arc::default(),
            client_requests: Arc::new(ClientRequests::new()),
            caller: None,
            ended: CancellationToken::new(),
            poll_in_dispatch: true,
        }
    }

    /// This session's handlers are never polled inside `dispatch`: a request with a handler
    /// always comes back as [`Handled::Pending`], and its caller polls it, with its own task's
    /// waker, once it has let go of the session.
    ///
    /// For a session that concurrent requests share behind a lock (HTTP): a handler's first
    /// poll can be most of its work (a gateway's upstream request is written in it), and under
    /// the session's lock it would stall every other request of the session. It also spares the
    /// handler a second poll: a handler polled in `dispatch` is polled with a no-op waker first,
    /// and again by its task.
    #[must_use]
    pub fn handlers_polled_by_caller(mut self) -> Self {
        self.poll_in_dispatch = false;
        self
    }

    /// Who sends the requests handled from now on (HTTP sets it per request); handlers see it
    /// as [`RequestContext::caller`].
    pub fn set_caller(&mut self, caller: Option<Arc<Caller>>) {
        self.caller = caller;
    }

    /// The connection is ending: handlers waiting for the client's answers get an error now
    /// instead of at their timeout, and `subscriptions/listen` streams stop.
    pub fn end_client_requests(&self) {
        self.client_requests.close();
        self.ended.cancel();
    }

    /// Where notifications of the requests handled from now on go (HTTP gives each request
    /// its own stream).
    pub fn set_outbound(&mut self, outbound: Option<Outbound>) {
        self.outbound = outbound;
    }

    /// The revision negotiated by `initialize`, if this is a legacy session.
    pub fn legacy_version(&self) -> Option<&'static str> {
        self.legacy_version
    }

    /// Whether the client subscribed to `uri` (and has not unsubscribed).
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.held().contains_key(uri)
    }

    /// The URIs the client is subscribed to.
    pub fn subscriptions(&self) -> Vec<String> {
        self.held().keys().cloned().collect()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cancel(&self, request_id: &str) {
        let token = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(request_id);
        if let Some(token) = token {
            token.cancel();
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct RequestMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow, default)]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", borrow, default)]
    client_capabilities: Option<&'a RawValue>,
    #[serde(rename = "progressToken", borrow, default)]
    progress_token: Option<&'a RawValue>,
    #[serde(rename = "io.modelcontextprotocol/logLevel", borrow, default)]
    log_level: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct MetaOnly<'a> {
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<RequestMeta<'a>>,
}

#[derive(Debug, Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(rename = "_meta", borrow, default)]
    meta: Option<RequestMeta<'a>>,
    /// 2026-07-28 retries (SEP-2322): the client's answers, kept raw (`null` included, which is
    /// refused) until the era is known.
    #[serde(
        rename = "inputResponses",
        borrow,
        default,
        deserialize_with = "wire::present"
    )]
    input_responses: Option<&'a RawValue>,
    /// 2026-07-28 retries: the `requestState` of the `input_required` result, echoed.
    #[serde(rename = "requestState", borrow, default)]
    request_state: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams<'a> {
    #[serde(borrow)]
    protocol_version: Cow<'a, str>,
    #[serde(borrow, default)]
    capabilities: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct SetLevelParams {
    level: String,
}

/// What `completion/complete` asks to complete.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type")]
pub enum CompletionRef {
    #[serde(rename = "ref/prompt")]
    Prompt { name: String },
    #[serde(rename = "ref/resource")]
    Resource { uri: String },
}

#[derive(Debug, Deserialize)]
struct CompletionArgument {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionContextParams {
    #[serde(default)]
    arguments: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct CompleteParams {
    #[serde(rename = "ref")]
    reference: CompletionRef,
    argument: CompletionArgument,
    #[serde(default)]
    context: Option<CompletionContextParams>,
}

impl From<CompleteParams> for CompletionRequest {
    fn from(params: CompleteParams) -> Self {
        CompletionRequest {
            reference: params.reference,
            argument: params.argument.name,
            value: params.argument.value,
            context: params
                .context
                .and_then(|context| context.arguments)
                .unwrap_or_default(),
        }
    }
}

/// One `completion/complete` request: which argument of which prompt or resource template,
/// what was typed so far, and the values of its other arguments that the user has already
/// chosen (`context.arguments`), so that a candidate can depend on them (a city given its
/// country).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRequest {
    /// The prompt or resource template the argument belongs to.
    pub reference: CompletionRef,
    /// The argument being completed.
    pub argument: String,
    /// What was typed so far.
    pub value: String,
    /// The other arguments' values, already chosen; empty when the client sent none.
    pub context: HashMap<String, String>,
}

/// Resource updates buffered for a slow session before it misses some (it is then told that
/// every resource it subscribed to changed).
pub const RESOURCE_UPDATES_QUEUE: usize = 256;

/// Most completion values in one answer (the spec's limit).
pub const MAX_COMPLETIONS: usize = 100;

/// Completes an argument: given the request (what is being completed, the argument's name,
/// the text typed so far and the other arguments' values), the candidate values.
pub type Completer = dyn Fn(&CompletionRequest) -> Vec<String> + Send + Sync;

#[derive(Debug, Deserialize)]
struct ReadParams {
    uri: String,
}

#[derive(Debug, Deserialize)]
struct PromptParams<'a> {
    name: String,
    #[serde(default)]
    arguments: Option<HashMap<String, Value>>,
    /// 2026-07-28 retries (SEP-2322): the client's answers, kept raw (`null` included, which is
    /// refused) until the era is known.
    #[serde(
        rename = "inputResponses",
        borrow,
        default,
        deserialize_with = "wire::present"
    )]
    input_responses: Option<&'a RawValue>,
    /// 2026-07-28 retries: the `requestState` of the `input_required` result, echoed.
    #[serde(rename = "requestState", borrow, default)]
    request_state: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelledParams<'a> {
    #[serde(borrow, default)]
    request_id: Option<&'a RawValue>,
}

fn parse_params<'a, T: Deserialize<'a>>(
    params: Option<&'a RawValue>,
    method: &str,
) -> Result<T, ErrorObject> {
    let text = params.map_or("{}", RawValue::get);
    serde_json::from_str(text).map_err(|error| {
        ErrorObject::invalid_params(format!("invalid params for {method}: {error}"))
    })
}

/// Who may cache a cacheable result (SEP-2549).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    /// Any client or intermediary may reuse the answer for any user.
    Public,
    /// Only the requesting user's client may reuse it.
    Private,
}

/// Insert `"resultType":"complete"` (and the cache hints, when given) into the result object
/// that starts at `start`.
fn mark_complete(out: &mut Vec<u8>, start: usize, cache_hints: Option<&[u8]>) {
    if out.get(start) != Some(&b'{') {
        return;
    }
    let empty = out.get(start + 1) == Some(&b'}');
    let mut insert = b"\"resultType\":\"complete\"".to_vec();
    if let Some(hints) = cache_hints {
        insert.push(b',');
        insert.extend_from_slice(hints);
    }
    if !empty {
        insert.push(b',');
    }
    out.splice(start + 1..start + 1, insert);
}

/// Where the result object of a response begins, given the output length before writing.
fn result_start(before: usize, id: &RawValue) -> usize {
    before + b"{\"jsonrpc\":\"2.0\",\"id\":,\"result\":".len() + id.get().len()
}

/// Write a result; in the modern era it is marked `resultType: complete`.
fn respond<T: Serialize + ?Sized>(out: &mut Vec<u8>, id: &RawValue, era: Era, result: &T) {
    let start = result_start(out.len(), id);
    if wire::write_result(out, id, result) && era == Era::Modern {
        mark_complete(out, start, None);
    }
}

/// Write a cacheable result (discover, lists, reads): modern answers carry the cache hints.
fn respond_cacheable<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    id: &RawValue,
    era: Era,
    result: &T,
    hints: &[u8],
) {
    let start = result_start(out.len(), id);
    if wire::write_result(out, id, result) && era == Era::Modern {
        mark_complete(out, start, Some(hints));
    }
}

fn respond_raw(out: &mut Vec<u8>, id: &RawValue, era: Era, json: &[u8], hints: &[u8]) {
    let start = result_start(out.len(), id);
    wire::write_raw_result(out, id, json);
    if era == Era::Modern {
        mark_complete(out, start, Some(hints));
    }
}

/// The request a 2026-07-28 `tools/call` or `prompts/get` round belongs to, for signing the
/// `requestState` of its `input_required` result.
#[derive(Debug)]
struct Round {
    key: StateKey,
    method: &'static str,
    name: String,
    /// As sent; made canonical only when a state is sealed or opened.
    arguments: Option<Box<RawValue>>,
}

impl Round {
    fn binding(&self) -> Binding {
        let arguments = self
            .arguments
            .as_ref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .filter(|value: &Value| !value.is_null())
            .unwrap_or_else(|| Value::Object(Map::new()));
        Binding::new(self.method, &self.name, &arguments)
    }
}

fn encode_outcome<T: Serialize>(
    id: &RawValue,
    era: Era,
    outcome: Result<T, HandlerError>,
    hints: Option<&[u8]>,
    round: Option<&Round>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match (outcome, round) {
        (Ok(result), _) => match hints {
            Some(hints) => respond_cacheable(&mut out, id, era, &result, hints),
            None => respond(&mut out, id, era, &result),
        },
        (Err(HandlerError::InputRequired(required)), Some(round)) if era == Era::Modern => {
            let request_state = round.key.seal(&round.binding(), required.state.as_ref());
            wire::write_result(
                &mut out,
                id,
                &json!({
                    "resultType": "input_required",
                    "inputRequests": required.input_requests(),
                    "requestState": request_state,
                }),
            );
        }
        (Err(error), _) => wire::write_error(&mut out, Some(id), &error.to_wire()),
    }
    out
}

/// Poll once inline (unless the session's caller polls its handlers itself); return the output
/// if done, or the future to spawn.
fn run_inline(
    future: BoxFuture<'static, Vec<u8>>,
    out: &mut Vec<u8>,
    cancel: CancellationToken,
    session: &Session,
    id: &RawValue,
) -> Option<Pending> {
    let mut future = future;
    let first = if session.poll_in_dispatch {
        Pin::new(&mut future).poll(&mut Context::from_waker(Waker::noop()))
    } else {
        Poll::Pending
    };
    match first {
        Poll::Ready(bytes) => {
            out.extend_from_slice(&bytes);
            None
        }
        Poll::Pending => {
            // Whoever polls it next does so with a real waker, which registers (again, after
            // a no-op first poll) whatever the handler waits on.
            let key = id.get().to_owned();
            session
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), cancel.clone());
            let in_flight = session.in_flight.clone();
            Some(Box::pin(async move {
                // A cancelled call is not answered, even when the handler finished (with an
                // error, say, having seen the cancellation itself) in the same wake-up.
                let answer = tokio::select! {
                    biased;
                    () = cancel.cancelled() => None,
                    bytes = future => Some(bytes),
                };
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                answer
            }))
        }
    }
}

impl Server {
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            info: Implementation {
                name: name.into(),
                version: version.into(),
            },
            instructions: None,
            tools: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
            cache_ttl_ms: 0,
            cache_scope: CacheScope::Private,
            subscribable: false,
            completer: None,
            request_state_key: None,
            catalogue: None,
            task_ttl: TASK_TTL,
            max_tasks: MAX_TASKS,
            task_id_prefix: String::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// The input schema of the static tool `name`, for checks made before dispatch (the HTTP
    /// front's `Mcp-Param-*` headers).
    pub(crate) fn tool_input_schema(&self, name: &str) -> Option<&Value> {
        self.inner
            .tools
            .get(name)
            .map(|tool| &tool.descriptor.input_schema)
    }

    /// Tell every client that `list` changed: legacy sessions at once, 2026-07-28 clients on
    /// their `subscriptions/listen` streams. Does nothing for a server without a catalogue.
    pub fn notify_list_changed(&self, list: ListKind) {
        if let Some(changes) = &self.inner.changes {
            // An error only means that no one listens now.
            let _ = changes.send(list);
        }
    }

    /// Tell the clients subscribed to `uri` that the resource changed
    /// (`notifications/resources/updated`): legacy sessions at once, 2026-07-28 clients on the
    /// `subscriptions/listen` streams that named it. Does nothing for a server without
    /// [`ServerBuilder::resource_subscriptions`].
    pub fn notify_resource_updated(&self, uri: &str) {
        if let Some(updates) = &self.inner.updates {
            // An error only means that no one listens now.
            let _ = updates.send(Arc::from(uri));
        }
    }

    /// A receiver of resource updates, for transports that pass them to the legacy sessions
    /// subscribed to them (see [`Session::is_subscribed`]); `None` for a server that takes no
    /// subscriptions.
    pub fn resource_updates(&self) -> Option<broadcast::Receiver<Arc<str>>> {
        self.inner
            .updates
            .as_ref()
            .map(broadcast::Sender::subscribe)
    }

    /// A receiver of list changes, for transports that push them to legacy sessions; `None`
    /// for a server without a catalogue (its lists never change).
    pub fn list_changes(&self) -> Option<broadcast::Receiver<ListKind>> {
        self.inner
            .changes
            .as_ref()
            .map(broadcast::Sender::subscribe)
    }

    /// Handle one incoming message (one line of stdio, one HTTP body). Whatever can be
    /// answered now is appended to `out`; a handler still running is returned to be spawned.
    pub fn handle(
        &self,
        session: &mut Session,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<Pending> {
        match self.dispatch(session, message, out) {
            Handled::Pending(pending) => Some(pending),
            Handled::Answered | Handled::Rejected | Handled::UnknownMethod | Handled::Nothing => {
                None
            }
        }
    }

    /// Like [`Self::handle`], and also says what kind of answer was written, which HTTP
    /// needs for its status code.
    pub fn dispatch(&self, session: &mut Session, message: &[u8], out: &mut Vec<u8>) -> Handled {
        if message.len() > MAX_MESSAGE_BYTES {
            wire::write_error(
                out,
                None,
                &ErrorObject::new(
                    code::INVALID_REQUEST,
                    format!("the message is larger than {MAX_MESSAGE_BYTES} bytes"),
                ),
            );
            return Handled::Rejected;
        }
        let envelope: Envelope<'_> = match serde_json::from_slice(message) {
            Ok(envelope) => envelope,
            Err(error) => {
                let (code, what) = if error.is_data() {
                    (code::INVALID_REQUEST, "invalid request")
                } else {
                    (code::PARSE_ERROR, "parse error")
                };
                wire::write_error(
                    out,
                    None,
                    &ErrorObject::new(code, format!("{what}: {error}")),
                );
                return Handled::Rejected;
            }
        };
        match envelope.kind() {
            Err(reason) => {
                let id = envelope
                    .id
                    .filter(|_| envelope.method.is_some() && envelope.result.is_none());
                wire::write_error(
                    out,
                    id.filter(|id| id.get() != "null"),
                    &ErrorObject::new(code::INVALID_REQUEST, reason),
                );
                Handled::Rejected
            }
            Ok(Kind::Response) => {
                // The answer to an elicitation, sampling or roots request of a legacy handler.
                session
                    .client_requests
                    .resolve(envelope.id, envelope.result, envelope.error);
                Handled::Nothing
            }
            Ok(Kind::Notification) => {
                self.notification(
                    session,
                    envelope.method.unwrap_or_default(),
                    envelope.params,
                );
                Handled::Nothing
            }
            Ok(Kind::Request) => {
                let (Some(method), Some(id)) = (envelope.method, envelope.id) else {
                    return Handled::Nothing;
                };
                match self.request(session, id, method, envelope.params, out) {
                    Ok(Some(pending)) => Handled::Pending(pending),
                    Ok(None) => Handled::Answered,
                    Err(Failure::Method(error)) => {
                        wire::write_error(out, Some(id), &error);
                        Handled::Answered
                    }
                    Err(Failure::Rejected(error)) => {
                        wire::write_error(out, Some(id), &error);
                        Handled::Rejected
                    }
                    Err(Failure::UnknownMethod(error)) => {
                        wire::write_error(out, Some(id), &error);
                        Handled::UnknownMethod
                    }
                }
            }
        }
    }

    fn notification(&self, session: &mut Session, method: &str, params: Option<&RawValue>) {
        match method {
            "notifications/cancelled" => {
                if let Ok(CancelledParams {
                    request_id: Some(id),
                }) = parse_params(params, method)
                {
                    session.cancel(id.get());
                }
            }
            "notifications/initialized" => {}
            other => tracing::debug!(method = other, "ignoring a notification"),
        }
    }

    /// Decide the era of a request from its `_meta`, checking the modern envelope keys.
    fn era_of(
        &self,
        session: &Session,
        method: &str,
        meta: Option<&RequestMeta<'_>>,
    ) -> Result<Era, ErrorObject> {
        match meta.and_then(|m| m.protocol_version.as_deref()) {
            Some(version) => {
                if version != MODERN_VERSION {
                    return Err(ErrorObject::new(
                        code::UNSUPPORTED_PROTOCOL_VERSION,
                        format!("unsupported protocol version {version:?}"),
                    )
                    .with_data(json!({"supported": [MODERN_VERSION], "requested": version})));
                }
                if meta.and_then(|m| m.client_capabilities).is_none() {
                    return Err(ErrorObject::invalid_params(format!(
                        "_meta must carry {} for a {MODERN_VERSION} request",
                        meta_key::CLIENT_CAPABILITIES
                    )));
                }
                Ok(Era::Modern)
            }
            None if session.legacy_version.is_some() || method == "ping" => Ok(Era::Legacy),
            None => Err(ErrorObject::invalid_params(format!(
                "{method} carries no _meta.{}: send it with each request ({MODERN_VERSION}), or open a legacy session with initialize first",
                meta_key::PROTOCOL_VERSION
            ))),
        }
    }

    /// The client capabilities `tool` requires that the client did not declare, as a
    /// `ClientCapabilities` object, or `None` when nothing is missing.
    /// The capabilities the client declared: in the request's `_meta` (2026-07-28) or in the
    /// session's `initialize` (legacy, parsed once then).
    fn declared_capabilities(
        &self,
        session: &Session,
        era: Era,
        meta: Option<&RequestMeta<'_>>,
    ) -> Option<Arc<Value>> {
        match era {
            Era::Modern => meta
                .and_then(|m| m.client_capabilities)
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                .map(Arc::new),
            Era::Legacy => session.client_capabilities.clone(),
        }
    }

    /// The client capabilities `tool` requires that the client did not declare, as a
    /// `ClientCapabilities` object, or `None` when nothing is missing.
    fn missing_capabilities(tool: &Tool, declared: Option<&Value>) -> Option<Value> {
        let missing: Map<String, Value> = tool
            .required_capabilities
            .iter()
            .filter(|name| {
                declared
                    .and_then(|d| d.get(name.as_str()))
                    .is_none_or(Value::is_null)
            })
            .map(|name| (name.clone(), json!({})))
            .collect();
        (!missing.is_empty()).then_some(Value::Object(missing))
    }

    #[allow(clippy::too_many_arguments)]
    fn context(
        &self,
        session: &Session,
        era: Era,
        meta: Option<&RequestMeta<'_>>,
        client_capabilities: Option<Arc<Value>>,
        cancel: CancellationToken,
        inputs: InputSource,
        state: Option<Value>,
    ) -> RequestContext {
        RequestContext {
            era,
            caller: session.caller.clone(),
            progress_token: meta
                .and_then(|m| m.progress_token)
                .map(|raw| Arc::from(raw.to_owned())),
            outbound: session.outbound.clone(),
            cancelled: cancel,
            client_capabilities,
            log_level: match era {
                Era::Legacy => Some(session.log_level),
                Era::Modern => meta
                    .and_then(|m| m.log_level.as_deref())
                    .and_then(LogLevel::parse),
            },
            inputs,
            state: Arc::new(Mutex::new(state)),
            task: Arc::default(),
            starter: None,
        }
    }

    /// Where the handler of a `tools/call` or `prompts/get` gets its input. In a legacy session
    /// it asks the client. In 2026-07-28 it reads the request's `inputResponses`, and gets the
    /// state it saved in the round before from the echoed `requestState`, once that is verified;
    /// the returned [`Round`] seals the next one.
    fn round(
        &self,
        session: &Session,
        era: Era,
        round: impl FnOnce() -> Round,
        input_responses: Option<&RawValue>,
        request_state: Option<&str>,
    ) -> Result<(InputSource, Option<Value>, Option<Round>), ErrorObject> {
        if era == Era::Legacy {
            return Ok((
                InputSource::Client(session.client_requests.clone()),
                None,
                None,
            ));
        }
        let responses: HashMap<String, Value> = match input_responses {
            None => HashMap::new(),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|error| {
                ErrorObject::invalid_params(format!(
                    "inputResponses must be an object of answers by key: {error}"
                ))
            })?,
        };
        let round = round();
        let state = match request_state {
            None => None,
            Some(token) => self
                .inner
                .state_key
                .open(&round.binding(), token)
                .map_err(|error| {
                    ErrorObject::invalid_params(format!(
                        "{error}; call again without requestState and inputResponses to start over"
                    ))
                })?,
        };
        Ok((
            InputSource::Responses(Arc::new(responses)),
            state,
            Some(round),
        ))
    }

    fn request(
        &self,
        session: &mut Session,
        id: &RawValue,
        method: &str,
        params: Option<&RawValue>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Pending>, Failure> {
        let inner = &self.inner;
        if method == "tools/call" {
            let call: CallParams<'_> = parse_params(params, method)?;
            let era = self
                .era_of(session, method, call.meta.as_ref())
                .map_err(Failure::Rejected)?;
            if let Some(catalogue) = &inner.catalogue {
                return self.forward_call(catalogue, session, id, era, call, out);
            }
            let Some(tool) = inner.tools.get(call.name.as_ref()) else {
                return Err(Failure::Method(
                    ErrorObject::invalid_params(format!("unknown tool: {}", call.name))
                        .with_data(json!({"name": call.name})),
                ));
            };
            let arguments: Value = match call.arguments {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|e| ErrorObject::invalid_params(format!("arguments: {e}")))?,
                None => Value::Object(Map::new()),
            };
            if let Err(error) = tool.check(&arguments) {
                return Err(Failure::Method(error.to_wire()));
            }
            let declared = self.declared_capabilities(session, era, call.meta.as_ref());
            if let Some(missing) = Self::missing_capabilities(tool, declared.as_deref()) {
                return Err(Failure::Rejected(
                    ErrorObject::new(
                        code::MISSING_CLIENT_CAPABILITY,
                        format!(
                            "the tool {} needs client capabilities the client did not declare",
                            tool.name()
                        ),
                    )
                    .with_data(json!({"requiredCapabilities": missing})),
                ));
            }
            let as_task = runs_as_task(tool.task_support, era, declared.as_deref(), tool.name())?;
            let store = inner.tasks.as_ref().filter(|_| as_task);
            if let Some(store) = store
                && !tool.task_in_handler
            {
                // The kit makes the task before the handler runs, and answers with it.
                let context = self.task_context(session, era, call.meta.as_ref(), declared);
                let task = start_task(store, session.caller.as_deref(), context, |cx| {
                    tasks::tool_result((tool.handler)(arguments, cx))
                })?;
                wire::write_result(out, id, &task.created());
                return Ok(None);
            }
            let (inputs, state, round) = self.round(
                session,
                era,
                || Round {
                    key: inner.state_key.clone(),
                    method: "tools/call",
                    name: call.name.clone().into_owned(),
                    arguments: call.arguments.map(RawValue::to_owned),
                },
                call.input_responses,
                call.request_state.as_deref(),
            )?;
            let cancel = CancellationToken::new();
            let mut context = self.context(
                session,
                era,
                call.meta.as_ref(),
                declared,
                cancel.clone(),
                inputs,
                state,
            );
            let owned_id = id.to_owned();
            // With a store, the handler makes the call a task when it is ready to.
            let starting = store
                .map(|store| TaskOnStart::arm(&mut context, store.clone(), session.caller.clone()));
            let handler = (tool.handler)(arguments, context);
            let future: BoxFuture<'static, Vec<u8>> = Box::pin(async move {
                match starting {
                    Some(starting) => starting.run(handler, &owned_id, era, round.as_ref()).await,
                    None => encode_outcome::<ToolOutput>(
                        &owned_id,
                        era,
                        handler.await,
                        None,
                        round.as_ref(),
                    ),
                }
            });
            return Ok(run_inline(future, out, cancel, session, id));
        }

        let meta = params
            .map(|raw| parse_params::<MetaOnly<'_>>(Some(raw), method))
            .transpose()?
            .and_then(|m| m.meta);
        let modern = meta
            .as_ref()
            .and_then(|m| m.protocol_version.as_deref())
            .is_some();
        if modern && REMOVED_IN_MODERN.contains(&method) {
            return Err(Failure::UnknownMethod(ErrorObject::method_not_found(
                method,
            )));
        }

        if method == "initialize" {
            let init: InitializeParams<'_> = parse_params(params, method)?;
            let version = LEGACY_VERSIONS
                .iter()
                .find(|v| **v == init.protocol_version)
                .copied()
                .unwrap_or(LEGACY_VERSIONS[0]);
            session.legacy_version = Some(version);
            session.client_capabilities = init
                .capabilities
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                .map(Arc::new);
            let mut result = json!({
                "protocolVersion": version,
                "capabilities": inner.capabilities,
                "serverInfo": inner.info,
            });
            if let Some(instructions) = &inner.instructions {
                result["instructions"] = json!(instructions);
            }
            respond(out, id, Era::Legacy, &result);
            return Ok(None);
        }

        if method == "server/discover"
            && meta
                .as_ref()
                .and_then(|m| m.protocol_version.as_deref())
                .is_none()
        {
            return Err(Failure::Rejected(ErrorObject::invalid_params(format!(
                "server/discover needs _meta with {} and {}",
                meta_key::PROTOCOL_VERSION,
                meta_key::CLIENT_CAPABILITIES
            ))));
        }
        let era = self
            .era_of(session, method, meta.as_ref())
            .map_err(Failure::Rejected)?;
        if let Some(store) = &inner.tasks
            && era == Era::Modern
            && matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel")
        {
            return self.task_request(store, session, id, method, params, meta.as_ref(), out);
        }
        if inner.subscribable && matches!(method, "resources/subscribe" | "resources/unsubscribe") {
            return self.subscription(
                inner.catalogue.as_ref(),
                session,
                id,
                era,
                method,
                params,
                meta.as_ref(),
                out,
            );
        }
        if method == "subscriptions/listen"
            && era == Era::Modern
            && (inner.changes.is_some() || inner.updates.is_some())
        {
            return self.listen(session, id, params, meta.as_ref(), out);
        }
        if let Some(catalogue) = &inner.catalogue
            && let Forwarded::Done(pending) = self.forward(
                catalogue,
                session,
                id,
                era,
                method,
                params,
                meta.as_ref(),
                out,
            )?
        {
            return Ok(pending);
        }
        match method {
            "server/discover" => {
                let mut result = json!({
                    "supportedVersions": [MODERN_VERSION],
                    "capabilities": inner.modern_capabilities,
                    "_meta": { meta_key::SERVER_INFO: inner.info },
                });
                if let Some(instructions) = &inner.instructions {
                    result["instructions"] = json!(instructions);
                }
                respond_cacheable(out, id, era, &result, &inner.cache_hints);
            }
            "ping" => respond(out, id, era, &json!({})),
            "logging/setLevel" => {
                let SetLevelParams { level } = parse_params(params, method)?;
                let Some(level) = LogLevel::parse(&level) else {
                    return Err(Failure::Method(
                        ErrorObject::invalid_params(format!("unknown log level {level:?}"))
                            .with_data(json!({"level": level})),
                    ));
                };
                session.log_level = level;
                respond(out, id, era, &json!({}));
            }
            "completion/complete" if inner.completer.is_some() => {
                let request: CompleteParams = parse_params(params, method)?;
                let values = inner
                    .completer
                    .as_ref()
                    .map(|complete| complete(&request.into()))
                    .unwrap_or_default();
                let total = values.len();
                let values: Vec<String> = values.into_iter().take(MAX_COMPLETIONS).collect();
                respond(
                    out,
                    id,
                    era,
                    &json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}}),
                );
            }
            "tools/list" => {
                let list = match (&inner.legacy_tools_list, era) {
                    (Some(legacy), Era::Legacy) => legacy,
                    _ => &inner.tools_list,
                };
                respond_raw(out, id, era, list, &inner.cache_hints)
            }
            "resources/list" => {
                respond_raw(out, id, era, &inner.resources_list, &inner.cache_hints)
            }
            "resources/templates/list" => {
                respond_raw(out, id, era, &inner.templates_list, &inner.cache_hints)
            }
            "prompts/list" => respond_raw(out, id, era, &inner.prompts_list, &inner.cache_hints),
            "resources/read" => {
                let ReadParams { uri } = parse_params(params, method)?;
                let (reader, variables) = if let Some(resource) = inner.resources.get(&uri) {
                    (resource.reader.clone(), HashMap::new())
                } else if let Some((template, variables)) = inner
                    .templates
                    .iter()
                    .find_map(|t| t.pattern.matches(&uri).map(|v| (t, v)))
                {
                    (template.reader.clone(), variables)
                } else {
                    return Err(Failure::Method(
                        ErrorObject::invalid_params(format!("unknown resource: {uri}"))
                            .with_data(json!({"uri": uri})),
                    ));
                };
                let cancel = CancellationToken::new();
                let inputs = match era {
                    Era::Legacy => InputSource::Client(session.client_requests.clone()),
                    Era::Modern => InputSource::Unavailable(
                        "in 2026-07-28 only tools/call and prompts/get can ask the client for input",
                    ),
                };
                let context = self.context(
                    session,
                    era,
                    meta.as_ref(),
                    self.declared_capabilities(session, era, meta.as_ref()),
                    cancel.clone(),
                    inputs,
                    None,
                );
                let reading = reader(uri, variables, context);
                let owned_id = id.to_owned();
                let hints = inner.cache_hints.clone();
                let future: BoxFuture<'static, Vec<u8>> = Box::pin(async move {
                    let outcome = reading
                        .await
                        .map(|contents: Vec<ResourceContents>| json!({"contents": contents}));
                    encode_outcome(&owned_id, era, outcome, Some(&hints), None)
                });
                return Ok(run_inline(future, out, cancel, session, id));
            }
            "prompts/get" => {
                let PromptParams {
                    name,
                    arguments,
                    input_responses,
                    request_state,
                } = parse_params(params, method)?;
                let Some(prompt) = inner.prompts.get(&name) else {
                    return Err(Failure::Method(
                        ErrorObject::invalid_params(format!("unknown prompt: {name}"))
                            .with_data(json!({"name": name})),
                    ));
                };
                let arguments: HashMap<String, String> = arguments
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect();
                let missing: Vec<&str> = prompt
                    .descriptor
                    .arguments
                    .iter()
                    .filter(|a| a.required && !arguments.contains_key(&a.name))
                    .map(|a| a.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    return Err(Failure::Method(
                        ErrorObject::invalid_params(format!(
                            "prompt {name} needs the argument(s) {}",
                            missing.join(", ")
                        ))
                        .with_data(json!({"missing": missing})),
                    ));
                }
                let (inputs, state, round) = self.round(
                    session,
                    era,
                    || Round {
                        key: inner.state_key.clone(),
                        method: "prompts/get",
                        name: name.clone(),
                        arguments: serde_json::value::to_raw_value(&arguments).ok(),
                    },
                    input_responses,
                    request_state.as_deref(),
                )?;
                let cancel = CancellationToken::new();
                let context = self.context(
                    session,
                    era,
                    meta.as_ref(),
                    self.declared_capabilities(session, era, meta.as_ref()),
                    cancel.clone(),
                    inputs,
                    state,
                );
                let getting = (prompt.handler)(arguments, context);
                let owned_id = id.to_owned();
                let future: BoxFuture<'static, Vec<u8>> = Box::pin(async move {
                    encode_outcome::<PromptOutput>(
                        &owned_id,
                        era,
                        getting.await,
                        None,
                        round.as_ref(),
                    )
                });
                return Ok(run_inline(future, out, cancel, session, id));
            }
            other if era == Era::Modern => {
                return Err(Failure::UnknownMethod(ErrorObject::method_not_found(other)));
            }
            other => return Err(Failure::Method(ErrorObject::method_not_found(other))),
        }
        Ok(None)
    }
}

/// Whether a request went to the catalogue.
enum Forwarded {
    /// Not a catalogue method: the static dispatcher answers it.
    NotMine,
    /// Answered, or still running.
    Done(Option<Pending>),
}

#[derive(Debug, Deserialize)]
struct ListenParams {
    #[serde(default)]
    notifications: Map<String, Value>,
}

/// The `_meta` key that ties a notification to its `subscriptions/listen` request.
const SUBSCRIPTION_ID_META_KEY: &str = "io.modelcontextprotocol/subscriptionId";
/// The key of a `subscriptions/listen` filter that lists resources to hear updates of.
const RESOURCE_SUBSCRIPTIONS_KEY: &str = "resourceSubscriptions";
/// Most resources one `subscriptions/listen` may name.
pub const MAX_RESOURCE_SUBSCRIPTIONS: usize = 1024;

/// The `resourceSubscriptions` of a listen filter: distinct URIs, in the order given.
fn resource_subscriptions(value: &Value) -> Result<Vec<String>, Failure> {
    let invalid = |detail: String| {
        Failure::Method(ErrorObject::invalid_params(format!(
            "notifications.{RESOURCE_SUBSCRIPTIONS_KEY}: {detail}"
        )))
    };
    let uris: Vec<String> =
        serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
    if uris.len() > MAX_RESOURCE_SUBSCRIPTIONS {
        return Err(invalid(format!(
            "{} resources; at most {MAX_RESOURCE_SUBSCRIPTIONS} per subscriptions/listen",
            uris.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(uris.len());
    Ok(uris
        .into_iter()
        .filter(|uri| seen.insert(uri.clone()))
        .collect())
}

/// Whether a call of a tool with this task support runs as a task for this client: when the
/// client declared the extension (2026-07-28). A tool that runs only as a task is refused
/// (`-32021`) to a client that did not.
fn runs_as_task(
    support: Option<TaskSupport>,
    era: Era,
    declared: Option<&Value>,
    tool: &str,
) -> Result<bool, Failure> {
    let Some(support) = support else {
        return Ok(false);
    };
    let declared_tasks = tasks::takes_tasks(era, declared);
    if !declared_tasks && support == TaskSupport::Required {
        return Err(Failure::Rejected(tasks::extension_required(&format!(
            "the tool {tool}"
        ))));
    }
    Ok(declared_tasks)
}

/// Make a task for `caller`, cancelled through `cancel`, record it in `slot` (the task of
/// the handler's context), and run `work` (not yet polled) as it. The task, to answer the call
/// with; `-32603` where no runtime can run it.
fn launch_task(
    store: &Tasks,
    caller: Option<&Caller>,
    cancel: CancellationToken,
    slot: &OnceLock<Arc<tasks::Task>>,
    work: BoxFuture<'static, Result<Map<String, Value>, HandlerError>>,
) -> Result<Arc<tasks::Task>, ErrorObject> {
    tasks::runtime_available()?;
    let task = store.create(caller, cancel)?;
    let _ = slot.set(task.clone());
    tasks::run(task.clone(), work);
    Ok(task)
}

/// [`launch_task`] for a handler that runs as a task from the start, with `context` (from
/// [`Server::task_context`]), whose cancellation becomes the task's.
fn start_task(
    store: &Tasks,
    caller: Option<&Caller>,
    context: RequestContext,
    work: impl FnOnce(RequestContext) -> BoxFuture<'static, Result<Map<String, Value>, HandlerError>>,
) -> Result<Arc<tasks::Task>, ErrorObject> {
    let slot = context.task.clone();
    let cancel = context.cancelled.clone();
    launch_task(store, caller, cancel, &slot, work(context))
}

/// The answer to a call that became a task: the task, or why it could not be made.
fn task_answer(id: &RawValue, launched: Result<Arc<tasks::Task>, ErrorObject>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match launched {
        Ok(task) => {
            wire::write_result(&mut out, id, &task.created());
        }
        Err(error) => wire::write_error(&mut out, Some(id), &error),
    }
    out
}

/// A call whose handler may make it a task ([`RequestContext::start_task`]): a tool built with
/// [`crate::ToolBuilder::task_starts_in_handler`], or a catalogue's with
/// [`tasks::TaskStart::InHandler`].
struct TaskOnStart {
    start: oneshot::Receiver<oneshot::Sender<()>>,
    slot: Arc<OnceLock<Arc<tasks::Task>>>,
    store: Arc<Tasks>,
    caller: Option<Arc<Caller>>,
    cancel: CancellationToken,
}

impl TaskOnStart {
    /// Give `context` (not yet handed to its handler) the means to start the task.
    fn arm(context: &mut RequestContext, store: Arc<Tasks>, caller: Option<Arc<Caller>>) -> Self {
        let (starter, start) = oneshot::channel();
        context.starter = Some(Arc::new(Mutex::new(Some(starter))));
        TaskOnStart {
            start,
            slot: context.task.clone(),
            store,
            caller,
            cancel: context.cancelled.clone(),
        }
    }

    /// Run `handler` as a plain call until it starts the task: the call is then answered with
    /// the task, and the handler goes on in the background as it.
    async fn run<T: Serialize + Send + 'static>(
        self,
        handler: BoxFuture<'static, Result<T, HandlerError>>,
        id: &RawValue,
        era: Era,
        round: Option<&Round>,
    ) -> Vec<u8> {
        use futures::future::{Either, select};
        let outcome = match select(handler, self.start).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right((Ok(started), handler)) => {
                let work = tasks::tool_result(handler);
                let launched = launch_task(
                    &self.store,
                    self.caller.as_deref(),
                    self.cancel,
                    &self.slot,
                    work,
                );
                if launched.is_ok() {
                    let _ = started.send(());
                }
                return task_answer(id, launched);
            }
            // The handler let go of its context: it cannot start a task now.
            Either::Right((Err(_), handler)) => handler.await,
        };
        encode_outcome(id, era, outcome, None, round)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskParams {
    task_id: String,
    #[serde(default)]
    input_responses: Option<HashMap<String, Value>>,
}

impl Server {
    /// `tasks/get`, `tasks/update` or `tasks/cancel`, from a client that declared the tasks
    /// extension, about one of its own tasks.
    #[allow(clippy::too_many_arguments)]
    fn task_request(
        &self,
        store: &Tasks,
        session: &Session,
        id: &RawValue,
        method: &str,
        params: Option<&RawValue>,
        meta: Option<&RequestMeta<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Pending>, Failure> {
        let declared = self.declared_capabilities(session, Era::Modern, meta);
        if !tasks::takes_tasks(Era::Modern, declared.as_deref()) {
            return Err(Failure::Rejected(tasks::extension_required(method)));
        }
        let TaskParams {
            task_id,
            input_responses,
        } = parse_params(params, method)?;
        let task = store.find(&task_id, session.caller.as_deref())?;
        match method {
            "tasks/get" => respond(out, id, Era::Modern, &task.detailed()),
            "tasks/update" => {
                let Some(responses) = input_responses else {
                    return Err(Failure::Method(ErrorObject::invalid_params(
                        "tasks/update needs inputResponses: the answers by the keys of the task's inputRequests",
                    )));
                };
                task.answer(responses)?;
                respond(out, id, Era::Modern, &json!({}));
            }
            _ => {
                task.cancel();
                respond(out, id, Era::Modern, &json!({}));
            }
        }
        Ok(None)
    }

    /// The context of a handler that runs as a task: no stream to send on (the request's ends
    /// with its answer), and input through the task once [`start_task`] made it.
    fn task_context(
        &self,
        session: &Session,
        era: Era,
        meta: Option<&RequestMeta<'_>>,
        declared: Option<Arc<Value>>,
    ) -> RequestContext {
        let mut context = self.context(
            session,
            era,
            meta,
            declared,
            CancellationToken::new(),
            InputSource::Unavailable("a task asks for input through the task"),
            None,
        );
        context.outbound = None;
        context
    }

    /// `tools/call` on a server with a catalogue.
    fn forward_call(
        &self,
        catalogue: &Arc<dyn Catalogue>,
        session: &Session,
        id: &RawValue,
        era: Era,
        call: CallParams<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Pending>, Failure> {
        let arguments: Map<String, Value> = match call.arguments {
            Some(raw) => serde_json::from_str::<Option<Map<String, Value>>>(raw.get())
                .map_err(|e| ErrorObject::invalid_params(format!("arguments: {e}")))?
                .unwrap_or_default(),
            None => Map::new(),
        };
        let declared = self.declared_capabilities(session, era, call.meta.as_ref());
        // For a client that takes tasks, the catalogue says (maybe after a lookup) whether the
        // tool runs as one; a tool that must, for a client that does not, is the catalogue's
        // to refuse.
        let task_store = self
            .inner
            .tasks
            .clone()
            .filter(|_| tasks::takes_tasks(era, declared.as_deref()));
        let as_task = match task_store {
            // `start_task` refuses a task where no runtime can run it.
            Some(store) => {
                let name = call.name.clone().into_owned();
                let context = self.task_context(session, era, call.meta.as_ref(), declared.clone());
                Some((store, name, context, session.caller.clone()))
            }
            None => None,
        };
        let (inputs, state, round) = self.round(
            session,
            era,
            || Round {
                key: self.inner.state_key.clone(),
                method: "tools/call",
                name: call.name.clone().into_owned(),
                arguments: call.arguments.map(RawValue::to_owned),
            },
            call.input_responses,
            call.request_state.as_deref(),
        )?;
        let cancel = CancellationToken::new();
        let mut context = self.context(
            session,
            era,
            call.meta.as_ref(),
            declared,
            cancel.clone(),
            inputs,
            state,
        );
        let owned_id = id.to_owned();
        let catalogue = catalogue.clone();
        let name = call.name.into_owned();
        let future: BoxFuture<'static, Vec<u8>> = Box::pin(async move {
            let mut starting = None;
            if let Some((store, tool, task_context, caller)) = as_task {
                match catalogue
                    .task_start(tool.clone(), task_context.clone())
                    .await
                {
                    Some(TaskStart::Upfront) => {
                        let launched = start_task(&store, caller.as_deref(), task_context, |cx| {
                            catalogue.call_tool(tool, arguments, cx)
                        });
                        return task_answer(&owned_id, launched);
                    }
                    Some(TaskStart::InHandler) => {
                        starting = Some(TaskOnStart::arm(&mut context, store, caller));
                    }
                    None => {}
                }
            }
            let calling = catalogue.call_tool(name, arguments, context);
            match starting {
                Some(starting) => starting.run(calling, &owned_id, era, round.as_ref()).await,
                None => encode_outcome(&owned_id, era, calling.await, None, round.as_ref()),
            }
        });
        Ok(run_inline(future, out, cancel, session, id))
    }

    /// `resources/subscribe` or `unsubscribe` in a legacy session. Asking for the state the
    /// session is already in is answered at once; only a change reaches a catalogue's hooks,
    /// so a catalogue that counts subscribers counts each session once. A static server's
    /// session records the change at once; a catalogue's, once its hook accepted it.
    #[allow(clippy::too_many_arguments)]
    fn subscription(
        &self,
        catalogue: Option<&Arc<dyn Catalogue>>,
        session: &mut Session,
        id: &RawValue,
        era: Era,
        method: &str,
        params: Option<&RawValue>,
        meta: Option<&RequestMeta<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Pending>, Failure> {
        let ReadParams { uri } = parse_params(params, method)?;
        let subscribe = method == "resources/subscribe";
        if subscribe == session.is_subscribed(&uri) {
            respond(out, id, era, &json!({}));
            return Ok(None);
        }
        let Some(catalogue) = catalogue else {
            if subscribe {
                session.held().insert(uri, Held::unmanaged());
            } else {
                session.held().remove(&uri);
            }
            respond(out, id, era, &json!({}));
            return Ok(None);
        };
        let owned_id = id.to_owned();
        let future: BoxFuture<'static, Vec<u8>> = if subscribe {
            let taking = Held::take(
                catalogue.clone(),
                uri.clone(),
                self.lasting_context(session, era, meta),
            );
            let subscriptions = session.subscriptions.clone();
            Box::pin(async move {
                let outcome = taking.await.map(|held| {
                    // A subscription taken twice at once is released once.
                    let replaced = subscriptions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(uri, held);
                    drop(replaced);
                    json!({})
                });
                encode_outcome(&owned_id, era, outcome, None, None)
            })
        } else {
            let releasing = session.held().remove(&uri).map(Held::release);
            Box::pin(async move {
                let outcome = match releasing {
                    Some(releasing) => releasing.await.map(|()| json!({})),
                    None => Ok(json!({})),
                };
                encode_outcome(&owned_id, era, outcome, None, None)
            })
        };
        Ok(run_inline(
            future,
            out,
            CancellationToken::new(),
            session,
            id,
        ))
    }

    /// The context of a subscription's hooks, which outlives the request: who asked and what
    /// it declared, and nothing tied to the request's stream.
    fn lasting_context(
        &self,
        session: &Session,
        era: Era,
        meta: Option<&RequestMeta<'_>>,
    ) -> RequestContext {
        RequestContext {
            era,
            caller: session.caller.clone(),
            client_capabilities: self.declared_capabilities(session, era, meta),
            ..RequestContext::detached()
        }
    }

    /// Lists, reads, prompts, completions and `subscriptions/listen` on a server with a
    /// catalogue.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        catalogue: &Arc<dyn Catalogue>,
        session: &Session,
        id: &RawValue,
        era: Era,
        method: &str,
        params: Option<&RawValue>,
        meta: Option<&RequestMeta<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<Forwarded, Failure> {
        let forwarded = ListRequest::from_method(method).is_some()
            || matches!(
                method,
                "resources/read" | "prompts/get" | "completion/complete"
            );
        if !forwarded {
            return Ok(Forwarded::NotMine);
        }
        let inner = &self.inner;
        let declared = || self.declared_capabilities(session, era, meta);
        let no_input = || match era {
            Era::Legacy => InputSource::Client(session.client_requests.clone()),
            Era::Modern => InputSource::Unavailable(
                "in 2026-07-28 only tools/call and prompts/get can ask the client for input",
            ),
        };
        let owned_id = id.to_owned();
        let cancel = CancellationToken::new();
        let future: BoxFuture<'static, Vec<u8>> = if let Some(list) =
            ListRequest::from_method(method)
        {
            let context = self.context(
                session,
                era,
                meta,
                declared(),
                cancel.clone(),
                no_input(),
                None,
            );
            let listing = catalogue.list(list, context);
            let hints = inner.cache_hints.clone();
            // A tool's `execution` says it can run as a task: only true for a 2026-07-28
            // client of a catalogue that runs tasks (a legacy client would read it as the
            // 2025-11-25 tasks this kit does not speak).
            let strip_execution =
                list == ListRequest::Tools && (era == Era::Legacy || !catalogue.runs_tasks());
            Box::pin(async move {
                let outcome = listing.await.map(|mut items| {
                    if strip_execution {
                        for item in &mut items {
                            if let Some(tool) = item.as_object_mut() {
                                tool.remove("execution");
                            }
                        }
                    }
                    let mut result = Map::new();
                    result.insert(list.result_key().to_owned(), Value::Array(items));
                    result
                });
                encode_outcome(&owned_id, era, outcome, Some(&hints), None)
            })
        } else {
            match method {
                "resources/read" => {
                    let ReadParams { uri } = parse_params(params, method)?;
                    let context = self.context(
                        session,
                        era,
                        meta,
                        declared(),
                        cancel.clone(),
                        no_input(),
                        None,
                    );
                    let reading = catalogue.read_resource(uri, context);
                    let hints = inner.cache_hints.clone();
                    Box::pin(async move {
                        encode_outcome(&owned_id, era, reading.await, Some(&hints), None)
                    })
                }
                "prompts/get" => {
                    let PromptParams {
                        name,
                        arguments,
                        input_responses,
                        request_state,
                    } = parse_params(params, method)?;
                    let arguments: Map<String, Value> =
                        arguments.unwrap_or_default().into_iter().collect();
                    let (inputs, state, round) = self.round(
                        session,
                        era,
                        || Round {
                            key: inner.state_key.clone(),
                            method: "prompts/get",
                            name: name.clone(),
                            arguments: serde_json::value::to_raw_value(&arguments).ok(),
                        },
                        input_responses,
                        request_state.as_deref(),
                    )?;
                    let context = self.context(
                        session,
                        era,
                        meta,
                        declared(),
                        cancel.clone(),
                        inputs,
                        state,
                    );
                    let getting = catalogue.get_prompt(name, arguments, context);
                    Box::pin(async move {
                        encode_outcome(&owned_id, era, getting.await, None, round.as_ref())
                    })
                }
                "completion/complete" => {
                    let request: CompleteParams = parse_params(params, method)?;
                    let context = self.context(
                        session,
                        era,
                        meta,
                        declared(),
                        cancel.clone(),
                        no_input(),
                        None,
                    );
                    let completing = catalogue.complete(request.into(), context);
                    Box::pin(async move {
                        let outcome = completing.await.map(|values| {
                            let total = values.len();
                            let values: Vec<String> =
                                values.into_iter().take(MAX_COMPLETIONS).collect();
                            json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}})
                        });
                        encode_outcome(&owned_id, era, outcome, None, None)
                    })
                }
                _ => return Ok(Forwarded::NotMine),
            }
        };
        Ok(Forwarded::Done(run_inline(
            future, out, cancel, session, id,
        )))
    }

    /// A 2026-07-28 `subscriptions/listen`: acknowledge what the client asked for that the
    /// server can announce (list changes, on a server with a catalogue; updates of the
    /// `resourceSubscriptions`, on one that takes subscriptions), then send each change on the
    /// request's stream until the client cancels it or goes away. A catalogue accepts each
    /// resource through its `subscribe` hook, and hears `unsubscribe` when the stream ends.
    fn listen(
        &self,
        session: &Session,
        id: &RawValue,
        params: Option<&RawValue>,
        meta: Option<&RequestMeta<'_>>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Pending>, Failure> {
        let inner = &self.inner;
        let ListenParams { notifications } = parse_params(params, "subscriptions/listen")?;
        let Some(outbound) = session.outbound.clone() else {
            return Err(Failure::Method(ErrorObject::invalid_params(
                "subscriptions/listen needs a stream to send on: accept text/event-stream",
            )));
        };
        let requested_uris = match notifications.get(RESOURCE_SUBSCRIPTIONS_KEY) {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => resource_subscriptions(value)?,
        };
        let lists: Vec<ListKind> = ListKind::ALL
            .into_iter()
            .filter(|kind| notifications.get(kind.filter_key()) == Some(&Value::Bool(true)))
            .filter(|_| inner.changes.is_some())
            .collect();
        let uris = if inner.updates.is_some() {
            requested_uris
        } else {
            Vec::new()
        };
        // Listen before acknowledging, so that nothing after the acknowledgement is missed.
        let mut changes = inner
            .changes
            .as_ref()
            .filter(|_| !lists.is_empty())
            .map(broadcast::Sender::subscribe);
        let mut updates = inner
            .updates
            .as_ref()
            .filter(|_| !uris.is_empty())
            .map(broadcast::Sender::subscribe);
        let catalogue = inner.catalogue.clone();
        let context = self.lasting_context(session, Era::Modern, meta);
        let subscription_id: Value = serde_json::from_str(id.get()).unwrap_or(Value::Null);
        let owned_id = id.to_owned();
        let ended = session.ended.clone();
        let future: BoxFuture<'static, Vec<u8>> = Box::pin(async move {
            let mut held = Vec::new();
            let uris = match catalogue {
                None => uris,
                Some(catalogue) => {
                    let mut accepted = Vec::with_capacity(uris.len());
                    for uri in uris {
                        match Held::take(catalogue.clone(), uri.clone(), context.clone()).await {
                            Ok(guard) => {
                                held.push(guard);
                                accepted.push(uri);
                            }
                            Err(error) => {
                                tracing::debug!(%uri, %error, "subscriptions/listen: not subscribed");
                            }
                        }
                    }
                    accepted
                }
            };
            if uris.is_empty() {
                updates = None;
            }
            let mut filter: Map<String, Value> = lists
                .iter()
                .map(|kind| (kind.filter_key().to_owned(), Value::Bool(true)))
                .collect();
            if !uris.is_empty() {
                filter.insert(RESOURCE_SUBSCRIPTIONS_KEY.to_owned(), json!(uris));
            }
            let tag = json!({SUBSCRIPTION_ID_META_KEY: subscription_id});
            let mut note = Vec::with_capacity(128);
            wire::write_notification(
                &mut note,
                "notifications/subscriptions/acknowledged",
                &json!({"notifications": filter, "_meta": tag}),
            );
            let mut open = outbound.send(note).await.is_ok();
            while open {
                let mut notes = Vec::with_capacity(128);
                tokio::select! {
                    changed = next_change(&mut changes), if changes.is_some() => {
                        for kind in changed.into_iter().filter(|kind| lists.contains(kind)) {
                            wire::write_notification(&mut notes, kind.notification(), &json!({"_meta": tag}));
                        }
                    }
                    update = next_update(&mut updates), if updates.is_some() => {
                        let mut write = |uri: &str| wire::write_notification(
                            &mut notes,
                            "notifications/resources/updated",
                            &json!({"uri": uri, "_meta": tag}),
                        );
                        match update {
                            Update::One(uri) if uris.iter().any(|u| **u == *uri) => write(&uri),
                            Update::Missed => uris.iter().for_each(|uri| write(uri)),
                            Update::One(_) | Update::Closed => {}
                        }
                    }
                    () = ended.cancelled() => break,
                }
                if !notes.is_empty() {
                    open = outbound.send(notes).await.is_ok();
                }
            }
            // The stream is gone: the catalogue hears that these subscribers left.
            drop(held);
            let mut out = Vec::new();
            respond(&mut out, &owned_id, Era::Modern, &json!({}));
            out
        });
        Ok(run_inline(
            future,
            out,
            CancellationToken::new(),
            session,
            id,
        ))
    }
}
