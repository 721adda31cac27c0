//! [`Connection`]: one live session with one MCP server.

mod direct;
mod inline;
mod listen;
mod tasks;

pub use tasks::{TASK_POLL_DEFAULT, TASK_POLL_MAX, TASK_POLL_MIN};

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use rmcp::{
    model::{
        ArgumentInfo, CallToolRequest, CallToolRequestParams, ClientRequest, CompleteRequest,
        CompleteRequestParams, CompletionContext, GetPromptRequest, GetPromptRequestParams,
        InputResponses, ListPromptsRequest, ListResourceTemplatesRequest, ListResourcesRequest,
        ListToolsRequest, PaginatedRequestParams, PingRequest, ProtocolVersion,
        ReadResourceRequest, ReadResourceRequestParams, Reference, SubscribeRequestParams,
        SubscriptionFilter, UnsubscribeRequestParams,
    },
    service::{
        ClientInitializeError, ClientLifecycleMode, ClientServiceExt, PeerRequestOptions,
        RoleClient, RunningService, ServiceError,
    },
    transport::{
        StreamableHttpClientTransport, Transport, streamable_http_client::StreamableHttpClient,
    },
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use switchboard_config::{ServerEntry, ServerName, Transport as ConfiguredTransport};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
};
use tokio_util::task::TaskTracker;

use crate::{
    callbacks::{CallRelay, ClientCallbacks},
    error::ClientError,
    handler::{ClientSide, InOrder, progress_key},
    model::CacheHint,
    model::{
        Capabilities, Completion, CompletionTarget, Era, Implementation, Progress, Prompt,
        PromptMessage, PromptResult, ReadResult, Resource, ResourceContents, ResourceTemplate,
        ServerDescription, ServerEvent, Tool, ToolResult,
    },
    oauth::{AuthFailure, OAuthHttp, OAuthOptions},
    standalone::{STANDALONE_STREAM_WAIT, StreamWatch},
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
/// How long an idle pooled HTTP connection is kept open for the next request.
pub const HTTP_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most idle pooled HTTP connections kept per server.
pub const HTTP_POOL_MAX_IDLE: usize = 32;
/// TCP keep-alive probes on HTTP connections, so dead peers are noticed.
pub const HTTP_TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// How many `input_required` rounds (SEP-2322) one call may take before the client gives up on a
/// server that keeps asking.
pub const MAX_INPUT_ROUNDS: usize = 10;
/// Pause before retrying an `input_required` round that asked for nothing but carried a
/// `requestState` (the server is not ready yet): this, doubling each round, up to
/// [`MAX_STATE_ONLY_PAUSE`].
const STATE_ONLY_PAUSE: Duration = Duration::from_millis(50);
const MAX_STATE_ONLY_PAUSE: Duration = Duration::from_millis(800);

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
    /// What answers the server's requests for input (elicitation, sampling, roots), in a legacy
    /// session and in 2026-07-28 `input_required` rounds alike. The client declares exactly the
    /// capabilities these callbacks support; without them it declares none, and a server that
    /// asks anyway gets "method not found" (the call fails in the 2026-07-28 era).
    pub callbacks: Option<Arc<dyn ClientCallbacks>>,
    /// OAuth for Streamable HTTP servers that answer 401: see [`crate::oauth`]. Without it, a
    /// server that requires authorization is an error (unless a configured `Authorization`
    /// header satisfies it).
    pub oauth: Option<OAuthOptions>,
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
            callbacks: None,
            oauth: None,
        }
    }
}

/// The waiting rules of one request, applied to every round of it.
#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Duration,
    /// Progress restarts `timeout`, up to `max_duration` in total (tool calls).
    max_duration: Option<Duration>,
}

impl Limits {
    fn plain(timeout: Duration) -> Self {
        Limits {
            timeout,
            max_duration: None,
        }
    }

    fn peer_options(self) -> PeerRequestOptions {
        let options = PeerRequestOptions::with_timeout(self.timeout);
        match self.max_duration {
            Some(max) => options
                .reset_timeout_on_progress()
                .with_max_total_timeout(max),
            None => options,
        }
    }
}

/// What one request carries besides its params: where its progress and the server's requests
/// for input go, and `_meta` entries of its own (sent over the connection's).
#[derive(Debug, Clone, Default)]
struct Extras {
    progress: Option<mpsc::Sender<Progress>>,
    relay: Option<Arc<dyn CallRelay>>,
    meta: Option<rmcp::model::RequestMetaObject>,
}

/// The same request again with the answers of an `input_required` round and the server's
/// `requestState` echoed unchanged (absent when the server sent none). Only the three
/// methods that SEP-2322 lets a server answer with `input_required` can be retried.
fn with_input(
    request: &ClientRequest,
    responses: Option<InputResponses>,
    state: Option<String>,
) -> Option<ClientRequest> {
    let mut request = request.clone();
    match &mut request {
        ClientRequest::CallToolRequest(call) => {
            call.params.input_responses = responses;
            call.params.request_state = state;
        }
        ClientRequest::GetPromptRequest(get) => {
            get.params.input_responses = responses;
            get.params.request_state = state;
        }
        ClientRequest::ReadResourceRequest(read) => {
            read.params.input_responses = responses;
            read.params.request_state = state;
        }
        _ => return None,
    }
    Some(request)
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
    /// Who answers the server's requests for input during this call, and gets its logs,
    /// instead of the connection's callbacks: see [`CallRelay`].
    pub relay: Option<Arc<dyn CallRelay>>,
    /// Ask a 2026-07-28 server for its logs during this call, from this level up (`debug`,
    /// `info`, … `emergency`; `io.modelcontextprotocol/logLevel`). Without it that revision
    /// sends none. A legacy session's level is set for the session (`logging/setLevel`).
    pub log_level: Option<String>,
    /// Declare these client capabilities (a `ClientCapabilities` object) for this request
    /// instead of the connection's: a gateway passes on its own client's. 2026-07-28 only; a
    /// legacy session's are fixed by `initialize`.
    pub client_capabilities: Option<Value>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: DEFAULT_REQUEST_TIMEOUT,
            max_duration: DEFAULT_MAX_CALL_DURATION,
            progress: None,
            relay: None,
            log_level: None,
            client_capabilities: None,
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
    /// The `subscriptions/listen` stream that carries a modern server's resource updates.
    updates: tokio::sync::Mutex<UpdatesListen>,
    /// Why the last OAuth authorization failed, for connections that authorize.
    auth_failure: Option<AuthFailure>,
    /// The direct path of a 2026-07-28 Streamable HTTP server's calls ([`direct`]).
    direct: Option<Box<direct::DirectPost>>,
    /// The `notifications/cancelled` of abandoned requests still on their way out; `close`
    /// lets them reach the server before it ends the session.
    cancels: TaskTracker,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// The resources a modern server was asked for updates of, and the `subscriptions/listen`
/// stream that names them. A listen filter cannot be changed, so each change of the set opens
/// a new stream and then ends the old one (an update in between may come twice, never not).
#[derive(Default)]
struct UpdatesListen {
    uris: Vec<String>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for UpdatesListen {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// In the 2026-07-28 revision a server sends `list_changed` only on a `subscriptions/listen`
/// stream the client opened (legacy servers push it unasked). Keep one open for the lists the
/// server says can change ([`listen`]), and turn what arrives into the same events.
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
    Some(tokio::spawn(listen::keep_listening(
        service.peer().clone(),
        filter,
        handler.clone(),
        None,
    )))
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
                let header_map = configured_headers(&name, headers)?;
                let client = http_client(&name, header_map.clone())?;
                let (result, refusal) = match &options.oauth {
                    Some(oauth) => {
                        let (client, failure) = OAuthHttp::new(client, url.clone(), oauth.clone())
                            .map_err(|reason| ClientError::Authorization {
                                server: name.clone(),
                                reason,
                            })?;
                        let (result, refusal) =
                            Self::streamable(name.clone(), label, client, url, options).await;
                        let result = match result {
                            Ok(mut connection) => {
                                connection.auth_failure = Some(failure);
                                Ok(connection)
                            }
                            Err(error) => Err(match failure.reason() {
                                Some(reason) => ClientError::Authorization {
                                    server: name.clone(),
                                    reason,
                                },
                                None => error,
                            }),
                        };
                        (result, refusal)
                    }
                    None => {
                        let (result, refusal) =
                            Self::streamable(name.clone(), label, client.clone(), url, options)
                                .await;
                        let result = result.and_then(|mut connection| {
                            connection.go_direct(client, url, header_map, options)?;
                            Ok(connection)
                        });
                        (result, refusal)
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
                let client = http_client(&name, configured_headers(&name, headers)?)?;
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

    /// The Streamable HTTP handshake over `client` (plain, or adding OAuth). A server that only
    /// speaks the legacy HTTP+SSE transport answers our POST with 400, 404 or 405; the returned
    /// [`crate::sse::Refusal`] records it, and the spec's backwards-compatibility section then
    /// has the caller try HTTP+SSE at the same URL.
    async fn streamable<C: StreamableHttpClient + Sync>(
        name: ServerName,
        label: Arc<str>,
        client: C,
        url: &reqwest::Url,
        options: &ConnectOptions,
    ) -> (Result<Self, ClientError>, crate::sse::Refusal) {
        // A legacy session the server forgot (404) is initialised again and the request
        // sent again, once (rmcp's default, stated here because resilience relies on it).
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                url.as_str(),
            )
            .reinit_on_expired_session(true);
        let (client, stream_answered) = StreamWatch::new(client);
        let transport = StreamableHttpClientTransport::with_client(client, config);
        let (transport, refusal) = crate::sse::RefusalWatch::new(transport);
        let started = tokio::time::Instant::now();
        let result = match &options.tap {
            Some(tap) => {
                let tapped = TappedTransport {
                    inner: transport,
                    server: label,
                    tap: tap.clone(),
                };
                Self::handshake(name, tapped, None, "streamable-http", options).await
            }
            None => Self::handshake(name, transport, None, "streamable-http", options).await,
        };
        if let Ok(connection) = &result
            && connection.description.era == Era::Legacy
        {
            // A legacy session is ready for the server's own requests once its standalone
            // stream is (see `crate::standalone`).
            let limit = STANDALONE_STREAM_WAIT
                .min(options.connect_timeout.saturating_sub(started.elapsed()));
            if !stream_answered.wait(limit).await {
                tracing::debug!(server = %connection.name, ?limit, "the session's event stream did not open in time; going on without waiting");
            }
        }
        (result, refusal)
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
            options.callbacks.clone(),
        );
        let summary =
            |d: &Option<Arc<ChildDiagnostics>>| d.as_ref().map(|d| d.summary()).unwrap_or_default();
        let transport = InOrder {
            inner: transport,
            side: handler.clone(),
        };
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
        if era == Era::Modern {
            handler.take_updates_from_streams_only();
        }
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
            updates: tokio::sync::Mutex::default(),
            auth_failure: None,
            direct: None,
            cancels: TaskTracker::new(),
        })
    }

    /// Send this modern Streamable HTTP server's calls on the direct path ([`direct`]), over
    /// `client`'s connection pool. A legacy session keeps rmcp's transport for everything: its
    /// server may send requests of its own on the session.
    fn go_direct(
        &mut self,
        client: reqwest::Client,
        url: &reqwest::Url,
        headers: http::HeaderMap,
        options: &ConnectOptions,
    ) -> Result<(), ClientError> {
        if self.description.era != Era::Modern {
            return Ok(());
        }
        let inline = inline_http(url, headers);
        let declared = rmcp::ClientHandler::get_info(&self.handler);
        self.direct = Some(Box::new(direct::DirectPost::new(
            self.name.clone(),
            direct::Senders {
                pooled: client,
                inline,
            },
            url.clone(),
            &self.description.protocol_version,
            serde_json::to_value(&declared.client_info).unwrap_or(Value::Null),
            serde_json::to_value(&declared.capabilities).unwrap_or(Value::Null),
            options.tap.clone(),
        )?));
        Ok(())
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

    /// Send a request and wait for its result. An `input_required` result (2026-07-28) is
    /// answered through the callbacks and the request is sent again, with a new id, the answers
    /// and the server's `requestState`, until the server completes it. `limits` apply to each
    /// round: the time a person takes to answer is not the server's.
    async fn request(
        &self,
        method: &'static str,
        request: ClientRequest,
        limits: Limits,
        extras: Extras,
    ) -> Result<Value, ClientError> {
        // What follows a first answer that is not the result (input rounds, a task) is boxed:
        // it is rare, and its futures would otherwise be part of every request's.
        let mut current = request;
        let mut pause = STATE_ONLY_PAUSE;
        for _round in 0..MAX_INPUT_ROUNDS {
            let value = self.request_once(method, &current, limits, &extras).await?;
            match value.get("resultType").and_then(Value::as_str) {
                Some("input_required") => {}
                // The call runs on as a task (SEP-2663): its result comes from tasks/get.
                Some("task") if method == "tools/call" => {
                    return Box::pin(async {
                        if let Some(relay) = &extras.relay {
                            relay.task_started().await;
                        }
                        self.follow_task(&value, limits, &extras).await
                    })
                    .await;
                }
                _ => return Ok(value),
            }
            let (responses, state) =
                Box::pin(self.answer_input_requests(method, &value, extras.relay.as_ref())).await?;
            if responses.is_none() {
                Box::pin(tokio::time::sleep(pause)).await;
                pause = (pause * 2).min(MAX_STATE_ONLY_PAUSE);
            }
            current = with_input(&current, responses, state).ok_or_else(|| {
                self.protocol(
                    method,
                    "the server answered with input_required, which only tools/call, prompts/get and resources/read may receive".to_owned(),
                )
            })?;
        }
        Err(self.protocol(
            method,
            format!("the server still asked for more input after {MAX_INPUT_ROUNDS} rounds"),
        ))
    }

    /// Answer every entry of an `input_required` result's `inputRequests` (concurrently: each
    /// may wait on a person or a model) and return the `inputResponses` and `requestState`
    /// for the retry.
    async fn answer_input_requests(
        &self,
        method: &'static str,
        result: &Value,
        relay: Option<&Arc<dyn CallRelay>>,
    ) -> Result<(Option<InputResponses>, Option<String>), ClientError> {
        let requests = match result.get("inputRequests") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(requests)) => requests.clone(),
            Some(_) => {
                return Err(self.protocol(
                    method,
                    "the input_required result's inputRequests is not an object".to_owned(),
                ));
            }
        };
        let state = match result.get("requestState") {
            None | Some(Value::Null) => None,
            Some(Value::String(state)) => Some(state.clone()),
            Some(_) => {
                return Err(self.protocol(
                    method,
                    "the input_required result's requestState is not a string".to_owned(),
                ));
            }
        };
        if requests.is_empty() && state.is_none() {
            return Err(self.protocol(
                method,
                "the server asked for input but sent neither inputRequests nor requestState"
                    .to_owned(),
            ));
        }
        let answers = futures::future::join_all(requests.into_iter().map(|(key, request)| {
            let handler = self.handler.clone();
            let relay = relay.cloned();
            async move {
                let asked = request
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let params = request
                    .get("params")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new()));
                let answer = match &relay {
                    Some(relay) => relay.answer(Some(&key), &asked, params).await,
                    None => handler.answer(&asked, params).await,
                };
                (key, asked, answer)
            }
        }))
        .await;
        let mut responses = InputResponses::new();
        for (key, asked, answer) in answers {
            match answer {
                Ok(answer) => {
                    responses.insert(key, answer);
                }
                Err(error) => {
                    return Err(self.protocol(
                        method,
                        format!(
                            "the server asked for input ({asked} \"{key}\") that this client could not give: {error}"
                        ),
                    ));
                }
            }
        }
        Ok(((!responses.is_empty()).then_some(responses), state))
    }

    /// One round of a request: on the direct path when it carries `method`, through rmcp's
    /// service otherwise. Each is boxed: either exchange would make every caller's future much
    /// larger, and those futures are moved whole when they are boxed further up.
    async fn request_once(
        &self,
        method: &'static str,
        request: &ClientRequest,
        limits: Limits,
        extras: &Extras,
    ) -> Result<Value, ClientError> {
        if let Some(direct) = &self.direct
            && direct::DirectPost::carries(method)
        {
            // The tool's `Mcp-Param-*` headers come from its listing; a connection that has
            // not listed it (a new one, or a replica whose host listed through another) lists
            // the tools first. A failed listing leaves the call to go out as it is.
            if let ClientRequest::CallToolRequest(call) = request
                && !direct.knows_tool(&call.params.name)
                && let Err(error) = Box::pin(self.list_tools(limits.timeout)).await
            {
                tracing::debug!(server = %self.name, %error, "could not list the tools before a call");
            }
            return Box::pin(direct.request(method, request, limits, extras, &self.handler)).await;
        }
        Box::pin(self.through_service(method, request.clone(), limits, extras)).await
    }

    /// One round of a request through rmcp's service, with cancellation when it is dropped.
    async fn through_service(
        &self,
        method: &'static str,
        request: ClientRequest,
        limits: Limits,
        extras: &Extras,
    ) -> Result<Value, ClientError> {
        let mut options = limits.peer_options();
        options.meta.clone_from(&extras.meta);
        let handle = self
            .service
            .peer()
            .send_cancellable_request(request, options)
            .await
            .map_err(|e| self.map_service_error(method, e))?;
        let token = progress_key(&handle.progress_token);
        if let Some(sender) = &extras.progress {
            self.handler.watch_progress(token.clone(), sender.clone());
        }
        let mut guard = CancelOnDrop {
            method,
            peer: Some(handle.peer.clone()),
            id: handle.id.clone(),
            handler: self.handler.clone(),
            progress_token: token,
            cancels: self.cancels.clone(),
        };
        let response = handle.await_response().await;
        // Answered, failed or timed out (rmcp cancels a timed-out request itself): nothing
        // is left to cancel.
        guard.disarm();
        drop(guard);
        let result = match response {
            Ok(result) => result,
            Err(ServiceError::Timeout { .. }) => {
                return Err(ClientError::RequestTimeout {
                    server: self.name.clone(),
                    method,
                    after: limits.timeout,
                });
            }
            Err(error) => return Err(self.map_service_error(method, error)),
        };
        serde_json::to_value(&result).map_err(|e| self.protocol(method, e.to_string()))
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
            ServiceError::TransportClosed | ServiceError::TransportSend(_)
                if let Some(reason) = self.auth_failure.as_ref().and_then(AuthFailure::reason) =>
            {
                ClientError::Authorization {
                    server: self.name.clone(),
                    reason,
                }
            }
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
        Ok(self
            .list_pages_with_hint(method, field, timeout, make)
            .await?
            .0)
    }

    /// Every page of a list, with the cache hint of the first page.
    async fn list_pages_with_hint<T: DeserializeOwned>(
        &self,
        method: &'static str,
        field: &'static str,
        timeout: Duration,
        make: impl Fn(Option<String>) -> ClientRequest,
    ) -> Result<(Vec<T>, CacheHint), ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut hint = None;
        for _page in 0..MAX_LIST_PAGES {
            let value = self
                .request(
                    method,
                    make(cursor.clone()),
                    Limits::plain(timeout),
                    Extras::default(),
                )
                .await?;
            let hint = hint.get_or_insert_with(|| CacheHint::from_result(&value));
            let next = value
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let page = value
                .get(field)
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            if method == "tools/list"
                && let Some(direct) = &self.direct
            {
                direct.learn_tools(&page);
            }
            items.extend(self.parse::<Vec<T>>(method, page)?);
            match next {
                Some(next) if next.is_empty() => return Ok((items, hint.clone())),
                Some(next) if Some(&next) == cursor.as_ref() => {
                    return Err(self.protocol(
                        method,
                        format!("the server returned the same cursor {next:?} twice"),
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok((items, hint.clone())),
            }
        }
        Err(self.protocol(method, format!("more than {MAX_LIST_PAGES} pages")))
    }

    /// [`Connection::list_tools`] with the result's cache hint (2026-07-28 `ttlMs`/`cacheScope`).
    pub async fn list_tools_with_hint(
        &self,
        timeout: Duration,
    ) -> Result<(Vec<Tool>, CacheHint), ClientError> {
        self.list_pages_with_hint("tools/list", "tools", timeout, |cursor| {
            ClientRequest::ListToolsRequest(ListToolsRequest::with_param(
                PaginatedRequestParams::default().with_cursor(cursor),
            ))
        })
        .await
    }

    pub async fn list_resources_with_hint(
        &self,
        timeout: Duration,
    ) -> Result<(Vec<Resource>, CacheHint), ClientError> {
        self.list_pages_with_hint("resources/list", "resources", timeout, |cursor| {
            ClientRequest::ListResourcesRequest(ListResourcesRequest::with_param(
                PaginatedRequestParams::default().with_cursor(cursor),
            ))
        })
        .await
    }

    pub async fn list_resource_templates_with_hint(
        &self,
        timeout: Duration,
    ) -> Result<(Vec<ResourceTemplate>, CacheHint), ClientError> {
        self.list_pages_with_hint(
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

    pub async fn list_prompts_with_hint(
        &self,
        timeout: Duration,
    ) -> Result<(Vec<Prompt>, CacheHint), ClientError> {
        self.list_pages_with_hint("prompts/list", "prompts", timeout, |cursor| {
            ClientRequest::ListPromptsRequest(ListPromptsRequest::with_param(
                PaginatedRequestParams::default().with_cursor(cursor),
            ))
        })
        .await
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

    /// [`Self::request`] with a call's options: its relay watches the session while the
    /// request runs, and its log level and client capabilities go into `_meta`.
    // Logging is deprecated by SEP-2577, but 2026-07-28 servers still honour the log level.
    #[allow(deprecated)]
    async fn relayed(
        &self,
        method: &'static str,
        request: ClientRequest,
        limits: Limits,
        options: CallOptions,
    ) -> Result<Value, ClientError> {
        let mut meta = rmcp::model::RequestMetaObject::new();
        if let Some(name) = &options.log_level {
            match serde_json::from_value::<rmcp::model::LoggingLevel>(Value::String(name.clone())) {
                Ok(level) => meta.set_log_level(level),
                Err(_) => tracing::warn!(
                    server = %self.name,
                    level = %name,
                    "not a log level (debug, info, notice, warning, error, critical, alert, emergency); asking for no logs"
                ),
            }
        }
        if let Some(capabilities) = &options.client_capabilities {
            match serde_json::from_value::<rmcp::model::ClientCapabilities>(capabilities.clone()) {
                Ok(capabilities) => meta.set_client_capabilities(capabilities),
                Err(error) => {
                    return Err(self.protocol(
                        method,
                        format!("the client capabilities to declare are malformed: {error}"),
                    ));
                }
            }
        }
        // A legacy server's requests and logs during the call go to its relay.
        let _relayed = options
            .relay
            .as_ref()
            .map(|relay| self.handler.watch_relay(relay.clone()));
        let extras = Extras {
            progress: options.progress,
            relay: options.relay,
            meta: (!meta.is_empty()).then_some(meta),
        };
        self.request(method, request, limits, extras).await
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
        let limits = Limits {
            timeout: options.timeout,
            max_duration: Some(options.max_duration),
        };
        let value = self.relayed(METHOD, request, limits, options).await?;
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
        self.read_resource_with(
            uri,
            CallOptions {
                timeout,
                ..CallOptions::default()
            },
        )
        .await
    }

    /// [`Self::read_resource`] with a call's options (its relay, log level and capabilities;
    /// `max_duration` does not apply).
    pub async fn read_resource_with(
        &self,
        uri: &str,
        options: CallOptions,
    ) -> Result<ReadResult, ClientError> {
        const METHOD: &str = "resources/read";
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(
            ReadResourceRequestParams::new(uri),
        ));
        let limits = Limits::plain(options.timeout);
        let raw = self.relayed(METHOD, request, limits, options).await?;
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
        self.get_prompt_with(
            prompt,
            arguments,
            CallOptions {
                timeout,
                ..CallOptions::default()
            },
        )
        .await
    }

    /// [`Self::get_prompt`] with a call's options (its relay, log level and capabilities;
    /// `max_duration` does not apply).
    pub async fn get_prompt_with(
        &self,
        prompt: &str,
        arguments: Map<String, Value>,
        options: CallOptions,
    ) -> Result<PromptResult, ClientError> {
        const METHOD: &str = "prompts/get";
        let mut params = GetPromptRequestParams::new(prompt);
        if !arguments.is_empty() {
            params.arguments = Some(arguments);
        }
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
        let limits = Limits::plain(options.timeout);
        let raw = self.relayed(METHOD, request, limits, options).await?;
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

    /// Candidate values for an argument of a prompt or resource template, given what was typed
    /// so far (`completion/complete`). A server without the `completions` capability has
    /// none to offer: the answer is empty, and nothing is sent.
    pub async fn complete(
        &self,
        target: &CompletionTarget,
        argument: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<Completion, ClientError> {
        self.complete_in_context(target, argument, value, &HashMap::new(), timeout)
            .await
    }

    /// [`Self::complete`], telling the server the values already chosen for the other
    /// arguments (`context.arguments`), so that its candidates can depend on them.
    pub async fn complete_in_context(
        &self,
        target: &CompletionTarget,
        argument: &str,
        value: &str,
        context: &HashMap<String, String>,
        timeout: Duration,
    ) -> Result<Completion, ClientError> {
        const METHOD: &str = "completion/complete";
        if !self.description.capabilities.completions {
            return Ok(Completion::default());
        }
        let reference = match target {
            CompletionTarget::Prompt(name) => Reference::for_prompt(name.clone()),
            CompletionTarget::Resource(uri) => Reference::for_resource(uri.clone()),
        };
        let mut params = CompleteRequestParams::new(reference, ArgumentInfo::new(argument, value));
        if !context.is_empty() {
            params = params.with_context(CompletionContext::with_arguments(context.clone()));
        }
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
        let raw = self
            .request(METHOD, request, Limits::plain(timeout), Extras::default())
            .await?;
        let completion = raw.get("completion").cloned().ok_or_else(|| {
            self.protocol(METHOD, "the result has no completion object".to_owned())
        })?;
        self.parse(METHOD, completion)
    }

    /// Ask the server for `notifications/resources/updated` about `uri`; they arrive as
    /// [`ServerEvent::ResourceUpdated`] on [`Self::take_events`]. The server must declare
    /// `resources.subscribe`. A legacy server gets `resources/subscribe`; a 2026-07-28 server
    /// gets a `subscriptions/listen` stream whose `resourceSubscriptions` name every resource
    /// subscribed to, and must acknowledge `uri`. Subscribing twice is subscribing once.
    pub async fn subscribe_resource(
        &self,
        uri: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.subscribe_resources(&[uri.to_owned()], timeout).await
    }

    /// [`Self::subscribe_resource`] for several resources: a 2026-07-28 server gets one new
    /// listen stream for all of them.
    pub async fn subscribe_resources(
        &self,
        uris: &[String],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        const METHOD: &str = "resources/subscribe";
        self.check_subscribable(METHOD)?;
        if self.description.era == Era::Modern {
            return self
                .change_updates(METHOD, timeout, |subscribed| {
                    let before = subscribed.len();
                    for uri in uris {
                        if !subscribed.contains(uri) {
                            subscribed.push(uri.clone());
                        }
                    }
                    subscribed.len() != before
                })
                .await;
        }
        for uri in uris {
            // rmcp deprecates this legacy-only request; it is what a legacy session uses.
            #[allow(deprecated)]
            let request = ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(
                SubscribeRequestParams::new(uri),
            ));
            self.request(METHOD, request, Limits::plain(timeout), Extras::default())
                .await?;
        }
        Ok(())
    }

    /// Stop the updates [`Self::subscribe_resource`] asked for: `resources/unsubscribe`, or a
    /// listen stream without `uri` (none, when it was the last).
    pub async fn unsubscribe_resource(
        &self,
        uri: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        const METHOD: &str = "resources/unsubscribe";
        self.check_subscribable(METHOD)?;
        if self.description.era == Era::Modern {
            return self
                .change_updates(METHOD, timeout, |uris| {
                    let before = uris.len();
                    uris.retain(|u| u != uri);
                    uris.len() != before
                })
                .await;
        }
        #[allow(deprecated)]
        let request = ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(
            UnsubscribeRequestParams::new(uri),
        ));
        self.request(METHOD, request, Limits::plain(timeout), Extras::default())
            .await
            .map(drop)
    }

    fn check_subscribable(&self, method: &'static str) -> Result<(), ClientError> {
        if self.description.capabilities.resource_subscribe {
            Ok(())
        } else {
            Err(self.protocol(
                method,
                "the server does not declare resources.subscribe".to_owned(),
            ))
        }
    }

    /// Change the set of resources a modern server sends updates of (`change` says whether it
    /// changed anything), and listen with the new set: the new stream is acknowledged before
    /// the old one ends. On an error the old stream and set stay.
    async fn change_updates(
        &self,
        method: &'static str,
        timeout: Duration,
        change: impl FnOnce(&mut Vec<String>) -> bool,
    ) -> Result<(), ClientError> {
        let mut listen = self.updates.lock().await;
        let mut uris = listen.uris.clone();
        if !change(&mut uris) {
            return Ok(());
        }
        let task = if uris.is_empty() {
            None
        } else {
            let filter = SubscriptionFilter::builder()
                .resource_subscriptions(uris.iter().cloned())
                .build();
            let subscription =
                tokio::time::timeout(timeout, self.service.peer().listen(filter.clone()))
                    .await
                    .map_err(|_| ClientError::RequestTimeout {
                        server: self.name.clone(),
                        method,
                        after: timeout,
                    })?
                    .map_err(|e| self.map_service_error(method, e))?;
            let acknowledged = subscription
                .acknowledged()
                .resource_subscriptions
                .clone()
                .unwrap_or_default();
            if let Some(refused) = uris.iter().find(|uri| !acknowledged.contains(uri)) {
                return Err(self.protocol(
                    method,
                    format!("the server did not acknowledge a subscription to {refused}"),
                ));
            }
            Some(tokio::spawn(listen::keep_listening(
                self.service.peer().clone(),
                filter,
                self.handler.clone(),
                Some(subscription),
            )))
        };
        if let Some(old) = std::mem::replace(&mut listen.task, task) {
            old.abort();
        }
        listen.uris = uris;
        Ok(())
    }

    /// A liveness check: `ping` (legacy era only; the modern revision has no ping).
    pub async fn ping(&self, timeout: Duration) -> Result<(), ClientError> {
        self.request(
            "ping",
            ClientRequest::PingRequest(PingRequest::default()),
            Limits::plain(timeout),
            Extras::default(),
        )
        .await
        .map(drop)
    }

    /// A liveness check that fits the era: `ping` on a legacy session, `server/discover` on a
    /// 2026-07-28 server (which has no ping).
    pub async fn probe(&self, timeout: Duration) -> Result<(), ClientError> {
        match self.description.era {
            Era::Legacy => self.ping(timeout).await,
            Era::Modern => self
                .request(
                    "server/discover",
                    ClientRequest::DiscoverRequest(rmcp::model::DiscoverRequest::new(
                        rmcp::model::DiscoverRequestParams {},
                    )),
                    Limits::plain(timeout),
                    Extras::default(),
                )
                .await
                .map(drop),
        }
    }

    /// End the session: close the transport (stdin for a child, which then exits or is killed).
    pub async fn close(mut self) {
        // A request abandoned just before (Ctrl-C, then shutdown) is still being cancelled;
        // closing first would drop that notification and leave the server working.
        self.cancels.close();
        let _ = tokio::time::timeout(CANCEL_SEND_TIMEOUT, self.cancels.wait()).await;
        let _ = self.service.close().await;
    }
}

/// How long the notification that cancels an abandoned request may take to be handed to the
/// transport before it is given up.
pub const CANCEL_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells the server that a request was abandoned: a caller that drops the future of a request
/// (a `select!`, an outer timeout, an agent that stopped) sends `notifications/cancelled` for it,
/// so the server stops the work and rmcp forgets the pending answer. Disarmed once the request
/// finished on its own.
struct CancelOnDrop {
    method: &'static str,
    /// `None` once disarmed.
    peer: Option<rmcp::service::Peer<RoleClient>>,
    id: rmcp::model::RequestId,
    handler: ClientSide,
    progress_token: String,
    /// The connection's [`Connection::cancels`].
    cancels: TaskTracker,
}

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.peer = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.handler.unwatch_progress(&self.progress_token);
        let Some(peer) = self.peer.take() else {
            return;
        };
        // Drop cannot await: the notification goes out from a short task, bounded by
        // CANCEL_SEND_TIMEOUT. Without a runtime (a process shutting down) there is no
        // transport left to send on either.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let id = self.id.clone();
        let method = self.method;
        tracing::debug!(%id, method, "request abandoned by its caller; cancelling it");
        self.cancels.spawn_on(
            async move {
                let notification = rmcp::model::CancelledNotification::new(
                    rmcp::model::CancelledNotificationParam::new(
                        Some(id),
                        Some(CANCELLED_BY_CALLER.to_owned()),
                    ),
                );
                let send = peer.send_notification(notification.into());
                let _ = tokio::time::timeout(CANCEL_SEND_TIMEOUT, send).await;
            },
            &runtime,
        );
    }
}

/// The `reason` of the `notifications/cancelled` sent for an abandoned request.
pub const CANCELLED_BY_CALLER: &str = "the caller abandoned the request";

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

/// The configured headers of an HTTP server, checked, marked sensitive (they often hold
/// credentials, which logs must not show).
fn configured_headers(
    server: &ServerName,
    headers: &indexmap::IndexMap<String, switchboard_config::Secret>,
) -> Result<http::HeaderMap, ClientError> {
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
    Ok(map)
}

fn http_client(
    server: &ServerName,
    headers: http::HeaderMap,
) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(HTTP_CONNECT_TIMEOUT)
        // One pool per connection (and so per replica): connections are reused and kept
        // alive between calls.
        .pool_idle_timeout(HTTP_POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(HTTP_POOL_MAX_IDLE)
        .tcp_keepalive(HTTP_TCP_KEEPALIVE)
        // Small JSON-RPC writes must not wait for delayed ACKs (Nagle): see issue 10.
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ClientError::InvalidHttpSetting {
            server: server.clone(),
            detail: error_chain(&e),
        })
}

/// The direct path's own connections to a plain-`http` server ([`inline`]), with the same
/// settings as [`http_client`]'s pool.
fn inline_http(url: &reqwest::Url, headers: http::HeaderMap) -> Option<Arc<inline::InlineHttp>> {
    let settings = inline::PoolSettings {
        connect_timeout: HTTP_CONNECT_TIMEOUT,
        idle_timeout: HTTP_POOL_IDLE_TIMEOUT,
        max_idle: HTTP_POOL_MAX_IDLE,
        keepalive: HTTP_TCP_KEEPALIVE,
    };
    inline::InlineHttp::for_url(url, headers, settings).map(Arc::new)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> ClientRequest {
        ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
            "ask".to_owned(),
        )))
    }

    #[test]
    fn a_retry_echoes_the_request_state_and_omits_it_when_there_was_none() {
        let mut responses = InputResponses::new();
        responses.insert(
            "confirm".to_owned(),
            serde_json::json!({"action": "accept"}),
        );

        let retry = with_input(&call(), Some(responses.clone()), Some("opaque".to_owned()))
            .expect("tools/call can be retried");
        let wire = serde_json::to_value(&retry).expect("serialisable");
        assert_eq!(wire["params"]["requestState"], "opaque");
        assert_eq!(
            wire["params"]["inputResponses"]["confirm"]["action"],
            "accept"
        );

        let retry = with_input(&call(), Some(responses), None).expect("tools/call can be retried");
        let wire = serde_json::to_value(&retry).expect("serialisable");
        assert!(wire["params"].get("requestState").is_none(), "{wire}");
    }

    #[test]
    fn only_calls_reads_and_prompts_can_be_retried_with_input() {
        let list = ClientRequest::ListToolsRequest(ListToolsRequest::default());
        assert!(with_input(&list, None, Some("state".to_owned())).is_none());
    }
}
