//! What both providers share: the HTTP client, one POST with its error classification, the
//! retry loop, bounded reading of answers and event streams, and keeping the key out of errors.

use std::{
    error::Error as StdError,
    future::Future,
    pin::Pin,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use switchboard_config::Secret;
use url::Url;

use crate::{
    MAX_RESPONSE_BYTES,
    model::{ChatRequest, ChatResponse, ModelError, TextSink},
    retry::{RetryPolicy, retry_after},
    sse::{SseDecoder, SseEvent},
};

/// Bytes of an error answer that we read; the message is in the first few hundred.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Longest excerpt of a provider's answer quoted in an error, in characters.
const EXCERPT_CHARS: usize = 300;

/// Whether to ask the provider to stream its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Streaming {
    /// `stream: true`: text reaches the sink as it is generated.
    #[default]
    On,
    /// One JSON answer; its text is passed to the sink once, when it arrives.
    Off,
}

/// How a model talks HTTP: retries, streaming and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    pub streaming: Streaming,
    /// Time allowed to open the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest silence while waiting for the answer or the next piece of the stream. Local
    /// models can take long before the first byte of a non-streamed answer.
    pub idle_timeout: Duration,
}

impl ClientOptions {
    /// The connect timeout used by default.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The idle timeout used by default.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            retry: RetryPolicy::default(),
            streaming: Streaming::On,
            connect_timeout: ClientOptions::DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: ClientOptions::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

fn install_crypto_provider() {
    // reqwest is built without a bundled provider so that we compile `ring` rather than
    // aws-lc; installing twice is harmless, so the error is ignored.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A failed attempt and whether another may follow.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) error: ModelError,
    pub(crate) retry: Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    No,
    /// Worth another attempt, after the wait the provider asked for (if it did).
    Yes {
        after: Option<Duration>,
    },
}

impl From<ModelError> for AttemptError {
    fn from(error: ModelError) -> AttemptError {
        AttemptError {
            error,
            retry: Retry::No,
        }
    }
}

pub(crate) type AttemptFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChatResponse, AttemptError>> + Send + 'a>>;

/// One provider's wire format: one attempt at one turn.
pub(crate) trait Wire: Sync {
    fn transport(&self) -> &Transport;

    fn attempt<'a>(
        &'a self,
        request: &'a ChatRequest,
        sink: &'a SinkTracker<'a>,
    ) -> AttemptFuture<'a>;
}

/// The caller's sink, remembering whether any text went through it (after which a failure
/// is never retried: the user has already seen part of an answer).
pub(crate) struct SinkTracker<'a> {
    sink: TextSink<'a>,
    streamed: AtomicBool,
}

impl SinkTracker<'_> {
    pub(crate) fn emit(&self, text: &str) {
        if !text.is_empty() {
            self.streamed.store(true, Ordering::Relaxed);
            (self.sink)(text);
        }
    }

    fn streamed(&self) -> bool {
        self.streamed.load(Ordering::Relaxed)
    }
}

/// Run attempts until one succeeds, the error is final, text was streamed, or the policy says
/// stop.
pub(crate) async fn complete_with_retries<W: Wire>(
    wire: &W,
    request: &ChatRequest,
    on_text: TextSink<'_>,
) -> Result<ChatResponse, ModelError> {
    let transport = wire.transport();
    let policy = transport.options.retry;
    let sink = SinkTracker {
        sink: on_text,
        streamed: AtomicBool::new(false),
    };
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        tracing::debug!(
            provider = transport.provider,
            model = %transport.id,
            endpoint = %transport.shown_endpoint,
            attempt,
            messages = request.messages.len(),
            tools = request.tools.len(),
            "sending a chat request"
        );
        let failure = match wire.attempt(request, &sink).await {
            Ok(response) => {
                tracing::debug!(
                    provider = transport.provider,
                    model = %transport.id,
                    attempt,
                    stop = ?response.stop,
                    input_tokens = response.usage.input_tokens,
                    output_tokens = response.usage.output_tokens,
                    "chat response complete"
                );
                return Ok(response);
            }
            Err(failure) => failure,
        };
        let Retry::Yes { after } = failure.retry else {
            return Err(failure.error);
        };
        if sink.streamed() || attempt > policy.max_retries {
            return Err(failure.error);
        }
        let wait = match after {
            // Waiting less than asked would only fail again; say how long it asked instead.
            Some(after) if after > policy.max_delay => return Err(failure.error),
            Some(after) => after,
            None => policy.backoff(attempt),
        };
        tracing::debug!(
            provider = transport.provider,
            model = %transport.id,
            attempt,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            error = %failure.error,
            "retrying the chat request"
        );
        tokio::time::sleep(wait).await;
    }
}

/// The HTTP side of one model: client, endpoint and key-scrubbing.
pub(crate) struct Transport {
    /// The provider's name in error sentences ("Anthropic", "Ollama", ...).
    pub(crate) provider: &'static str,
    /// `provider/name`.
    pub(crate) id: String,
    http: reqwest::Client,
    endpoint: Url,
    /// The endpoint without credentials or query, for errors and logs.
    pub(crate) shown_endpoint: String,
    pub(crate) options: ClientOptions,
    secret: Option<Secret>,
}

impl Transport {
    pub(crate) fn new(
        provider: &'static str,
        id: String,
        endpoint: Url,
        options: ClientOptions,
        secret: Option<Secret>,
    ) -> Result<Transport, ModelError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.idle_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|error| {
                ModelError::NotConfigured(format!(
                    "could not set up the HTTP client for {provider}: {}",
                    error_chain(&error)
                ))
            })?;
        let shown_endpoint = shown_url(&endpoint);
        Ok(Transport {
            provider,
            id,
            http,
            endpoint,
            shown_endpoint,
            options,
            secret,
        })
    }

    pub(crate) fn streaming(&self) -> bool {
        self.options.streaming == Streaming::On
    }

    /// POST `body`. Success is a 2xx answer whose body is still to be read; anything else is
    /// classified for the retry loop.
    pub(crate) async fn post(
        &self,
        mut headers: HeaderMap,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, AttemptError> {
        let body = serde_json::to_vec(body).map_err(|error| ModelError::InvalidResponse {
            provider: self.provider,
            message: format!("the request could not be encoded as JSON: {error}"),
        })?;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(if self.streaming() {
                "text/event-stream, application/json"
            } else {
                "application/json"
            }),
        );
        let sent = self
            .http
            .post(self.endpoint.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                // No answer arrived (refused, reset or closed before the status line), so
                // nothing reached the sink: try again. A timeout is not retried; waiting
                // again as long would rarely help.
                let retry = if error.is_connect() || (error.is_request() && !error.is_timeout()) {
                    Retry::Yes { after: None }
                } else {
                    Retry::No
                };
                return Err(AttemptError {
                    error: self.unreachable(error),
                    retry,
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(self.status_error(response).await)
    }

    async fn status_error(&self, mut response: reqwest::Response) -> AttemptError {
        let status = response.status();
        let wait = retry_after(response.headers());
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(MAX_ERROR_BODY_BYTES);
        let message = self.scrub(&error_message(&body).unwrap_or_else(|| {
            let excerpt = excerpt(&String::from_utf8_lossy(&body));
            if excerpt.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no explanation")
                    .to_owned()
            } else {
                excerpt
            }
        }));
        self.classify(status, message, wait)
    }

    /// Turn an error status and its message into an error and a retry decision: 401 and 403
    /// are final, 429 and 5xx are worth another attempt, other statuses are final.
    pub(crate) fn classify(
        &self,
        status: StatusCode,
        message: String,
        wait: Option<Duration>,
    ) -> AttemptError {
        let provider = self.provider;
        let code = status.as_u16();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AttemptError {
                error: ModelError::Unauthorized {
                    provider,
                    status: code,
                    message,
                },
                retry: Retry::No,
            },
            StatusCode::TOO_MANY_REQUESTS => AttemptError {
                error: ModelError::RateLimited {
                    provider,
                    message,
                    retry_after: wait,
                },
                retry: Retry::Yes { after: wait },
            },
            _ if status.is_server_error() => AttemptError {
                error: ModelError::Status {
                    provider,
                    status: code,
                    message,
                },
                retry: Retry::Yes { after: wait },
            },
            _ => AttemptError {
                error: ModelError::Status {
                    provider,
                    status: code,
                    message,
                },
                retry: Retry::No,
            },
        }
    }

    /// An error the provider reported inside a 2xx answer (an `error` event or object), with
    /// the HTTP status it stands for.
    pub(crate) fn reported(&self, status: StatusCode, error: &Value) -> AttemptError {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(excerpt)
            .or_else(|| error.as_str().map(excerpt))
            .unwrap_or_else(|| excerpt(&error.to_string()));
        let message = self.scrub(&format!("{message} (reported inside the answer)"));
        self.classify(status, message, None)
    }

    /// Whether a 2xx answer is an event stream (servers that ignore `stream: true` answer JSON).
    pub(crate) fn is_event_stream(response: &reqwest::Response) -> bool {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("text/event-stream"))
    }

    /// The whole body of a 2xx answer, at most [`MAX_RESPONSE_BYTES`].
    pub(crate) async fn read_body(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Bytes, ModelError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(self.invalid(format!(
                            "the answer is longer than {} MiB",
                            MAX_RESPONSE_BYTES / (1024 * 1024)
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Bytes::from(body)),
                Err(error) => return Err(self.broken(error)),
            }
        }
    }

    pub(crate) fn events(&self, response: reqwest::Response) -> EventReader {
        EventReader {
            response,
            decoder: SseDecoder::new(),
            ended: false,
        }
    }

    /// Parse JSON from the provider into `T`, or explain what was wrong with it.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        json: &[u8],
    ) -> Result<T, ModelError> {
        serde_json::from_slice(json).map_err(|error| {
            self.invalid(format!(
                "{what} is not what was expected ({error}): {}",
                excerpt(&String::from_utf8_lossy(json))
            ))
        })
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> ModelError {
        ModelError::InvalidResponse {
            provider: self.provider,
            message: self.scrub(&message.into()),
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> ModelError {
        ModelError::Unreachable {
            provider: self.provider,
            endpoint: self.shown_endpoint.clone(),
            message: self.scrub(&self.describe(&error)),
        }
    }

    fn broken(&self, error: reqwest::Error) -> ModelError {
        ModelError::Unreachable {
            provider: self.provider,
            endpoint: self.shown_endpoint.clone(),
            message: self.scrub(&format!(
                "the connection broke while reading the answer: {}",
                self.describe(&error)
            )),
        }
    }

    /// What went wrong with the connection, in words: reqwest's and hyper's outer layers
    /// ("error sending request", "client error (Connect)") say nothing the root cause does not.
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            let (what, limit) = if error.is_connect() {
                ("no connection", self.options.connect_timeout)
            } else {
                ("no data", self.options.idle_timeout)
            };
            return format!("{what} within {} s", limit.as_secs_f64());
        }
        let mut cause: &(dyn StdError + 'static) = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        // The root cause never quotes the URL; the endpoint (without credentials) is shown
        // by the caller.
        let text = cause.to_string();
        if text.is_empty() {
            "the connection failed".to_owned()
        } else {
            text
        }
    }

    /// Remove the key from text that came from elsewhere (providers quote keys in errors).
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) if !secret.expose().is_empty() => {
                text.replace(secret.expose(), "<redacted>")
            }
            _ => text.to_owned(),
        }
    }
}

/// Reads a streamed answer event by event.
pub(crate) struct EventReader {
    response: reqwest::Response,
    decoder: SseDecoder,
    ended: bool,
}

impl EventReader {
    /// The next event, or `None` when the stream ended.
    pub(crate) async fn next(
        &mut self,
        transport: &Transport,
    ) -> Result<Option<SseEvent>, ModelError> {
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self
                    .decoder
                    .push(&chunk)
                    .map_err(|error| transport.invalid(error.sentence()))?,
                Ok(None) => {
                    self.ended = true;
                    self.decoder
                        .finish()
                        .map_err(|error| transport.invalid(error.sentence()))?;
                }
                Err(error) => return Err(transport.broken(error)),
            }
        }
    }
}

/// The message of a provider's JSON error body: `{"error": {"message": ...}}` (Anthropic,
/// OpenAI, vLLM), `{"error": "..."}` (Ollama, llama.cpp), `{"message": ...}` or `{"detail": ...}`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let message = match json.get("error") {
        Some(Value::Object(error)) => error.get("message").and_then(Value::as_str),
        Some(Value::String(error)) => Some(error.as_str()),
        _ => None,
    }
    .or_else(|| json.get("message").and_then(Value::as_str))
    .or_else(|| json.get("detail").and_then(Value::as_str))?;
    let message = excerpt(message);
    (!message.is_empty()).then_some(message)
}

/// At most [`EXCERPT_CHARS`] characters of `text`, on one line.
pub(crate) fn excerpt(text: &str) -> String {
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// An error and its sources as one line, without repeating a source its parent already quotes.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A URL for errors and logs: no user name, password, query or fragment.
pub(crate) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// `base` with `suffix` appended to its path (`https://h/v1` + `chat/completions`).
pub(crate) fn join_path(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    let path = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        suffix.trim_start_matches('/')
    );
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_found_in_every_providers_shape() {
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(anthropic).as_deref(), Some("Overloaded"));
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","code":null}}"#;
        assert_eq!(error_message(openai).as_deref(), Some("Rate limit reached"));
        let ollama = br#"{"error":"model \"qwen\" not found, try pulling it first"}"#;
        assert_eq!(
            error_message(ollama).as_deref(),
            Some("model \"qwen\" not found, try pulling it first")
        );
        assert_eq!(error_message(b"<html>Bad gateway</html>"), None);
    }

    #[test]
    fn join_path_keeps_the_base_path() {
        let base = Url::parse("http://127.0.0.1:8000/v1/").expect("valid URL");
        assert_eq!(
            join_path(&base, "chat/completions").as_str(),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
        let base = Url::parse("https://api.anthropic.com").expect("valid URL");
        assert_eq!(
            join_path(&base, "v1/messages").as_str(),
            "https://api.anthropic.com/v1/messages"
        );
    }

    #[test]
    fn shown_urls_drop_credentials_and_query() {
        let url = Url::parse("https://user:pw@proxy.example/v1?key=abc").expect("valid URL");
        assert_eq!(shown_url(&url), "https://proxy.example/v1");
    }
}
