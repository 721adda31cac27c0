//! The gateway: one MCP endpoint in front of many upstream servers, in both protocol eras.
//!
//! [`Gateway::connect`] connects every upstream of a [`GatewayConfig`] through
//! `switchboard-host` (stdio commands, Streamable HTTP or WebSocket URLs, the same entry shape
//! as an `mcpServers` config), and serves them together through the server kit's dispatcher
//! with a dynamic [`switchboard_server::Catalogue`] ([`Upstreams`]):
//!
//! - tools and prompts as `{upstream}__{name}` (the host's qualified names), resources as
//!   `gateway://{upstream}/{original URI}` ([`uri`]);
//! - an upstream's `list_changed` invalidates the host's cache and is announced to the
//!   gateway's own clients (legacy sessions and 2026-07-28 `subscriptions/listen` streams);
//! - on Streamable HTTP at `/mcp` (both eras) behind one tower stack ([`front::router`], with
//!   the slot for issue 9's security layers), with `/healthz`, `/readyz` and `/metrics`; or on
//!   stdio ([`Gateway::serve_stdio`]);
//! - with `[security]` ([`security`]): authentication on the HTTP front, scopes, allow/deny
//!   lists, rate limits and one audit record per call in the catalogue; with Redis, replicas
//!   share rate limits and legacy sessions ([`sessions`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_gateway::GatewayError> {
//! use switchboard_gateway::{Gateway, GatewayConfig};
//!
//! let text = r#"
//! [upstreams.echo]
//! command = "switchboard"
//! args = ["serve", "echo"]
//! "#;
//! let config = GatewayConfig::parse(text, None, &|_| None)?;
//! let gateway = Gateway::connect(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
//! // Serve until Ctrl-C, then drain in-flight requests.
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
mod error;
pub mod front;
pub mod metrics;
pub mod registry;
mod relay;
pub mod security;
pub mod sessions;
pub mod upstreams;
pub mod uri;
pub mod ws;

use std::sync::Arc;

use switchboard_client::{ConnectOptions, model::ServerEvent};
use switchboard_host::{EventObserver, Host, HostOptions, ServerState};
use switchboard_server::{ListKind, Server};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use config::{EXAMPLE_CONFIG, GatewayConfig, Limits, ListenConfig, UpstreamLimits};
pub use error::GatewayError;
pub use front::FrontConfig;
pub use relay::{MAX_PARKED, PARK_TIMEOUT};
pub use security::Security;
pub use switchboard_policy;
pub use upstreams::{UpstreamHealth, Upstreams};

/// The name the gateway gives itself, to its clients and to its upstreams.
pub const GATEWAY_NAME: &str = "switchboard-gateway";

/// Upstream list changes and resource updates waiting to be announced; more are dropped
/// (with a warning), which costs nothing for list changes: one announcement of a kind covers
/// any number of them.
const LIST_CHANGE_QUEUE: usize = 64;

/// What an upstream announced that the gateway's clients must hear.
#[derive(Debug)]
enum Announcement {
    List(ListKind),
    /// A resource of this upstream changed (by its own URI).
    Updated(switchboard_config::ServerName, String),
}

/// How long an upstream's lists are reused even when it asks for no caching (`ttlMs: 0`
/// without change announcements): every forwarded call looks its tool up, and without this a
/// call to such an upstream cost two extra listings. A change announcement still clears them.
pub const LIST_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The length of a replica's id, which begins the ids of its tasks and parked calls.
pub const REPLICA_ID_LEN: usize = 16;

/// A connected gateway, ready to serve.
pub struct Gateway {
    server: Server,
    upstreams: Upstreams,
    config: GatewayConfig,
    /// `[security]`, when configured.
    security: Option<Arc<Security>>,
    /// Passes upstream list changes on to the server's clients.
    announcer: JoinHandle<()>,
    /// This process's id among the gateway's replicas (hex, [`REPLICA_ID_LEN`] characters).
    replica: String,
    /// WebSocket connections, and the token that closes them when the gateway stops.
    ws_tasks: TaskTracker,
    stopping: CancellationToken,
    /// The threads that serve HTTP connections, started by the first [`Gateway::serve`]. They
    /// stop last, in [`Gateway::shutdown`] (or when the gateway is dropped): what a call
    /// started on them (an audit record of an abandoned call, a reconnected upstream) is
    /// finished or stopped first.
    front_threads: std::sync::Mutex<Option<Arc<front::FrontThreads>>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Connect every upstream (in parallel; one that fails is reported by `/readyz` and left
    /// out of the lists) and build the server.
    pub async fn connect(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let connect = ConnectOptions {
            connect_timeout: config.limits.connect_timeout(),
            client_name: GATEWAY_NAME.to_owned(),
            ..ConnectOptions::default()
        };
        Self::connect_with(config, connect).await
    }

    /// [`Self::connect`] with the client's connect options given (era, log directory, tap).
    pub async fn connect_with(
        config: GatewayConfig,
        connect: ConnectOptions,
    ) -> Result<Gateway, GatewayError> {
        Self::connect_with_limiter(config, connect, None).await
    }

    /// [`Self::connect_with`], with the rate limiter given instead of the one the config
    /// names (tests use one with a controllable clock).
    pub async fn connect_with_limiter(
        config: GatewayConfig,
        mut connect: ConnectOptions,
        limiter: Option<Arc<dyn switchboard_policy::ratelimit::RateLimiter>>,
    ) -> Result<Gateway, GatewayError> {
        // Upstreams may ask for input during a call; the gateway's own client answers
        // (see `relay`).
        connect
            .callbacks
            .get_or_insert_with(|| Arc::new(relay::RelayOnly));
        // Security first: a gateway that cannot protect itself does not start its upstreams.
        let security = Security::open(&config, limiter).await?;
        // Install the recorder before anything is measured.
        if metrics::handle().is_none() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        let (changes, mut changed) = mpsc::channel::<Announcement>(LIST_CHANGE_QUEUE);
        let on_event: EventObserver = Arc::new(move |server, event| {
            let announcement = match event {
                ServerEvent::ToolsChanged => Announcement::List(ListKind::Tools),
                ServerEvent::ResourcesChanged => Announcement::List(ListKind::Resources),
                ServerEvent::PromptsChanged => Announcement::List(ListKind::Prompts),
                ServerEvent::ResourceUpdated { uri } => {
                    Announcement::Updated(server.clone(), uri.clone())
                }
                ServerEvent::Log(_) => return,
            };
            tracing::info!(%server, ?announcement, "an upstream's list or resource changed");
            // Full means list announcements are already queued, and they cover this one. A
            // resource update dropped here is logged: the queue holds 64, so it takes a flood.
            if changes.try_send(announcement).is_err() {
                tracing::warn!(%server, "dropped an upstream's change announcement: the queue is full");
            }
        });
        let options = HostOptions {
            connect,
            request_timeout: config.limits.request_timeout(),
            on_event: Some(on_event),
            list_reuse: LIST_REUSE,
            oauth: config
                .upstream_oauth
                .iter()
                .map(|(name, grant)| {
                    (
                        name.clone(),
                        switchboard_client::oauth::OAuthOptions::without_user(grant.clone()),
                    )
                })
                .collect(),
            ..HostOptions::default()
        };
        let host = Host::connect(&config.upstreams, options).await;
        for (name, state) in host.servers() {
            match state {
                ServerState::Connected(connection) => {
                    let description = connection.description();
                    tracing::info!(upstream = %name, era = ?description.era, protocol = %description.protocol_version, transport = description.transport, "upstream connected");
                }
                ServerState::Failed(error) => {
                    tracing::warn!(upstream = %name, %error, "upstream failed to connect")
                }
            }
        }
        // Begins the ids of this process's tasks and parked calls, so that replicas can send a
        // client's follow-up request to the one that holds them (`sessions`).
        let replica = uuid::Uuid::new_v4().simple().to_string()[..REPLICA_ID_LEN].to_owned();
        let upstreams = Upstreams::new(host, &config, security.clone(), replica.clone());
        upstreams.health();
        let server = Server::builder(GATEWAY_NAME, env!("CARGO_PKG_VERSION"))
            .instructions(
                "A gateway in front of several MCP servers. Tool and prompt names are \
                 UPSTREAM__NAME; resource URIs are gateway://UPSTREAM/ORIGINAL-URI.",
            )
            .catalogue(Arc::new(upstreams.clone()))
            .resource_subscriptions()
            .task_id_prefix(format!("{replica}-"))
            .build()?;
        let announcing = server.clone();
        let naming = upstreams.clone();
        let announcer = tokio::spawn(async move {
            while let Some(announcement) = changed.recv().await {
                match announcement {
                    Announcement::List(kind) => announcing.notify_list_changed(kind),
                    Announcement::Updated(server, uri) => {
                        announcing.notify_resource_updated(&naming.public_uri(&server, &uri));
                    }
                }
            }
        });
        Ok(Gateway {
            server,
            upstreams,
            config,
            security,
            announcer,
            replica,
            ws_tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            front_threads: std::sync::Mutex::new(None),
        })
    }

    /// The server kit's server that answers the gateway's clients.
    pub fn server(&self) -> &Server {
        &self.server
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// This process's id among the gateway's replicas: the ids of the tasks it runs and of
    /// the calls it parks begin with it and a dash.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// `[security]`, when configured.
    pub fn security(&self) -> Option<&Arc<Security>> {
        self.security.as_ref()
    }

    /// The HTTP front: `/mcp` through the whole stack, plus the operations endpoints. Legacy
    /// sessions stay on this replica (see [`Self::router_with_sessions`]).
    pub fn router(&self) -> axum::Router {
        self.router_with_sessions(None)
    }

    /// [`Self::router`], sharing legacy sessions with other replicas through `sessions`.
    pub fn router_with_sessions(&self, sessions: Option<sessions::SessionRoutes>) -> axum::Router {
        front::router(
            self.server.clone(),
            self.upstreams.clone(),
            &FrontConfig {
                limits: self.config.limits.clone(),
                allowed_hosts: self.config.listen.allowed_hosts.clone(),
                ws_tasks: self.ws_tasks.clone(),
                stopping: self.stopping.clone(),
                security: self.security.clone(),
                sessions,
            },
        )
    }

    /// Serve HTTP on `listener` until `shutdown` resolves, then drain in-flight requests.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), GatewayError> {
        if let Ok(address) = listener.local_addr()
            && self.config.check_exposure(address)?
        {
            tracing::warn!(
                %address,
                "THE GATEWAY IS OPEN: it listens on a non-loopback address without [security] \
                 (listen.allow_unauthenticated = true); anyone who reaches it can use every upstream"
            );
        }
        let sessions = self.session_routes(listener.local_addr().ok()).await?;
        let router = self.router_with_sessions(sessions);
        let threads = self.front_threads().map_err(|source| GatewayError::Serve {
            front: "HTTP",
            source,
        })?;
        let served = front::serve(listener, router, &self.config.limits, &threads, shutdown).await;
        // HTTP requests are drained; WebSocket sessions (long-lived by nature) are closed.
        self.stopping.cancel();
        self.ws_tasks.close();
        if tokio::time::timeout(self.config.limits.shutdown_grace(), self.ws_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("WebSocket sessions did not close in time");
        }
        served.map_err(|source| GatewayError::Serve {
            front: "HTTP",
            source,
        })
    }

    /// The HTTP front's threads, started now if they are not running yet.
    fn front_threads(&self) -> std::io::Result<Arc<front::FrontThreads>> {
        let mut slot = self.front_threads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(threads) = &*slot {
            return Ok(threads.clone());
        }
        let threads = Arc::new(front::FrontThreads::start(
            self.config.listen.front_threads(),
        )?);
        *slot = Some(threads.clone());
        Ok(threads)
    }

    /// The session routing table, when Redis is configured and this replica has an address
    /// the others can reach.
    async fn session_routes(
        &self,
        address: Option<std::net::SocketAddr>,
    ) -> Result<Option<sessions::SessionRoutes>, GatewayError> {
        let Some(redis_url) = &self.config.redis_url else {
            return Ok(None);
        };
        let own_url = match (&self.config.listen.advertise_url, address) {
            (Some(url), _) => url.clone(),
            (None, Some(address)) if !address.ip().is_unspecified() => format!("http://{address}"),
            _ => {
                tracing::warn!(
                    "Redis is configured but listen.advertise_url is not, and the gateway listens \
                     on an unspecified address: legacy sessions stay on the replica that opened them"
                );
                return Ok(None);
            }
        };
        let routes = sessions::SessionRoutes::connect(
            redis_url.expose(),
            own_url,
            self.replica.clone(),
            self.config.limits.session_idle(),
            self.config.limits.max_body_bytes,
        )
        .await
        .map_err(|error| GatewayError::Security(format!("scale-out: {error}")))?;
        Ok(Some(routes))
    }

    /// Serve on this process's stdin and stdout until stdin closes (stdout belongs to the
    /// protocol: log to stderr).
    pub async fn serve_stdio(&self) -> Result<(), GatewayError> {
        switchboard_server::serve_stdio(self.server.clone())
            .await
            .map_err(|source| GatewayError::Serve {
                front: "stdio",
                source,
            })
    }

    /// Close every upstream: stdio servers get their stdin closed, then are stopped.
    pub async fn shutdown(self) {
        self.announcer.abort();
        if let Some(security) = &self.security {
            // Records of calls abandoned by their clients are still being written.
            security.abandoned.close();
            if tokio::time::timeout(
                self.config.limits.shutdown_grace(),
                security.abandoned.wait(),
            )
            .await
            .is_err()
            {
                tracing::error!("audit records of abandoned calls were not all written in time");
            }
        }
        let Gateway {
            server,
            upstreams,
            front_threads,
            ..
        } = self;
        drop(server);
        match upstreams.into_host() {
            Some(host) => host.shutdown().await,
            // Something still holds the catalogue (a stream being torn down); dropping the
            // connections stops their processes.
            None => tracing::debug!("upstreams still in use at shutdown; dropping them"),
        }
        // Last: whatever the HTTP front's calls left running ends with its threads.
        drop(front_threads);
    }
}
