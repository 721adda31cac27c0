//! [`Host`]: every configured server, connected in parallel, behind one API.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::join_all;
use indexmap::IndexMap;
use serde_json::Value;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, DEFAULT_REQUEST_TIMEOUT, EraPreference,
    ErrorClass,
    model::{
        Capabilities, Prompt, PromptResult, ReadResult, Resource, ResourceTemplate, ServerEvent,
        Tool, ToolResult,
    },
};
use switchboard_config::{Config, ServerEntry, ServerName};
use tokio::{sync::RwLock, task::JoinSet};

use crate::{
    error::{HostError, closest},
    naming::{qualify, split_readable},
    validate::ArgumentValidator,
};

/// Called for every server notification (log messages, list changes), e.g. to print logs.
pub type EventObserver = Arc<dyn Fn(&ServerName, &ServerEvent) + Send + Sync>;

/// How the host connects and talks to its servers.
#[derive(Clone)]
pub struct HostOptions {
    pub connect: ConnectOptions,
    /// Timeout for list, read and prompt requests.
    pub request_timeout: Duration,
    pub on_event: Option<EventObserver>,
    /// The era each server spoke last time. With `connect.era` on `Auto`, a hinted server is
    /// connected in that era directly (no `server/discover` probe), and again in `Auto` if the
    /// hint is wrong.
    pub era_hints: HashMap<ServerName, EraPreference>,
}

impl std::fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostOptions")
            .field("connect", &self.connect)
            .field("request_timeout", &self.request_timeout)
            .field("era_hints", &self.era_hints)
            .finish_non_exhaustive()
    }
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            connect: ConnectOptions::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            on_event: None,
            era_hints: HashMap::new(),
        }
    }
}

/// A tool with the server it belongs to and its qualified name.
#[derive(Debug, Clone)]
pub struct HostTool {
    pub server: ServerName,
    /// Unique, stable, and valid as an Anthropic/OpenAI tool name: see [`crate::naming`].
    pub qualified: String,
    pub tool: Tool,
}

impl HostTool {
    /// `server/tool`, the form users type.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.server, self.tool.name)
    }
}

/// The state of one configured server.
#[derive(Debug)]
pub enum ServerState {
    Connected(Arc<Connection>),
    Failed(ClientError),
}

#[derive(Default)]
struct ListCache {
    /// Bumped by every list-change notification. A listing that was in flight across a bump
    /// may be stale, so it is returned but not kept.
    generation: u64,
    tools: Option<Arc<Vec<Tool>>>,
    resources: Option<Arc<Vec<Resource>>>,
    templates: Option<Arc<Vec<ResourceTemplate>>>,
    prompts: Option<Arc<Vec<Prompt>>>,
    validators: HashMap<String, Arc<ArgumentValidator>>,
}

/// A server's list cache, shared with the task that applies its notifications.
type SharedCache = Arc<RwLock<ListCache>>;

/// What the generic list cache needs to know about one kind of list.
trait Listing: Clone + Send + Sync + 'static {
    fn supported(capabilities: &Capabilities) -> bool;
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>>;
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Self>, ClientError>> + Send;
}

impl Listing for Tool {
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.tools
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.tools
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Self>, ClientError>> + Send {
        connection.list_tools(timeout)
    }
}

impl Listing for Resource {
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.resources
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.resources
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Self>, ClientError>> + Send {
        connection.list_resources(timeout)
    }
}

impl Listing for ResourceTemplate {
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.resources
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.templates
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Self>, ClientError>> + Send {
        connection.list_resource_templates(timeout)
    }
}

impl Listing for Prompt {
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.prompts
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.prompts
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Self>, ClientError>> + Send {
        connection.list_prompts(timeout)
    }
}

/// Items of one kind from several servers, with the servers whose listing failed.
pub type Listed<T> = (Vec<(ServerName, T)>, Vec<HostError>);

struct Slot {
    state: ServerState,
    cache: SharedCache,
}

/// Many connections, one namespace.
pub struct Host {
    slots: IndexMap<ServerName, Slot>,
    options: HostOptions,
    /// One task per connection that applies its notifications; stopped on drop.
    watchers: JoinSet<()>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("servers", &self.slots.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

async fn watch_events(
    server: ServerName,
    mut events: tokio::sync::mpsc::Receiver<ServerEvent>,
    cache: SharedCache,
    observer: Option<EventObserver>,
) {
    while let Some(event) = events.recv().await {
        {
            let mut cache = cache.write().await;
            match &event {
                ServerEvent::ToolsChanged => {
                    cache.generation += 1;
                    cache.tools = None;
                    cache.validators.clear();
                }
                ServerEvent::ResourcesChanged => {
                    cache.generation += 1;
                    cache.resources = None;
                    cache.templates = None;
                }
                ServerEvent::PromptsChanged => {
                    cache.generation += 1;
                    cache.prompts = None;
                }
                ServerEvent::ResourceUpdated { .. } | ServerEvent::Log(_) => {}
            }
        }
        if let Some(observer) = &observer {
            observer(&server, &event);
        }
    }
}

/// Connect one server, using its era hint when there is one and falling back to `Auto` when
/// the hint turns out wrong.
async fn connect_one(
    entry: &ServerEntry,
    options: &HostOptions,
) -> Result<Connection, ClientError> {
    let hint = options
        .era_hints
        .get(&entry.name)
        .filter(|_| options.connect.era == EraPreference::Auto);
    let Some(&era) = hint else {
        return Connection::connect(entry, &options.connect).await;
    };
    let hinted = ConnectOptions {
        era,
        ..options.connect.clone()
    };
    match Connection::connect(entry, &hinted).await {
        Err(error) if error.class() == ErrorClass::Protocol => {
            tracing::debug!(server = %entry.name, %error, "the remembered era failed; trying both eras");
            Connection::connect(entry, &options.connect).await
        }
        other => other,
    }
}

impl Host {
    /// Connect to every enabled server of `config` in parallel. A server that fails is kept
    /// as [`ServerState::Failed`]; the others work.
    pub async fn connect(config: &Config, options: HostOptions) -> Host {
        let entries: Vec<&ServerEntry> = config.enabled().collect();
        let results = join_all(entries.iter().map(|entry| connect_one(entry, &options))).await;
        let mut host = Host {
            slots: IndexMap::new(),
            options,
            watchers: JoinSet::new(),
        };
        for (entry, result) in entries.into_iter().zip(results) {
            let state = match result {
                Ok(connection) => ServerState::Connected(Arc::new(connection)),
                Err(error) => ServerState::Failed(error),
            };
            host.insert(entry.name.clone(), state);
        }
        host
    }

    /// Build a host from connections made elsewhere (tests, embedding).
    pub fn from_connections(connections: Vec<Connection>, options: HostOptions) -> Host {
        let mut host = Host {
            slots: IndexMap::new(),
            options,
            watchers: JoinSet::new(),
        };
        for connection in connections {
            let name = connection.name().clone();
            host.insert(name, ServerState::Connected(Arc::new(connection)));
        }
        host
    }

    fn insert(&mut self, name: ServerName, state: ServerState) {
        let cache: SharedCache = Arc::new(RwLock::new(ListCache::default()));
        if let ServerState::Connected(connection) = &state
            && let Some(events) = connection.take_events()
        {
            self.watchers.spawn(watch_events(
                name.clone(),
                events,
                cache.clone(),
                self.options.on_event.clone(),
            ));
        }
        self.slots.insert(name, Slot { state, cache });
    }

    /// Every configured server with its state, in config order.
    pub fn servers(&self) -> impl Iterator<Item = (&ServerName, &ServerState)> {
        self.slots.iter().map(|(name, slot)| (name, &slot.state))
    }

    fn slot(&self, name: &str) -> Result<(&ServerName, &Slot), HostError> {
        self.slots
            .get_key_value(name)
            .ok_or_else(|| HostError::UnknownServer {
                name: name.to_owned(),
                suggestions: closest(name, self.slots.keys().map(ServerName::as_str)),
            })
    }

    fn connection(
        &self,
        name: &str,
    ) -> Result<(&ServerName, Arc<Connection>, SharedCache), HostError> {
        let (name, slot) = self.slot(name)?;
        match &slot.state {
            ServerState::Connected(connection) => {
                Ok((name, connection.clone(), slot.cache.clone()))
            }
            ServerState::Failed(error) => Err(HostError::ServerUnavailable {
                server: name.clone(),
                reason: error.to_string(),
            }),
        }
    }

    /// The servers a listing covers: the one named, or every connected one.
    fn targets(&self, server: Option<&str>) -> Result<Vec<ServerName>, HostError> {
        Ok(match server {
            Some(name) => vec![self.connection(name)?.0.clone()],
            None => self
                .slots
                .iter()
                .filter(|(_, slot)| matches!(slot.state, ServerState::Connected(_)))
                .map(|(name, _)| name.clone())
                .collect(),
        })
    }

    /// One server's list of `T`, from the cache when it is fresh.
    async fn list_of<T: Listing>(
        &self,
        server: &str,
    ) -> Result<(ServerName, Arc<Vec<T>>), HostError> {
        let (name, connection, cache) = self.connection(server)?;
        let generation = {
            let mut cache = cache.write().await;
            if let Some(list) = T::slot(&mut cache).clone() {
                return Ok((name.clone(), list));
            }
            cache.generation
        };
        if !T::supported(&connection.description().capabilities) {
            return Ok((name.clone(), Arc::default()));
        }
        let list = Arc::new(T::fetch(&connection, self.options.request_timeout).await?);
        let mut cache = cache.write().await;
        if cache.generation == generation {
            *T::slot(&mut cache) = Some(list.clone());
        }
        Ok((name.clone(), list))
    }

    /// The lists of `T` of several servers, listed concurrently. A server whose listing fails
    /// is reported beside the others' items.
    async fn list_all<T: Listing>(&self, server: Option<&str>) -> Result<Listed<T>, HostError> {
        let names = self.targets(server)?;
        let listings = join_all(names.iter().map(|name| self.list_of::<T>(name.as_str()))).await;
        let mut items = Vec::new();
        let mut errors = Vec::new();
        for listing in listings {
            match listing {
                Ok((name, list)) => {
                    items.extend(list.iter().map(|item| (name.clone(), item.clone())))
                }
                Err(error) => errors.push(error),
            }
        }
        Ok((items, errors))
    }

    /// The tools of one server, from the cache when it is fresh.
    pub async fn server_tools(&self, server: &str) -> Result<Arc<Vec<Tool>>, HostError> {
        Ok(self.list_of::<Tool>(server).await?.1)
    }

    /// Tools of every connected server (or one), with qualified names. Servers whose listing
    /// fails are returned as errors beside the tools that could be listed.
    pub async fn tools(
        &self,
        server: Option<&str>,
    ) -> Result<(Vec<HostTool>, Vec<HostError>), HostError> {
        let (tools, errors) = self.list_all::<Tool>(server).await?;
        let tools = tools
            .into_iter()
            .map(|(server, tool)| HostTool {
                qualified: qualify(&server, &tool.name),
                server,
                tool,
            })
            .collect();
        Ok((tools, errors))
    }

    /// Find a tool from what a user or a model typed: `server/tool`, a qualified name
    /// (`server__tool`), or a bare tool name that only one server has.
    pub async fn resolve_tool(&self, input: &str) -> Result<HostTool, HostError> {
        if let Some((server, tool)) = input.split_once('/')
            && self.slots.contains_key(server)
        {
            let (tools, _) = self.tools(Some(server)).await?;
            if let Some(found) = tools.iter().find(|t| t.tool.name == tool) {
                return Ok(found.clone());
            }
            // Compare tool names only: the shared "server/" prefix would make every tool of
            // the server look close.
            let suggestions = closest(tool, tools.iter().map(|t| t.tool.name.as_str()))
                .into_iter()
                .map(|name| format!("{server}/{name}"))
                .collect();
            return Err(HostError::UnknownTool {
                name: input.to_owned(),
                suggestions,
            });
        }
        // A readable qualified name names its server; list only that one.
        let scope = split_readable(input)
            .map(|(server, _)| server)
            .filter(|server| self.slots.contains_key(*server));
        let (tools, _) = self.tools(scope).await?;
        if let Some(found) = tools.iter().find(|t| t.qualified == input) {
            return Ok(found.clone());
        }
        let (tools, _) = match scope {
            Some(_) => self.tools(None).await?,
            None => (tools, Vec::new()),
        };
        if let Some(found) = tools.iter().find(|t| t.qualified == input) {
            return Ok(found.clone());
        }
        let matching: Vec<&HostTool> = tools.iter().filter(|t| t.tool.name == input).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let names: Vec<String> = tools.iter().map(HostTool::display_name).collect();
                Err(HostError::UnknownTool {
                    name: input.to_owned(),
                    suggestions: closest(input, names.iter().map(String::as_str)),
                })
            }
            many => Err(HostError::AmbiguousTool {
                name: input.to_owned(),
                candidates: many.iter().map(|t| t.display_name()).collect(),
            }),
        }
    }

    /// Check `arguments` against the tool's input schema, then call it.
    pub async fn call_tool(
        &self,
        tool: &HostTool,
        arguments: Value,
        options: CallOptions,
    ) -> Result<ToolResult, HostError> {
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(HostError::ArgumentsNotAnObject {
                    found: json_kind(&other),
                });
            }
        };
        let (server, connection, cache) = self.connection(tool.server.as_str())?;
        let cached = cache.read().await.validators.get(&tool.tool.name).cloned();
        let validator = match cached {
            Some(validator) => validator,
            None => {
                let validator = Arc::new(ArgumentValidator::new(&tool.tool.input_schema));
                cache
                    .write()
                    .await
                    .validators
                    .insert(tool.tool.name.clone(), validator.clone());
                validator
            }
        };
        let violations = validator.violations(&Value::Object(arguments.clone()));
        if !violations.is_empty() {
            return Err(HostError::InvalidArguments {
                server: server.clone(),
                tool: tool.tool.name.clone(),
                violations,
            });
        }
        Ok(connection
            .call_tool(&tool.tool.name, Some(arguments), options)
            .await?)
    }

    /// Resources of every connected server (or one) that has the capability.
    pub async fn resources(&self, server: Option<&str>) -> Result<Listed<Resource>, HostError> {
        self.list_all::<Resource>(server).await
    }

    pub async fn resource_templates(
        &self,
        server: Option<&str>,
    ) -> Result<Listed<ResourceTemplate>, HostError> {
        self.list_all::<ResourceTemplate>(server).await
    }

    pub async fn prompts(&self, server: Option<&str>) -> Result<Listed<Prompt>, HostError> {
        self.list_all::<Prompt>(server).await
    }

    /// Read a resource. Without `server`, the server that lists the URI is used; when only one
    /// server is connected, it is asked directly (templates expand to unlisted URIs).
    pub async fn read_resource(
        &self,
        uri: &str,
        server: Option<&str>,
    ) -> Result<(ServerName, ReadResult), HostError> {
        let server = match server {
            Some(name) => self.connection(name)?.0.clone(),
            None => self.server_for_uri(uri).await?,
        };
        let (_, connection, _) = self.connection(server.as_str())?;
        let result = connection
            .read_resource(uri, self.options.request_timeout)
            .await?;
        Ok((server, result))
    }

    async fn server_for_uri(&self, uri: &str) -> Result<ServerName, HostError> {
        let (listed, _) = self.resources(None).await?;
        let mut owners: Vec<ServerName> = listed
            .into_iter()
            .filter(|(_, resource)| resource.uri == uri)
            .map(|(server, _)| server)
            .collect();
        owners.dedup();
        match owners.len() {
            1 => Ok(owners.remove(0)),
            0 => match self.targets(None)?.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(HostError::UnknownResource {
                    uri: uri.to_owned(),
                }),
            },
            _ => Err(HostError::AmbiguousResource {
                uri: uri.to_owned(),
                servers: owners.iter().map(ToString::to_string).collect(),
            }),
        }
    }

    /// Find a prompt from `server/prompt` or a bare name that only one server has.
    pub async fn resolve_prompt(&self, input: &str) -> Result<(ServerName, Prompt), HostError> {
        let (server, name) = match input.split_once('/') {
            Some((server, name)) if self.slots.contains_key(server) => (Some(server), name),
            _ => (None, input),
        };
        let (prompts, _) = self.prompts(server).await?;
        let matching: Vec<&(ServerName, Prompt)> =
            prompts.iter().filter(|(_, p)| p.name == name).collect();
        let display = |(server, prompt): &(ServerName, Prompt)| format!("{server}/{}", prompt.name);
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let names: Vec<String> = prompts.iter().map(display).collect();
                Err(HostError::UnknownPrompt {
                    name: input.to_owned(),
                    suggestions: closest(input, names.iter().map(String::as_str)),
                })
            }
            many => Err(HostError::AmbiguousPrompt {
                name: input.to_owned(),
                candidates: many.iter().map(|p| display(p)).collect(),
            }),
        }
    }

    pub async fn get_prompt(
        &self,
        server: &ServerName,
        prompt: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<PromptResult, HostError> {
        let (_, connection, _) = self.connection(server.as_str())?;
        Ok(connection
            .get_prompt(prompt, arguments, self.options.request_timeout)
            .await?)
    }

    /// Close every connection (stdio servers get their stdin closed, then are killed).
    pub async fn shutdown(mut self) {
        self.watchers.abort_all();
        let slots = std::mem::take(&mut self.slots);
        let closing = slots.into_values().filter_map(|slot| match slot.state {
            ServerState::Connected(connection) => Arc::into_inner(connection),
            ServerState::Failed(_) => None,
        });
        join_all(closing.map(Connection::close)).await;
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
