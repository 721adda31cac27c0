//! [`Host`]: every configured server, connected in parallel, behind one API.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::join_all;
use indexmap::IndexMap;
use serde_json::Value;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, DEFAULT_REQUEST_TIMEOUT,
    model::{
        Prompt, PromptResult, ReadResult, Resource, ResourceTemplate, ServerEvent, Tool, ToolResult,
    },
};
use switchboard_config::{Config, ServerEntry, ServerName};
use tokio::{sync::RwLock, task::JoinSet};

use crate::{
    error::{HostError, closest},
    naming::ToolIndex,
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
}

impl std::fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostOptions")
            .field("connect", &self.connect)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            connect: ConnectOptions::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            on_event: None,
        }
    }
}

/// A tool with the server it belongs to and its qualified name.
#[derive(Debug, Clone)]
pub struct HostTool {
    pub server: ServerName,
    /// `{server}__{tool}`: unique, and valid as an Anthropic/OpenAI tool name.
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
    tools: Option<Arc<Vec<Tool>>>,
    resources: Option<Arc<Vec<Resource>>>,
    templates: Option<Arc<Vec<ResourceTemplate>>>,
    prompts: Option<Arc<Vec<Prompt>>>,
    validators: HashMap<String, Arc<ArgumentValidator>>,
}

/// A server's list cache, shared with the task that applies its notifications.
type SharedCache = Arc<RwLock<ListCache>>;

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
                    cache.tools = None;
                    cache.validators.clear();
                }
                ServerEvent::ResourcesChanged => {
                    cache.resources = None;
                    cache.templates = None;
                }
                ServerEvent::PromptsChanged => cache.prompts = None,
                ServerEvent::ResourceUpdated { .. } | ServerEvent::Log(_) => {}
            }
        }
        if let Some(observer) = &observer {
            observer(&server, &event);
        }
    }
}

impl Host {
    /// Connect to every enabled server of `config` in parallel. A server that fails is kept
    /// as [`ServerState::Failed`]; the others work.
    pub async fn connect(config: &Config, options: HostOptions) -> Host {
        let entries: Vec<&ServerEntry> = config.enabled().collect();
        let attempts = entries
            .iter()
            .map(|entry| Connection::connect(entry, &options.connect));
        let results = join_all(attempts).await;
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

    fn connected(
        &self,
    ) -> impl Iterator<Item = (&ServerName, &Arc<Connection>, &SharedCache)> {
        self.slots
            .iter()
            .filter_map(|(name, slot)| match &slot.state {
                ServerState::Connected(connection) => Some((name, connection, &slot.cache)),
                ServerState::Failed(_) => None,
            })
    }

    /// The tools of one server, from the cache when it is fresh.
    pub async fn server_tools(&self, server: &str) -> Result<Arc<Vec<Tool>>, HostError> {
        let (_, connection, cache) = self.connection(server)?;
        if let Some(tools) = cache.read().await.tools.clone() {
            return Ok(tools);
        }
        if !connection.description().capabilities.tools {
            return Ok(Arc::default());
        }
        let tools = Arc::new(connection.list_tools(self.options.request_timeout).await?);
        cache.write().await.tools = Some(tools.clone());
        Ok(tools)
    }

    /// Tools of every connected server (or one), with qualified names. Servers whose listing
    /// fails are returned as errors beside the tools that could be listed.
    pub async fn tools(
        &self,
        server: Option<&str>,
    ) -> Result<(Vec<HostTool>, Vec<HostError>), HostError> {
        let names: Vec<ServerName> = match server {
            Some(name) => vec![self.connection(name)?.0.clone()],
            None => self.connected().map(|(name, _, _)| name.clone()).collect(),
        };
        let listings = join_all(names.iter().map(|name| self.server_tools(name.as_str()))).await;
        let mut per_server = Vec::new();
        let mut errors = Vec::new();
        for (name, listing) in names.iter().zip(listings) {
            match listing {
                Ok(tools) => per_server.push((name.clone(), tools)),
                Err(error) => errors.push(error),
            }
        }
        let index = self.index_for(&per_server);
        let tools = per_server
            .iter()
            .flat_map(|(server, tools)| {
                tools.iter().map(|tool| HostTool {
                    server: server.clone(),
                    qualified: index
                        .qualified(server, &tool.name)
                        .map(str::to_owned)
                        .unwrap_or_else(|| crate::naming::qualify(server, &tool.name)),
                    tool: tool.clone(),
                })
            })
            .collect();
        Ok((tools, errors))
    }

    fn index_for(&self, per_server: &[(ServerName, Arc<Vec<Tool>>)]) -> ToolIndex {
        ToolIndex::build(
            per_server
                .iter()
                .flat_map(|(server, tools)| tools.iter().map(move |t| (server, t.name.as_str()))),
        )
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
        let (tools, _) = self.tools(None).await?;
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
        let validator = {
            let cached = cache.read().await.validators.get(&tool.tool.name).cloned();
            match cached {
                Some(v) => v,
                None => {
                    let v = Arc::new(ArgumentValidator::new(&tool.tool.input_schema));
                    cache
                        .write()
                        .await
                        .validators
                        .insert(tool.tool.name.clone(), v.clone());
                    v
                }
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
    pub async fn resources(
        &self,
        server: Option<&str>,
    ) -> Result<Vec<(ServerName, Resource)>, HostError> {
        let mut out = Vec::new();
        for name in self.targets(server)? {
            let (name, connection, cache) = self.connection(name.as_str())?;
            if !connection.description().capabilities.resources {
                continue;
            }
            let cached = cache.read().await.resources.clone();
            let list = match cached {
                Some(list) => list,
                None => {
                    let list = Arc::new(
                        connection
                            .list_resources(self.options.request_timeout)
                            .await?,
                    );
                    cache.write().await.resources = Some(list.clone());
                    list
                }
            };
            out.extend(list.iter().map(|r| (name.clone(), r.clone())));
        }
        Ok(out)
    }

    pub async fn resource_templates(
        &self,
        server: Option<&str>,
    ) -> Result<Vec<(ServerName, ResourceTemplate)>, HostError> {
        let mut out = Vec::new();
        for name in self.targets(server)? {
            let (name, connection, cache) = self.connection(name.as_str())?;
            if !connection.description().capabilities.resources {
                continue;
            }
            let cached = cache.read().await.templates.clone();
            let list = match cached {
                Some(list) => list,
                None => {
                    let list = Arc::new(
                        connection
                            .list_resource_templates(self.options.request_timeout)
                            .await?,
                    );
                    cache.write().await.templates = Some(list.clone());
                    list
                }
            };
            out.extend(list.iter().map(|r| (name.clone(), r.clone())));
        }
        Ok(out)
    }

    fn targets(&self, server: Option<&str>) -> Result<Vec<ServerName>, HostError> {
        Ok(match server {
            Some(name) => vec![self.connection(name)?.0.clone()],
            None => self.connected().map(|(name, _, _)| name.clone()).collect(),
        })
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
            None => {
                let listed = self.resources(None).await?;
                match listed.into_iter().find(|(_, r)| r.uri == uri) {
                    Some((name, _)) => name,
                    None => {
                        let mut connected = self.connected().map(|(name, _, _)| name.clone());
                        match (connected.next(), connected.next()) {
                            (Some(only), None) => only,
                            _ => {
                                return Err(HostError::UnknownResource {
                                    uri: uri.to_owned(),
                                });
                            }
                        }
                    }
                }
            }
        };
        let (_, connection, _) = self.connection(server.as_str())?;
        let result = connection
            .read_resource(uri, self.options.request_timeout)
            .await?;
        Ok((server, result))
    }

    pub async fn prompts(
        &self,
        server: Option<&str>,
    ) -> Result<Vec<(ServerName, Prompt)>, HostError> {
        let mut out = Vec::new();
        for name in self.targets(server)? {
            let (name, connection, cache) = self.connection(name.as_str())?;
            if !connection.description().capabilities.prompts {
                continue;
            }
            let cached = cache.read().await.prompts.clone();
            let list = match cached {
                Some(list) => list,
                None => {
                    let list = Arc::new(
                        connection
                            .list_prompts(self.options.request_timeout)
                            .await?,
                    );
                    cache.write().await.prompts = Some(list.clone());
                    list
                }
            };
            out.extend(list.iter().map(|p| (name.clone(), p.clone())));
        }
        Ok(out)
    }

    /// Find a prompt from `server/prompt` or a bare name that only one server has.
    pub async fn resolve_prompt(&self, input: &str) -> Result<(ServerName, Prompt), HostError> {
        let (server, name) = match input.split_once('/') {
            Some((server, name)) if self.slots.contains_key(server) => (Some(server), name),
            _ => (None, input),
        };
        let prompts = self.prompts(server).await?;
        let matching: Vec<&(ServerName, Prompt)> =
            prompts.iter().filter(|(_, p)| p.name == name).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let names: Vec<String> = prompts
                    .iter()
                    .map(|(s, p)| format!("{s}/{}", p.name))
                    .collect();
                Err(HostError::UnknownPrompt {
                    name: input.to_owned(),
                    suggestions: closest(input, names.iter().map(String::as_str)),
                })
            }
            many => Err(HostError::AmbiguousTool {
                name: input.to_owned(),
                candidates: many
                    .iter()
                    .map(|(s, p)| format!("{s}/{}", p.name))
                    .collect(),
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
