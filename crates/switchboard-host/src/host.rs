//! [`Host`]: every configured server, connected in parallel, behind one API.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::join_all;
use indexmap::IndexMap;
use serde_json::Value;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, DEFAULT_REQUEST_TIMEOUT, EraPreference,
    ErrorClass,
    model::{
        CacheHint, Capabilities, Completion, CompletionTarget, Prompt, PromptResult, ReadResult,
        Resource, ResourceTemplate, ServerEvent, Tool, ToolResult,
    },
    resilience::{
        BreakerState, HealthStatus, Idempotency, ResilienceStats, Resilient, passthrough,
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
    /// Keep every list at least this long, even one the server asks not to keep (`ttlMs: 0`
    /// without change announcements). Zero (the default) follows the server's hints exactly.
    /// A gateway sets it so that the listing each forwarded call needs to find its tool is
    /// shared by the calls of the same moment instead of repeated for each.
    pub list_reuse: Duration,
    /// How particular servers authorize, over `connect.oauth` (a gateway's upstreams each with
    /// their own client credentials, say).
    pub oauth: HashMap<ServerName, switchboard_client::oauth::OAuthOptions>,
}

impl std::fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostOptions")
            .field("connect", &self.connect)
            .field("request_timeout", &self.request_timeout)
            .field("era_hints", &self.era_hints)
            .field("list_reuse", &self.list_reuse)
            .field("oauth", &self.oauth.keys().collect::<Vec<_>>())
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
            list_reuse: Duration::ZERO,
            oauth: HashMap::new(),
        }
    }
}

impl HostOptions {
    /// The connect options of the server `name`: `connect`, with its own OAuth if it has one.
    fn connect_for(&self, name: &ServerName) -> ConnectOptions {
        let mut connect = self.connect.clone();
        if let Some(oauth) = self.oauth.get(name) {
            connect.oauth = Some(oauth.clone());
        }
        connect
    }
}

/// A tool with the server it belongs to and its qualified name.
#[derive(Debug, Clone)]
pub struct HostTool {
    pub server: ServerName,
    /// Unique, stable, and valid as an Anthropic/OpenAI tool name: see [`crate::naming`].
    pub qualified: String,
    /// The tool as the server listed it, shared with the host's cached list.
    pub tool: Cached<Tool>,
}

/// An item of a server's cached list, shared with the list instead of copied out of it: a
/// gateway looks a tool up for every call it forwards, and a tool's schema can be large. It
/// reads (and serializes) as the item.
#[derive(Clone)]
pub struct Cached<T> {
    list: Arc<Vec<T>>,
    /// Within `list`, which is never changed once shared: checked by [`Cached::at`].
    index: usize,
}

impl<T> Cached<T> {
    /// The item at `index` of `list`; `None` past its end.
    fn at(list: Arc<Vec<T>>, index: usize) -> Option<Self> {
        (index < list.len()).then_some(Cached { list, index })
    }

    /// An item of its own, in no list.
    pub fn new(item: T) -> Self {
        Cached {
            list: Arc::new(vec![item]),
            index: 0,
        }
    }

    /// Each item of `list`.
    fn each(list: &Arc<Vec<T>>) -> impl Iterator<Item = Self> + '_ {
        (0..list.len()).map(|index| Cached {
            list: list.clone(),
            index,
        })
    }

    /// The first item of `list` that `matches`.
    fn find(list: &Arc<Vec<T>>, matches: impl Fn(&T) -> bool) -> Option<Self> {
        let index = list.iter().position(matches)?;
        Cached::at(list.clone(), index)
    }
}

impl<T> std::ops::Deref for Cached<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.list[self.index]
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Cached<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: serde::Serialize> serde::Serialize for Cached<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl HostTool {
    fn new(server: ServerName, tool: Cached<Tool>) -> Self {
        HostTool {
            qualified: qualify(&server, &tool.name),
            server,
            tool,
        }
    }

    /// `server/tool`, the form users type.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.server, self.tool.name)
    }
}

/// The state of one configured server when the host connected it. A server that was connected
/// may have been reconnected since (see [`Host::health`] for how it is doing now).
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
    /// When a list kept on the strength of its `ttlMs` goes stale, by list method. A list
    /// without an entry stays until a list-change notification.
    expires: HashMap<&'static str, tokio::time::Instant>,
}

/// A server's list cache, shared with the task that applies its notifications.
type SharedCache = Arc<RwLock<ListCache>>;

/// What the generic list cache needs to know about one kind of list.
trait Listing: Clone + Send + Sync + 'static {
    /// The list method, for logs.
    const METHOD: &'static str;
    fn supported(capabilities: &Capabilities) -> bool;
    /// Whether the server announces changes of this list (so a cached copy stays right).
    fn announces_changes(capabilities: &Capabilities) -> bool;
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>>;
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Vec<Self>, CacheHint), ClientError>> + Send;
}

impl Listing for Tool {
    const METHOD: &'static str = "tools/list";
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.tools
    }
    fn announces_changes(capabilities: &Capabilities) -> bool {
        capabilities.tools_list_changed
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.tools
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Vec<Self>, CacheHint), ClientError>> + Send {
        connection.list_tools_with_hint(timeout)
    }
}

impl Listing for Resource {
    const METHOD: &'static str = "resources/list";
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.resources
    }
    fn announces_changes(capabilities: &Capabilities) -> bool {
        capabilities.resources_list_changed
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.resources
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Vec<Self>, CacheHint), ClientError>> + Send {
        connection.list_resources_with_hint(timeout)
    }
}

impl Listing for ResourceTemplate {
    const METHOD: &'static str = "resources/templates/list";
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.resources
    }
    fn announces_changes(capabilities: &Capabilities) -> bool {
        capabilities.resources_list_changed
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.templates
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Vec<Self>, CacheHint), ClientError>> + Send {
        connection.list_resource_templates_with_hint(timeout)
    }
}

impl Listing for Prompt {
    const METHOD: &'static str = "prompts/list";
    fn supported(capabilities: &Capabilities) -> bool {
        capabilities.prompts
    }
    fn announces_changes(capabilities: &Capabilities) -> bool {
        capabilities.prompts_list_changed
    }
    fn slot(cache: &mut ListCache) -> &mut Option<Arc<Vec<Self>>> {
        &mut cache.prompts
    }
    fn fetch(
        connection: &Connection,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Vec<Self>, CacheHint), ClientError>> + Send {
        connection.list_prompts_with_hint(timeout)
    }
}

/// Items of one kind from several servers, with the servers whose listing failed.
pub type Listed<T> = (Vec<(ServerName, T)>, Vec<HostError>);

struct Slot {
    state: ServerState,
    cache: SharedCache,
    /// The server behind the resilience policies: one per URL (the entry's `url`, then its
    /// `replicas`); empty for a server that failed to connect.
    replicas: Vec<Arc<Resilient>>,
}

impl Slot {
    /// The replica to send the next request to: among those whose breaker is not open and
    /// whose last health check did not fail, the one with the fewest requests in flight (the
    /// first on a tie); every replica when none qualifies.
    fn pick(&self) -> Option<Arc<Resilient>> {
        let usable = |r: &&Arc<Resilient>| {
            let health = r.health();
            health.status.is_usable() && !matches!(health.breaker, BreakerState::Open { .. })
        };
        let least = |candidates: Vec<&Arc<Resilient>>| {
            candidates
                .into_iter()
                .min_by_key(|r| r.outstanding())
                .cloned()
        };
        least(self.replicas.iter().filter(usable).collect())
            .or_else(|| least(self.replicas.iter().collect()))
    }
}

/// How one server is doing, for `switchboard servers` and for graceful degradation.
#[derive(Debug, Clone)]
pub struct ServerHealth {
    pub server: ServerName,
    /// The worst of its replicas that are not usable, or the best status when one is usable.
    pub status: HealthStatus,
    /// The latency of the last successful check (of the best replica).
    pub latency: Option<Duration>,
    /// The breaker of the best replica.
    pub breaker: BreakerState,
    /// Counters summed over the replicas.
    pub stats: ResilienceStats,
    /// How many URLs serve it, and how many of them are usable.
    pub replicas: usize,
    pub usable_replicas: usize,
}

impl ServerHealth {
    /// Whether calls to this server can be expected to work.
    pub fn is_available(&self) -> bool {
        self.usable_replicas > 0
    }
}

/// The tools an agent should be offered now: those of available servers, and the servers
/// that are down with the reason, so the model can be told.
#[derive(Debug, Clone, Default)]
pub struct AvailableTools {
    pub tools: Vec<HostTool>,
    pub unavailable: Vec<(ServerName, String)>,
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
    let mut connect = options.connect_for(&entry.name);
    if let Some(timeout) = entry.resilience.connect_timeout {
        connect.connect_timeout = timeout;
    }
    let hint = options
        .era_hints
        .get(&entry.name)
        .filter(|_| connect.era == EraPreference::Auto);
    let Some(&era) = hint else {
        return Connection::connect(entry, &connect).await;
    };
    let hinted = ConnectOptions {
        era,
        ..connect.clone()
    };
    match Connection::connect(entry, &hinted).await {
        Err(error) if error.class() == ErrorClass::Protocol => {
            tracing::debug!(server = %entry.name, %error, "the remembered era failed; trying both eras");
            Connection::connect(entry, &connect).await
        }
        other => other,
    }
}

/// `entry` reached at `url` instead of its own URL (for a replica).
fn at_url(entry: &ServerEntry, url: &url::Url) -> ServerEntry {
    use switchboard_config::Transport;
    let mut replica = entry.clone();
    match &mut replica.transport {
        Transport::StreamableHttp { url: u, .. }
        | Transport::Sse { url: u, .. }
        | Transport::WebSocket { url: u, .. } => *u = url.clone(),
        Transport::Stdio { .. } => {}
    }
    replica
}

/// Check `resilient` every `interval`, until the host stops the task.
async fn check_periodically(resilient: Arc<Resilient>, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let report = resilient.check_health().await;
        tracing::debug!(server = %resilient.name(), status = %report.status, latency = ?report.latency, "health check");
    }
}

impl Host {
    /// Connect to every enabled server of `config` in parallel. A server that fails is kept
    /// as [`ServerState::Failed`]; the others work.
    ///
    /// Each server gets the resilience settings of its entry (timeouts, retries, breaker, rate
    /// limit, reconnection, health checks); a server with `replicas` gets one connection per
    /// URL, and a replica that cannot be reached at first is connected when it is needed.
    pub async fn connect(config: &Config, options: HostOptions) -> Host {
        let entries: Vec<&ServerEntry> = config.enabled().collect();
        let results = join_all(entries.iter().map(|entry| async {
            let primary = connect_one(entry, &options).await;
            let replicas = join_all(entry.resilience.replicas.iter().map(|url| async {
                let replica = at_url(entry, url);
                let connection = connect_one(&replica, &options).await;
                (replica, connection)
            }))
            .await;
            (primary, replicas)
        }))
        .await;
        let mut host = Host {
            slots: IndexMap::new(),
            options,
            watchers: JoinSet::new(),
        };
        for (entry, (primary, replicas)) in entries.into_iter().zip(results) {
            let request_timeout = host.options.request_timeout;
            let wrap = |entry: &ServerEntry, connection: Option<Arc<Connection>>| {
                Arc::new(Resilient::new(
                    entry.name.clone(),
                    entry.resilience.clone(),
                    request_timeout,
                    connection,
                    Some(Resilient::connector_for(
                        entry,
                        &host.options.connect_for(&entry.name),
                    )),
                ))
            };
            let (state, mut resilient) = match primary {
                Ok(connection) => {
                    let connection = Arc::new(connection);
                    let primary = wrap(entry, Some(connection.clone()));
                    (ServerState::Connected(connection), vec![primary])
                }
                Err(error) => (ServerState::Failed(error), Vec::new()),
            };
            if !resilient.is_empty() {
                for (replica, connection) in replicas {
                    if let Err(error) = &connection {
                        tracing::warn!(server = %entry.name, %error, "a replica could not be reached; it will be tried again when needed");
                    }
                    resilient.push(wrap(&replica, connection.ok().map(Arc::new)));
                }
            }
            host.insert_resilient(entry.name.clone(), state, resilient);
        }
        host
    }

    /// Build a host from servers already wrapped in their policies (tests, embedding): one
    /// server per entry, each with its replicas (all of the same name).
    pub fn from_resilient(servers: Vec<Vec<Arc<Resilient>>>, options: HostOptions) -> Host {
        let mut host = Host {
            slots: IndexMap::new(),
            options,
            watchers: JoinSet::new(),
        };
        for replicas in servers {
            let Some(first) = replicas.first() else {
                continue;
            };
            let name = first.name().clone();
            let state = match first.current() {
                Some(connection) => ServerState::Connected(connection),
                None => ServerState::Failed(ClientError::ConnectionLost {
                    server: name.clone(),
                    method: "connect",
                    diagnostics: "; not connected yet".to_owned(),
                }),
            };
            host.insert_resilient(name, state, replicas);
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
            let connection = Arc::new(connection);
            // Connections made elsewhere keep their behaviour: no retries, no breaker, no
            // reconnection (there is no way to reconnect them).
            let resilient = Arc::new(Resilient::new(
                name.clone(),
                passthrough(),
                host.options.request_timeout,
                Some(connection.clone()),
                None,
            ));
            host.insert_resilient(name, ServerState::Connected(connection), vec![resilient]);
        }
        host
    }

    fn insert_resilient(
        &mut self,
        name: ServerName,
        state: ServerState,
        replicas: Vec<Arc<Resilient>>,
    ) {
        let cache: SharedCache = Arc::new(RwLock::new(ListCache::default()));
        for replica in &replicas {
            if let Some(events) = replica.take_events() {
                self.watchers.spawn(watch_events(
                    name.clone(),
                    events,
                    cache.clone(),
                    self.options.on_event.clone(),
                ));
            }
            let interval = replica.settings().health_check.interval;
            if !interval.is_zero() {
                self.watchers
                    .spawn(check_periodically(replica.clone(), interval));
            }
        }
        self.slots.insert(
            name,
            Slot {
                state,
                cache,
                replicas,
            },
        );
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
    ) -> Result<(&ServerName, Arc<Resilient>, SharedCache), HostError> {
        let (name, slot) = self.slot(name)?;
        match (&slot.state, slot.pick()) {
            (ServerState::Connected(_), Some(resilient)) => {
                Ok((name, resilient, slot.cache.clone()))
            }
            (ServerState::Failed(error), _) => Err(HostError::ServerUnavailable {
                server: name.clone(),
                reason: error.to_string(),
            }),
            (ServerState::Connected(_), None) => Err(HostError::ServerUnavailable {
                server: name.clone(),
                reason: "it has no connection".to_owned(),
            }),
        }
    }

    /// The policies and connections of one server, one per URL (for inspection and tests).
    pub fn resilient(&self, server: &str) -> Vec<Arc<Resilient>> {
        self.slots
            .get(server)
            .map(|slot| slot.replicas.clone())
            .unwrap_or_default()
    }

    /// How every configured server is doing, from the last health checks (no I/O). A server
    /// that failed to connect is down.
    pub fn health(&self) -> Vec<ServerHealth> {
        self.slots
            .iter()
            .map(|(name, slot)| server_health(name, slot))
            .collect()
    }

    /// Check every server now, concurrently (each check bounded by its `healthCheck.timeoutMs`),
    /// and return what was found.
    pub async fn check_health(&self) -> Vec<ServerHealth> {
        join_all(self.slots.iter().map(|(name, slot)| async move {
            join_all(slot.replicas.iter().map(|r| r.check_health())).await;
            server_health(name, slot)
        }))
        .await
    }

    /// The tools of the servers that are available now, with qualified names, and the
    /// servers that are not, with the reason (from the last health checks, breaker states and
    /// the connection attempts; a server whose listing fails counts as unavailable).
    pub async fn available_tools(&self) -> AvailableTools {
        let mut available = AvailableTools::default();
        let mut healthy = Vec::new();
        for health in self.health() {
            if health.is_available() {
                healthy.push(health.server);
            } else {
                let reason = match (&health.status, health.breaker) {
                    (HealthStatus::Down { reason } | HealthStatus::Unhealthy { reason }, _) => {
                        reason.clone()
                    }
                    (_, breaker @ BreakerState::Open { .. }) => {
                        format!("its circuit breaker is {breaker}")
                    }
                    _ => "it is not available".to_owned(),
                };
                available.unavailable.push((health.server, reason));
            }
        }
        let listings = join_all(
            healthy
                .iter()
                .map(|server| self.tools(Some(server.as_str()))),
        )
        .await;
        for (server, listing) in healthy.into_iter().zip(listings) {
            match listing {
                Ok((tools, errors)) if errors.is_empty() => available.tools.extend(tools),
                Ok((_, errors)) => {
                    let reason = errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    available.unavailable.push((server, reason));
                }
                Err(error) => available.unavailable.push((server, error.to_string())),
            }
        }
        available
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
        let (name, resilient, cache) = self.connection(server)?;
        let generation = {
            let mut cache = cache.write().await;
            let fresh = cache
                .expires
                .get(T::METHOD)
                .is_none_or(|stale_at| tokio::time::Instant::now() < *stale_at);
            if fresh && let Some(list) = T::slot(&mut cache).clone() {
                return Ok((name.clone(), list));
            }
            cache.generation
        };
        // Listing is the rare path, so it has a future of its own: the futures of the lookups
        // that find the list cached (a gateway looks a tool up for every call it forwards)
        // stay a few hundred bytes instead of the size of a reconnection.
        Box::pin(self.list_afresh::<T>(name, &resilient, &cache, generation)).await
    }

    /// List `T` from the server and cache the list, unless the cache changed (`generation`)
    /// while it was being listed.
    async fn list_afresh<T: Listing>(
        &self,
        name: &ServerName,
        resilient: &Resilient,
        cache: &SharedCache,
        generation: u64,
    ) -> Result<(ServerName, Arc<Vec<T>>), HostError> {
        let connection = resilient.connection().await?;
        if !T::supported(&connection.description().capabilities) {
            return Ok((name.clone(), Arc::default()));
        }
        let timeout = resilient.request_timeout();
        let (list, hint) = resilient
            .run(
                T::METHOD,
                Idempotency::Idempotent,
                |connection| async move { T::fetch(&connection, timeout).await },
            )
            .await?;
        let list = Arc::new(list);
        // 2026-07-28 cache hints: a positive `ttlMs` keeps the list that long (or until a
        // change notification); `ttlMs: 0` keeps it only when the server announces changes,
        // which then invalidate it exactly. No hint (legacy): keep until a notification.
        // `cacheScope` needs nothing here: this cache belongs to one connection and one user.
        // `HostOptions::list_reuse` stretches a short or zero `ttlMs` to its length.
        let now = tokio::time::Instant::now();
        let reuse = self.options.list_reuse;
        let keep = match hint.ttl {
            Some(ttl) if ttl.is_zero() => {
                if T::announces_changes(&connection.description().capabilities) {
                    Some(None)
                } else {
                    (!reuse.is_zero()).then(|| Some(now + reuse))
                }
            }
            Some(ttl) => Some(Some(now + ttl.max(reuse))),
            None => Some(None),
        };
        let mut cache = cache.write().await;
        if cache.generation == generation {
            match keep {
                Some(stale_at) => {
                    *T::slot(&mut cache) = Some(list.clone());
                    match stale_at {
                        Some(at) => cache.expires.insert(T::METHOD, at),
                        None => cache.expires.remove(T::METHOD),
                    };
                }
                None => *T::slot(&mut cache) = None,
            }
        }
        Ok((name.clone(), list))
    }

    /// The lists of `T` of several servers, listed concurrently. A server whose listing fails
    /// is reported beside the others' items.
    async fn list_all<T: Listing>(&self, server: Option<&str>) -> Result<Listed<T>, HostError> {
        let (lists, errors) = self.lists_of::<T>(server).await?;
        let items = lists
            .iter()
            .flat_map(|(name, list)| list.iter().map(|item| (name.clone(), item.clone())))
            .collect();
        Ok((items, errors))
    }

    /// The cached lists of `T` of several servers, listed concurrently, as they are shared.
    async fn lists_of<T: Listing>(
        &self,
        server: Option<&str>,
    ) -> Result<(Vec<(ServerName, Arc<Vec<T>>)>, Vec<HostError>), HostError> {
        let names = self.targets(server)?;
        let listings = join_all(names.iter().map(|name| self.list_of::<T>(name.as_str()))).await;
        let mut lists = Vec::new();
        let mut errors = Vec::new();
        for listing in listings {
            match listing {
                Ok(list) => lists.push(list),
                Err(error) => errors.push(error),
            }
        }
        Ok((lists, errors))
    }

    /// The tools of one server, from the cache when it is fresh.
    pub async fn server_tools(&self, server: &str) -> Result<Arc<Vec<Tool>>, HostError> {
        Ok(self.list_of::<Tool>(server).await?.1)
    }

    /// The tool of `server` whose own name is `name`, shared with the cached list (a gateway
    /// looks one up for every call it forwards).
    pub async fn server_tool(
        &self,
        server: &str,
        name: &str,
    ) -> Result<Option<HostTool>, HostError> {
        let (server, tools) = self.list_of::<Tool>(server).await?;
        Ok(Cached::find(&tools, |tool| tool.name == name).map(|tool| HostTool::new(server, tool)))
    }

    /// Tools of every connected server (or one), with qualified names. Servers whose listing
    /// fails are returned as errors beside the tools that could be listed.
    pub async fn tools(
        &self,
        server: Option<&str>,
    ) -> Result<(Vec<HostTool>, Vec<HostError>), HostError> {
        let (lists, errors) = self.lists_of::<Tool>(server).await?;
        let tools = lists
            .iter()
            .flat_map(|(server, list)| {
                Cached::each(list).map(|tool| HostTool::new(server.clone(), tool))
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
        // The common case, a qualified name of a server that has the tool: found in that
        // server's cached list without copying the list.
        if let Some(server) = scope
            && let Ok((name, tools)) = self.list_of::<Tool>(server).await
            && let Some(tool) = Cached::find(&tools, |t| qualify(&name, &t.name) == input)
        {
            return Ok(HostTool {
                qualified: input.to_owned(),
                server: name,
                tool,
            });
        }
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
        let mut arguments = match arguments {
            Value::Null => serde_json::Map::new(),
            Value::Object(arguments) => arguments,
            other => {
                return Err(HostError::ArgumentsNotAnObject {
                    found: json_kind(&other),
                });
            }
        };
        let (server, resilient, cache) = self.connection(tool.server.as_str())?;
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
        // The validator takes a `Value`: the map is moved into one and back, not copied.
        let object = Value::Object(std::mem::take(&mut arguments));
        let violations = validator.violations(&object);
        if let Value::Object(map) = object {
            arguments = map;
        }
        if !violations.is_empty() {
            return Err(HostError::InvalidArguments {
                server: server.clone(),
                tool: tool.tool.name.clone(),
                violations,
            });
        }
        Ok(resilient
            .call_tool(&tool.tool, Some(arguments), options)
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

    /// The prompt of `server` whose own name is `name`: only that prompt is copied out of the
    /// cached list.
    pub async fn server_prompt(
        &self,
        server: &str,
        name: &str,
    ) -> Result<Option<(ServerName, Prompt)>, HostError> {
        let (server, prompts) = self.list_of::<Prompt>(server).await?;
        Ok(prompts
            .iter()
            .find(|prompt| prompt.name == name)
            .map(|prompt| (server, prompt.clone())))
    }

    /// The prompt whose qualified name (`server__prompt`, or the hashed form) is `qualified`:
    /// see [`Self::qualified_item`].
    pub async fn qualified_prompt(
        &self,
        qualified: &str,
    ) -> Result<Option<(ServerName, Prompt)>, HostError> {
        Ok(self
            .qualified_item::<Prompt>(qualified, |prompt| &prompt.name)
            .await?
            .map(|(server, prompt)| (server, Prompt::clone(&prompt))))
    }

    /// The tool whose qualified name (`server__tool`, or the hashed form) is `qualified`: see
    /// [`Self::qualified_item`]. Unlike [`Self::resolve_tool`], a name that is no qualified
    /// name (a bare tool name, say) is `None` at once, without listing anything.
    pub async fn qualified_tool(&self, qualified: &str) -> Result<Option<HostTool>, HostError> {
        let found = self
            .qualified_item::<Tool>(qualified, |tool| &tool.name)
            .await?;
        Ok(found.map(|(server, tool)| HostTool {
            server,
            qualified: qualified.to_owned(),
            tool,
        }))
    }

    /// The item whose qualified name is `qualified`. A readable name lists only its own server
    /// (an error listing it is returned); a hashed one looks through every connected server's
    /// cached list, skipping those that fail; any other name is no qualified name. The item
    /// found is shared with its list, not copied.
    async fn qualified_item<T: Listing>(
        &self,
        qualified: &str,
        name: impl Fn(&T) -> &str,
    ) -> Result<Option<(ServerName, Cached<T>)>, HostError> {
        let hashed = crate::naming::looks_hashed(qualified);
        let readable =
            split_readable(qualified).filter(|(server, _)| self.slots.contains_key(*server));
        let find = |server: ServerName, items: &Arc<Vec<T>>| {
            Cached::find(items, |item| qualify(&server, name(item)) == qualified)
                .map(|item| (server, item))
        };
        if let Some((server, own)) = readable {
            let (server, items) = self.list_of::<T>(server).await?;
            // A readable name is the server's name, the separator and the item's own name.
            let found = if hashed {
                find(server, &items)
            } else {
                Cached::find(&items, |item| name(item) == own)
                    .map(|item| (server, item))
                    .filter(|(server, item)| qualify(server, name(item)) == qualified)
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        if !hashed {
            return Ok(None);
        }
        let scope = readable.map(|(server, _)| server);
        for server in self.targets(None)? {
            if scope == Some(server.as_str()) {
                continue;
            }
            if let Ok((server, items)) = self.list_of::<T>(server.as_str()).await
                && let Some(found) = find(server, &items)
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Read a resource. Without `server`, the server that lists the URI is used; when only one
    /// server is connected, it is asked directly (templates expand to unlisted URIs).
    pub async fn read_resource(
        &self,
        uri: &str,
        server: Option<&str>,
    ) -> Result<(ServerName, ReadResult), HostError> {
        self.read_resource_with(uri, server, None).await
    }

    /// [`Self::read_resource`] with the call's options (a relay for what the server asks
    /// meanwhile, `_meta`); `None`: the server's configured request timeout and nothing else.
    pub async fn read_resource_with(
        &self,
        uri: &str,
        server: Option<&str>,
        options: Option<CallOptions>,
    ) -> Result<(ServerName, ReadResult), HostError> {
        let server = match server {
            Some(name) => self.connection(name)?.0.clone(),
            None => self.server_for_uri(uri).await?,
        };
        let (_, resilient, _) = self.connection(server.as_str())?;
        let options = options.unwrap_or_else(|| CallOptions {
            timeout: resilient.request_timeout(),
            ..CallOptions::default()
        });
        let result = resilient
            .run("resources/read", Idempotency::Idempotent, |connection| {
                let options = options.clone();
                async move { connection.read_resource_with(uri, options).await }
            })
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
        self.get_prompt_with(server, prompt, arguments, None).await
    }

    /// [`Self::get_prompt`] with the call's options (see [`Self::read_resource_with`]).
    pub async fn get_prompt_with(
        &self,
        server: &ServerName,
        prompt: &str,
        arguments: serde_json::Map<String, Value>,
        options: Option<CallOptions>,
    ) -> Result<PromptResult, HostError> {
        let (_, resilient, _) = self.connection(server.as_str())?;
        let options = options.unwrap_or_else(|| CallOptions {
            timeout: resilient.request_timeout(),
            ..CallOptions::default()
        });
        Ok(resilient
            .run("prompts/get", Idempotency::Idempotent, |connection| {
                let arguments = arguments.clone();
                let options = options.clone();
                async move { connection.get_prompt_with(prompt, arguments, options).await }
            })
            .await?)
    }

    /// Candidate values for an argument of one server's prompt or resource template
    /// (`completion/complete`), given the values already chosen for its other arguments
    /// (`context`, often empty); empty when the server offers no completions.
    pub async fn complete(
        &self,
        server: &ServerName,
        target: &CompletionTarget,
        argument: &str,
        value: &str,
        context: &HashMap<String, String>,
    ) -> Result<Completion, HostError> {
        let (_, resilient, _) = self.connection(server.as_str())?;
        let timeout = resilient.request_timeout();
        Ok(resilient
            .run(
                "completion/complete",
                Idempotency::Idempotent,
                |connection| async move {
                    connection
                        .complete_in_context(target, argument, value, context, timeout)
                        .await
                },
            )
            .await?)
    }

    /// Ask `server` for updates of `uri`: they arrive as [`ServerEvent::ResourceUpdated`]
    /// through [`HostOptions::on_event`]. Every replica of the server is asked, since the
    /// change may happen behind any of them; it succeeds when one accepts. A connection that
    /// is lost and made again is subscribed again, and reports each resource updated.
    pub async fn subscribe_resource(
        &self,
        server: &ServerName,
        uri: &str,
    ) -> Result<(), HostError> {
        self.on_every_replica(server, |resilient| async move {
            resilient.subscribe_resource(uri).await
        })
        .await
    }

    /// Stop the updates [`Self::subscribe_resource`] asked for, on every replica.
    pub async fn unsubscribe_resource(
        &self,
        server: &ServerName,
        uri: &str,
    ) -> Result<(), HostError> {
        self.on_every_replica(server, |resilient| async move {
            resilient.unsubscribe_resource(uri).await
        })
        .await
    }

    /// Run `act` on each replica of `server` at once: `Ok` when any succeeded, else the first
    /// replica's error.
    async fn on_every_replica<'a, F, Fut>(
        &'a self,
        server: &ServerName,
        act: F,
    ) -> Result<(), HostError>
    where
        F: Fn(Arc<Resilient>) -> Fut,
        Fut: Future<Output = Result<(), ClientError>> + 'a,
    {
        // Fails as any request does when the server is unavailable.
        self.connection(server.as_str())?;
        let replicas = self.resilient(server.as_str());
        let outcomes = join_all(replicas.into_iter().map(act)).await;
        if outcomes.iter().any(Result::is_ok) {
            return Ok(());
        }
        match outcomes.into_iter().find_map(Result::err) {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// Close every connection (stdio servers get their stdin closed, then are killed).
    pub async fn shutdown(mut self) {
        self.watchers.abort_all();
        // Aborted tasks end at their next await; wait so that they let go of the connections.
        while self.watchers.join_next().await.is_some() {}
        let slots = std::mem::take(&mut self.slots);
        let mut closing = Vec::new();
        for slot in slots.into_values() {
            let current: Vec<Arc<Connection>> =
                slot.replicas.iter().filter_map(|r| r.current()).collect();
            drop(slot);
            closing.extend(current.into_iter().filter_map(Arc::into_inner));
        }
        join_all(closing.into_iter().map(Connection::close)).await;
    }
}

/// One server's health: its replicas summed up.
fn server_health(name: &ServerName, slot: &Slot) -> ServerHealth {
    let reports: Vec<_> = slot.replicas.iter().map(|r| (r, r.health())).collect();
    let usable: Vec<_> = reports
        .iter()
        .filter(|(_, h)| h.status.is_usable() && !matches!(h.breaker, BreakerState::Open { .. }))
        .collect();
    let mut stats = ResilienceStats::default();
    for (replica, _) in &reports {
        let s = replica.stats();
        stats.calls += s.calls;
        stats.attempts += s.attempts;
        stats.retries += s.retries;
        stats.fast_fails += s.fast_fails;
        stats.budget_exhausted += s.budget_exhausted;
        stats.reconnects += s.reconnects;
        stats.cache_hits += s.cache_hits;
    }
    let best = usable.first().copied().or(reports.first());
    let (status, latency, breaker) = match (&slot.state, best) {
        (ServerState::Failed(error), _) => (
            HealthStatus::Down {
                reason: error.to_string(),
            },
            None,
            BreakerState::Closed,
        ),
        (ServerState::Connected(_), Some((_, health))) => {
            (health.status.clone(), health.latency, health.breaker)
        }
        (ServerState::Connected(_), None) => (
            HealthStatus::Down {
                reason: "it has no connection".to_owned(),
            },
            None,
            BreakerState::Closed,
        ),
    };
    ServerHealth {
        server: name.clone(),
        status,
        latency,
        breaker,
        stats,
        replicas: reports.len(),
        usable_replicas: if matches!(slot.state, ServerState::Failed(_)) {
            0
        } else {
            usable.len()
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_item_reads_serializes_and_prints_as_the_item() {
        let list = Arc::new(vec!["first".to_owned(), "second".to_owned()]);
        assert!(Cached::at(list.clone(), 2).is_none());
        let second = Cached::at(list.clone(), 1).expect("index 1 is in the list");
        assert_eq!(second.as_str(), "second");
        assert!(std::ptr::eq(&*second, &list[1]));
        assert_eq!(
            serde_json::to_value(&second).expect("serializes"),
            serde_json::json!("second")
        );
        assert_eq!(format!("{second:?}"), format!("{:?}", "second"));
        let found = Cached::find(&list, |item| item.starts_with('f')).expect("found");
        assert_eq!(found.as_str(), "first");
        assert!(Cached::find(&list, |item| item.is_empty()).is_none());
        let each: Vec<String> = Cached::each(&list).map(|item| item.to_string()).collect();
        assert_eq!(each, ["first", "second"]);
        assert_eq!(Cached::new(7).to_string(), "7");
    }
}
