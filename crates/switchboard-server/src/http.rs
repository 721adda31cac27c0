//! Serving over Streamable HTTP: both eras on one `/mcp` endpoint.
//!
//! - A **2026-07-28** request is a stateless POST whose body carries its `_meta`. The
//!   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, when sent, must agree with
//!   the body (`-32020`, HTTP 400).
//! - A **legacy** client POSTs `initialize` and gets an `Mcp-Session-Id`; later POSTs carry
//!   it. An unknown or ended session gets 404, which tells the client to start a new one.
//!   `DELETE` ends a session.
//! - A request answered at once, or within [`JSON_WINDOW`] without sending anything first, gets
//!   `application/json`. One still running answers with `text/event-stream` when the client
//!   accepts it, so progress and log notifications reach it before the result; otherwise the
//!   client waits for the JSON. A 2026-07-28 answer that is an envelope-level error (-32020,
//!   -32021, -32022) and comes as JSON is HTTP 400, wherever it was found.
//! - A legacy handler that asks the client for input (elicitation, sampling, roots) sends its
//!   request on that event stream; the client POSTs the response with its `Mcp-Session-Id`
//!   (202). A client that accepts only JSON cannot be asked: the handler gets an error at once.
//! - Envelope-level refusals (unparsable, not JSON-RPC, missing or wrong `_meta`, a missing
//!   client capability) are HTTP 400; a 2026-07-28 request for a method that revision does not
//!   have is 404; results and method errors are 200; notifications and responses get 202.
//! - A server with a catalogue (see [`crate::Catalogue`]) or that takes resource subscriptions
//!   also serves `GET /mcp` to a legacy session: an event stream of
//!   `notifications/*/list_changed` and of `notifications/resources/updated` for the resources
//!   the session subscribed to. 2026-07-28 clients POST `subscriptions/listen` instead and
//!   read list changes on its stream. Other servers answer `GET` with 405: nothing of theirs
//!   ever changes.
//! - The transport passes a [`crate::Caller`] found in the request's extensions (a front's
//!   middleware puts it there) on to the handlers, as [`crate::RequestContext::caller`].
//! - Security defaults: the `Host` and `Origin` headers must name an allowed host (DNS
//!   rebinding protection), bodies are limited, sessions are bounded, and every accepted
//!   connection sets `TCP_NODELAY` so small answers are not held back by Nagle's algorithm.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
    routing::post,
    serve::ListenerExt,
};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    announce::{next_change, next_update, write_updates},
    context::{Caller, OUTBOUND_QUEUE},
    server::{Handled, MAX_MESSAGE_BYTES, Server, Session},
    wire::{self, ErrorObject, code},
};

/// The header that names a legacy session.
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";

/// How the HTTP front behaves. The defaults are the secure ones.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Host names (without port) that `Host` and `Origin` may name. Defaults to the loopback
    /// names; add a public name when serving behind a proxy.
    pub allowed_hosts: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most legacy sessions open at once; more `initialize` calls get 503.
    pub max_sessions: usize,
    /// End a legacy session unused for this long (its next request gets 404, and the client
    /// initializes again). Idle sessions are swept when a new one is opened. `None` keeps a
    /// session until its client deletes it.
    pub session_idle_timeout: Option<std::time::Duration>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            max_body_bytes: MAX_MESSAGE_BYTES,
            max_sessions: 10_000,
            session_idle_timeout: None,
        }
    }
}

struct HttpState {
    server: Server,
    config: HttpConfig,
    sessions: Mutex<HashMap<String, Arc<SessionSlot>>>,
    /// What session idle times are measured from.
    epoch: std::time::Instant,
}

/// A legacy session and when it was last used.
struct SessionSlot {
    session: Arc<Mutex<Session>>,
    /// Milliseconds since [`HttpState::epoch`].
    last_used_ms: std::sync::atomic::AtomicU64,
}

impl HttpState {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SessionSlot>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_idle(&self, slot: &SessionSlot, now_ms: u64) -> bool {
        self.config.session_idle_timeout.is_some_and(|timeout| {
            let last = slot.last_used_ms.load(std::sync::atomic::Ordering::Relaxed);
            u128::from(now_ms.saturating_sub(last)) > timeout.as_millis()
        })
    }

    /// The named session, marked as used now; `None` when there is none or it sat idle too
    /// long (it is ended then).
    fn session(&self, id: &str) -> Option<Arc<Mutex<Session>>> {
        let now = self.now_ms();
        let mut sessions = self.sessions();
        let slot = sessions.get(id)?;
        if self.is_idle(slot, now) {
            sessions.remove(id);
            return None;
        }
        slot.last_used_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
        Some(slot.session.clone())
    }

    fn has_session(&self, id: &str) -> bool {
        let now = self.now_ms();
        self.sessions()
            .get(id)
            .is_some_and(|slot| !self.is_idle(slot, now))
    }

    /// End every session idle for too long; returns how many are left.
    fn sweep_idle(&self) -> usize {
        let now = self.now_ms();
        let mut sessions = self.sessions();
        if self.config.session_idle_timeout.is_some() {
            sessions.retain(|_, slot| !self.is_idle(slot, now));
        }
        sessions.len()
    }

    fn insert_session(&self, id: String, session: Arc<Mutex<Session>>) {
        let slot = SessionSlot {
            session,
            last_used_ms: std::sync::atomic::AtomicU64::new(self.now_ms()),
        };
        self.sessions().insert(id, Arc::new(slot));
    }
}

/// The axum router for `server`: `/mcp` with POST, DELETE (and 405 for GET).
pub fn router(server: Server, config: HttpConfig) -> Router {
    let limit = config.max_body_bytes;
    let state = Arc::new(HttpState {
        server,
        config,
        sessions: Mutex::new(HashMap::new()),
        epoch: std::time::Instant::now(),
    });
    Router::new()
        .route(
            "/mcp",
            post(post_message).delete(end_session).get(open_stream),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Bind `addr` and serve until the future is dropped. Every connection gets `TCP_NODELAY`.
pub async fn serve_http(
    server: Server,
    addr: SocketAddr,
    config: HttpConfig,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(server, listener, config).await
}

/// Serve on an already bound listener (tests bind port 0 and read the address).
pub async fn serve_listener(
    server: Server,
    listener: tokio::net::TcpListener,
    config: HttpConfig,
) -> std::io::Result<()> {
    axum::serve(without_nagle(listener), router(server, config)).await
}

/// Every accepted connection gets `TCP_NODELAY`: an answer written as a few small writes
/// must not wait for the client's delayed ACK (40 ms a call; see issue 10).
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "could not set TCP_NODELAY");
        }
    })
}

fn json_error(status: StatusCode, error: &ErrorObject) -> Response {
    json_error_to(status, None, error)
}

/// An error answer to the request with this id (`null` when there is none, or it is not a
/// string or a number).
fn json_error_to(
    status: StatusCode,
    id: Option<&serde_json::value::RawValue>,
    error: &ErrorObject,
) -> Response {
    let id = id.filter(|raw| {
        let text = raw.get();
        text.starts_with('"')
            || text.starts_with('-')
            || text.starts_with(|c: char| c.is_ascii_digit())
    });
    let mut body = Vec::new();
    wire::write_error(&mut body, id, error);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The host part of a `Host` header or an origin's authority: `name`, `name:port`,
/// `[v6]` or `[v6]:port`.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Refuses a request whose `Host` or `Origin` names a host this server does not serve (DNS
/// rebinding protection), with the reason. Other fronts of the same server (a WebSocket
/// endpoint) apply the same check.
pub fn check_host_and_origin(config: &HttpConfig, headers: &HeaderMap) -> Result<(), &'static str> {
    let allowed = |name: &str| {
        config
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|host| allowed(host_name(host))) {
        return Err("the Host header names a host this server does not serve");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        if !allowed(host_name(authority)) {
            return Err("the Origin header names a site this server does not serve");
        }
    }
    Ok(())
}

fn forbidden(reason: &str) -> Response {
    json_error(
        StatusCode::FORBIDDEN,
        &ErrorObject::new(code::INVALID_REQUEST, reason),
    )
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .any(|v| {
            v == media || v == "*/*" || (v.ends_with("/*") && media.starts_with(&v[..v.len() - 1]))
        })
}

/// Just enough of the body to route it and check the headers against it.
#[derive(Debug, Default, Deserialize)]
struct Peek<'a> {
    /// The request's id, so that a refusal before dispatch still names the request.
    #[serde(default, borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a str>,
    #[serde(default, borrow)]
    params: Option<PeekParams<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct PeekParams<'a> {
    #[serde(default, borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    uri: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "taskId", default, borrow)]
    task_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "_meta", default, borrow)]
    meta: Option<PeekMeta<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct PeekMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default, borrow)]
    protocol_version: Option<std::borrow::Cow<'a, str>>,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The 2026-07-28 header rules: what the headers say must match the body.
fn check_modern_headers(
    headers: &HeaderMap,
    peek: &Peek<'_>,
    body_version: &str,
) -> Result<(), ErrorObject> {
    let mismatch = |what: &str| {
        ErrorObject::new(
            code::HEADER_MISMATCH,
            format!("the {what} header does not match the request body"),
        )
    };
    if let Some(version) = header_str(headers, PROTOCOL_VERSION_HEADER)
        && version != body_version
    {
        return Err(mismatch("MCP-Protocol-Version"));
    }
    // A header the body calls for must be there (SEP-2243): intermediaries route on them.
    let missing = |what: &str| {
        ErrorObject::new(
            code::HEADER_MISMATCH,
            format!("the {what} header is missing; 2026-07-28 requests carry it beside the body"),
        )
    };
    match (header_str(headers, METHOD_HEADER), peek.method) {
        (Some(method), Some(body_method)) if method != body_method => {
            return Err(mismatch("Mcp-Method"));
        }
        (None, Some(_)) => return Err(missing("Mcp-Method")),
        _ => {}
    }
    let params = peek.params.as_ref();
    let body_name = match peek.method {
        Some("resources/read") => params.and_then(|p| p.uri.as_deref()),
        Some("tools/call" | "prompts/get") => params.and_then(|p| p.name.as_deref()),
        // The tasks extension routes on the task (SEP-2663).
        Some("tasks/get" | "tasks/update" | "tasks/cancel") => {
            params.and_then(|p| p.task_id.as_deref())
        }
        _ => None,
    };
    match (header_str(headers, NAME_HEADER), body_name) {
        (Some(name), Some(body_name)) if name != body_name => Err(mismatch("Mcp-Name")),
        (None, Some(_)) => Err(missing("Mcp-Name")),
        _ => Ok(()),
    }
}

/// The schema keyword that names a tool parameter's header (SEP-2243): `Mcp-Param-NAME`.
const PARAM_HEADER_KEYWORD: &str = "x-mcp-header";

/// A header value as sent: `=?base64?...?=` is Base64 (strict: padded, standard alphabet) of
/// UTF-8 text; anything else is the value itself.
fn decode_param_header(value: &str) -> Result<String, ()> {
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Ok(value.to_owned());
    };
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| ())?;
    String::from_utf8(bytes).map_err(|_| ())
}

/// The 2026-07-28 custom-header rule: every tool parameter whose schema names a header
/// (`"x-mcp-header": "Region"`) is sent as `Mcp-Param-Region` too, and the two must agree.
/// A missing header, a header without its argument, bad Base64, or a different value is
/// refused before the tool runs.
fn check_param_headers(
    headers: &HeaderMap,
    schema: &Value,
    body: &[u8],
) -> Result<(), ErrorObject> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    check_params(
        |name| header_str(headers, name),
        properties,
        request
            .pointer("/params/arguments")
            .and_then(Value::as_object),
    )
}

/// Check a 2026-07-28 `tools/call`'s `Mcp-Param-*` headers against its arguments, for a tool
/// the kit does not know itself: a catalogue's (the gateway's upstream tools), whose schema
/// only the catalogue has. `sent` is what the HTTP front recorded in
/// [`crate::Caller::param_headers`]. The error is `-32020`, which the HTTP front answers with
/// 400.
pub fn check_param_headers_sent(
    sent: &[(String, String)],
    schema: &serde_json::Map<String, Value>,
    arguments: &serde_json::Map<String, Value>,
) -> Result<(), ErrorObject> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    check_params(
        |name| {
            sent.iter()
                .find(|(header, _)| header.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        },
        properties,
        Some(arguments),
    )
}

/// The `Mcp-Param-*` headers of a request, as [`crate::Caller::param_headers`] keeps them.
fn param_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("mcp-param-"))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

fn check_params<'h>(
    lookup: impl Fn(&str) -> Option<&'h str>,
    properties: &serde_json::Map<String, Value>,
    arguments: Option<&serde_json::Map<String, Value>>,
) -> Result<(), ErrorObject> {
    let mut named = properties.iter().filter_map(|(param, property)| {
        property
            .get(PARAM_HEADER_KEYWORD)
            .and_then(Value::as_str)
            .map(|header| (param, header))
    });
    let Some(first) = named.next() else {
        return Ok(());
    };
    let refuse = |message: String| ErrorObject::new(code::HEADER_MISMATCH, message);
    for (param, header) in std::iter::once(first).chain(named) {
        let header_name = format!("Mcp-Param-{header}");
        let sent = lookup(&header_name);
        let argument = arguments
            .and_then(|a| a.get(param))
            .filter(|v| !v.is_null());
        match (sent, argument) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(refuse(format!(
                    "the {header_name} header is missing; it must carry the argument \"{param}\""
                )));
            }
            (Some(_), None) => {
                return Err(refuse(format!(
                    "the {header_name} header is sent but the argument \"{param}\" is not"
                )));
            }
            (Some(sent), Some(argument)) => {
                let decoded = decode_param_header(sent).map_err(|()| {
                    refuse(format!(
                        "the {header_name} header is not valid Base64 of UTF-8 text"
                    ))
                })?;
                let expected = match argument {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => argument.to_string(),
                    _ => {
                        return Err(refuse(format!(
                            "the argument \"{param}\" is sent as a header, so it must be a string, number or boolean"
                        )));
                    }
                };
                if decoded != expected {
                    return Err(refuse(format!(
                        "the {header_name} header does not match the argument \"{param}\""
                    )));
                }
            }
        }
    }
    Ok(())
}

async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE")],
        "this server sends no stream on GET; POST requests to /mcp",
    )
        .into_response()
}

/// `GET /mcp`: the stream of a legacy session, for a server whose lists change or that takes
/// resource subscriptions: list changes, and updates of the resources the session subscribed to.
async fn open_stream(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Err(reason) = check_host_and_origin(&state.config, &headers) {
        return forbidden(reason);
    }
    let changes = state.server.list_changes();
    let updates = state.server.resource_updates();
    if changes.is_none() && updates.is_none() {
        return no_stream().await;
    }
    let Some(id) = header_str(&headers, SESSION_HEADER).map(str::to_owned) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            &ErrorObject::new(
                code::INVALID_REQUEST,
                "GET /mcp opens a legacy session's stream: send its Mcp-Session-Id (2026-07-28 clients use subscriptions/listen)",
            ),
        );
    };
    if !state.has_session(&id) {
        return json_error(
            StatusCode::NOT_FOUND,
            &ErrorObject::new(
                code::INVALID_REQUEST,
                "the session does not exist or has ended; initialize a new one",
            ),
        );
    }
    if !accepts(&headers, "text/event-stream") {
        return json_error(
            StatusCode::NOT_ACCEPTABLE,
            &ErrorObject::new(
                code::INVALID_REQUEST,
                "Accept must include text/event-stream",
            ),
        );
    }
    // The stream ends when the session does (checked at each change) or the client leaves.
    let events = futures::stream::unfold(
        (changes, updates, state, id),
        |(mut changes, mut updates, state, id)| async move {
            loop {
                let mut bytes = Vec::with_capacity(128);
                tokio::select! {
                    changed = next_change(&mut changes), if changes.is_some() => {
                        for kind in changed {
                            wire::write_notification(&mut bytes, kind.notification(), &serde_json::json!({}));
                        }
                    }
                    update = next_update(&mut updates), if updates.is_some() => {
                        let session = state.session(&id)?;
                        let session = session.lock().unwrap_or_else(|e| e.into_inner());
                        write_updates(&session, update, &mut bytes);
                    }
                    else => return None,
                }
                if !state.has_session(&id) {
                    return None;
                }
                let events: Vec<_> = bytes
                    .split(|byte| *byte == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| event(line.to_vec()))
                    .collect();
                if !events.is_empty() {
                    return Some((futures::stream::iter(events), (changes, updates, state, id)));
                }
            }
        },
    );
    Sse::new(futures::StreamExt::flatten(events))
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response()
}

async fn end_session(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if let Err(reason) = check_host_and_origin(&state.config, &headers) {
        return forbidden(reason);
    }
    let Some(id) = header_str(&headers, SESSION_HEADER) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            &ErrorObject::new(
                code::INVALID_REQUEST,
                "DELETE needs an Mcp-Session-Id header",
            ),
        );
    };
    match state.sessions().remove(id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            &ErrorObject::new(code::INVALID_REQUEST, "no such session"),
        ),
    }
}

async fn post_message(
    State(state): State<Arc<HttpState>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(reason) = check_host_and_origin(&state.config, &headers) {
        return forbidden(reason);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &ErrorObject::new(code::INVALID_REQUEST, "the body must be application/json"),
        );
    }
    let sse = accepts(&headers, "text/event-stream");
    if !sse && !accepts(&headers, "application/json") {
        return json_error(
            StatusCode::NOT_ACCEPTABLE,
            &ErrorObject::new(
                code::INVALID_REQUEST,
                "Accept must include application/json or text/event-stream",
            ),
        );
    }

    let peek: Peek<'_> = serde_json::from_slice(&body).unwrap_or_default();
    let modern_version = peek
        .params
        .as_ref()
        .and_then(|p| p.meta.as_ref())
        .and_then(|m| m.protocol_version.as_deref());
    if let Some(version) = modern_version
        && let Err(error) = check_modern_headers(&headers, &peek, version)
    {
        return json_error_to(StatusCode::BAD_REQUEST, peek.id, &error);
    }
    if modern_version.is_some()
        && peek.method == Some("tools/call")
        && let Some(name) = peek.params.as_ref().and_then(|p| p.name.as_deref())
        && let Some(schema) = state.server.tool_input_schema(name)
        && let Err(error) = check_param_headers(&headers, schema, &body)
    {
        return json_error_to(StatusCode::BAD_REQUEST, peek.id, &error);
    }

    // Which session: a new one for initialize, the named one, or none (stateless).
    let initialize = peek.method == Some("initialize");
    let named = header_str(&headers, SESSION_HEADER).map(str::to_owned);
    let (session, new_session_id) = match (&named, initialize) {
        (Some(id), false) => match state.session(id) {
            Some(session) => (session, None),
            None => {
                return json_error(
                    StatusCode::NOT_FOUND,
                    &ErrorObject::new(
                        code::INVALID_REQUEST,
                        "the session does not exist or has ended; initialize a new one",
                    ),
                );
            }
        },
        (_, true) => {
            if state.sweep_idle() >= state.config.max_sessions {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &ErrorObject::new(
                        code::SERVER_ERROR,
                        "too many open sessions; try again later",
                    )
                    .with_data(serde_json::json!({"retryable": true})),
                );
            }
            (shared_session(), Some(uuid::Uuid::new_v4().to_string()))
        }
        (None, false) => (shared_session(), None),
    };

    let (outbound, mut notes) = mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
    let mut out = Vec::with_capacity(512);
    let handled = {
        let mut session = session.lock().unwrap_or_else(|e| e.into_inner());
        // Notifications and requests to the client (legacy elicitation, sampling, roots) go
        // on this POST's event stream; a client that takes only JSON gets none of them, and a
        // handler that needs to ask it fails at once instead of waiting for an answer.
        session.set_outbound(sse.then_some(outbound));
        // A catalogue's tools are checked against their headers by the catalogue, which
        // alone knows their schemas.
        let sent = param_headers(&headers);
        let caller = match caller {
            Some(Extension(mut caller)) => {
                caller.param_headers = Some(sent);
                Some(caller)
            }
            None if !sent.is_empty() => Some(Caller {
                param_headers: Some(sent),
                ..Caller::default()
            }),
            None => None,
        };
        session.set_caller(caller.map(Arc::new));
        let handled = state.server.dispatch(&mut session, &body, &mut out);
        session.set_outbound(None);
        session.set_caller(None);
        handled
    };

    let mut extra_headers = HeaderMap::new();
    if let (Some(id), Handled::Answered) = (&new_session_id, &handled) {
        if let Ok(value) = HeaderValue::from_str(id) {
            extra_headers.insert(SESSION_HEADER, value);
        }
        state.insert_session(id.clone(), session);
    }

    match handled {
        Handled::Nothing => StatusCode::ACCEPTED.into_response(),
        Handled::Rejected => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            trim_newline(out),
        )
            .into_response(),
        Handled::UnknownMethod => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            trim_newline(out),
        )
            .into_response(),
        Handled::Answered => {
            if sse && !notes.is_empty() {
                let events = futures::stream::iter(
                    queued_then(&mut notes, Some(out)).into_iter().map(event),
                );
                return (extra_headers, Sse::new(events)).into_response();
            }
            // Answered during dispatch (no handler ran): the same statuses as an answer a
            // handler gave.
            json_answer(extra_headers, out, modern_version.is_some())
        }
        Handled::Pending(mut pending) => {
            let modern = modern_version.is_some();
            if !sse {
                return match pending.await {
                    Some(answer) => json_answer(extra_headers, answer, modern),
                    None => StatusCode::ACCEPTED.into_response(),
                };
            }
            // A request that finishes quickly without sending anything gets plain JSON, with
            // the status its answer calls for; one that sends a message first, or takes
            // longer, gets the event stream.
            let first = tokio::select! {
                biased;
                answer = &mut pending => {
                    if notes.is_empty() {
                        return match answer {
                            Some(answer) => json_answer(extra_headers, answer, modern),
                            None => StatusCode::ACCEPTED.into_response(),
                        };
                    }
                    let events = futures::stream::iter(queued_then(&mut notes, answer).into_iter().map(event));
                    return (extra_headers, Sse::new(events)).into_response();
                }
                Some(note) = notes.recv() => Some(note),
                () = tokio::time::sleep(JSON_WINDOW) => None,
            };
            // Stream the request's notifications as they come, then its answer. Dropping
            // the stream (the client went away) drops the handler: that is cancellation.
            let first = futures::stream::iter(first.map(event));
            let events = futures::stream::unfold(
                Stream::Live(notes, pending),
                |state| async move {
                    match state {
                        Stream::Live(mut notes, mut pending) => tokio::select! {
                            biased;
                            Some(note) = notes.recv() => Some((event(note), Stream::Live(notes, pending))),
                            answer = &mut pending => {
                                let mut rest = queued_then(&mut notes, answer);
                                let first = rest.pop_front()?;
                                Some((event(first), Stream::Flush(rest)))
                            }
                        },
                        Stream::Flush(mut rest) => rest
                            .pop_front()
                            .map(|message| (event(message), Stream::Flush(rest))),
                    }
                },
            );
            (
                extra_headers,
                Sse::new(futures::StreamExt::chain(first, events)),
            )
                .into_response()
        }
    }
}

/// A session for HTTP, where concurrent requests share it behind a lock: the lock is held while
/// a request is dispatched, and its handler runs after, in the request's own task.
fn shared_session() -> Arc<Mutex<Session>> {
    Arc::new(Mutex::new(Session::new(None).handlers_polled_by_caller()))
}

/// The notes still queued, then the answer: a handler may queue notes in the same poll that
/// finishes it, and they still go before the answer.
fn queued_then(
    notes: &mut mpsc::Receiver<Vec<u8>>,
    answer: Option<Vec<u8>>,
) -> std::collections::VecDeque<Vec<u8>> {
    let mut messages = std::collections::VecDeque::new();
    while let Ok(note) = notes.try_recv() {
        messages.push_back(note);
    }
    messages.extend(answer);
    messages
}

/// How long a running request may take and still be answered as plain JSON. After this, or at
/// its first notification, the answer becomes an event stream, so progress is never held back.
pub const JSON_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

/// Answers at most this long are read for their error code (error answers are small).
const STATUS_PEEK_BYTES: usize = 16 * 1024;

/// A finished answer as `application/json`, with its status: 400 for the envelope-level errors
/// of 2026-07-28 (a header that disagrees with the body, a missing client capability, an
/// unsupported version) as the transport requires, whoever found them (a handler, or an
/// upstream behind a gateway); 200 otherwise.
fn json_answer(headers: HeaderMap, answer: Vec<u8>, modern: bool) -> Response {
    #[derive(Deserialize)]
    struct Answer {
        error: Option<Code>,
    }
    #[derive(Deserialize)]
    struct Code {
        code: i64,
    }
    let refused = modern
        && answer.len() <= STATUS_PEEK_BYTES
        && serde_json::from_slice::<Answer>(&answer).is_ok_and(|answer| {
            answer.error.is_some_and(|error| {
                matches!(
                    error.code,
                    code::HEADER_MISMATCH
                        | code::MISSING_CLIENT_CAPABILITY
                        | code::UNSUPPORTED_PROTOCOL_VERSION
                )
            })
        });
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        headers,
        [(header::CONTENT_TYPE, "application/json")],
        trim_newline(answer),
    )
        .into_response()
}

/// The state of an SSE answer: waiting on the handler, or flushing what is left.
enum Stream {
    Live(mpsc::Receiver<Vec<u8>>, crate::server::Pending),
    Flush(std::collections::VecDeque<Vec<u8>>),
}

fn trim_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

fn event(message: Vec<u8>) -> Result<Event, std::convert::Infallible> {
    let text = String::from_utf8_lossy(&trim_newline(message)).into_owned();
    Ok(Event::default().event("message").data(text))
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_use_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut listener = without_nagle(listener);
        let _client = tokio::net::TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (accepted, _) = listener.accept().await;
        assert!(
            accepted.nodelay().unwrap_or(false),
            "TCP_NODELAY must be set on accepted connections"
        );
    }

    #[test]
    fn host_names_are_read_from_authorities() {
        assert_eq!(host_name("localhost:3000"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("evil.example"), "evil.example");
    }
}
