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
    trace::{DefaultOnResponse, TraceLayer},
};

use crate::{config::Limits, metrics as m, upstreams::Upstreams};

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
}

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
    let in_flight = Arc::new(ClientInFlight {
        max: limits.max_in_flight_per_client,
        counts: Mutex::new(HashMap::new()),
    });
    let body_limits = BodyLimits {
        max_bytes: limits.max_body_bytes,
        max_depth: limits.max_json_depth,
    };

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
    // both MCP endpoints: Streamable HTTP at /mcp and WebSocket at /ws.
    let allowed = Arc::new(http.clone());
    let mcp = switchboard_server::router(server, http)
        .route("/ws", get(crate::ws::websocket).with_state(ws))
        .layer(
            ServiceBuilder::new()
                // 0. Host and Origin allow-list (403), before anything else learns of the
                //    request (the kit checks again; a rebinding page must not even reach auth).
                .layer(middleware::from_fn_with_state(allowed, check_host))
                // 1. Who is calling: the request id and peer address become a `Caller`.
                .layer(middleware::from_fn(caller_context))
                // 2. SECURITY SLOT (issue 9), in this order: authentication (401; fills
                //    `Caller::client_id`), scope policy (403 / -32001), rate limits (429), audit
                //    (one record per call, written before the answer). Each is its own module
                //    and layer; the in-flight limit below then keys on the authenticated client.
                // 3. Requests in flight per client (429).
                .layer(middleware::from_fn_with_state(
                    in_flight,
                    limit_in_flight_per_client,
                ))
                // 4. Time to answer (504); event streams, once started, run on.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    limits.request_timeout() + ANSWER_MARGIN,
                ))
                // 5. Body size (413) and JSON nesting depth (400), before anything parses it.
                .layer(middleware::from_fn_with_state(body_limits, check_body)),
            // Then the server kit (or the WebSocket bridge): sessions, both eras.
        );

    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(upstreams);

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
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn(http_metrics)),
    )
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
    if let Err(reason) = switchboard_server::check_host_and_origin(&allowed, request.headers()) {
        metrics::counter!(m::REJECTED, "reason" => "host_or_origin").increment(1);
        return refusal(StatusCode::FORBIDDEN, -32600, reason.to_owned(), None);
    }
    next.run(request).await
}

/// Put a [`Caller`] in the request's extensions for the kit to hand to the catalogue.
async fn caller_context(mut request: Request, next: Next) -> Response {
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
        client_id: None,
        remote_addr,
    });
    next.run(request).await
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

#[derive(Debug, Clone, Copy)]
struct BodyLimits {
    max_bytes: usize,
    max_depth: usize,
}

/// Refuse bodies that are too large (413) or nest too deep (400), before any parser sees them.
async fn check_body(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limits.max_bytes).await else {
        metrics::counter!(m::REJECTED, "reason" => "body_too_large").increment(1);
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            format!("the request body is larger than {} bytes", limits.max_bytes),
            None,
        );
    };
    if let Some(depth) = too_deep(&bytes, limits.max_depth) {
        metrics::counter!(m::REJECTED, "reason" => "too_deep").increment(1);
        return refusal(
            StatusCode::BAD_REQUEST,
            -32600,
            format!(
                "the request nests JSON {depth} levels deep; at most {} are accepted",
                limits.max_depth
            ),
            None,
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
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

/// Requests in flight per client. Until authentication names clients, a client is its IP.
#[derive(Debug)]
struct ClientInFlight {
    max: usize,
    counts: Mutex<HashMap<String, usize>>,
}

/// One request counted against its client; uncounted when dropped.
struct InFlightGuard {
    limiter: Arc<ClientInFlight>,
    client: String,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
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

fn client_key(request: &Request) -> String {
    let caller = request.extensions().get::<Caller>();
    if let Some(client) = caller.and_then(|c| c.client_id.clone()) {
        return format!("client:{client}");
    }
    caller
        .and_then(|c| c.remote_addr)
        .map(|addr| addr.ip())
        .map_or_else(|| "unknown".to_owned(), |ip: IpAddr| format!("ip:{ip}"))
}

/// Refuse a request (429) when its client already has the most requests in flight. A request
/// counts until its answer starts (an event stream, once started, no longer counts).
async fn limit_in_flight_per_client(
    State(limiter): State<Arc<ClientInFlight>>,
    request: Request,
    next: Next,
) -> Response {
    let client = client_key(&request);
    let admitted = {
        let mut counts = limiter.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(client.clone()).or_insert(0);
        if *count >= limiter.max {
            false
        } else {
            *count += 1;
            true
        }
    };
    if !admitted {
        metrics::counter!(m::REJECTED, "reason" => "client_in_flight").increment(1);
        let mut response = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            -32000,
            format!(
                "this client already has {} requests in flight; wait for one to finish",
                limiter.max
            ),
            Some(json!({"retryable": true, "retry_after_ms": 1000})),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let _guard = InFlightGuard { limiter, client };
    next.run(request).await
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

/// Serve `router` on `listener` until `shutdown` resolves, then stop accepting and give open
/// connections `limits.shutdown_grace` to finish their requests.
///
/// Every connection sets `TCP_NODELAY`, has `limits.header_timeout` to send its request
/// headers (which also closes idle keep-alive connections), and carries its peer address as
/// `ConnectInfo` for the stack.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
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
                let service = tower::ServiceExt::map_request(router.clone(), move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
                let connection = http
                    .serve_connection(TokioIo::new(tcp), hyper_util::service::TowerToHyperService::new(service))
                    .with_upgrades();
                let stopping = stopping.clone();
                connections.spawn(async move {
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
                });
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

#[cfg(test)]
mod tests {
    use super::too_deep;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(too_deep(br#"{"a":[1,{"b":2}]}"#, 3), None);
        assert_eq!(too_deep(br#"{"a":[1,{"b":2}]}"#, 2), Some(3));
        assert_eq!(too_deep(br#"{"a":"[[[[[[\"{{{{"}"#, 1), None);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(deep.as_bytes(), 64), Some(65));
    }
}
