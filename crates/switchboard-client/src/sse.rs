//! The legacy HTTP+SSE transport (protocol revision 2024-11-05), client side.
//!
//! The client opens a long-lived `GET` with `Accept: text/event-stream`. The server's first event,
//! `endpoint`, names the URL to which every JSON-RPC message is then POSTed; the server's own
//! messages arrive as `message` events on the `GET` stream. An endpoint on another origin is
//! refused: following it would send our messages, and the configured headers with them, to a
//! host the user never named.
//!
//! This module also holds [`RefusalWatch`], which lets a Streamable HTTP connection notice the
//! answers (HTTP 400, 404 or 405 to its POST) that mark an HTTP+SSE-only server, and
//! [`StreamDiagnostics`], the record of a misbehaving network peer shared with the WebSocket
//! transport.

use std::{
    borrow::Cow,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU16, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::{
    StatusCode, Url,
    header::{ACCEPT, CONTENT_TYPE},
};
use rmcp::{
    service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{
        Transport,
        streamable_http_client::{HttpStatusError, StreamableHttpError},
    },
};
use sse_stream::{Sse, SseStream};
use switchboard_config::ServerName;
use tokio::sync::Semaphore;

use crate::{MAX_STDIO_LINE_BYTES, error::ClientError, model::Direction, tap::WireTap};

/// Largest SSE event we accept (the same bound as a stdio line). A larger event ends the stream.
pub(crate) const MAX_SSE_EVENT_BYTES: usize = MAX_STDIO_LINE_BYTES;
/// POSTs to the message endpoint in flight at once; further sends wait for a slot.
const MAX_CONCURRENT_POSTS: usize = 16;
/// Time allowed for one POST to the message endpoint, answer included.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of a POST's answer that we read (and, for an error, quote in part).
const MAX_POST_ANSWER_BYTES: usize = 64 * 1024;
/// Longest text we keep from a peer for an error message, in characters.
const DIAGNOSTIC_TEXT_CHARS: usize = 300;
/// The statuses with which a server that only speaks HTTP+SSE answers a Streamable HTTP POST
/// (the spec's backwards-compatibility section).
const LEGACY_REFUSAL_STATUSES: [u16; 3] = [400, 404, 405];

fn clip(text: &str) -> String {
    let text = text.trim_end();
    match text.char_indices().nth(DIAGNOSTIC_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An error and its sources as one line, without repeating a cause already in its parent.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
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

/// What we observed about a network peer (SSE or WebSocket), for error messages.
#[derive(Debug, Default)]
pub(crate) struct StreamDiagnostics {
    state: Mutex<StreamDiagnosticsState>,
}

#[derive(Debug, Default)]
struct StreamDiagnosticsState {
    garbage: u64,
    first_garbage: Option<String>,
    ended: Option<String>,
}

impl StreamDiagnostics {
    fn lock(&self) -> std::sync::MutexGuard<'_, StreamDiagnosticsState> {
        // A poisoned lock only means a panic while recording; the data is still the best we have.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A message that is not JSON-RPC and was skipped.
    pub(crate) fn record_garbage(&self, text: &str) {
        let mut state = self.lock();
        state.garbage += 1;
        if state.first_garbage.is_none() {
            state.first_garbage = Some(clip(text));
        }
    }

    /// Why the stream ended; the first reason recorded wins.
    pub(crate) fn record_end(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        if state.ended.is_none() {
            state.ended = Some(reason.into());
        }
    }

    /// A summary such as `; it sent 2 messages that are not JSON-RPC, the first: "hi"`, or "".
    pub(crate) fn summary(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        if state.garbage > 0 {
            let first = state.first_garbage.as_deref().unwrap_or_default();
            out.push_str(&format!(
                "; it sent {} message{} that {} not JSON-RPC and {} skipped, the first: {first:?}",
                state.garbage,
                if state.garbage == 1 { "" } else { "s" },
                if state.garbage == 1 { "is" } else { "are" },
                if state.garbage == 1 { "was" } else { "were" },
            ));
        }
        if let Some(ended) = &state.ended {
            out.push_str("; ");
            out.push_str(ended);
        }
        out
    }

    /// Adds what we observed to an error from the handshake. The handshake ran with what was
    /// left of the connect timeout, so a timeout is reported with the whole of it.
    pub(crate) fn annotate(&self, error: ClientError, connect_timeout: Duration) -> ClientError {
        match error {
            ClientError::ConnectTimeout {
                server,
                after: _,
                mut diagnostics,
            } => {
                diagnostics.push_str(&self.summary());
                ClientError::ConnectTimeout {
                    server,
                    after: connect_timeout,
                    diagnostics,
                }
            }
            ClientError::Handshake {
                server,
                reason,
                mut diagnostics,
            } => {
                diagnostics.push_str(&self.summary());
                ClientError::Handshake {
                    server,
                    reason,
                    diagnostics,
                }
            }
            other => other,
        }
    }
}

/// The body of the SSE response, cut off (with an error) at an event larger than
/// [`MAX_SSE_EVENT_BYTES`]. The parser buffers a whole event, so this is what bounds its memory.
#[derive(Debug, Default)]
struct EventSizeGuard {
    /// Bytes of the event being received, line terminators excluded.
    event_bytes: usize,
    /// Bytes of the line being received.
    line_bytes: usize,
    /// The previous chunk ended in `\r`, so a leading `\n` belongs to the same terminator.
    after_cr: bool,
}

impl EventSizeGuard {
    /// Accounts for `chunk`; false once the current event is too large.
    fn admit(&mut self, chunk: &[u8]) -> bool {
        for &byte in chunk {
            if byte == b'\n' && self.after_cr {
                self.after_cr = false;
                continue;
            }
            self.after_cr = byte == b'\r';
            if byte == b'\n' || byte == b'\r' {
                // An empty line ends the event; any other terminator only ends a line.
                if self.line_bytes == 0 {
                    self.event_bytes = 0;
                }
                self.line_bytes = 0;
            } else {
                self.line_bytes += 1;
                self.event_bytes += 1;
                if self.event_bytes > MAX_SSE_EVENT_BYTES {
                    return false;
                }
            }
        }
        true
    }
}

/// Why the SSE body stopped.
#[derive(Debug, thiserror::Error)]
enum SseBodyError {
    #[error("reading the SSE stream failed")]
    Read(#[source] reqwest::Error),
    #[error("the server sent an SSE event larger than {MAX_SSE_EVENT_BYTES} bytes")]
    EventTooLarge,
}

pub(crate) type Events = Pin<Box<dyn Stream<Item = Result<Sse, sse_stream::Error>> + Send>>;

/// The events of an SSE response body, each bounded by [`MAX_SSE_EVENT_BYTES`].
pub(crate) fn events(response: reqwest::Response) -> Events {
    let body = response.bytes_stream().scan(
        (EventSizeGuard::default(), false),
        |(guard, stopped), chunk: Result<Bytes, reqwest::Error>| {
            let item = if *stopped {
                None
            } else {
                match chunk {
                    Ok(bytes) if guard.admit(&bytes) => Some(Ok(bytes)),
                    Ok(_) => {
                        *stopped = true;
                        Some(Err(SseBodyError::EventTooLarge))
                    }
                    Err(error) => {
                        *stopped = true;
                        Some(Err(SseBodyError::Read(error)))
                    }
                }
            };
            futures::future::ready(item)
        },
    );
    Box::pin(SseStream::from_bytes_stream(body))
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SseSendError {
    #[error("the message could not be serialised")]
    Serialize(#[from] serde_json::Error),
    #[error("the transport is closed")]
    Closed,
    #[error("the POST to the message endpoint failed")]
    Post(#[source] reqwest::Error),
    #[error("the message endpoint answered HTTP {status}{body}")]
    Status {
        status: StatusCode,
        /// The start of the answer, starting with ": " when there is one.
        body: String,
    },
}

/// A session over the legacy HTTP+SSE transport.
pub(crate) struct SseTransport {
    server: Arc<str>,
    client: reqwest::Client,
    /// Where messages are POSTed: the `endpoint` event's URI, resolved against the SSE URL.
    endpoint: Url,
    events: Events,
    posts: Arc<Semaphore>,
    closed: Arc<AtomicBool>,
    diagnostics: Arc<StreamDiagnostics>,
    tap: Option<Arc<dyn WireTap>>,
}

/// How far the connection got, for the timeout message.
#[derive(Debug, Clone, Copy)]
enum ConnectPhase {
    Request,
    Endpoint,
}

impl SseTransport {
    /// Opens the SSE stream and waits (within `timeout`) for the `endpoint` event.
    pub(crate) async fn connect(
        name: &ServerName,
        client: reqwest::Client,
        url: &Url,
        timeout: Duration,
        tap: Option<Arc<dyn WireTap>>,
    ) -> Result<(Self, Arc<StreamDiagnostics>), ClientError> {
        let server: Arc<str> = Arc::from(name.as_str());
        let diagnostics = Arc::new(StreamDiagnostics::default());
        let handshake = |reason: String| ClientError::Handshake {
            server: name.clone(),
            reason,
            diagnostics: diagnostics.summary(),
        };
        let mut phase = ConnectPhase::Request;
        let opened = tokio::time::timeout(timeout, async {
            let response = client
                .get(url.clone())
                .header(ACCEPT, "text/event-stream")
                .send()
                .await
                .map_err(|e| handshake(format!("could not open the SSE stream: {}", describe(&e))))?;
            let status = response.status();
            if !status.is_success() {
                return Err(handshake(format!(
                    "the SSE stream was refused with HTTP {status}"
                )));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if !content_type
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
            {
                return Err(handshake(format!(
                    "the SSE URL answered with content type {content_type:?} instead of text/event-stream"
                )));
            }
            phase = ConnectPhase::Endpoint;
            let mut events = events(response);
            let endpoint = loop {
                match events.next().await {
                    Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                        break event.data.unwrap_or_default();
                    }
                    Some(Ok(event)) => {
                        // A message before the endpoint cannot be part of our session.
                        let text = event.data.unwrap_or_default();
                        diagnostics.record_garbage(&text);
                        if let Some(tap) = &tap {
                            tap.garbage(&server, &text);
                        }
                    }
                    Some(Err(error)) => {
                        return Err(handshake(format!(
                            "the SSE stream broke before the endpoint event: {}",
                            describe(&error)
                        )));
                    }
                    None => {
                        return Err(handshake(
                            "the SSE stream ended before the server sent its endpoint event"
                                .to_owned(),
                        ));
                    }
                }
            };
            let endpoint = resolve_endpoint(url, &endpoint).map_err(handshake)?;
            Ok((events, endpoint))
        })
        .await;
        let (events, endpoint) = match opened {
            Ok(opened) => opened?,
            Err(_elapsed) => {
                let waiting = match phase {
                    ConnectPhase::Request => "; the SSE request got no answer",
                    ConnectPhase::Endpoint => {
                        "; the SSE stream opened but the server sent no endpoint event"
                    }
                };
                return Err(ClientError::ConnectTimeout {
                    server: name.clone(),
                    after: timeout,
                    diagnostics: format!("{waiting}{}", diagnostics.summary()),
                });
            }
        };
        tracing::debug!(server = %name, %endpoint, "HTTP+SSE session opened");
        Ok((
            SseTransport {
                server,
                client,
                endpoint,
                events,
                posts: Arc::new(Semaphore::new(MAX_CONCURRENT_POSTS)),
                closed: Arc::default(),
                diagnostics: diagnostics.clone(),
                tap,
            },
            diagnostics,
        ))
    }
}

/// Resolves the `endpoint` event's URI against the SSE URL, refusing another origin.
fn resolve_endpoint(sse_url: &Url, data: &str) -> Result<Url, String> {
    let data = data.trim();
    if data.is_empty() {
        return Err("the endpoint event carries no URI".to_owned());
    }
    let endpoint = sse_url.join(data).map_err(|e| {
        format!(
            "the endpoint event's URI {:?} is not valid: {e}",
            clip(data)
        )
    })?;
    let (ours, theirs) = (sse_url.origin(), endpoint.origin());
    if ours != theirs {
        return Err(format!(
            "the endpoint event points to another origin ({}), which is refused: messages go only to the origin of the SSE URL ({})",
            theirs.ascii_serialization(),
            ours.ascii_serialization()
        ));
    }
    Ok(endpoint)
}

async fn post(
    client: reqwest::Client,
    endpoint: Url,
    body: String,
    posts: Arc<Semaphore>,
) -> Result<(), SseSendError> {
    let _slot = posts
        .acquire_owned()
        .await
        .map_err(|_| SseSendError::Closed)?;
    let mut response = client
        .post(endpoint)
        .header(CONTENT_TYPE, "application/json")
        .timeout(POST_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(SseSendError::Post)?;
    let status = response.status();
    // Read the (short) answer so that the connection can be reused, keeping its start for an
    // error message; the JSON-RPC answer itself arrives on the SSE stream.
    let mut answer = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_POST_ANSWER_BYTES.saturating_sub(answer.len());
        answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if answer.len() >= MAX_POST_ANSWER_BYTES {
            break;
        }
    }
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&answer);
    let text = clip(text.trim());
    Err(SseSendError::Status {
        status,
        body: if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        },
    })
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseSendError;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed("HTTP+SSE")
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let body = serde_json::to_string(&item);
        if let (Ok(json), Some(tap)) = (&body, &self.tap) {
            tap.message(&self.server, Direction::Outgoing, json);
        }
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        let posts = self.posts.clone();
        let closed = self.closed.load(Ordering::SeqCst);
        async move {
            let body = body?;
            if closed {
                return Err(SseSendError::Closed);
            }
            post(client, endpoint, body, posts).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let event = match self.events.next().await {
                Some(Ok(event)) => event,
                Some(Err(sse_stream::Error::Body(error))) => {
                    if !self.closed.load(Ordering::SeqCst) {
                        self.diagnostics
                            .record_end(format!("the SSE stream broke: {}", describe(&*error)));
                    }
                    return None;
                }
                Some(Err(error)) => {
                    // The parser drops the rest of the chunk with the bad line; later events
                    // are still read.
                    let note = format!("<malformed SSE: {error}>");
                    self.diagnostics.record_garbage(&note);
                    if let Some(tap) = &self.tap {
                        tap.garbage(&self.server, &note);
                    }
                    continue;
                }
                None => {
                    if !self.closed.load(Ordering::SeqCst) {
                        self.diagnostics
                            .record_end("the server closed the SSE stream");
                    }
                    return None;
                }
            };
            match event.event.as_deref() {
                None | Some("message") => {}
                Some(other) => {
                    tracing::debug!(server = %self.server, event = other, "ignoring an SSE event that is not a message");
                    continue;
                }
            }
            let data = event.data.unwrap_or_default();
            match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&data) {
                Ok(message) => {
                    if let Some(tap) = &self.tap {
                        tap.message(&self.server, Direction::Incoming, &data);
                    }
                    return Some(message);
                }
                Err(error) => {
                    tracing::debug!(server = %self.server, %error, "skipping an SSE message that is not JSON-RPC");
                    self.diagnostics.record_garbage(&data);
                    if let Some(tap) = &self.tap {
                        tap.garbage(&self.server, &data);
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Dropping the GET ends the session on the server; no new POST starts after this.
        self.closed.store(true, Ordering::SeqCst);
        self.posts.close();
        self.events = Box::pin(futures::stream::empty());
        Ok(())
    }
}

/// The error for a Streamable HTTP entry whose fallback to HTTP+SSE failed too: it names the
/// refused POST first, since that is what the user configured.
pub(crate) fn fallback_failed(
    error: ClientError,
    status: u16,
    connect_timeout: Duration,
) -> ClientError {
    match error {
        ClientError::ConnectTimeout {
            server,
            after: _,
            diagnostics,
        } => ClientError::ConnectTimeout {
            server,
            after: connect_timeout,
            diagnostics: format!(
                "; Streamable HTTP was refused with HTTP {status}, so the legacy HTTP+SSE transport was tried{diagnostics}"
            ),
        },
        ClientError::Handshake {
            server,
            reason,
            diagnostics,
        } => ClientError::Handshake {
            server,
            reason: format!(
                "Streamable HTTP was refused with HTTP {status} and the legacy HTTP+SSE transport failed too: {reason}"
            ),
            diagnostics,
        },
        other => other,
    }
}

/// Wraps a Streamable HTTP transport to notice an answer of HTTP 400, 404 or 405 to a POST,
/// which marks a server that only speaks the legacy HTTP+SSE transport.
pub(crate) struct RefusalWatch<T> {
    inner: T,
    refused: Arc<AtomicU16>,
}

/// The status recorded by a [`RefusalWatch`], if any.
#[derive(Debug, Clone)]
pub(crate) struct Refusal(Arc<AtomicU16>);

impl Refusal {
    pub(crate) fn status(&self) -> Option<u16> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            status => Some(status),
        }
    }
}

impl<T> RefusalWatch<T> {
    pub(crate) fn new(inner: T) -> (Self, Refusal) {
        let refused = Arc::new(AtomicU16::new(0));
        (
            RefusalWatch {
                inner,
                refused: refused.clone(),
            },
            Refusal(refused),
        )
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for RefusalWatch<T> {
    type Error = T::Error;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let refused = self.refused.clone();
        let send = self.inner.send(item);
        async move {
            let result = send.await;
            if let Err(error) = &result
                && let Some(status) = http_status(error)
                && LEGACY_REFUSAL_STATUSES.contains(&status)
            {
                refused.store(status, Ordering::SeqCst);
            }
            result
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.inner.receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// The HTTP status behind a Streamable HTTP send error, found by walking the error's sources.
///
/// rmcp's reqwest backend keeps a typed status only for 429 and 5xx (`HttpStatusError`); any
/// other refused POST becomes `UnexpectedServerResponse` whose text starts `HTTP <status>`,
/// which is where a 400, 404 or 405 is read from.
fn http_status(error: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(error) = error.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            let status = match error {
                StreamableHttpError::HttpStatus(status) => Some(status.status),
                StreamableHttpError::Client(error) => error.status().map(|s| s.as_u16()),
                StreamableHttpError::UnexpectedServerResponse(text) => status_prefix(text),
                _ => None,
            };
            if status.is_some() {
                return status;
            }
        } else if let Some(error) = error.downcast_ref::<HttpStatusError>() {
            return Some(error.status);
        } else if let Some(status) = error
            .downcast_ref::<reqwest::Error>()
            .and_then(reqwest::Error::status)
        {
            return Some(status.as_u16());
        }
        current = error.source();
    }
    None
}

/// `404` from `HTTP 404 Not Found: ...`.
fn status_prefix(text: &str) -> Option<u16> {
    let rest = text.strip_prefix("HTTP ")?;
    let digits = rest.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest[3..].chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_read_from_an_unexpected_response() {
        assert_eq!(status_prefix("HTTP 404 Not Found: <html>"), Some(404));
        assert_eq!(status_prefix("HTTP 405 Method Not Allowed"), Some(405));
        assert_eq!(status_prefix("HTTP 4040"), None);
        assert_eq!(status_prefix("HTTP/1.1 404"), None);
        let error: StreamableHttpError<reqwest::Error> =
            StreamableHttpError::UnexpectedServerResponse("HTTP 400 Bad Request: no".into());
        assert_eq!(http_status(&error), Some(400));
        let error: StreamableHttpError<reqwest::Error> =
            StreamableHttpError::HttpStatus(HttpStatusError::new(503, None));
        assert_eq!(http_status(&error), Some(503));
    }

    #[test]
    fn the_endpoint_is_resolved_and_kept_on_our_origin() {
        let sse: Url = "http://127.0.0.1:3001/sse".parse().unwrap();
        assert_eq!(
            resolve_endpoint(&sse, "/message?sessionId=abc\n").map(String::from),
            Ok("http://127.0.0.1:3001/message?sessionId=abc".to_owned())
        );
        assert_eq!(
            resolve_endpoint(&sse, "messages/1").map(String::from),
            Ok("http://127.0.0.1:3001/messages/1".to_owned())
        );
        let refused = resolve_endpoint(&sse, "http://127.0.0.1:3002/message").unwrap_err();
        assert!(
            refused.contains("another origin (http://127.0.0.1:3002)"),
            "{refused}"
        );
        assert!(resolve_endpoint(&sse, "https://127.0.0.1:3001/m").is_err());
        assert!(resolve_endpoint(&sse, "  ").is_err());
    }

    #[test]
    fn an_oversized_event_is_caught_across_chunks() {
        let mut guard = EventSizeGuard::default();
        let line = vec![b'x'; MAX_SSE_EVENT_BYTES / 2];
        assert!(guard.admit(b"data: "));
        assert!(guard.admit(&line));
        assert!(guard.admit(b"\r"));
        assert!(guard.admit(b"\ndata: "));
        assert!(!guard.admit(&line));

        // Events under the limit reset the count at each blank line, whatever the terminator.
        let mut guard = EventSizeGuard::default();
        for _ in 0..3 {
            assert!(guard.admit(&line));
            assert!(guard.admit(b"\r\n\r\n"));
        }
        assert!(guard.admit(&line));
        assert!(guard.admit(b"\n\n"));
        assert!(guard.admit(&line));
    }
}
