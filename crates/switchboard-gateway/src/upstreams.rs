//! The gateway's catalogue: every upstream's tools, resources, templates and prompts under
//! qualified names, with each call forwarded through the host.
//!
//! - Tools and prompts are named `{upstream}__{name}` by the host's [`switchboard_host::naming`]
//!   (hashed when a name would be ambiguous or too long), and only that exact name is accepted.
//! - Resource URIs become `gateway://{upstream}/{original}` ([`crate::uri`]).
//! - Lists come from the host's caches, which upstream `list_changed` invalidates; the gateway
//!   then tells its own clients (see [`crate::Gateway`]).
//! - Each upstream has a bound on calls in flight; above it a call is refused at once as
//!   retryable (`-32000`) rather than queued.
//! - With `[security]` ([`crate::security`]): lists show only what the caller may use; a call
//!   is checked against the client's allow/deny lists and the tool's scope (`-32001`, also
//!   for a hidden tool called by its exact name), then its rate limit (`-32000` retryable);
//!   every `tools/call`, whatever its outcome, writes one audit record before it is answered.

use std::{collections::HashMap, sync::Arc, time::Instant};

use switchboard_policy::{audit::Outcome, ratelimit::RateClass, scope::ToolFacts};

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use switchboard_client::{
    CallOptions,
    model::{CompletionTarget, Progress, Prompt},
};
use switchboard_config::ServerName;
use switchboard_host::{
    BreakerState, HealthStatus, Host, HostError, HostTool, ServerHealth, naming::qualify,
};
use switchboard_server::{
    Catalogue, CatalogueResult, CompletionRef, CompletionRequest, HandlerError, ListRequest,
    RequestContext, TaskStart,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::{
    config::{GatewayConfig, UpstreamLimits},
    error::{Repeatable, host_error_class, to_handler_error},
    metrics as m,
    relay::{self, ParkedCalls},
    security::{Access, AuditOnDrop, Security, refused},
    uri,
};

/// Progress notifications of one forwarded call waiting to be passed on.
const PROGRESS_QUEUE: usize = 16;

/// Keys of an upstream's result that describe the upstream's answer, not the content: the
/// gateway's own dispatcher adds its own.
const ENVELOPE_KEYS: [&str; 3] = ["resultType", "ttlMs", "cacheScope"];

struct Upstream {
    limits: UpstreamLimits,
    permits: Arc<Semaphore>,
}

struct Inner {
    host: Host,
    upstreams: HashMap<ServerName, Upstream>,
    /// Served under its own names and URIs (`prefix = false`).
    unprefixed: Option<ServerName>,
    security: Option<Arc<Security>>,
    /// Calls waiting for a 2026-07-28 client's answers ([`relay`]).
    parked: ParkedCalls,
    /// How many of the gateway's sessions subscribed to each upstream resource: the gateway
    /// subscribes upstream for the first and unsubscribes after the last.
    subscriptions: std::sync::Mutex<HashMap<(ServerName, String), usize>>,
    /// The metric handles of each upstream tool called.
    tool_metrics: m::ToolMetricsCache,
}

/// The upstreams behind one catalogue. Cheap to clone.
#[derive(Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("host", &self.inner.host)
            .finish_non_exhaustive()
    }
}

/// An upstream's health, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHealth {
    pub name: String,
    /// Whether calls to it can be expected to work.
    pub healthy: bool,
    /// `unknown` (not checked yet), `healthy`, `unhealthy` or `down`.
    pub status: String,
    /// Its circuit breaker: `closed`, `open`, `half-open` or `disabled`.
    pub breaker: String,
    /// Why it is not healthy.
    pub reason: Option<String>,
}

impl Upstreams {
    /// The catalogue of `host`'s servers. `replica` is this gateway process's id, which
    /// begins the ids of the calls it parks.
    pub fn new(
        host: Host,
        config: &GatewayConfig,
        security: Option<Arc<Security>>,
        replica: String,
    ) -> Self {
        let upstreams = host
            .servers()
            .map(|(name, _)| {
                let limits = config.upstream_limits(name);
                (
                    name.clone(),
                    Upstream {
                        limits,
                        permits: Arc::new(Semaphore::new(limits.max_in_flight)),
                    },
                )
            })
            .collect();
        Upstreams {
            inner: Arc::new(Inner {
                host,
                upstreams,
                unprefixed: config.unprefixed.clone(),
                security,
                parked: ParkedCalls::new(replica),
                subscriptions: std::sync::Mutex::default(),
                tool_metrics: m::ToolMetricsCache::default(),
            }),
        }
    }

    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// The URI the gateway's clients know an upstream's resource by.
    pub fn public_uri(&self, server: &ServerName, uri: &str) -> String {
        self.inner.public_uri(server, uri)
    }

    /// Each upstream as last checked (no I/O), with the health gauges updated.
    pub fn health(&self) -> Vec<UpstreamHealth> {
        report(self.inner.host.health())
    }

    /// Check each upstream now (bounded by the host's health-check timeouts), with the
    /// health gauges updated.
    pub async fn check_health(&self) -> Vec<UpstreamHealth> {
        report(self.inner.host.check_health().await)
    }
    /// The scope decision for one `tools/call`, made before dispatch so that an HTTP front
    /// can answer a refusal with its status (403) even when the answer would have been an
    /// event stream. A refusal is audited here (the call then never reaches the catalogue);
    /// `Ok(None)`: allowed so far (the catalogue checks again, spends the rate limit and
    /// audits the call), or no `[security]`, or a tool the catalogue will report unknown.
    pub async fn refuse_call_early(
        &self,
        caller: Option<&switchboard_server::Caller>,
        name: &str,
        arguments: &Value,
    ) -> Result<Option<switchboard_policy::scope::Refusal>, HandlerError> {
        let Some(security) = &self.inner.security else {
            return Ok(None);
        };
        let Some(tool) = self.inner.find_tool(name).await else {
            return Ok(None);
        };
        let started = Instant::now();
        let time = chrono::Utc::now();
        let access = Access::of_caller(caller);
        let Err(refusal) = security.tool_allowed(&access, &tool_facts(&tool)) else {
            return Ok(None);
        };
        metrics::counter!(m::ERRORS, "server" => tool.server.to_string(), "class" => "insufficient_scope").increment(1);
        security
            .record_call(
                &access,
                time,
                started,
                tool.server.to_string(),
                tool.tool.name.clone(),
                arguments.clone(),
                Outcome::Refused,
                Some("insufficient_scope".to_owned()),
            )
            .await?;
        Ok(Some(refusal))
    }

    /// Take ownership of the host again, to close it, once no catalogue clone is left.
    pub fn into_host(self) -> Option<Host> {
        Arc::into_inner(self.inner).map(|inner| inner.host)
    }
}

impl Inner {
    /// A slot for one call to `server`, or a retryable refusal when it is busy.
    fn permit(&self, server: &ServerName) -> Result<OwnedSemaphorePermit, HandlerError> {
        let Some(upstream) = self.upstreams.get(server) else {
            return Err(HandlerError::Internal(format!(
                "no limits for upstream {server}"
            )));
        };
        upstream.permits.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!(m::ERRORS, "server" => server.to_string(), "class" => "overloaded")
                .increment(1);
            HandlerError::Transient {
                message: format!(
                    "upstream {server} already has {} calls in flight; try again shortly",
                    upstream.limits.max_in_flight
                ),
                retry_after_ms: Some(200),
            }
        })
    }

    fn limits(&self, server: &ServerName) -> Option<UpstreamLimits> {
        self.upstreams.get(server).map(|u| u.limits)
    }

    fn is_unprefixed(&self, server: &ServerName) -> bool {
        self.unprefixed.as_ref() == Some(server)
    }

    /// The name clients see for `name` on `server`.
    fn public_name(&self, server: &ServerName, name: &str) -> String {
        if self.is_unprefixed(server) {
            name.to_owned()
        } else {
            qualify(server, name)
        }
    }

    /// The URI clients see for `uri` on `server`.
    fn public_uri(&self, server: &ServerName, uri: &str) -> String {
        if self.is_unprefixed(server) {
            uri.to_owned()
        } else {
            uri::to_gateway(server.as_str(), uri)
        }
    }

    /// The tool a client means by `name`: a qualified name of a prefixed upstream, or a name
    /// of the unprefixed one.
    async fn find_tool(&self, name: &str) -> Option<HostTool> {
        if let Ok(Some(tool)) = self.host.qualified_tool(name).await
            && !self.is_unprefixed(&tool.server)
        {
            return Some(tool);
        }
        let server = self.unprefixed.as_ref()?;
        self.host.server_tool(server.as_str(), name).await.ok()?
    }

    /// The upstream prompt a client means by its public `name`: a qualified name of a prefixed
    /// upstream, or a name of the unprefixed one. Only the upstream the name points to is
    /// listed when it can be told from the name, and only the prompt found is copied.
    async fn find_prompt(&self, name: &str) -> Result<(ServerName, Prompt), HandlerError> {
        let listing = |error| to_handler_error(error, Repeatable::Yes);
        if let Some((server, prompt)) = self.host.qualified_prompt(name).await.map_err(listing)?
            && !self.is_unprefixed(&server)
        {
            return Ok((server, prompt));
        }
        if let Some(server) = &self.unprefixed
            && let Some(found) = self
                .host
                .server_prompt(server.as_str(), name)
                .await
                .map_err(listing)?
        {
            return Ok(found);
        }
        Err(not_found("prompt", name))
    }

    fn subscription_counts(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(ServerName, String), usize>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One session fewer on `key`; whether it was the last (so the upstream is unsubscribed).
    fn release_subscription(&self, key: &(ServerName, String)) -> bool {
        let mut counts = self.subscription_counts();
        match counts.get_mut(key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                counts.remove(key);
                true
            }
            None => false,
        }
    }

    /// The upstream and its own URI for a resource (or template) URI a client sent, if the
    /// client may read it: for reads, subscriptions and completions alike.
    fn readable_resource(
        &self,
        uri: &str,
        cx: &RequestContext,
    ) -> Result<(ServerName, String), HandlerError> {
        let Some((server, original)) = self.route_uri(uri) else {
            return Err(HandlerError::NotFound {
                message: format!(
                    "unknown resource: {uri} (resources here are {}UPSTREAM/URI)",
                    uri::SCHEME_PREFIX
                ),
                data: serde_json::json!({ "uri": uri }),
            });
        };
        if let Some(security) = &self.security {
            security
                .resource_allowed(&Access::of(cx), server.as_str(), original)
                .map_err(|refusal| refused(&refusal))?;
        }
        Ok((server, original.to_owned()))
    }

    /// The upstream and its own URI for a URI a client sent.
    fn route_uri<'u>(&self, uri: &'u str) -> Option<(ServerName, &'u str)> {
        if let Some((upstream, original)) = uri::from_gateway(uri)
            && let Some(server) = self
                .upstreams
                .keys()
                .find(|name| name.as_str() == upstream && !self.is_unprefixed(name))
        {
            return Some((server.clone(), original));
        }
        self.unprefixed.clone().map(|server| (server, uri))
    }
}

fn not_found(what: &str, name: &str) -> HandlerError {
    HandlerError::NotFound {
        message: format!("unknown {what}: {name}"),
        data: serde_json::json!({ "name": name }),
    }
}

/// Count a failed upstream request, and turn it into the wire error.
fn failed(server: &ServerName, error: HostError, repeatable: Repeatable) -> HandlerError {
    metrics::counter!(m::ERRORS, "server" => server.to_string(), "class" => host_error_class(&error))
        .increment(1);
    to_handler_error(error, repeatable)
}

/// An upstream's result as the gateway's result: its own envelope keys removed.
fn result_object(raw: Value) -> Map<String, Value> {
    let mut object = match raw {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    for key in ENVELOPE_KEYS {
        object.remove(key);
    }
    object
}

/// What the scope policy reads of an upstream tool: the fields [`ToolFacts::from_wire`] reads of
/// its wire form, taken from the listed tool without serializing it (and its schemas) again on
/// every call.
fn tool_facts(tool: &HostTool) -> ToolFacts {
    ToolFacts {
        server: tool.server.to_string(),
        name: tool.tool.name.clone(),
        declared_scope: tool
            .tool
            .meta
            .as_ref()
            .and_then(|meta| meta.get(switchboard_policy::scope::SCOPE_META_KEY))
            .and_then(Value::as_str)
            .map(str::to_owned),
        read_only: tool.tool.is_read_only(),
    }
}

fn request_id(cx: &RequestContext) -> &str {
    cx.caller()
        .and_then(|c| c.request_id.as_deref())
        .unwrap_or("-")
}

fn client_id(cx: &RequestContext) -> &str {
    cx.caller()
        .and_then(|c| c.client_id.as_deref())
        .unwrap_or("anonymous")
}

impl Catalogue for Upstreams {
    fn list(
        &self,
        list: ListRequest,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<Value>, HandlerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let host = &inner.host;
            let access = inner.security.as_ref().map(|_| Access::of(&cx));
            // What this caller may see: everything without [security].
            let security = inner.security.as_deref();
            let visible_tool = |facts: &ToolFacts| match (security, &access) {
                (Some(security), Some(access)) => security.tool_allowed(access, facts).is_ok(),
                _ => true,
            };
            let visible_resource = |server: &ServerName, uri: &str| match (security, &access) {
                (Some(security), Some(access)) => security
                    .resource_allowed(access, server.as_str(), uri)
                    .is_ok(),
                _ => true,
            };
            let visible_prompt = |server: &ServerName, name: &str| match (security, &access) {
                (Some(security), Some(access)) => security
                    .prompt_allowed(access, server.as_str(), name)
                    .is_ok(),
                _ => true,
            };
            let items: Vec<Value> = match list {
                ListRequest::Tools => {
                    let (tools, errors) = host
                        .tools(None)
                        .await
                        .map_err(|e| to_handler_error(e, Repeatable::Yes))?;
                    log_list_errors(&errors);
                    tools
                        .into_iter()
                        .filter_map(|tool| {
                            let mut value = serde_json::to_value(&tool.tool).ok()?;
                            if !visible_tool(&ToolFacts::from_wire(tool.server.as_str(), &value)) {
                                return None;
                            }
                            value["name"] = Value::String(if inner.is_unprefixed(&tool.server) {
                                tool.tool.name.clone()
                            } else {
                                tool.qualified
                            });
                            Some(value)
                        })
                        .collect()
                }
                ListRequest::Resources => {
                    let (resources, errors) = host
                        .resources(None)
                        .await
                        .map_err(|e| to_handler_error(e, Repeatable::Yes))?;
                    log_list_errors(&errors);
                    resources
                        .into_iter()
                        .filter(|(server, resource)| visible_resource(server, &resource.uri))
                        .filter_map(|(server, resource)| {
                            let mut value = serde_json::to_value(&resource).ok()?;
                            value["uri"] = Value::String(inner.public_uri(&server, &resource.uri));
                            Some(value)
                        })
                        .collect()
                }
                ListRequest::ResourceTemplates => {
                    let (templates, errors) = host
                        .resource_templates(None)
                        .await
                        .map_err(|e| to_handler_error(e, Repeatable::Yes))?;
                    log_list_errors(&errors);
                    templates
                        .into_iter()
                        .filter(|(server, template)| {
                            visible_resource(server, &template.uri_template)
                        })
                        .filter_map(|(server, template)| {
                            let mut value = serde_json::to_value(&template).ok()?;
                            value["uriTemplate"] =
                                Value::String(inner.public_uri(&server, &template.uri_template));
                            Some(value)
                        })
                        .collect()
                }
                ListRequest::Prompts => {
                    let (prompts, errors) = host
                        .prompts(None)
                        .await
                        .map_err(|e| to_handler_error(e, Repeatable::Yes))?;
                    log_list_errors(&errors);
                    prompts
                        .into_iter()
                        .filter(|(server, prompt)| visible_prompt(server, &prompt.name))
                        .filter_map(|(server, prompt)| {
                            let mut value = serde_json::to_value(&prompt).ok()?;
                            value["name"] = Value::String(inner.public_name(&server, &prompt.name));
                            Some(value)
                        })
                        .collect()
                }
            };
            Ok(items)
        })
    }

    fn call_tool(
        &self,
        name: String,
        arguments: Map<String, Value>,
        cx: RequestContext,
    ) -> CatalogueResult {
        let inner = self.inner.clone();
        Box::pin(async move {
            let Some(security) = inner.security.clone() else {
                return forward_call(&inner, name, arguments, &cx, None).await.0;
            };
            let started = Instant::now();
            let time = chrono::Utc::now();
            let access = Access::of(&cx);
            let pending = AuditOnDrop::new(
                security.clone(),
                access.clone(),
                time,
                started,
                name.clone(),
                Value::Object(arguments.clone()),
            );
            let (result, audit) =
                forward_call(&inner, name, arguments, &cx, Some((&security, &access))).await;
            let audited_arguments = pending.disarm();
            // The record is stored before the answer leaves (the audit module's durability).
            security
                .record_call(
                    &access,
                    time,
                    started,
                    audit.server,
                    audit.tool,
                    audited_arguments,
                    audit.outcome,
                    audit.error_class,
                )
                .await?;
            result
        })
    }

    /// The gateway runs tasks of its own for a 2026-07-28 client that declared the extension,
    /// for the upstream tools listed with `execution.taskSupport`: the call goes upstream as
    /// the client's would (its input rounds passed on), and when the upstream answers with a
    /// task, the gateway answers its client with one of its own and follows the upstream's to
    /// its end. So a tool that gathers input before it becomes a task looks the same through
    /// the gateway as directly, and one the upstream answers at once is answered at once.
    fn runs_tasks(&self) -> bool {
        true
    }

    fn task_start(
        &self,
        tool: String,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Option<TaskStart>> {
        // The call starts as a plain one, so a call this caller may not make is refused as
        // one and never becomes a task that fails.
        let inner = self.inner.clone();
        Box::pin(async move {
            inner.find_tool(&tool).await?.tool.task_support()?;
            Some(TaskStart::InHandler)
        })
    }

    fn read_resource(&self, uri: String, cx: RequestContext) -> CatalogueResult {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (server, original) = inner.readable_resource(&uri, &cx)?;
            if let Some(security) = &inner.security {
                security
                    .spend(
                        &Access::of(&cx),
                        RateClass::Read,
                        server.as_str(),
                        &original,
                    )
                    .await
                    .map_err(|(error, _)| error)?;
            }
            let target = server.clone();
            let original_uri = original.clone();
            let raw = fly(
                &inner,
                &server,
                "resources/read",
                None,
                &cx,
                move |inner, options| {
                    Box::pin(async move {
                        inner
                            .host
                            .read_resource_with(&original_uri, Some(target.as_str()), Some(options))
                            .await
                            .map(|(_, read)| read.raw)
                    })
                },
            )
            .await
            .map_err(|(error, _)| error)?
            .map_err(|error| failed(&server, error, Repeatable::Yes))?;
            let mut result = result_object(raw);
            if let Some(Value::Array(contents)) = result.get_mut("contents") {
                for item in contents {
                    if let Some(Value::String(item_uri)) = item.get_mut("uri") {
                        *item_uri = inner.public_uri(&server, item_uri);
                    }
                }
            }
            tracing::info!(
                request_id = request_id(&cx),
                client = client_id(&cx),
                server = %server,
                uri = %original,
                "resources/read"
            );
            Ok(result)
        })
    }

    fn get_prompt(
        &self,
        name: String,
        arguments: Map<String, Value>,
        cx: RequestContext,
    ) -> CatalogueResult {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (server, prompt) = inner.find_prompt(&name).await?;
            if let Some(security) = &inner.security {
                let access = Access::of(&cx);
                security
                    .prompt_allowed(&access, server.as_str(), &prompt.name)
                    .map_err(|refusal| refused(&refusal))?;
                security
                    .spend(&access, RateClass::Read, server.as_str(), &prompt.name)
                    .await
                    .map_err(|(error, _)| error)?;
            }
            let prompt_name = prompt.name.clone();
            let target = server.clone();
            let raw = fly(
                &inner,
                &server,
                "prompts/get",
                None,
                &cx,
                move |inner, options| {
                    Box::pin(async move {
                        inner
                            .host
                            .get_prompt_with(&target, &prompt_name, arguments, Some(options))
                            .await
                            .map(|result| result.raw)
                    })
                },
            )
            .await
            .map_err(|(error, _)| error)?
            .map_err(|error| failed(&server, error, Repeatable::Yes))?;
            tracing::info!(
                request_id = request_id(&cx),
                client = client_id(&cx),
                server = %server,
                prompt = %prompt.name,
                "prompts/get"
            );
            Ok(result_object(raw))
        })
    }

    /// A subscription is passed on to the resource's upstream (once, however many sessions
    /// subscribe), after the same access check as reading it.
    fn subscribe(
        &self,
        uri: String,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (server, original) = inner.readable_resource(&uri, &cx)?;
            let key = (server.clone(), original.clone());
            let first = {
                let mut counts = inner.subscription_counts();
                let count = counts.entry(key.clone()).or_insert(0);
                *count += 1;
                *count == 1
            };
            if first && let Err(error) = inner.host.subscribe_resource(&server, &original).await {
                inner.release_subscription(&key);
                return Err(failed(&server, error, Repeatable::Yes));
            }
            tracing::info!(request_id = request_id(&cx), client = client_id(&cx), server = %server, uri = %original, upstream = first, "resources/subscribe");
            Ok(())
        })
    }

    fn unsubscribe(
        &self,
        uri: String,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<(), HandlerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (server, original) = inner.readable_resource(&uri, &cx)?;
            let key = (server.clone(), original.clone());
            if inner.release_subscription(&key) {
                inner
                    .host
                    .unsubscribe_resource(&server, &original)
                    .await
                    .map_err(|error| failed(&server, error, Repeatable::Yes))?;
            }
            Ok(())
        })
    }

    /// Completions come from the upstream that owns the prompt or resource template, under
    /// the same access rules and rate limit as reading it.
    fn complete(
        &self,
        request: CompletionRequest,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<String>, HandlerError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let access = inner.security.as_ref().map(|_| Access::of(&cx));
            let (server, target, item) = match request.reference {
                CompletionRef::Prompt { name } => {
                    let (server, prompt) = inner.find_prompt(&name).await?;
                    if let (Some(security), Some(access)) = (&inner.security, &access) {
                        security
                            .prompt_allowed(access, server.as_str(), &prompt.name)
                            .map_err(|refusal| refused(&refusal))?;
                    }
                    let item = prompt.name.clone();
                    (server, CompletionTarget::Prompt(prompt.name), item)
                }
                CompletionRef::Resource { uri } => {
                    let (server, original) = inner.readable_resource(&uri, &cx)?;
                    (
                        server,
                        CompletionTarget::Resource(original.clone()),
                        original,
                    )
                }
            };
            if let (Some(security), Some(access)) = (&inner.security, &access) {
                security
                    .spend(access, RateClass::Read, server.as_str(), &item)
                    .await
                    .map_err(|(error, _)| error)?;
            }
            let completion = inner
                .host
                .complete(
                    &server,
                    &target,
                    &request.argument,
                    &request.value,
                    &request.context,
                )
                .await
                .map_err(|error| failed(&server, error, Repeatable::Yes))?;
            Ok(completion.values)
        })
    }
}

/// What the audit record of one `tools/call` says about it.
struct CallAudit {
    server: String,
    tool: String,
    outcome: Outcome,
    error_class: Option<String>,
}

impl CallAudit {
    fn refused(server: &str, tool: &str, class: &str) -> Self {
        CallAudit {
            server: server.to_owned(),
            tool: tool.to_owned(),
            outcome: Outcome::Refused,
            error_class: Some(class.to_owned()),
        }
    }
}

/// Start a forwarded request (or, on a 2026-07-28 client's retry with answers, resume the one
/// it parked) and run it to its end, passing on progress, logs and requests for input
/// ([`relay`]). `start` sends it through the host with the call's options. The error comes
/// with its class for metrics and audit. `requests` is the request's
/// `gateway_upstream_requests_total` when the caller has its handle.
async fn fly(
    inner: &Arc<Inner>,
    server: &ServerName,
    method: &'static str,
    requests: Option<&metrics::Counter>,
    cx: &RequestContext,
    start: impl FnOnce(Arc<Inner>, CallOptions) -> relay::UpstreamCall,
) -> Result<Result<Value, HostError>, (HandlerError, &'static str)> {
    // Only the client (and user) that made a call may resume it.
    let owner = cx
        .caller()
        .map(|caller| format!("{:?}/{:?}", caller.client_id, caller.subject));
    let flight = match relay::resumed_id(cx) {
        Some(id) => inner
            .parked
            .resume(&id, owner.as_deref())
            .map_err(|error| (error, "expired_request_state"))?,
        None => {
            match requests {
                Some(requests) => requests.increment(1),
                None => metrics::counter!(m::UPSTREAM_REQUESTS, "server" => server.to_string(), "method" => method).increment(1),
            }
            let permit = inner
                .permit(server)
                .map_err(|error| (error, "overloaded"))?;
            let (progress, progress_rx) = mpsc::channel::<Progress>(PROGRESS_QUEUE);
            let (call_relay, events) = relay::ChannelRelay::new();
            let defaults = CallOptions::default();
            let options = CallOptions {
                timeout: inner
                    .limits(server)
                    .map_or(defaults.timeout, |limits| limits.timeout),
                progress: Some(progress),
                relay: Some(Arc::new(call_relay)),
                log_level: cx.log_level().map(|level| level.name().to_owned()),
                client_capabilities: Some(relayed_capabilities(cx)),
                ..defaults
            };
            relay::Flight::new(
                start(inner.clone(), options),
                events,
                progress_rx,
                permit,
                owner,
            )
        }
    };
    flight.run(cx, &inner.parked).await.map_err(|error| {
        let class = match &error {
            HandlerError::InputRequired(_) => "input_required",
            HandlerError::Transient { .. } => "overloaded",
            _ => "cancelled",
        };
        (error, class)
    })
}

/// What the gateway's client can answer, declared to the upstream for its request: the client
/// capabilities the gateway relays (elicitation, sampling, roots), as its client declared them,
/// and the tasks extension when its client declared it (the gateway's client follows an
/// upstream's task to its end, so a tool that runs only as a task works for such a client,
/// and one that does not take tasks gets the upstream's refusal, as it would directly).
fn relayed_capabilities(cx: &RequestContext) -> Value {
    let declared = cx.client_capabilities().and_then(Value::as_object);
    let mut relayed: Map<String, Value> = ["elicitation", "sampling", "roots"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), declared?.get(key)?.clone())))
        .filter(|(_, value)| !value.is_null())
        .collect();
    if let Some(tasks) = declared
        .and_then(|d| d.get("extensions"))
        .and_then(|e| e.get(switchboard_server::TASKS_EXTENSION))
        .filter(|v| !v.is_null())
    {
        relayed.insert(
            "extensions".to_owned(),
            serde_json::json!({ switchboard_server::TASKS_EXTENSION: tasks }),
        );
    }
    Value::Object(relayed)
}

/// Check (with `[security]`) and forward one `tools/call`; the result with what its audit
/// record says.
async fn forward_call(
    inner: &Arc<Inner>,
    name: String,
    arguments: Map<String, Value>,
    cx: &RequestContext,
    security: Option<(&Security, &Access)>,
) -> (Result<Map<String, Value>, HandlerError>, CallAudit) {
    let started = Instant::now();
    // Only the exact qualified name is accepted: no bare or `server/tool` forms, so
    // what a client may call is exactly what it was listed.
    let Some(tool) = inner.find_tool(&name).await else {
        return (
            Err(not_found("tool", &name)),
            CallAudit::refused("-", &name, "not_found"),
        );
    };
    let server = tool.server.clone();
    let tool_name = tool.tool.name.clone();
    // Over HTTP, the arguments a 2026-07-28 client also sent as `Mcp-Param-*` headers must
    // match them (SEP-2243): whatever routed on the headers saw what the upstream will.
    if let Some(sent) = cx.caller().and_then(|c| c.param_headers.as_deref())
        && cx.era() == switchboard_server::Era::Modern
        && let Some(schema) = tool.tool.input_schema.as_object()
        && let Err(error) = switchboard_server::check_param_headers_sent(sent, schema, &arguments)
    {
        return (
            Err(HandlerError::Rpc {
                code: error.code,
                message: error.message,
                data: error.data,
            }),
            CallAudit::refused(server.as_str(), &tool_name, "header_mismatch"),
        );
    }
    let read_only = tool.tool.is_read_only();
    if let Some((security, access)) = security {
        // Checked for every call, also of tools the caller was not shown: a hidden tool
        // called by its exact name is refused here.
        if let Err(refusal) = security.tool_allowed(access, &tool_facts(&tool)) {
            metrics::counter!(m::ERRORS, "server" => server.to_string(), "class" => "insufficient_scope").increment(1);
            tracing::info!(client = access.client_id(), server = %server, tool = %tool_name, %refusal, "refused a call");
            return (
                Err(refused(&refusal)),
                CallAudit::refused(server.as_str(), &tool_name, "insufficient_scope"),
            );
        }
        if let Err((error, class)) = security
            .spend(
                access,
                RateClass::for_tool(read_only),
                server.as_str(),
                &tool_name,
            )
            .await
        {
            metrics::counter!(m::ERRORS, "server" => server.to_string(), "class" => class)
                .increment(1);
            let mut audit = CallAudit::refused(server.as_str(), &tool_name, class);
            if class != "rate_limited" {
                audit.outcome = Outcome::Failed;
            }
            return (Err(error), audit);
        }
    }
    let repeatable = match &tool.tool.annotations {
        Some(a) if a.read_only_hint == Some(true) || a.idempotent_hint == Some(true) => {
            Repeatable::Yes
        }
        _ => Repeatable::No,
    };
    let metrics = inner.tool_metrics.get(server.as_str(), &tool_name);
    let arguments = Value::Object(arguments);
    let flown = fly(
        inner,
        &server,
        "tools/call",
        Some(&metrics.requests),
        cx,
        move |inner, options| {
            Box::pin(async move {
                inner
                    .host
                    .call_tool(&tool, arguments, options)
                    .await
                    .map(|result| result.raw)
            })
        },
    )
    .await;
    let outcome = match flown {
        Ok(outcome) => outcome,
        Err((error, class)) => {
            let outcome = match class {
                "input_required" => Outcome::InputRequired,
                "overloaded" | "expired_request_state" => Outcome::Refused,
                _ => Outcome::Failed,
            };
            return (
                Err(error),
                CallAudit {
                    server: server.to_string(),
                    tool: tool_name,
                    outcome,
                    error_class: (outcome != Outcome::InputRequired).then(|| class.to_owned()),
                },
            );
        }
    };
    let elapsed = started.elapsed();
    metrics.duration.record(elapsed.as_secs_f64());
    let (call_outcome, result, audit_outcome, error_class) = match outcome {
        Ok(raw) => {
            let (outcome, audit) = if raw.get("isError") == Some(&Value::Bool(true)) {
                (m::CallOutcome::ToolError, Outcome::ToolError)
            } else {
                (m::CallOutcome::Ok, Outcome::Ok)
            };
            (outcome, Ok(result_object(raw)), audit, None)
        }
        Err(error) => {
            let class = host_error_class(&error);
            (
                m::CallOutcome::Error,
                Err(failed(&server, error, repeatable)),
                Outcome::Failed,
                Some(class.to_owned()),
            )
        }
    };
    metrics.calls(call_outcome).increment(1);
    tracing::info!(
        request_id = request_id(cx),
        client = client_id(cx),
        server = %server,
        tool = %tool_name,
        outcome = call_outcome.label(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "tools/call"
    );
    (
        result,
        CallAudit {
            server: server.to_string(),
            tool: tool_name,
            outcome: audit_outcome,
            error_class,
        },
    )
}

fn report(health: Vec<ServerHealth>) -> Vec<UpstreamHealth> {
    health
        .into_iter()
        .map(|health| {
            let healthy = health.is_available();
            let server = health.server.to_string();
            metrics::gauge!(m::UPSTREAM_UP, "server" => server.clone()).set(if healthy {
                1.0
            } else {
                0.0
            });
            let breaker = match health.breaker {
                BreakerState::Closed => "closed",
                BreakerState::Open { .. } => "open",
                BreakerState::HalfOpen => "half-open",
                BreakerState::Disabled => "disabled",
            };
            for state in ["closed", "open", "half-open", "disabled"] {
                metrics::gauge!(m::UPSTREAM_BREAKER, "server" => server.clone(), "state" => state)
                    .set(if state == breaker { 1.0 } else { 0.0 });
            }
            let reason = match &health.status {
                HealthStatus::Unhealthy { reason } | HealthStatus::Down { reason } => {
                    Some(reason.clone())
                }
                HealthStatus::Unknown | HealthStatus::Healthy => {
                    (!healthy).then(|| format!("its circuit breaker is {breaker}"))
                }
            };
            UpstreamHealth {
                name: server,
                healthy,
                status: health.status.to_string(),
                breaker: breaker.to_owned(),
                reason,
            }
        })
        .collect()
}

fn log_list_errors(errors: &[HostError]) {
    for error in errors {
        tracing::warn!(%error, "an upstream's list failed; its items are left out");
    }
}
