//! The direct path for a 2026-07-28 server over Streamable HTTP.
//!
//! That revision is stateless: every request is a POST of its own, answered with JSON or with
//! an SSE stream that ends with the answer. So `tools/call`, `resources/read` and
//! `prompts/get` go from the caller's task straight to a pooled HTTP connection and back.
//! Through rmcp they would pass its service loop, its transport worker and a task per POST,
//! each hop a wake-up of another thread; on a gateway that forwards thousands of calls a
//! second those wake-ups were most of its CPU (see `docs/performance.md`).
//!
//! What this path does in rmcp's place, for the requests it carries:
//! - the request's `_meta` (protocol version, client info and capabilities, progress token,
//!   and the call's own entries) and the headers of the revision (`MCP-Protocol-Version`,
//!   `Mcp-Method`, `Mcp-Name`, and `Mcp-Param-*` for the tool arguments whose schema names a
//!   header, SEP-2243);
//! - the answer as plain JSON, or an SSE stream whose progress goes to the call's progress
//!   channel and whose logs go to its relay or the connection's events;
//! - the timeout without an answer, which progress restarts, and the call's hard limit;
//! - cancellation: dropping the future drops the POST, and closing the response stream is how
//!   this revision cancels a request over HTTP;
//! - the wire tap of `--verbose`, which sees every message sent and received.
//!
//! `tools/list` takes this path too, so the tools arrive as the server sent them: rmcp's `Tool`
//! has no `execution`, and a gateway must know which tools can run as tasks. Other lists,
//! completions, pings and `subscriptions/listen` still go through rmcp.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderName, HeaderValue, StatusCode, header};
use rmcp::model::{CallToolRequestParams, ClientRequest};
use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};
use switchboard_config::ServerName;
use tokio::time::Instant;

use super::{Extras, Limits, inline::InlineHttp};
use crate::{
    error::ClientError,
    handler::ClientSide,
    model::{Direction, LogMessage, Progress, ServerEvent},
    tap::WireTap,
};

/// The largest plain JSON answer read (an SSE answer is bounded per event instead).
pub(crate) const MAX_JSON_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// The most read of an error answer that is not JSON-RPC, to quote it.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// How often an answer stream that ends early is resumed (`GET` with `Last-Event-ID`).
const MAX_RESUMPTIONS: u32 = 3;
/// How long the rest of a stream is read after its answer, so its connection can be reused.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_millis(50);
/// Ids of requests sent on this path start here, apart from the ones rmcp numbers from zero,
/// so that a log or a wire tap never shows two requests with one id.
const FIRST_ID: u64 = 1 << 32;

const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// Where a tool's argument goes as a header: the property path from the schema root and the
/// header's name after `Mcp-Param-`.
type ParamHeader = (Vec<String>, String);
/// Headers to send with one request.
type Headers = Vec<(HeaderName, HeaderValue)>;

/// Sends a modern server's stateless requests itself; see the module documentation.
pub(crate) struct DirectPost {
    server: ServerName,
    http: reqwest::Client,
    /// The connections this path drives itself, for a plain-`http` server ([`super::inline`]);
    /// reqwest's pool otherwise.
    inline: Option<Arc<InlineHttp>>,
    url: reqwest::Url,
    protocol_version: HeaderValue,
    /// What every request's `_meta` carries: the protocol version, the client's info and its
    /// capabilities, as rmcp sends them, each written as JSON once.
    meta: Vec<MetaEntry>,
    next_id: AtomicU64,
    tap: Option<(Arc<str>, Arc<dyn WireTap>)>,
    /// The `x-mcp-header` annotations of the listed tools that have any, by tool name.
    param_headers: RwLock<HashMap<String, Vec<ParamHeader>>>,
}

impl std::fmt::Debug for DirectPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectPost")
            .field("server", &self.server)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// One entry of every request's `_meta`, its value written as JSON once.
struct MetaEntry {
    key: String,
    value: Box<RawValue>,
}

impl MetaEntry {
    fn new(key: &str, value: &Value) -> Result<Self, serde_json::Error> {
        Ok(MetaEntry {
            key: key.to_owned(),
            value: serde_json::value::to_raw_value(value)?,
        })
    }
}

/// The `_meta` key of a request's progress token.
const PROGRESS_TOKEN: &str = "progressToken";

/// A request as it is sent: `jsonrpc`, `id`, its members and its params.
#[derive(Serialize)]
struct Outgoing<'a> {
    jsonrpc: &'static str,
    id: u64,
    #[serde(flatten)]
    members: Members<'a>,
    params: WithMeta<'a>,
}

/// The request's members other than its params.
#[derive(Serialize)]
#[serde(untagged)]
enum Members<'a> {
    /// A request whose only other member is its method.
    Method {
        method: &'static str,
    },
    Map(&'a Map<String, Value>),
}

/// A request's params with the `_meta` this path sends.
#[derive(Serialize)]
struct WithMeta<'a> {
    #[serde(flatten)]
    params: Params<'a>,
    #[serde(rename = "_meta")]
    meta: OutgoingMeta<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Params<'a> {
    /// rmcp's own, without a `_meta`.
    Typed(&'a CallToolRequestParams),
    /// Any request's, with its `_meta` removed.
    Map(&'a Map<String, Value>),
}

/// Every request's `_meta`: the connection's entries (protocol version, client info and
/// capabilities), unless the call has its own for the same key, then the call's other entries,
/// then the progress token, which lets the server send progress (and restart the call's
/// timeout).
struct OutgoingMeta<'a> {
    fixed: &'a [MetaEntry],
    own: Option<&'a Map<String, Value>>,
    progress_token: u64,
}

impl Serialize for OutgoingMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for entry in self.fixed {
            match self.own.and_then(|own| own.get(&entry.key)) {
                Some(value) => map.serialize_entry(&entry.key, value)?,
                None => map.serialize_entry(&entry.key, &entry.value)?,
            }
        }
        let written =
            |key: &str| key == PROGRESS_TOKEN || self.fixed.iter().any(|entry| entry.key == key);
        for (key, value) in self.own.into_iter().flatten() {
            if !written(key) {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry(PROGRESS_TOKEN, &self.progress_token)?;
        map.end()
    }
}

/// What one response carried.
enum Answer {
    Result(Value),
    Error {
        code: i64,
        message: String,
        data: Option<Value>,
    },
}

/// How the path reaches its server: reqwest's pool and, for a plain-`http` server, the
/// connections it drives itself ([`super::inline`]), which then carry its POSTs.
pub(crate) struct Senders {
    pub(crate) pooled: reqwest::Client,
    pub(crate) inline: Option<Arc<InlineHttp>>,
}

impl DirectPost {
    /// `client_info` and `client_capabilities` are what the handshake declared.
    pub(crate) fn new(
        server: ServerName,
        Senders { pooled, inline }: Senders,
        url: reqwest::Url,
        protocol_version: &str,
        client_info: Value,
        client_capabilities: Value,
        tap: Option<Arc<dyn WireTap>>,
    ) -> Result<Self, ClientError> {
        let protocol_version =
            HeaderValue::from_str(protocol_version).map_err(|_| ClientError::Protocol {
                server: server.clone(),
                method: "server/discover",
                detail: format!("the protocol version {protocol_version:?} is not a valid header"),
            })?;
        let meta = [
            (
                "io.modelcontextprotocol/protocolVersion",
                Value::String(protocol_version.to_str().unwrap_or_default().to_owned()),
            ),
            ("io.modelcontextprotocol/clientInfo", client_info),
            (
                "io.modelcontextprotocol/clientCapabilities",
                client_capabilities,
            ),
        ]
        .into_iter()
        .map(|(key, value)| MetaEntry::new(key, &value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ClientError::Protocol {
            server: server.clone(),
            method: "server/discover",
            detail: format!("the client's info or capabilities cannot be sent: {error}"),
        })?;
        let tap = tap.map(|tap| (Arc::from(server.as_str()), tap));
        Ok(DirectPost {
            server,
            http: pooled,
            inline,
            url,
            protocol_version,
            meta,
            next_id: AtomicU64::new(FIRST_ID),
            tap,
            param_headers: RwLock::default(),
        })
    }

    /// Whether this path carries `method`.
    pub(crate) fn carries(method: &str) -> bool {
        matches!(
            method,
            "tools/call" | "resources/read" | "prompts/get" | "tools/list"
        )
    }

    /// Note which arguments of the tools on a `tools/list` page must also travel as headers.
    pub(crate) fn learn_tools(&self, page: &Value) {
        let Some(tools) = page.as_array() else {
            return;
        };
        let learned: Vec<(String, Vec<ParamHeader>)> = tools
            .iter()
            .filter_map(|tool| {
                let name = tool.get("name").and_then(Value::as_str)?;
                let annotations = tool
                    .get("inputSchema")
                    .map(param_header_annotations)
                    .unwrap_or_default();
                Some((name.to_owned(), annotations))
            })
            .collect();
        self.param_headers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(learned);
    }

    /// Whether this connection has listed the tool `name`, so it knows its headers. The host
    /// lists a server's tools once for all its replicas, and a new connection starts empty.
    pub(crate) fn knows_tool(&self, name: &str) -> bool {
        self.param_headers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
    }

    /// Send one request and wait for its answer: the result as JSON, or the server's error.
    pub(crate) async fn request(
        &self,
        method: &'static str,
        request: &ClientRequest,
        limits: Limits,
        extras: &Extras,
        side: &ClientSide,
    ) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (body, headers) = self.message(method, id, request, extras)?;
        if let Some((server, tap)) = &self.tap {
            tap.message(
                server,
                Direction::Outgoing,
                std::str::from_utf8(&body).unwrap_or_default(),
            );
        }
        let started = Instant::now();
        let mut waiting = Waiting {
            limits,
            hard: limits.max_duration.map(|max| later(started, max)),
            deadline: later(started, limits.timeout),
        };
        let response = waiting
            .within(method, &self.server, self.post(body, headers))
            .await?
            .map_err(|error| self.lost(method, &*error))?;
        let answer = self
            .answer(method, id, response, &mut waiting, extras, side)
            .await?;
        match answer {
            Answer::Result(result) => Ok(result),
            Answer::Error {
                code,
                message,
                data,
            } => Err(ClientError::Rpc {
                server: self.server.clone(),
                method,
                code,
                message,
                data: data.map(Box::new),
            }),
        }
    }

    /// POST `body` with this revision's headers and `headers`: on the connections this path
    /// drives itself when it has them, through reqwest's pool otherwise.
    async fn post(
        &self,
        body: Vec<u8>,
        headers: Headers,
    ) -> Result<reqwest::Response, Box<dyn std::error::Error + Send + Sync>> {
        let mut map = http::HeaderMap::with_capacity(3 + headers.len());
        map.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        map.insert(
            HeaderName::from_static(PROTOCOL_VERSION_HEADER),
            self.protocol_version.clone(),
        );
        for (name, value) in headers {
            map.append(name, value);
        }
        Ok(match &self.inline {
            Some(inline) => inline.post(map, Bytes::from(body)).await?,
            None => {
                self.http
                    .post(self.url.clone())
                    .headers(map)
                    .body(body)
                    .send()
                    .await?
            }
        })
    }

    /// The request's body and the headers that go with it: the request as rmcp serializes
    /// it, framed with `jsonrpc` and `id`, its params given the `_meta` of [`OutgoingMeta`]
    /// (which replaces one the request carried: the call's own entries come in `extras`).
    ///
    /// A `tools/call`, which a gateway sends for every call it forwards, is written in one
    /// pass from rmcp's params; other requests go through a `Value` first.
    fn message(
        &self,
        method: &'static str,
        id: u64,
        request: &ClientRequest,
        extras: &Extras,
    ) -> Result<(Vec<u8>, Headers), ClientError> {
        let meta = OutgoingMeta {
            fixed: &self.meta,
            own: extras.meta.as_ref().map(|meta| &meta.0.0),
            progress_token: id,
        };
        let cannot = |e: serde_json::Error| {
            self.protocol(method, &format!("the request cannot be sent: {e}"))
        };
        if let ClientRequest::CallToolRequest(call) = request
            && call.params.meta.is_none()
        {
            let params = &call.params;
            let headers = self.headers(method, Some(&params.name), params.arguments.as_ref());
            let body = serde_json::to_vec(&Outgoing {
                jsonrpc: "2.0",
                id,
                members: Members::Method { method },
                params: WithMeta {
                    params: Params::Typed(params),
                    meta,
                },
            })
            .map_err(cannot)?;
            return Ok((body, headers));
        }
        let mut message = match serde_json::to_value(request) {
            Ok(Value::Object(message)) => message,
            Ok(_) | Err(_) => return Err(self.protocol(method, "the request is not a JSON object")),
        };
        let mut params = match message.shift_remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Err(self.protocol(method, "the request's params are not an object")),
        };
        params.shift_remove("_meta");
        let name_key = if method == "resources/read" {
            "uri"
        } else {
            "name"
        };
        let headers = self.headers(
            method,
            params.get(name_key).and_then(Value::as_str),
            params.get("arguments").and_then(Value::as_object),
        );
        let body = serde_json::to_vec(&Outgoing {
            jsonrpc: "2.0",
            id,
            members: Members::Map(&message),
            params: WithMeta {
                params: Params::Map(&params),
                meta,
            },
        })
        .map_err(cannot)?;
        Ok((body, headers))
    }

    /// The headers of the revision for a request: `Mcp-Method`, `Mcp-Name` (the tool, prompt
    /// or resource named) and, for a tool whose listed schema names some, `Mcp-Param-*` from
    /// its `arguments` (SEP-2243).
    fn headers(
        &self,
        method: &'static str,
        name: Option<&str>,
        arguments: Option<&Map<String, Value>>,
    ) -> Headers {
        let mut headers = Vec::new();
        let mut push = |name: HeaderName, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.push((name, value));
            }
        };
        push(HeaderName::from_static(METHOD_HEADER), method);
        if let Some(name) = name {
            push(
                HeaderName::from_static(NAME_HEADER),
                &encode_header_value(name),
            );
        }
        if method == "tools/call"
            && let Some(name) = name
            && let Some(arguments) = arguments
        {
            let known = self.param_headers.read().unwrap_or_else(|e| e.into_inner());
            for (path, header) in known.get(name).into_iter().flatten() {
                let value = path.split_first().and_then(|(first, rest)| {
                    rest.iter()
                        .try_fold(arguments.get(first.as_str())?, |value, key| {
                            value.get(key.as_str())
                        })
                });
                let text = match value {
                    Some(Value::String(text)) => text.clone(),
                    Some(value @ (Value::Number(_) | Value::Bool(_))) => value.to_string(),
                    _ => continue,
                };
                if let Ok(name) = HeaderName::from_bytes(format!("mcp-param-{header}").as_bytes()) {
                    push(name, &encode_header_value(&text));
                }
            }
        }
        headers
    }

    /// Read the answer to request `id` from `response`: plain JSON, or an SSE stream whose
    /// progress and logs are passed on as they come.
    async fn answer(
        &self,
        method: &'static str,
        id: u64,
        response: reqwest::Response,
        waiting: &mut Waiting,
        extras: &Extras,
        side: &ClientSide,
    ) -> Result<Answer, ClientError> {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        if status.is_success() && content_type == "text/event-stream" {
            return self
                .stream(method, id, response, waiting, extras, side)
                .await;
        }
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Err(self.protocol(
                method,
                &format!("the server answered HTTP {status} to a request, with no result"),
            ));
        }
        let limit = if status.is_success() || content_type == "application/json" {
            MAX_JSON_RESPONSE_BYTES
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let body = waiting
            .within(method, &self.server, read_limited(response, limit))
            .await?
            .map_err(|error| match error {
                ReadError::Read(error) => self.lost(method, &error),
                ReadError::TooLarge if !status.is_success() => self.refused(method, status, ""),
                ReadError::TooLarge => self.protocol(
                    method,
                    &format!("the answer is larger than {MAX_JSON_RESPONSE_BYTES} bytes"),
                ),
            })?;
        if content_type == "application/json"
            && let Ok(message) = serde_json::from_slice::<Value>(&body)
        {
            self.tap_incoming(&body);
            if let Some(answer) = self.parse_answer(method, id, message)? {
                return Ok(answer);
            }
        }
        let excerpt: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        if status.is_success() {
            return Err(self.protocol(
                method,
                &format!("the server answered HTTP {status} without a JSON-RPC answer: {excerpt}"),
            ));
        }
        Err(self.refused(method, status, &excerpt))
    }

    /// An HTTP refusal without a JSON-RPC error, classed as rmcp's transport would class it:
    /// 401 and 403 are authorization; 408, 429 and server errors mean the server cannot
    /// serve now (they count against its health, and idempotent calls are retried); the
    /// rest is a protocol error.
    fn refused(&self, method: &'static str, status: StatusCode, excerpt: &str) -> ClientError {
        let said = if excerpt.is_empty() {
            String::new()
        } else {
            format!(": {excerpt}")
        };
        let unavailable = status.is_server_error()
            || matches!(
                status,
                StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
            );
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ClientError::Authorization {
                server: self.server.clone(),
                reason: format!("the server answered HTTP {status}{said}"),
            },
            _ if unavailable => {
                self.gone(method, format!(": the server answered HTTP {status}{said}"))
            }
            _ => self.protocol(method, &format!("the server answered HTTP {status}{said}")),
        }
    }

    /// Read an SSE answer to its end: the response to `id` ends it. A stream that ends early
    /// after events with ids is resumed from the last of them, as the transport allows.
    async fn stream(
        &self,
        method: &'static str,
        id: u64,
        response: reqwest::Response,
        waiting: &mut Waiting,
        extras: &Extras,
        side: &ClientSide,
    ) -> Result<Answer, ClientError> {
        let mut events = crate::sse::events(response);
        let mut last_event_id: Option<String> = None;
        let mut retry: Option<std::time::Duration> = None;
        let mut resumptions = 0;
        loop {
            let ended = match waiting.within(method, &self.server, events.next()).await? {
                None => ": the server ended the response stream without answering".to_owned(),
                Some(Err(error)) => format!(": reading the response stream failed: {error}"),
                Some(Ok(event)) => {
                    if let Some(event_id) = event.id.filter(|event_id| !event_id.is_empty()) {
                        last_event_id = Some(event_id);
                    }
                    if let Some(millis) = event.retry {
                        retry = Some(std::time::Duration::from_millis(millis));
                    }
                    // Priming events, comments and events of other types carry no message.
                    let is_message = event.event.as_deref().is_none_or(|kind| kind == "message");
                    let Some(data) = event
                        .data
                        .filter(|data| is_message && !data.trim().is_empty())
                    else {
                        continue;
                    };
                    let Ok(message) = serde_json::from_str::<Value>(&data) else {
                        if let Some((server, tap)) = &self.tap {
                            tap.garbage(server, &data);
                        }
                        tracing::debug!(server = %self.server, "skipping an event that is not JSON on a response stream");
                        continue;
                    };
                    self.tap_incoming(data.as_bytes());
                    if message.get("method").is_some() {
                        self.notification((method, id), &message, waiting, extras, side)?;
                        continue;
                    }
                    if let Some(answer) = self.parse_answer(method, id, message)? {
                        // Read what is left, so the connection goes back to the pool.
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(DRAIN_TIME, async {
                                while events.next().await.is_some() {}
                            })
                            .await;
                        });
                        return Ok(answer);
                    }
                    continue;
                }
            };
            let Some(from) = last_event_id
                .clone()
                .filter(|_| resumptions < MAX_RESUMPTIONS)
            else {
                return Err(self.gone(method, ended));
            };
            resumptions += 1;
            if let Some(pause) = retry {
                waiting
                    .within(method, &self.server, tokio::time::sleep(pause))
                    .await?;
            }
            events = waiting
                .within(method, &self.server, self.resume(method, &from))
                .await??;
        }
    }

    /// Reopen a request's answer stream after the event `from` (`GET` with `Last-Event-ID`).
    async fn resume(
        &self,
        method: &'static str,
        from: &str,
    ) -> Result<crate::sse::Events, ClientError> {
        tracing::debug!(server = %self.server, method, from, "resuming an answer stream");
        let response = self
            .http
            .get(self.url.clone())
            .header(header::ACCEPT, "text/event-stream")
            .header(PROTOCOL_VERSION_HEADER, self.protocol_version.clone())
            .header("last-event-id", from)
            .send()
            .await
            .map_err(|error| self.lost(method, &error))?;
        let status = response.status();
        let is_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !status.is_success() || !is_stream {
            return Err(self.gone(
                method,
                format!(": the answer stream ended early and could not be resumed (HTTP {status})"),
            ));
        }
        Ok(crate::sse::events(response))
    }

    /// The answer to `id` in `message`; `None` when `message` is not a response.
    fn parse_answer(
        &self,
        method: &'static str,
        id: u64,
        message: Value,
    ) -> Result<Option<Answer>, ClientError> {
        let Value::Object(mut message) = message else {
            return Err(self.protocol(
                method,
                "the server sent a JSON-RPC message that is not an object",
            ));
        };
        if message.contains_key("method") {
            return Ok(None);
        }
        let answered = message.get("id");
        // An error about a request the server could not read may come without its id.
        let error_without_id =
            matches!(answered, None | Some(Value::Null)) && message.contains_key("error");
        let matches = match answered {
            Some(Value::Number(number)) => number.as_u64() == Some(id),
            Some(Value::String(text)) => text.parse::<u64>().ok() == Some(id),
            _ => false,
        };
        if !matches && !error_without_id {
            return Err(self.protocol(
                method,
                &format!(
                    "the server answered request {} where {id} was sent",
                    answered
                        .map(Value::to_string)
                        .unwrap_or_else(|| "(no id)".to_owned())
                ),
            ));
        }
        if let Some(result) = message.remove("result") {
            return Ok(Some(Answer::Result(result)));
        }
        let Some(Value::Object(mut error)) = message.remove("error") else {
            return Err(self.protocol(method, "the answer has neither a result nor an error"));
        };
        let Some(code) = error.get("code").and_then(Value::as_i64) else {
            return Err(self.protocol(method, "the error answer has no integer code"));
        };
        let message = match error.remove("message") {
            Some(Value::String(message)) => message,
            _ => String::new(),
        };
        Ok(Some(Answer::Error {
            code,
            message,
            data: error.remove("data"),
        }))
    }

    /// A message from the server on a response stream: progress and logs reach the call's
    /// caller, list changes the connection's events. A request is refused: this revision
    /// asks for input with `input_required` results, never on the stream.
    fn notification(
        &self,
        (method, id): (&'static str, u64),
        message: &Value,
        waiting: &mut Waiting,
        extras: &Extras,
        side: &ClientSide,
    ) -> Result<(), ClientError> {
        let params = message.get("params");
        let sent = message.get("method").and_then(Value::as_str);
        if message.get("id").is_some() {
            return Err(self.protocol(
                method,
                &format!(
                    "the server sent a request ({}) on the answer stream, which this revision does not allow",
                    sent.unwrap_or("without a method")
                ),
            ));
        }
        match sent {
            Some("notifications/progress") => {
                let Some(params) = params else {
                    return Ok(());
                };
                // Only this request's progress restarts its timeout.
                let token = params.get("progressToken");
                let ours = token.and_then(Value::as_u64) == Some(id)
                    || token.and_then(Value::as_str).and_then(|t| t.parse().ok()) == Some(id);
                if !ours {
                    return Ok(());
                }
                waiting.progressed();
                let Some(progress) = params.get("progress").and_then(Value::as_f64) else {
                    return Ok(());
                };
                if let Some(sender) = &extras.progress {
                    let _ = sender.try_send(Progress {
                        progress,
                        total: params.get("total").and_then(Value::as_f64),
                        message: params
                            .get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    });
                }
            }
            Some("notifications/message") => {
                let Some(params) = params else {
                    return Ok(());
                };
                let log = LogMessage {
                    level: params
                        .get("level")
                        .and_then(Value::as_str)
                        .unwrap_or("info")
                        .to_owned(),
                    logger: params
                        .get("logger")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    data: params.get("data").cloned().unwrap_or(Value::Null),
                };
                match &extras.relay {
                    Some(relay) => relay.log(log),
                    None => side.emit(ServerEvent::Log(log)),
                }
            }
            Some("notifications/tools/list_changed") => side.emit(ServerEvent::ToolsChanged),
            Some("notifications/prompts/list_changed") => side.emit(ServerEvent::PromptsChanged),
            Some("notifications/resources/list_changed") => {
                side.emit(ServerEvent::ResourcesChanged)
            }
            other => {
                tracing::debug!(server = %self.server, method = ?other, "ignoring a message on a response stream");
            }
        }
        Ok(())
    }

    fn tap_incoming(&self, json: &[u8]) {
        if let Some((server, tap)) = &self.tap {
            tap.message(
                server,
                Direction::Incoming,
                std::str::from_utf8(json).unwrap_or_default(),
            );
        }
    }

    fn protocol(&self, method: &'static str, detail: &str) -> ClientError {
        ClientError::Protocol {
            server: self.server.clone(),
            method,
            detail: detail.to_owned(),
        }
    }

    /// The server could not be reached or read from, or cannot serve now.
    fn gone(&self, method: &'static str, diagnostics: String) -> ClientError {
        ClientError::ConnectionLost {
            server: self.server.clone(),
            method,
            diagnostics,
        }
    }

    fn lost(&self, method: &'static str, error: &dyn std::error::Error) -> ClientError {
        self.gone(method, format!(": {}", super::error_chain(error)))
    }
}

/// The waiting rules of one request as it runs.
struct Waiting {
    limits: Limits,
    /// When the call must end, progress or not.
    hard: Option<Instant>,
    /// When the call ends without an answer or progress.
    deadline: Instant,
}

impl Waiting {
    fn progressed(&mut self) {
        if self.limits.max_duration.is_some() {
            self.deadline = later(Instant::now(), self.limits.timeout);
        }
    }

    /// `future`, unless the time allowed runs out first.
    async fn within<F: Future>(
        &self,
        method: &'static str,
        server: &ServerName,
        future: F,
    ) -> Result<F::Output, ClientError> {
        let (until, after) = match (self.hard, self.limits.max_duration) {
            (Some(hard), Some(max)) if hard < self.deadline => (hard, max),
            _ => (self.deadline, self.limits.timeout),
        };
        tokio::time::timeout_at(until, future)
            .await
            .map_err(|_| ClientError::RequestTimeout {
                server: server.clone(),
                method,
                after,
            })
    }
}

/// `from + wait`, or a time that never comes when that is past what a clock can hold.
fn later(from: Instant, wait: std::time::Duration) -> Instant {
    from.checked_add(wait)
        .unwrap_or_else(|| from + std::time::Duration::from_secs(100 * 365 * 24 * 3600))
}

enum ReadError {
    Read(reqwest::Error),
    TooLarge,
}

/// A response body, refused past `limit` bytes.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Bytes, ReadError> {
    // What the headers announced: read before the body, whose size hint shrinks as it is read.
    let announced = response.content_length();
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        if body.is_empty() && announced == Some(chunk.len() as u64) {
            // The whole body in one chunk: no copy.
            return Ok(chunk);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The `x-mcp-header` annotations of a tool's input schema, reached from its root through
/// `properties` alone (SEP-2243). A header name that is not a string is skipped.
fn param_header_annotations(schema: &Value) -> Vec<ParamHeader> {
    fn walk(properties: Option<&Value>, path: &mut Vec<String>, out: &mut Vec<ParamHeader>) {
        let Some(Value::Object(properties)) = properties else {
            return;
        };
        for (name, property) in properties {
            path.push(name.clone());
            if let Some(Value::String(header)) = property.get("x-mcp-header")
                && !header.is_empty()
            {
                out.push((path.clone(), header.clone()));
            }
            walk(property.get("properties"), path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema.get("properties"), &mut Vec::new(), &mut out);
    out
}

/// A header value as SEP-2243 sends it: the text itself, or `=?base64?…?=` when the text has
/// characters a header cannot carry (control or non-ASCII characters, spaces at either end) or
/// would read as that form itself.
fn encode_header_value(text: &str) -> String {
    let needs_base64 = text.starts_with([' ', '\t'])
        || text.ends_with([' ', '\t'])
        || text.chars().any(|c| !(' '..='~').contains(&c))
        || (text.starts_with(BASE64_PREFIX) && text.ends_with(BASE64_SUFFIX));
    if needs_base64 {
        use base64::Engine as _;
        format!(
            "{BASE64_PREFIX}{}{BASE64_SUFFIX}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_are_sent_plain_when_they_can_be() {
        assert_eq!(encode_header_value("us-west1"), "us-west1");
        assert_eq!(encode_header_value(""), "");
        assert_eq!(encode_header_value("a b"), "a b");
        // Base64 of the UTF-8 text.
        assert_eq!(encode_header_value("café"), "=?base64?Y2Fmw6k=?=");
        assert_eq!(encode_header_value(" padded"), "=?base64?IHBhZGRlZA==?=");
        assert_eq!(
            encode_header_value("line\nbreak"),
            "=?base64?bGluZQpicmVhaw==?="
        );
        // A value that looks encoded is encoded, so it is not decoded by mistake.
        assert_eq!(
            encode_header_value("=?base64?eA==?="),
            "=?base64?PT9iYXNlNjQ/ZUE9PT89?="
        );
    }

    #[test]
    fn annotations_are_found_along_properties_chains_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "nested": {
                    "type": "object",
                    "properties": {"tenant": {"type": "string", "x-mcp-header": "Tenant"}}
                },
                "items": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}},
                "empty": {"type": "string", "x-mcp-header": ""},
                "wrong": {"type": "string", "x-mcp-header": 7}
            }
        });
        let mut found = param_header_annotations(&schema);
        found.sort();
        assert_eq!(
            found,
            vec![
                (
                    vec!["nested".to_owned(), "tenant".to_owned()],
                    "Tenant".to_owned()
                ),
                (vec!["region".to_owned()], "Region".to_owned()),
            ]
        );
    }

    fn direct_post() -> DirectPost {
        crate::connection::install_crypto_provider();
        DirectPost::new(
            "notes".parse().expect("a server name"),
            Senders {
                pooled: reqwest::Client::new(),
                inline: None,
            },
            "http://127.0.0.1:9/mcp".parse().expect("a URL"),
            "2026-07-28",
            json!({"name": "switchboard", "version": "1"}),
            json!({"sampling": {}}),
            None,
        )
        .expect("a direct path")
    }

    fn extras(meta: Value) -> Extras {
        let Value::Object(meta) = meta else {
            panic!("meta is an object");
        };
        Extras {
            progress: None,
            relay: None,
            meta: Some(rmcp::model::RequestMetaObject(rmcp::model::MetaObject(
                meta,
            ))),
        }
    }

    fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
        headers
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .and_then(|(_, value)| value.to_str().ok())
    }

    #[test]
    fn a_tool_call_is_framed_with_the_connections_meta_and_the_calls_own() {
        use rmcp::model::{CallToolRequest, CallToolRequestParams};
        let direct = direct_post();
        direct.learn_tools(&json!([{
            "name": "search",
            "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "scope": {"type": "object", "properties": {
                    "tenant": {"type": "string", "x-mcp-header": "Tenant"}}}
            }}
        }]));
        let mut params = CallToolRequestParams::new("search");
        params.arguments =
            json!({"query": "\"quoted\" ✓", "region": "eu", "scope": {"tenant": "acme"}})
                .as_object()
                .cloned();
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        // The call's capabilities win over the connection's; a progress token of its own does
        // not replace the request's id.
        let own = extras(json!({
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
            "io.modelcontextprotocol/logLevel": "debug",
            "progressToken": "theirs",
        }));
        let (body, headers) = direct
            .message("tools/call", 42, &request, &own)
            .expect("the request is written");
        let text = std::str::from_utf8(&body).expect("UTF-8");
        let sent: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(
            sent,
            json!({
                "jsonrpc": "2.0",
                "id": 42,
                "method": "tools/call",
                "params": {
                    "name": "search",
                    "arguments": {"query": "\"quoted\" ✓", "region": "eu", "scope": {"tenant": "acme"}},
                    "_meta": {
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientInfo": {"name": "switchboard", "version": "1"},
                        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
                        "io.modelcontextprotocol/logLevel": "debug",
                        "progressToken": 42
                    }
                }
            })
        );
        // No key twice (a parsed object would hide that).
        for key in ["clientCapabilities", "progressToken", "\"_meta\""] {
            assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
        }
        assert_eq!(header(&headers, "mcp-method"), Some("tools/call"));
        assert_eq!(header(&headers, "mcp-name"), Some("search"));
        assert_eq!(header(&headers, "mcp-param-region"), Some("eu"));
        assert_eq!(header(&headers, "mcp-param-tenant"), Some("acme"));

        // Without the call's own entries: the connection's, and the token.
        let (body, _) = direct
            .message("tools/call", 43, &request, &Extras::default())
            .expect("the request is written");
        let sent: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            sent["params"]["_meta"],
            json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "switchboard", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
                "progressToken": 43
            })
        );
    }

    #[test]
    fn other_requests_and_calls_with_a_meta_of_their_own_get_the_same_framing() {
        use rmcp::model::{
            CallToolRequest, CallToolRequestParams, ReadResourceRequest, ReadResourceRequestParams,
        };
        let direct = direct_post();
        let read = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(
            ReadResourceRequestParams::new("file:///notes/a b.txt"),
        ));
        let (body, headers) = direct
            .message("resources/read", 7, &read, &Extras::default())
            .expect("the request is written");
        let sent: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(sent["jsonrpc"], "2.0");
        assert_eq!(sent["id"], 7);
        assert_eq!(sent["method"], "resources/read");
        assert_eq!(sent["params"]["uri"], "file:///notes/a b.txt");
        assert_eq!(sent["params"]["_meta"]["progressToken"], 7);
        assert_eq!(header(&headers, "mcp-name"), Some("file:///notes/a b.txt"));

        // A `_meta` the request carried is replaced by the one this path sends.
        let mut params = CallToolRequestParams::new("search");
        params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
            rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(1)),
        ));
        let call = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let (body, _) = direct
            .message("tools/call", 8, &call, &Extras::default())
            .expect("the request is written");
        let text = std::str::from_utf8(&body).expect("UTF-8");
        assert_eq!(text.matches("\"_meta\"").count(), 1, "{text}");
        let sent: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(sent["params"]["name"], "search");
        assert_eq!(sent["params"]["_meta"]["progressToken"], 8);
    }
}
