//! The HTTP front: the tower stack in front of the server kit's `/mcp`, the operations
//! endpoints, and the accept loop with its timeouts and graceful shutdown.
//!
//! The stack is composed once, in [`router`], in the order a request passes through it.
//! Handlers (the kit's dispatcher, the catalogue) do not know the layers exist; what a layer
//! learns about the caller travels as the [`Caller`] request extension, which the kit hands to
//! the catalogue as `RequestContext::caller`.

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use switchboard_server::{Caller, HttpConfig, Server};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use switchboard_policy::{
    auth::{AuthLayer, Principal, protected_resource_router},
    ratelimit::{RATE_LIMITED_CODE, RATE_LIMITED_REASON, RateLimited},
    scope::{INSUFFICIENT_SCOPE_CODE, Refusal},
};

use crate::{
    config::Limits,
    metrics as m,
    security::Security,
    sessions::{SessionRoutes, route_sessions},
    upstreams::Upstreams,
};

/// The header that carries the request id, generated when the client sent none.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Extra time the HTTP answer gets over an upstream call's own timeout, so that a slow call
/// is answered in-band (`-32000`) rather than cut off.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// What the front needs besides the server.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    pub limits: Limits,
    pub allowed_hosts: Vec<String>,
    /// Owns the tasks of WebSocket connections.
    pub ws_tasks: TaskTracker,
    /// Cancelled when the gateway stops; WebSocket connections then close.
    pub stopping: CancellationToken,
    /// `[security]`: authentication here, the rest in the catalogue.
    pub security: Option<Arc<Security>>,
    /// Legacy sessions shared by replicas through Redis, when configured.
    pub sessions: Option<SessionRoutes>,
}

/// The largest JSON answer [`refusal_status`] looks into; refusals are far smaller.
const MAX_REFUSAL_BYTES: u64 = 16 * 1024;

/// The gateway's axum router: `/mcp` and `/ws` (both eras, through the stack), `/healthz`,
/// `/readyz` and `/metrics`.
pub fn router(server: Server, upstreams: Upstreams, config: &FrontConfig) -> Router {
    let limits = &config.limits;
    let http = HttpConfig {
        allowed_hosts: config.allowed_hosts.clone(),
        max_body_bytes: limits.max_body_bytes,
        max_sessions: limits.max_sessions,
        session_idle_timeout: Some(limits.session_idle()),
    };
    let admission = Arc::new(Admission {
        max_in_flight: limits.max_in_flight_per_client,
        in_flight: Mutex::new(HashMap::new()),
        max_body_bytes: limits.max_body_bytes,
        max_json_depth: limits.max_json_depth,
    });

    let ws = crate::ws::WsFront {
        server: server.clone(),
        http: http.clone(),
        max_json_depth: limits.max_json_depth,
        idle_timeout: limits.session_idle(),
        sessions: Arc::new(tokio::sync::Semaphore::new(limits.max_sessions)),
        tasks: config.ws_tasks.clone(),
        stopping: config.stopping.clone(),
    };
    // The MCP stack, outermost first: a request meets these layers in this order. It covers
    // both MCP endpoints: Streamable HTTP at /mcp and WebSocket at /ws. Steps that need
    // nothing between them share a layer: a forwarded call passes every layer, and each costs
    // it a boxed future and a clone of the service below.
    let allowed = Arc::new(http.clone());
    let registry_hosts = allowed.clone();
    let mcp = switchboard_server::router(server, http)
        .route("/ws", get(crate::ws::websocket).with_state(ws))
        .layer(
            ServiceBuilder::new()
                // 0. Host and Origin allow-list (403), before anything else learns of the
                //    request (the kit checks again; a rebinding page must not even reach auth).
                //    Then who is calling: the request id and peer address become a `Caller`.
                .layer(middleware::from_fn_with_state(
                    allowed,
                    check_host_and_caller,
                ))
                // 0b. A legacy session another replica owns (Redis routing table): the request
                //     goes to that replica as it is, which authenticates it; new sessions are
                //     recorded as this replica's.
                .option_layer(
                    config
                        .sessions
                        .clone()
                        .map(|routes| middleware::from_fn_with_state(routes, route_sessions)),
                )
                // 1. Security (with `[security]`):
                //    a. authentication (401 + WWW-Authenticate; 503 when keys are unavailable).
                //       The credential headers are removed here, so nothing below, and no
                //       upstream, ever sees them. The WebSocket upgrade is a request like any.
                .option_layer(
                    config
                        .security
                        .as_ref()
                        .map(|security| AuthLayer::new(security.authenticator.clone())),
                )
                //    b. the `Principal` fills the `Caller` (client id, user, scopes), which the
                //       kit hands to the catalogue; scopes, allow/deny lists, rate limits and the
                //       audit record are decided there, for every front alike.
                .option_layer(
                    config
                        .security
                        .as_ref()
                        .map(|_| middleware::from_fn(principal_into_caller)),
                )
                //    c. a JSON answer that is a scope or rate-limit refusal gets its HTTP status
                //       (403 insufficient_scope, 429 Retry-After); an event stream has already
                //       sent 200, so its refusal stays in-band.
                .option_layer(
                    config
                        .security
                        .as_ref()
                        .map(|_| middleware::from_fn(refusal_status)),
                )
                // 2. Time to answer (504); event streams, once started, run on.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    limits.request_timeout() + ANSWER_MARGIN,
                ))
                // 3. Requests in flight per client (429), keyed on the authenticated client;
                //    then body size (413) and JSON nesting depth (400), before anything parses
                //    the body.
                .layer(middleware::from_fn_with_state(admission, admit))
                // 4. With `[security]`: a single POSTed `tools/call` the caller's scopes do not
                //    allow is answered 403 here (audited), whether or not the client accepts an
                //    event stream; the catalogue checks every call again (batches, WebSocket).
                .option_layer(
                    config
                        .security
                        .as_ref()
                        .map(|_| middleware::from_fn_with_state(upstreams.clone(), refuse_early)),
                ),
            // Then the server kit (or the WebSocket bridge): sessions, both eras.
        );

    let mut ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        // The upstreams as an MCP Registry list (names and versions, like a public registry;
        // no credentials needed), behind the same Host/Origin check as /mcp.
        .route(
            "/v0/servers",
            get(crate::registry::servers)
                .layer(middleware::from_fn_with_state(registry_hosts, check_host)),
        )
        .with_state(upstreams);
    // RFC 9728 metadata, outside authentication: it tells clients how to get a token.
    if let Some(security) = &config.security {
        ops = ops.merge(protected_resource_router(security.metadata.clone()));
    }

    // Around everything, outermost first: a request id (kept from the client or made), a
    // tracing span that carries it, the id echoed on the answer, and HTTP metrics.
    Router::new().merge(ops).merge(mcp).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request| {
                        let id = request
                            .headers()
                            .get(REQUEST_ID_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            request_id = %id,
                            method = %request.method(),
                            path = %request.uri().path(),
                        )
                    })
                    .on_response(log_response),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn(http_metrics)),
    )
}

/// One log line per HTTP request that went wrong (a refusal, an error status), in the request's
/// span (so with its request id). A request that succeeded is logged at debug level only: the
/// calls it carried already have their own line (`tools/call`, `resources/read`, ...), and a
/// second JSON line for every forwarded call cost about 20 µs of the gateway's CPU per call.
fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _span: &tracing::Span) {
    let status = response.status();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if status.is_client_error() || status.is_server_error() {
        tracing::info!(
            status = status.as_u16(),
            latency_ms,
            "request refused or failed"
        );
    } else {
        tracing::debug!(status = status.as_u16(), latency_ms, "request answered");
    }
}

async fn http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(m::HTTP_DURATION).record(started.elapsed().as_secs_f64());
    metrics::counter!(m::HTTP_REQUESTS, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// Refuse a request whose `Host` or `Origin` is not on the allow-list (DNS rebinding).
async fn check_host(
    State(allowed): State<Arc<HttpConfig>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = host_or_origin_refusal(&allowed, &request) {
        return refused;
    }
    next.run(request).await
}

/// The 403 answer for a request whose `Host` or `Origin` is off the allow-list; `None` when
/// both are allowed.
fn host_or_origin_refusal(allowed: &HttpConfig, request: &Request) -> Option<Response> {
    let reason = switchboard_server::check_host_and_origin(allowed, request.headers()).err()?;
    metrics::counter!(m::REJECTED, "reason" => "host_or_origin").increment(1);
    Some(refusal(
        StatusCode::FORBIDDEN,
        -32600,
        reason.to_owned(),
        None,
    ))
}

/// [`check_host`], then [`caller_context`]: the first layer of the MCP stack.
async fn check_host_and_caller(
    State(allowed): State<Arc<HttpConfig>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = host_or_origin_refusal(&allowed, &request) {
        return refused;
    }
    caller_context(&mut request);
    next.run(request).await
}

/// Put a [`Caller`] in the request's extensions for the kit to hand to the catalogue.
fn caller_context(request: &mut Request) {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let remote_addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    request.extensions_mut().insert(Caller {
        request_id,
        remote_addr,
        ..Caller::default()
    });
}

/// Copy what authentication learned into the [`Caller`] the kit hands to the catalogue.
async fn principal_into_caller(mut request: Request, next: Next) -> Response {
    if let Some(principal) = request.extensions_mut().remove::<Principal>()
        && let Some(caller) = request.extensions_mut().get_mut::<Caller>()
    {
        caller.client_id = Some(principal.client_id);
        caller.subject = principal.subject;
        caller.scopes = Some(principal.scopes);
    }
    next.run(request).await
}

/// Give a JSON answer that is a scope refusal (`-32001`) or a rate-limit refusal (`-32000`
/// with `reason: rate_limited`) its HTTP status and header: 403 with `WWW-Authenticate: Bearer
/// error="insufficient_scope"`, or 429 with `Retry-After`. The body stays the JSON-RPC answer.
async fn refusal_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let small = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .is_some_and(|n| n <= MAX_REFUSAL_BYTES);
    if response.status() != StatusCode::OK || !is_json || !small {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) =
        axum::body::to_bytes(body, usize::try_from(MAX_REFUSAL_BYTES).unwrap_or(0)).await
    else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer could not be read",
        )
            .into_response();
    };
    if let Some(refusal) = refusal_of(&bytes) {
        let (status, challenge) = match refusal {
            HttpRefusal::Scope(refusal) => {
                let answer = refusal.http_response();
                (
                    answer.status(),
                    answer
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .cloned()
                        .map(|v| (header::WWW_AUTHENTICATE, v)),
                )
            }
            HttpRefusal::Rate(limited) => {
                let answer = limited.http_response();
                (
                    answer.status(),
                    answer
                        .headers()
                        .get(header::RETRY_AFTER)
                        .cloned()
                        .map(|v| (header::RETRY_AFTER, v)),
                )
            }
        };
        parts.status = status;
        if let Some((name, value)) = challenge {
            parts.headers.insert(name, value);
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

enum HttpRefusal {
    Scope(Refusal),
    Rate(RateLimited),
}

/// Answer a single POSTed `tools/call` that the caller's scopes or allow list refuse with 403
/// and the JSON-RPC error, before dispatch (see [`Upstreams::refuse_call_early`]).
async fn refuse_early(
    State(upstreams): State<Upstreams>,
    request: Request,
    next: Next,
) -> Response {
    #[derive(serde::Deserialize)]
    struct Call {
        #[serde(default)]
        id: serde_json::Value,
        method: String,
        #[serde(default)]
        params: Option<CallParams>,
    }
    #[derive(serde::Deserialize)]
    struct CallParams {
        name: String,
        #[serde(default)]
        arguments: serde_json::Value,
    }
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // The body was already read and bounded by `check_body`; this takes it back whole.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return refusal(
            StatusCode::BAD_REQUEST,
            -32600,
            "the request body could not be read".to_owned(),
            None,
        );
    };
    let call = may_be_tools_call(&bytes)
        .then(|| serde_json::from_slice::<Call>(&bytes).ok())
        .flatten()
        .filter(|call| call.method == "tools/call");
    if let Some(Call {
        id,
        params: Some(params),
        ..
    }) = call
    {
        let caller = parts.extensions.get::<Caller>();
        match upstreams
            .refuse_call_early(caller, &params.name, &params.arguments)
            .await
        {
            Ok(None) => {}
            Ok(Some(refused)) => {
                let mut response = refused.http_response();
                let body =
                    json!({"jsonrpc": "2.0", "id": id, "error": refused.jsonrpc_error().to_json()});
                *response.body_mut() = Body::from(body.to_string());
                return response;
            }
            Err(error) => {
                let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": error.to_string()}});
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response();
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether `bytes` may be a `tools/call` (a cheap test before parsing).
fn may_be_tools_call(bytes: &[u8]) -> bool {
    bytes
        .windows(b"tools/call".len())
        .any(|w| w == b"tools/call")
}

/// The refusal a single JSON-RPC error answer is, if it is one.
fn refusal_of(bytes: &[u8]) -> Option<HttpRefusal> {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<ErrorObject>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorObject {
        code: i64,
        #[serde(default)]
        data: serde_json::Value,
    }
    let error = serde_json::from_slice::<Answer>(bytes).ok()?.error?;
    let text = |key: &str| {
        error
            .data
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match error.code {
        INSUFFICIENT_SCOPE_CODE => Some(HttpRefusal::Scope(
            match (text("required_scope"), text("server")) {
                (Some(required_scope), _) => Refusal::InsufficientScope { required_scope },
                (None, Some(server)) => Refusal::ServerNotAllowed {
                    client_id: String::new(),
                    server,
                },
                (None, None) => return None,
            },
        )),
        RATE_LIMITED_CODE if text("reason").as_deref() == Some(RATE_LIMITED_REASON) => {
            let retry_after_ms = error.data.get("retry_after_ms").and_then(|v| v.as_u64())?;
            Some(HttpRefusal::Rate(RateLimited {
                retry_after: Duration::from_millis(retry_after_ms),
            }))
        }
        _ => None,
    }
}

/// A JSON-RPC error answer with an HTTP status, for refusals before dispatch.
fn refusal(
    status: StatusCode,
    code: i64,
    message: String,
    data: Option<serde_json::Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    let body = json!({"jsonrpc": "2.0", "id": null, "error": error}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Refuse bodies that are too large (413) or nest too deep (400), before any parser sees them;
/// the request with its body read whole.
async fn check_body(
    request: Request,
    max_bytes: usize,
    max_depth: usize,
) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, max_bytes).await else {
        return Err(body_too_large(max_bytes));
    };
    if let Some(depth) = too_deep(&bytes, max_depth) {
        metrics::counter!(m::REJECTED, "reason" => "too_deep").increment(1);
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            -32600,
            format!("the request nests JSON {depth} levels deep; at most {max_depth} are accepted"),
            None,
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The answer to a request whose body is larger than `max_bytes` (413).
pub(crate) fn body_too_large(max_bytes: usize) -> Response {
    metrics::counter!(m::REJECTED, "reason" => "body_too_large").increment(1);
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        -32600,
        format!("the request body is larger than {max_bytes} bytes"),
        None,
    )
}

/// The nesting depth of `json` when it exceeds `max` (arrays and objects, outside strings);
/// `None` within the limit. Malformed JSON is left to the parser.
pub(crate) fn too_deep(json: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// What a request must pass before the kit reads it: its client's requests in flight, and its
/// body's size and nesting depth.
#[derive(Debug)]
struct Admission {
    max_in_flight: usize,
    /// Requests in flight per client (an entry only while it has some).
    in_flight: Mutex<HashMap<ClientKey, usize>>,
    max_body_bytes: usize,
    max_json_depth: usize,
}

/// Whose requests in flight a request counts as: the authenticated client, else (without
/// `[security]`) its IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    Client(String),
    Ip(IpAddr),
    Unknown,
}

impl ClientKey {
    fn of(request: &Request) -> ClientKey {
        let caller = request.extensions().get::<Caller>();
        if let Some(client) = caller.and_then(|c| c.client_id.as_ref()) {
            return ClientKey::Client(client.clone());
        }
        caller
            .and_then(|c| c.remote_addr)
            .map_or(ClientKey::Unknown, |addr| ClientKey::Ip(addr.ip()))
    }
}

/// One request counted against its client; uncounted when dropped.
struct InFlightGuard {
    admission: Arc<Admission>,
    client: ClientKey,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self
            .admission
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

impl Admission {
    /// Count a request against its client; `None` when the client already has the most
    /// requests in flight. A request counts until its guard is dropped: until its answer
    /// starts (an event stream, once started, no longer counts).
    fn count_in_flight(self: &Arc<Self>, request: &Request) -> Option<InFlightGuard> {
        let client = ClientKey::of(request);
        let mut counts = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(client.clone()).or_insert(0);
        if *count >= self.max_in_flight {
            return None;
        }
        *count += 1;
        Some(InFlightGuard {
            admission: self.clone(),
            client,
        })
    }

    /// The 429 answer to a request over its client's limit of requests in flight.
    fn too_many_in_flight(&self) -> Response {
        metrics::counter!(m::REJECTED, "reason" => "client_in_flight").increment(1);
        let mut response = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            -32000,
            format!(
                "this client already has {} requests in flight; wait for one to finish",
                self.max_in_flight
            ),
            Some(json!({"retryable": true, "retry_after_ms": 1000})),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }
}

/// Admit a request: count it against its client's requests in flight (429 past the limit),
/// then check its body (413, 400).
async fn admit(State(admission): State<Arc<Admission>>, request: Request, next: Next) -> Response {
    let Some(_guard) = admission.count_in_flight(&request) else {
        return admission.too_many_in_flight();
    };
    match check_body(request, admission.max_body_bytes, admission.max_json_depth).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    }
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"alive"}"#,
    )
        .into_response()
}

async fn readyz(State(upstreams): State<Upstreams>) -> Response {
    let health = upstreams.check_health().await;
    let ready = health.iter().all(|h| h.healthy);
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "upstreams": health.iter().map(|h| json!({
            "name": h.name,
            "healthy": h.healthy,
            "status": h.status,
            "breaker": h.breaker,
            "reason": h.reason,
        })).collect::<Vec<_>>(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn render_metrics(State(upstreams): State<Upstreams>) -> Response {
    let Some(handle) = m::handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder was installed in this process; no Prometheus output",
        )
            .into_response();
    };
    // Refresh the upstream gauges, then render.
    upstreams.health();
    handle.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// The threads that run the HTTP front's connections, each with a single-threaded runtime of
/// its own. A connection, and every call it carries, stays on the thread it was given, and so
/// do the upstream connections those calls make (see `switchboard-client`'s inline pool).
///
/// On a multi-threaded runtime, a worker woken by the network wakes another to look for work
/// too, and that one finds none and sleeps again: at one call in flight that was a third of
/// the gateway's CPU per call (see `docs/performance.md`). Threads that share nothing but the
/// connections handed to them have nobody to wake.
///
/// Stopped when dropped (also when [`FrontThreads::start`] fails half-way): whatever still
/// runs on them ends then.
#[derive(Debug)]
pub struct FrontThreads {
    handles: Vec<tokio::runtime::Handle>,
    next: std::sync::atomic::AtomicUsize,
    _stop: tokio_util::sync::DropGuard,
}

impl FrontThreads {
    /// Start `count` threads (at least one).
    pub fn start(count: usize) -> std::io::Result<FrontThreads> {
        let count = count.max(1);
        let stop = CancellationToken::new();
        let mut threads = FrontThreads {
            handles: Vec::with_capacity(count),
            next: std::sync::atomic::AtomicUsize::new(0),
            _stop: stop.clone().drop_guard(),
        };
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("gateway-front-{index}"))
                .spawn(move || runtime.block_on(stop.cancelled()))?;
            threads.handles.push(handle);
        }
        Ok(threads)
    }

    /// The runtime of the thread the next connection goes to, in turn.
    fn next(&self) -> &tokio::runtime::Handle {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.handles[turn % self.handles.len()]
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then stop accepting and give open
/// connections `limits.shutdown_grace` to finish their requests.
///
/// Connections are accepted here and served on `threads`, in turn. Every connection sets
/// `TCP_NODELAY`, has `limits.header_timeout` to send its request headers (which also closes
/// idle keep-alive connections), and carries its peer address as `ConnectInfo` for the stack.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    threads: &FrontThreads,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout());
    let stopping = CancellationToken::new();
    let mut connections: JoinSet<()> = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::warn!(%error, "could not set TCP_NODELAY");
                }
                // The socket moves to the thread that serves it, and registers with its runtime.
                let tcp = match tcp.into_std() {
                    Ok(tcp) => tcp,
                    Err(error) => {
                        tracing::warn!(%error, %peer, "could not hand the connection over");
                        continue;
                    }
                };
                let connection = serve_connection(http.clone(), router.clone(), tcp, peer, stopping.clone());
                connections.spawn_on(connection, threads.next());
            }
        }
    }
    drop(listener);
    stopping.cancel();
    let drained = tokio::time::timeout(limits.shutdown_grace(), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period are closed now"
        );
    }
    connections.abort_all();
    Ok(())
}

/// Serve one accepted connection on the runtime this runs on, until it closes or, once
/// `stopping` is cancelled, its request in flight is answered.
async fn serve_connection(
    http: hyper::server::conn::http1::Builder,
    router: Router,
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    stopping: CancellationToken,
) {
    let tcp = match tokio::net::TcpStream::from_std(tcp) {
        Ok(tcp) => tcp,
        Err(error) => {
            tracing::warn!(%error, %peer, "could not serve the connection");
            return;
        }
    };
    let service = tower::ServiceExt::map_request(
        router,
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        },
    );
    let connection = http
        .serve_connection(
            TokioIo::new(tcp),
            hyper_util::service::TowerToHyperService::new(service),
        )
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        }
        () = stopping.cancelled() => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FrontThreads, too_deep};

    #[tokio::test]
    async fn connections_take_turns_on_the_front_threads_which_stop_when_dropped() {
        let threads = FrontThreads::start(2).expect("the threads start");
        assert_eq!(threads.handles.len(), 2);
        let mut names = Vec::new();
        for _ in 0..4 {
            let name = threads
                .next()
                .spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .expect("the task ran");
            names.push(name.expect("the thread is named"));
        }
        assert_eq!(
            names,
            [
                "gateway-front-0",
                "gateway-front-1",
                "gateway-front-0",
                "gateway-front-1"
            ]
        );
        // What still runs on them ends with them.
        let (alive, ended) = tokio::sync::oneshot::channel::<()>();
        threads.next().spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
        });
        drop(threads);
        let dropped = tokio::time::timeout(std::time::Duration::from_secs(10), ended)
            .await
            .expect("the threads stopped in time");
        assert!(dropped.is_err(), "the task was dropped, not finished");
        assert_eq!(FrontThreads::start(0).expect("one thread").handles.len(), 1);
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(too_deep(br#"{"a":[1,{"b":2}]}"#, 3), None);
        assert_eq!(too_deep(br#"{"a":[1,{"b":2}]}"#, 2), Some(3));
        assert_eq!(too_deep(br#"{"a":"[[[[[[\"{{{{"}"#, 1), None);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(deep.as_bytes(), 64), Some(65));
    }
}
