//! [`Connection`]: one live session with one MCP server.

use std::{path::PathBuf, sync::Arc, time::Duration};

use rmcp::{
    model::{
        CallToolRequest, CallToolRequestParams, ClientRequest, GetPromptRequest,
        GetPromptRequestParams, ListPromptsRequest, ListResourceTemplatesRequest,
        ListResourcesRequest, ListToolsRequest, PaginatedRequestParams, PingRequest,
        ProtocolVersion, ReadResourceRequest, ReadResourceRequestParams, ServerNotification,
        SubscriptionFilter,
    },
    service::{
        ClientInitializeError, ClientLifecycleMode, ClientServiceExt, PeerRequestOptions,
        RoleClient, RunningService, ServiceError,
    },
    transport::{StreamableHttpClientTransport, Transport},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use switchboard_config::{ServerEntry, ServerName, Transport as ConfiguredTransport};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
};

use crate::{
    error::ClientError,
    handler::{ClientSide, progress_key},
    model::{
        Capabilities, Era, Implementation, Progress, Prompt, PromptMessage, PromptResult,
        ReadResult, Resource, ResourceContents, ResourceTemplate, ServerDescription, ServerEvent,
        Tool, ToolResult,
    },
    stdio::{ChildDiagnostics, ChildTransport, StderrTarget, StdioCommand},
    tap::{TappedTransport, WireTap},
};

/// A list is read page by page; a server that keeps returning cursors is cut off here.
pub const MAX_LIST_PAGES: usize = 1_000;
/// Default time allowed for the handshake (spawning, `server/discover` or `initialize`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time allowed for one request when the caller gives none.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a tool call may run in total, even while it keeps sending progress.
pub const DEFAULT_MAX_CALL_DURATION: Duration = Duration::from_secs(600);
/// How long to wait for an HTTP connection to be established.
pub const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which protocol era to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EraPreference {
    /// Try 2026-07-28 (`server/discover`) and fall back to the legacy handshake, as the spec
    /// describes. The right choice unless a server is known to misbehave.
    #[default]
    Auto,
    /// Only 2026-07-28; a legacy server is an error.
    Modern,
    /// Only the legacy `initialize` handshake (2025-11-25, accepting older answers).
    Legacy,
}

/// How to connect. Libraries take this explicitly; only the CLI reads flags and env.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub connect_timeout: Duration,
    pub era: EraPreference,
    /// Observer of every JSON-RPC message (for `--verbose`).
    pub tap: Option<Arc<dyn WireTap>>,
    /// Directory for per-server stderr logs (`<dir>/<server>.log`).
    pub log_dir: Option<PathBuf>,
    pub client_name: String,
    pub client_version: String,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            era: EraPreference::Auto,
            tap: None,
            log_dir: None,
            client_name: "switchboard".to_owned(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Per-call options for [`Connection::call_tool`].
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Time allowed without an answer; progress notifications restart it.
    pub timeout: Duration,
    /// Hard limit on the whole call, progress or not.
    pub max_duration: Duration,
    /// Where progress notifications for this call go.
    pub progress: Option<mpsc::Sender<Progress>>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: DEFAULT_REQUEST_TIMEOUT,
            max_duration: DEFAULT_MAX_CALL_DURATION,
            progress: None,
        }
    }
}

/// One live session with one MCP server.
pub struct Connection {
    name: ServerName,
    service: RunningService<RoleClient, ClientSide>,
    handler: ClientSide,
    description: ServerDescription,
    diagnostics: Option<Arc<ChildDiagnostics>>,
    events: std::sync::Mutex<Option<mpsc::Receiver<ServerEvent>>>,
    /// The `subscriptions/listen` stream of a modern server that announces list changes.
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// In the 2026-07-28 revision a server sends `list_changed` only on a `subscriptions/listen`
/// stream the client opened (legacy servers push it unasked). Open one for the lists the
/// server says can change, and turn what arrives into the same events.
fn listen_for_changes(
    service: &RunningService<RoleClient, ClientSide>,
    handler: &ClientSide,
    capabilities: &Capabilities,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut filter = SubscriptionFilter::builder();
    if capabilities.tools_list_changed {
        filter = filter.tools_list_changed();
    }
    if capabilities.prompts_list_changed {
        filter = filter.prompts_list_changed();
    }
    if capabilities.resources_list_changed {
        filter = filter.resources_list_changed();
    }
    if !(capabilities.tools_list_changed
        || capabilities.prompts_list_changed
        || capabilities.resources_list_changed)
    {
        return None;
    }
    let filter = filter.build();
    let peer = service.peer().clone();
    let handler = handler.clone();
    Some(tokio::spawn(async move {
        let mut subscription = match peer.listen(filter).await {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::debug!(%error, "the server refused subscriptions/listen; its list changes will not be seen");
                return;
            }
        };
        loop {
            match subscription.next().await {
                Ok(Some(ServerNotification::ToolListChangedNotification(_))) => {
                    handler.emit(ServerEvent::ToolsChanged)
                }
                Ok(Some(ServerNotification::PromptListChangedNotification(_))) => {
                    handler.emit(ServerEvent::PromptsChanged)
                }
                Ok(Some(ServerNotification::ResourceListChangedNotification(_))) => {
                    handler.emit(ServerEvent::ResourcesChanged)
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(error) => {
                    tracing::debug!(%error, "the subscriptions/listen stream ended");
                    return;
                }
            }
        }
    }))
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

fn install_crypto_provider() {
    // reqwest is built without a bundled provider so that we compile `ring` rather than
    // aws-lc; installing twice is harmless, so the error is ignored.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn lifecycle(era: EraPreference) -> ClientLifecycleMode {
    match era {
        EraPreference::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
        EraPreference::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        EraPreference::Legacy => ClientLifecycleMode::Initialize,
    }
}

impl Connection {
    /// Connect to a configured server: spawn it or reach it, then run the handshake.
    ///
    /// In [`EraPreference::Auto`], a server that answers `server/discover` with only legacy
    /// revisions is connected again with the legacy handshake (a stdio server is restarted,
    /// because the failed probe ended its session). A Streamable HTTP URL whose POST is refused
    /// with HTTP 400, 404 or 405 is tried again with the legacy HTTP+SSE transport, as the spec's
    /// backwards-compatibility section describes (not with [`EraPreference::Modern`], which
    /// HTTP+SSE cannot carry).
    pub async fn connect(
        entry: &ServerEntry,
        options: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        match Self::connect_once(entry, options).await {
            Err(ClientError::NoCommonVersion { theirs, .. })
                if options.era == EraPreference::Auto
                    && !theirs.is_empty()
                    && theirs.iter().all(|v| is_legacy_version(v)) =>
            {
                tracing::debug!(server = %entry.name, "legacy-only server; reconnecting with initialize");
                let legacy = ConnectOptions {
                    era: EraPreference::Legacy,
                    ..options.clone()
                };
                Self::connect_once(entry, &legacy).await
            }
            other => other,
        }
    }

    async fn connect_once(
        entry: &ServerEntry,
        options: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        let name = entry.name.clone();
        let label: Arc<str> = Arc::from(name.as_str());
        match &entry.transport {
            ConfiguredTransport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let env: Vec<(String, String)> = env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                    .collect();
                let program = resolve_program(&name, command, &env, cwd.as_deref())?;
                let stderr = StderrTarget {
                    log_file: options
                        .log_dir
                        .as_ref()
                        .map(|dir| dir.join(format!("{}.log", name.as_str()))),
                    tap: options.tap.clone(),
                };
                let spawn = ChildTransport::spawn(
                    label.clone(),
                    StdioCommand {
                        program: &program,
                        args,
                        env,
                        cwd: cwd.as_deref(),
                    },
                    stderr,
                    options.tap.clone(),
                );
                let (transport, diagnostics) = spawn.map_err(|source| ClientError::Spawn {
                    server: name.clone(),
                    command: command.clone(),
                    source,
                })?;
                Self::handshake(name, transport, Some(diagnostics), "stdio", options).await
            }
            ConfiguredTransport::StreamableHttp { url, headers } => {
                install_crypto_provider();
                let started = tokio::time::Instant::now();
                let client = http_client(&name, headers)?;
                let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.as_str());
                let transport = StreamableHttpClientTransport::with_client(client, config);
                // A server that only speaks the legacy HTTP+SSE transport answers our POST with
                // 400, 404 or 405; the spec's backwards-compatibility section then has the
                // client try HTTP+SSE at the same URL.
                let (transport, refusal) = crate::sse::RefusalWatch::new(transport);
                let result = match &options.tap {
                    Some(tap) => {
                        let tapped = TappedTransport {
                            inner: transport,
                            server: label,
                            tap: tap.clone(),
                        };
                        Self::handshake(name, tapped, None, "streamable-http", options).await
                    }
                    None => {
                        Self::handshake(name, transport, None, "streamable-http", options).await
                    }
                };
                match (result, refusal.status()) {
                    (Err(ClientError::Handshake { .. }), Some(status))
                        if options.era != EraPreference::Modern =>
                    {
                        tracing::info!(
                            server = %entry.name,
                            status,
                            "Streamable HTTP was refused; falling back to the legacy HTTP+SSE transport"
                        );
                        let mut fallback = entry.clone();
                        fallback.transport = ConfiguredTransport::Sse {
                            url: url.clone(),
                            headers: headers.clone(),
                        };
                        let remaining = ConnectOptions {
                            connect_timeout: options
                                .connect_timeout
                                .saturating_sub(started.elapsed()),
                            ..options.clone()
                        };
                        Box::pin(Self::connect_once(&fallback, &remaining))
                            .await
                            .map_err(|error| {
                                crate::sse::fallback_failed(error, status, options.connect_timeout)
                            })
                    }
                    (result, _) => result,
                }
            }
            ConfiguredTransport::Sse { url, headers } => {
                // HTTP+SSE is the 2024-11-05 transport: only the legacy handshake runs over it.
                if options.era == EraPreference::Modern {
                    return Err(ClientError::Handshake {
                        server: name,
                        reason: "the legacy HTTP+SSE transport cannot carry the 2026-07-28 revision, which was required".to_owned(),
                        diagnostics: String::new(),
                    });
                }
                install_crypto_provider();
                let started = tokio::time::Instant::now();
                let client = http_client(&name, headers)?;
                let (transport, diagnostics) = crate::sse::SseTransport::connect(
                    &name,
                    client,
                    url,
                    options.connect_timeout,
                    options.tap.clone(),
                )
                .await?;
                let legacy = ConnectOptions {
                    era: EraPreference::Legacy,
                    connect_timeout: options.connect_timeout.saturating_sub(started.elapsed()),
                    ..options.clone()
                };
                Self::handshake(name, transport, None, "sse", &legacy)
                    .await
                    .map_err(|error| diagnostics.annotate(error, options.connect_timeout))
            }
            ConfiguredTransport::WebSocket { url, headers } => {
                install_crypto_provider();
                let started = tokio::time::Instant::now();
                let (transport, diagnostics) = crate::ws::WebSocketTransport::connect(
                    &name,
                    url,
                    headers,
                    options.connect_timeout,
                    options.tap.clone(),
                )
                .await?;
                let remaining = ConnectOptions {
                    connect_timeout: options.connect_timeout.saturating_sub(started.elapsed()),
                    ..options.clone()
                };
                Self::handshake(name, transport, None, "websocket", &remaining)
                    .await
                    .map_err(|error| diagnostics.annotate(error, options.connect_timeout))
            }
        }
    }

    /// Connect over an already-open byte stream, e.g. one end of `tokio::io::duplex` in tests
    /// or a socket handed to us by a caller.
    pub async fn connect_io<R, W>(
        name: ServerName,
        reader: R,
        writer: W,
        options: &ConnectOptions,
    ) -> Result<Self, ClientError>
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let transport = rmcp::transport::async_rw::AsyncRwTransport::new_client(reader, writer);
        match &options.tap {
            Some(tap) => {
                let tapped = TappedTransport {
                    inner: transport,
                    server: Arc::from(name.as_str()),
                    tap: tap.clone(),
                };
                Self::handshake(name, tapped, None, "stream", options).await
            }
            None => Self::handshake(name, transport, None, "stream", options).await,
        }
    }

    async fn handshake<T>(
        name: ServerName,
        transport: T,
        diagnostics: Option<Arc<ChildDiagnostics>>,
        transport_label: &'static str,
        options: &ConnectOptions,
    ) -> Result<Self, ClientError>
    where
        T: Transport<RoleClient> + 'static,
    {
        let (handler, events) = ClientSide::new(
            Arc::from(name.as_str()),
            &options.client_name,
            &options.client_version,
        );
        let summary =
            |d: &Option<Arc<ChildDiagnostics>>| d.as_ref().map(|d| d.summary()).unwrap_or_default();
        let start = handler
            .clone()
            .serve_with_lifecycle(transport, lifecycle(options.era));
        let service = match tokio::time::timeout(options.connect_timeout, start).await {
            Err(_elapsed) => {
                return Err(ClientError::ConnectTimeout {
                    server: name,
                    after: options.connect_timeout,
                    diagnostics: summary(&diagnostics),
                });
            }
            Ok(Err(ClientInitializeError::NoCompatibleProtocolVersion {
                client_supported,
                server_supported,
            })) => {
                return Err(ClientError::NoCommonVersion {
                    server: name,
                    ours: client_supported.iter().map(ToString::to_string).collect(),
                    theirs: server_supported.iter().map(ToString::to_string).collect(),
                });
            }
            Ok(Err(error)) => {
                return Err(ClientError::Handshake {
                    server: name,
                    reason: describe_init_error(&error),
                    diagnostics: summary(&diagnostics),
                });
            }
            Ok(Ok(service)) => service,
        };
        let Some(info) = service.peer().peer_info() else {
            return Err(ClientError::Handshake {
                server: name,
                reason: "the handshake finished without server information".to_owned(),
                diagnostics: summary(&diagnostics),
            });
        };
        let era = if info.protocol_version.has_initialize() {
            Era::Legacy
        } else {
            Era::Modern
        };
        let description = ServerDescription {
            era,
            protocol_version: info.protocol_version.to_string(),
            implementation: info
                .server_info
                .as_ref()
                .and_then(|i| serde_json::to_value(i).ok())
                .and_then(|v| serde_json::from_value::<Implementation>(v).ok()),
            capabilities: Capabilities::from_json(
                serde_json::to_value(&info.capabilities).unwrap_or(Value::Null),
            ),
            instructions: info.instructions.clone(),
            transport: transport_label,
        };
        let listener = (era == Era::Modern)
            .then(|| listen_for_changes(&service, &handler, &description.capabilities))
            .flatten();
        Ok(Connection {
            name,
            service,
            handler,
            description,
            diagnostics,
            events: std::sync::Mutex::new(Some(events)),
            listener,
        })
    }

    pub fn name(&self) -> &ServerName {
        &self.name
    }

    pub fn description(&self) -> &ServerDescription {
        &self.description
    }

    /// The server's notifications (list changes, log messages). Can be taken once.
    pub fn take_events(&self) -> Option<mpsc::Receiver<ServerEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether the session has ended (the server exited or the connection broke).
    pub fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    async fn request(
        &self,
        method: &'static str,
        request: ClientRequest,
        options: PeerRequestOptions,
        progress: Option<mpsc::Sender<Progress>>,
    ) -> Result<Value, ClientError> {
        let timeout = options.timeout;
        let handle = self
            .service
            .peer()
            .send_cancellable_request(request, options)
            .await
            .map_err(|e| self.map_service_error(method, e))?;
        let token = progress_key(&handle.progress_token);
        if let Some(sender) = progress {
            self.handler.watch_progress(token.clone(), sender);
        }
        let response = handle.await_response().await;
        self.handler.unwatch_progress(&token);
        let result = match response {
            Ok(result) => result,
            Err(ServiceError::Timeout { timeout: after }) => {
                return Err(ClientError::RequestTimeout {
                    server: self.name.clone(),
                    method,
                    after: timeout.unwrap_or(after),
                });
            }
            Err(error) => return Err(self.map_service_error(method, error)),
        };
        let value =
            serde_json::to_value(&result).map_err(|e| self.protocol(method, e.to_string()))?;
        if value.get("resultType").and_then(Value::as_str) == Some("input_required") {
            return Err(self.protocol(
                method,
                "the server asked for more input (an input_required result); answering server requests is not supported by this command".to_owned(),
            ));
        }
        Ok(value)
    }

    fn protocol(&self, method: &'static str, detail: String) -> ClientError {
        ClientError::Protocol {
            server: self.name.clone(),
            method,
            detail,
        }
    }

    fn map_service_error(&self, method: &'static str, error: ServiceError) -> ClientError {
        match error {
            ServiceError::McpError(data) => ClientError::Rpc {
                server: self.name.clone(),
                method,
                code: i64::from(data.code.0),
                message: data.message.into_owned(),
                data: data.data.map(Box::new),
            },
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                ClientError::ConnectionLost {
                    server: self.name.clone(),
                    method,
                    diagnostics: self
                        .diagnostics
                        .as_ref()
                        .map(|d| d.summary())
                        .unwrap_or_default(),
                }
            }
            ServiceError::Timeout { timeout } => ClientError::RequestTimeout {
                server: self.name.clone(),
                method,
                after: timeout,
            },
            other => self.protocol(method, other.to_string()),
        }
    }

    fn parse<T: DeserializeOwned>(
        &self,
        method: &'static str,
        value: Value,
    ) -> Result<T, ClientError> {
        serde_json::from_value(value).map_err(|e| {
            self.protocol(
                method,
                format!("the result does not match the MCP schema: {e}"),
            )
        })
    }

    async fn list_pages<T: DeserializeOwned>(
        &self,
        method: &'static str,
        field: &'static str,
        timeout: Duration,
        make: impl Fn(Option<String>) -> ClientRequest,
    ) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _page in 0..MAX_LIST_PAGES {
            let value = self
                .request(
                    method,
                    make(cursor.clone()),
                    PeerRequestOptions::with_timeout(timeout),
                    None,
                )
                .await?;
            let next = value
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let page = value
                .get(field)
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            items.extend(self.parse::<Vec<T>>(method, page)?);
            match next {
                Some(next) if next.is_empty() => return Ok(items),
                Some(next) if Some(&next) == cursor.as_ref() => {
                    return Err(self.protocol(
                        method,
                        format!("the server returned the same cursor {next:?} twice"),
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
        Err(self.protocol(method, format!("more than {MAX_LIST_PAGES} pages")))
    }

    pub async fn list_tools(&self, timeout: Duration) -> Result<Vec<Tool>, ClientError> {
        self.list_pages("tools/list", "tools", timeout, |cursor| {
            ClientRequest::ListToolsRequest(ListToolsRequest::with_param(
                PaginatedRequestParams::default().with_cursor(cursor),
            ))
        })
        .await
    }

    pub async fn list_resources(&self, timeout: Duration) -> Result<Vec<Resource>, ClientError> {
        self.list_pages("resources/list", "resources", timeout, |cursor| {
            ClientRequest::ListResourcesRequest(ListResourcesRequest::with_param(
                PaginatedRequestParams::default().with_cursor(cursor),
            ))
        })
        .await
    }

    pub async fn list_resource_templates(
        &self,
        timeout: Duration,
    ) -> Result<Vec<ResourceTemplate>, ClientError> {
        self.list_pages(
            "resources/templates/list",
            "resourceTemplates",
            timeout,
            |cursor| {
                ClientRequest::ListResourceTemplatesRequest(
                    ListResourceTemplatesRequest::with_param(
                        PaginatedRequestParams::default().with_cursor(cursor),
                    ),
                )
            },
        )
        .await
    }

    pub async fn list_prompts(&self, timeout: Duration) -> Result<Vec<Prompt>, ClientError> {
        self.list_pages("prompts/list", "prompts", timeout, |cursor| {
            ClientRequest::ListPromptsRequest(ListPromptsRequest::with_param(
                PaginatedRequestParams::default().with_cursor(cursor),
            ))
        })
        .await
    }

    /// Call a tool. A tool that ran and failed is `Ok` with `is_error`; only protocol and
    /// transport failures are `Err`.
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Option<Map<String, Value>>,
        options: CallOptions,
    ) -> Result<ToolResult, ClientError> {
        const METHOD: &str = "tools/call";
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments;
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let peer_options = PeerRequestOptions::with_timeout(options.timeout)
            .reset_timeout_on_progress()
            .with_max_total_timeout(options.max_duration);
        let value = self
            .request(METHOD, request, peer_options, options.progress)
            .await?;
        ToolResult::from_json(value).map_err(|e| {
            self.protocol(
                METHOD,
                format!("the result does not match the MCP schema: {e}"),
            )
        })
    }

    pub async fn read_resource(
        &self,
        uri: &str,
        timeout: Duration,
    ) -> Result<ReadResult, ClientError> {
        const METHOD: &str = "resources/read";
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(
            ReadResourceRequestParams::new(uri),
        ));
        let raw = self
            .request(
                METHOD,
                request,
                PeerRequestOptions::with_timeout(timeout),
                None,
            )
            .await?;
        let contents: Vec<ResourceContents> = self.parse(
            METHOD,
            raw.get("contents")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
        )?;
        Ok(ReadResult { contents, raw })
    }

    pub async fn get_prompt(
        &self,
        prompt: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<PromptResult, ClientError> {
        const METHOD: &str = "prompts/get";
        let mut params = GetPromptRequestParams::new(prompt);
        if !arguments.is_empty() {
            params.arguments = Some(arguments);
        }
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
        let raw = self
            .request(
                METHOD,
                request,
                PeerRequestOptions::with_timeout(timeout),
                None,
            )
            .await?;
        let messages: Vec<PromptMessage> = self.parse(
            METHOD,
            raw.get("messages")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
        )?;
        let description = raw
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(PromptResult {
            description,
            messages,
            raw,
        })
    }

    /// A liveness check: `ping` (legacy era only; the modern revision has no ping).
    pub async fn ping(&self, timeout: Duration) -> Result<(), ClientError> {
        self.request(
            "ping",
            ClientRequest::PingRequest(PingRequest::default()),
            PeerRequestOptions::with_timeout(timeout),
            None,
        )
        .await
        .map(drop)
    }

    /// End the session: close the transport (stdin for a child, which then exits or is killed).
    pub async fn close(mut self) {
        let _ = self.service.close().await;
    }
}

/// Whether `version` is a known revision that uses the `initialize` handshake.
fn is_legacy_version(version: &str) -> bool {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .any(|known| known.has_initialize() && known.to_string() == version)
}

fn describe_init_error(error: &ClientInitializeError) -> String {
    match error {
        ClientInitializeError::ConnectionClosed(_) => {
            "the server closed the connection before answering".to_owned()
        }
        ClientInitializeError::LegacyFallbackFailed { discover, fallback } => format!(
            "server/discover failed ({}) and the legacy initialize failed too ({})",
            describe_init_error(discover),
            describe_init_error(fallback)
        ),
        ClientInitializeError::TransportError { error, context } => {
            format!("{context}: {}", error_chain(error))
        }
        other => other.to_string(),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

fn http_client(
    server: &ServerName,
    headers: &indexmap::IndexMap<String, switchboard_config::Secret>,
) -> Result<reqwest::Client, ClientError> {
    let mut map = http::HeaderMap::new();
    for (key, value) in headers {
        let invalid = |detail: String| ClientError::InvalidHttpSetting {
            server: server.clone(),
            detail,
        };
        let name = http::HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| invalid(format!("{key:?} is not a valid HTTP header name")))?;
        let mut value = http::HeaderValue::from_str(value.expose())
            .map_err(|_| invalid(format!("the value of header {key:?} is not valid in HTTP")))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    reqwest::Client::builder()
        .default_headers(map)
        .connect_timeout(HTTP_CONNECT_TIMEOUT)
        // Small JSON-RPC writes must not wait for delayed ACKs (Nagle): see issue 10.
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ClientError::InvalidHttpSetting {
            server: server.clone(),
            detail: error_chain(&e),
        })
}

/// Find the program the way a shell would, with the server's own PATH if it sets one.
fn resolve_program(
    server: &ServerName,
    command: &str,
    env: &[(String, String)],
    cwd: Option<&std::path::Path>,
) -> Result<PathBuf, ClientError> {
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let base = cwd
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    which::which_in(command, path_var, base).map_err(|_| ClientError::CommandNotFound {
        server: server.clone(),
        command: command.to_owned(),
        hint: match command {
            "npx" | "node" | "npm" => {
                "; install Node.js, or give the full path of the command".to_owned()
            }
            "uvx" | "uv" => {
                "; install uv (https://docs.astral.sh/uv/), or give the full path of the command"
                    .to_owned()
            }
            "python" | "python3" => {
                "; install Python, or give the full path of the interpreter".to_owned()
            }
            _ => "; install it, or give its full path in the config".to_owned(),
        },
    })
}
