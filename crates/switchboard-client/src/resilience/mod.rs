//! Resilience for one server: timeouts, retries with backoff and a budget, a circuit breaker,
//! a client-side rate limit, reconnection, health checks and an opt-in result cache.
//!
//! Each policy lives in its own module and knows nothing of the others; [`Resilient`] composes
//! them once, in [`Resilient::run`], in this order (outermost first):
//!
//! 1. the result cache (read-only tools with `cacheTtlMs` only): a fresh hit skips the rest;
//! 2. retries ([`retry`]): exponential backoff with full jitter, `retry_after_ms`, the budget;
//! 3. the circuit breaker ([`breaker`]): while open, an attempt fails fast;
//! 4. the rate limit: an attempt waits for a token of the server's bucket;
//! 5. the connection: a crashed or closed one is reconnected with backoff;
//! 6. the request itself, with its (per-tool) timeout; a timed-out or abandoned request is
//!    cancelled on the server (`notifications/cancelled`).
//!
//! The breaker sits inside the retries so every attempt counts, and before the rate limit so
//! that a failing server does not consume tokens. The callers (the host) know none of this:
//! they call [`Resilient::call_tool`] or [`Resilient::run`].

mod breaker;
mod retry;

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

pub use breaker::BreakerState;
use breaker::CircuitBreaker;
use governor::{DefaultDirectRateLimiter, Quota};
pub use retry::{Idempotency, Jitter, TRANSIENT_ERROR_CODE, backoff_cap};
use retry::{RetryBudget, Verdict};
use serde_json::{Map, Value};
use switchboard_config::{Resilience, ServerEntry, ServerName};
use tokio::{sync::mpsc, task::JoinSet, time::Instant};

use crate::{
    connection::{CallOptions, ConnectOptions, Connection},
    error::ClientError,
    handler::EVENT_QUEUE,
    model::{ServerEvent, Tool, ToolResult},
};

/// Makes a new connection to the same server (a restarted child, a new HTTP session).
pub type Connector = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Connection, ClientError>> + Send>> + Send + Sync,
>;

/// Most results the opt-in result cache keeps per server.
pub const MAX_CACHED_RESULTS: usize = 256;

/// What the last health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
    /// Not checked yet.
    Unknown,
    /// The server answered the check.
    Healthy,
    /// Connected, but the check failed (an error or no answer in time).
    Unhealthy { reason: String },
    /// Not connected, and reconnecting failed.
    Down { reason: String },
}

impl HealthStatus {
    /// Whether calls to the server can be expected to work (unchecked counts as healthy).
    pub fn is_usable(&self) -> bool {
        matches!(self, HealthStatus::Healthy | HealthStatus::Unknown)
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthStatus::Unknown => f.write_str("unknown"),
            HealthStatus::Healthy => f.write_str("healthy"),
            HealthStatus::Unhealthy { .. } => f.write_str("unhealthy"),
            HealthStatus::Down { .. } => f.write_str("down"),
        }
    }
}

/// A server's health, as last checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// How long the last successful check took.
    pub latency: Option<Duration>,
    pub breaker: BreakerState,
}

/// Counters since the server was connected, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResilienceStats {
    /// Calls made through [`Resilient::run`].
    pub calls: u64,
    /// Attempts sent to the server (first attempts and retries).
    pub attempts: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Attempts refused by the open circuit breaker.
    pub fast_fails: u64,
    /// Retries the budget refused.
    pub budget_exhausted: u64,
    /// New connections made after the first.
    pub reconnects: u64,
    /// Calls answered from the result cache.
    pub cache_hits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    fast_fails: AtomicU64,
    budget_exhausted: AtomicU64,
    reconnects: AtomicU64,
    cache_hits: AtomicU64,
}

/// One server behind the resilience policies.
pub struct Resilient {
    name: ServerName,
    settings: Resilience,
    /// Timeout of requests whose caller gives none and whose tool has no override.
    request_timeout: Duration,
    connector: Option<Connector>,
    current: std::sync::Mutex<Option<Arc<Connection>>>,
    /// One reconnection at a time; the others wait for its outcome.
    reconnecting: tokio::sync::Mutex<()>,
    breaker: CircuitBreaker,
    limiter: Option<DefaultDirectRateLimiter>,
    budget: RetryBudget,
    jitter: Jitter,
    counters: Counters,
    outstanding: AtomicUsize,
    health: std::sync::Mutex<(HealthStatus, Option<Duration>)>,
    events: mpsc::Sender<ServerEvent>,
    events_rx: std::sync::Mutex<Option<mpsc::Receiver<ServerEvent>>>,
    /// Tasks that forward the notifications of reconnected sessions; aborted on drop.
    forwarders: std::sync::Mutex<JoinSet<()>>,
    results: std::sync::Mutex<HashMap<(String, String), (Instant, ToolResult)>>,
    /// The resources subscribed to through [`Self::subscribe_resource`], subscribed to again
    /// on every new connection.
    subscriptions: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl std::fmt::Debug for Resilient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resilient")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

/// Decrements the outstanding-request count when an attempt ends, however it ends.
struct Outstanding<'a>(&'a AtomicUsize);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Resilient {
    /// Wrap `connection` (when there is one) with `settings`. Without a `connector`, a lost
    /// connection stays lost.
    pub fn new(
        name: ServerName,
        settings: Resilience,
        request_timeout: Duration,
        connection: Option<Arc<Connection>>,
        connector: Option<Connector>,
    ) -> Self {
        let limiter = settings.rate_limit.map(|limit| {
            governor::RateLimiter::direct(
                Quota::per_second(limit.requests_per_second).allow_burst(limit.burst),
            )
        });
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        Resilient {
            breaker: CircuitBreaker::new(settings.circuit_breaker.clone()),
            budget: RetryBudget::new(&settings.retry),
            limiter,
            name,
            request_timeout: settings.request_timeout.unwrap_or(request_timeout),
            settings,
            connector,
            current: std::sync::Mutex::new(connection),
            reconnecting: tokio::sync::Mutex::new(()),
            jitter: Jitter::Full,
            counters: Counters::default(),
            outstanding: AtomicUsize::new(0),
            health: std::sync::Mutex::new((HealthStatus::Unknown, None)),
            events,
            events_rx: std::sync::Mutex::new(Some(events_rx)),
            forwarders: std::sync::Mutex::new(JoinSet::new()),
            results: std::sync::Mutex::default(),
            subscriptions: std::sync::Mutex::default(),
        }
    }

    /// A connector that connects `entry` again with `options`, applying the entry's
    /// `connectTimeoutMs`.
    pub fn connector_for(entry: &ServerEntry, options: &ConnectOptions) -> Connector {
        let entry = Arc::new(entry.clone());
        let mut options = options.clone();
        if let Some(timeout) = entry.resilience.connect_timeout {
            options.connect_timeout = timeout;
        }
        let options = Arc::new(options);
        Arc::new(move || {
            let entry = entry.clone();
            let options = options.clone();
            Box::pin(async move { Connection::connect(&entry, &options).await })
        })
    }

    /// Connect `entry` with its own settings (reconnecting as they say when it is lost).
    pub async fn connect(
        entry: &ServerEntry,
        options: &ConnectOptions,
        request_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let connector = Self::connector_for(entry, options);
        let connection = connector().await?;
        Ok(Self::new(
            entry.name.clone(),
            entry.resilience.clone(),
            request_timeout,
            Some(Arc::new(connection)),
            Some(connector),
        ))
    }

    /// Draw backoff pauses with `jitter` (the default is [`Jitter::Full`]).
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    pub fn name(&self) -> &ServerName {
        &self.name
    }

    pub fn settings(&self) -> &Resilience {
        &self.settings
    }

    /// The connection in use, if there is one (it may have closed since).
    pub fn current(&self) -> Option<Arc<Connection>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notifications of every session this server had: the first (when the caller did not
    /// take them from the connection itself) and all reconnected ones. A reconnection also
    /// announces that every list changed, since the new session may differ. Can be taken once.
    pub fn take_events(&self) -> Option<mpsc::Receiver<ServerEvent>> {
        if let Some(connection) = self.current()
            && let Some(events) = connection.take_events()
        {
            self.forward(events);
        }
        self.events_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn forward(&self, mut events: mpsc::Receiver<ServerEvent>) {
        let sender = self.events.clone();
        self.forwarders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(async move {
                while let Some(event) = events.recv().await {
                    if sender.send(event).await.is_err() {
                        return;
                    }
                }
            });
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Requests in flight now (for least-outstanding balancing over replicas).
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> ResilienceStats {
        let c = &self.counters;
        ResilienceStats {
            calls: c.calls.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            fast_fails: c.fast_fails.load(Ordering::Relaxed),
            budget_exhausted: c.budget_exhausted.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// The health found by the last check, without checking.
    pub fn health(&self) -> HealthReport {
        let (status, latency) = self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        HealthReport {
            status,
            latency,
            breaker: self.breaker.state(),
        }
    }

    fn set_health(&self, status: HealthStatus, latency: Option<Duration>) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = (status, latency);
    }

    /// Check the server now (`ping` on legacy, `server/discover` on 2026-07-28), reconnecting
    /// first when the connection was lost. The check goes around the breaker and the rate
    /// limit: it observes, it does not count.
    pub async fn check_health(&self) -> HealthReport {
        let timeout = self.settings.health_check.timeout;
        // A connection found lost by the first probe is reopened for a second one.
        for _ in 0..2 {
            match self.connection().await {
                Err(error) => self.set_health(
                    HealthStatus::Down {
                        reason: error.to_string(),
                    },
                    None,
                ),
                Ok(connection) => {
                    let started = Instant::now();
                    match connection.probe(timeout).await {
                        Ok(()) => self.set_health(HealthStatus::Healthy, Some(started.elapsed())),
                        Err(error) => {
                            let lost = matches!(error, ClientError::ConnectionLost { .. })
                                || connection.is_closed();
                            let status = if lost {
                                HealthStatus::Down {
                                    reason: error.to_string(),
                                }
                            } else {
                                HealthStatus::Unhealthy {
                                    reason: error.to_string(),
                                }
                            };
                            self.set_health(status, None);
                            if lost && self.discard(&connection) {
                                continue;
                            }
                        }
                    }
                }
            }
            break;
        }
        self.health()
    }

    /// Forget `connection` after it was found lost, so that the next request reconnects
    /// without waiting for the session to notice. Only with a connector: without one, the
    /// lost connection stays, with its diagnostics. Whether it was discarded.
    fn discard(&self, connection: &Arc<Connection>) -> bool {
        if self.connector.is_none() {
            return false;
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            *current = None;
        }
        true
    }

    /// The live connection, reconnecting with backoff when it was lost.
    pub async fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        if let Some(connection) = self.current().filter(|c| !c.is_closed()) {
            return Ok(connection);
        }
        // Reconnecting is the rare path, so it has a future of its own: every call awaits
        // this, and its future would otherwise be the size of a whole handshake.
        Box::pin(self.reconnect()).await
    }

    /// Open the connection again, with backoff, unless another caller already has.
    async fn reconnect(&self) -> Result<Arc<Connection>, ClientError> {
        let _one_at_a_time = self.reconnecting.lock().await;
        // Someone else may have reconnected while this caller waited.
        if let Some(connection) = self.current().filter(|c| !c.is_closed()) {
            return Ok(connection);
        }
        let lost = || ClientError::ConnectionLost {
            server: self.name.clone(),
            method: "reconnect",
            diagnostics: "; the connection is closed and cannot be reopened".to_owned(),
        };
        let Some(connector) = &self.connector else {
            // Nothing can reopen it: let the request fail on the closed connection, whose
            // error carries what happened to it (exit status, stderr).
            return self.current().ok_or_else(lost);
        };
        let settings = &self.settings.reconnect;
        let mut last = lost();
        for attempt in 1..=settings.max_attempts {
            match connector().await {
                Ok(connection) => {
                    tracing::info!(server = %self.name, attempt, "reconnected");
                    self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    if let Some(events) = connection.take_events() {
                        self.forward(events);
                    }
                    for changed in [
                        ServerEvent::ToolsChanged,
                        ServerEvent::ResourcesChanged,
                        ServerEvent::PromptsChanged,
                    ] {
                        let _ = self.events.try_send(changed);
                    }
                    self.subscribe_again(&connection).await;
                    let connection = Arc::new(connection);
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(connection.clone());
                    return Ok(connection);
                }
                Err(error) => {
                    if retry::connect_verdict(&error) == Verdict::Stop {
                        return Err(error);
                    }
                    let pause =
                        backoff_cap(settings.initial_backoff, settings.max_backoff, attempt);
                    tracing::warn!(server = %self.name, attempt, %error, ?pause, "reconnecting failed");
                    last = error;
                    if attempt < settings.max_attempts {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
        Err(last)
    }

    /// Ask the server for updates of `uri` (see [`Connection::subscribe_resource`]), on this
    /// connection and on every one that replaces it.
    pub async fn subscribe_resource(&self, uri: &str) -> Result<(), ClientError> {
        let connection = self.connection().await?;
        connection
            .subscribe_resource(uri, self.request_timeout)
            .await?;
        self.subscribed().insert(uri.to_owned());
        Ok(())
    }

    /// Stop the updates [`Self::subscribe_resource`] asked for. A new connection will not
    /// ask for them again, even when this connection could not be told.
    pub async fn unsubscribe_resource(&self, uri: &str) -> Result<(), ClientError> {
        self.subscribed().remove(uri);
        let connection = self.connection().await?;
        connection
            .unsubscribe_resource(uri, self.request_timeout)
            .await
    }

    fn subscribed(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribe a new connection to what the lost one was subscribed to. What changed while
    /// no connection listened is not known, so each resource is reported updated.
    async fn subscribe_again(&self, connection: &Connection) {
        let uris: Vec<String> = self.subscribed().iter().cloned().collect();
        if uris.is_empty() {
            return;
        }
        match connection
            .subscribe_resources(&uris, self.request_timeout)
            .await
        {
            Ok(()) => {
                for uri in uris {
                    let _ = self.events.try_send(ServerEvent::ResourceUpdated { uri });
                }
            }
            Err(error) => {
                tracing::warn!(server = %self.name, %error, resources = uris.len(), "subscribing again after reconnecting failed");
            }
        }
    }

    /// Call `tool` through every policy. Whether it may be sent twice comes from the config's
    /// `idempotent`, else from the tool's `readOnlyHint`/`idempotentHint`; its timeout from the
    /// tool's `timeoutMs`, else the server's `requestTimeoutMs`, else `options`. A read-only tool with `cacheTtlMs` is
    /// answered from the result cache while fresh.
    pub async fn call_tool(
        &self,
        tool: &Tool,
        arguments: Option<Map<String, Value>>,
        mut options: CallOptions,
    ) -> Result<ToolResult, ClientError> {
        let settings = self.settings.tool(&tool.name);
        // The tool's own timeout, else the server's, else the caller's.
        if let Some(timeout) = settings.timeout.or(self.settings.request_timeout) {
            options.timeout = timeout;
        }
        let idempotency = match settings.idempotent {
            Some(true) => Idempotency::Idempotent,
            Some(false) => Idempotency::NotIdempotent,
            None if tool.is_read_only() || idempotent_hint(tool) => Idempotency::Idempotent,
            None => Idempotency::NotIdempotent,
        };
        let cache_ttl = settings.cache_ttl.filter(|_| tool.is_read_only());
        let key = cache_ttl.map(|_| {
            let args = arguments
                .as_ref()
                .map(|a| canonical(&Value::Object(a.clone())))
                .unwrap_or_default();
            (tool.name.clone(), args)
        });
        if let Some(key) = &key
            && let Some(hit) = self.cached(key)
        {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        let result = self
            .run("tools/call", idempotency, |connection| {
                let arguments = arguments.clone();
                let options = options.clone();
                let name = tool.name.clone();
                async move { connection.call_tool(&name, arguments, options).await }
            })
            .await?;
        if let (Some(key), Some(ttl)) = (key, cache_ttl)
            && !result.is_error
        {
            self.store(key, ttl, result.clone());
        }
        Ok(result)
    }

    fn cached(&self, key: &(String, String)) -> Option<ToolResult> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        results
            .get(key)
            .filter(|(expires, _)| Instant::now() < *expires)
            .map(|(_, result)| result.clone())
    }

    fn store(&self, key: (String, String), ttl: Duration, result: ToolResult) {
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        results.retain(|_, (expires, _)| now < *expires);
        if results.len() >= MAX_CACHED_RESULTS
            && let Some(oldest) = results
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
        {
            results.remove(&oldest);
        }
        results.insert(key, (now + ttl, result));
    }

    /// Forget every cached result (e.g. after the tool list changed).
    pub fn clear_result_cache(&self) {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The default timeout of this server's requests.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Run one request through the policies (see the module docs for the order). `attempt`
    /// sends it once on the connection it is given.
    pub async fn run<T, F, Fut>(
        &self,
        method: &'static str,
        idempotency: Idempotency,
        attempt: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        self.budget.deposit();
        let max_attempts = self.settings.retry.max_attempts.max(1);
        let mut number: u32 = 1;
        loop {
            let outcome = self.attempt_once(method, number, &attempt).await;
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let verdict = match &error {
                // The breaker's refusal is final: it says itself when to come back.
                ClientError::CircuitOpen { .. } => Verdict::Stop,
                error => retry::verdict(error, idempotency),
            };
            let Verdict::Retry { server_delay } = verdict else {
                tracing::debug!(server = %self.name, method, attempt = number, %error, "failed; not retried");
                return Err(error);
            };
            if number >= max_attempts {
                tracing::debug!(server = %self.name, method, attempt = number, %error, "failed; no attempts left");
                return Err(error);
            }
            if !self.budget.withdraw() {
                self.counters
                    .budget_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(server = %self.name, method, attempt = number, %error, "failed; the retry budget is spent");
                return Err(error);
            }
            let pause = server_delay
                .unwrap_or_else(|| retry::backoff(&self.settings.retry, number, self.jitter));
            tracing::info!(server = %self.name, method, attempt = number, %error, ?pause, "failed; retrying");
            tokio::time::sleep(pause).await;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            number += 1;
        }
    }

    async fn attempt_once<T, F, Fut>(
        &self,
        method: &'static str,
        number: u32,
        attempt: &F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let permit = match self.breaker.admit() {
            Ok(permit) => permit,
            Err(retry_in) => {
                self.counters.fast_fails.fetch_add(1, Ordering::Relaxed);
                return Err(ClientError::CircuitOpen {
                    server: self.name.clone(),
                    retry_in,
                });
            }
        };
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        self.counters.attempts.fetch_add(1, Ordering::Relaxed);
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        let _outstanding = Outstanding(&self.outstanding);
        tracing::debug!(server = %self.name, method, attempt = number, "sending");
        let result = match self.connection().await {
            Ok(connection) => {
                let result = attempt(connection.clone()).await;
                if let Err(ClientError::ConnectionLost { .. }) = &result {
                    self.discard(&connection);
                }
                result
            }
            Err(error) => Err(error),
        };
        permit.record(match &result {
            Ok(_) => true,
            Err(error) => !counts_against_health(error),
        });
        result
    }
}

impl Drop for Resilient {
    fn drop(&mut self) {
        self.forwarders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
    }
}

/// Whether `error` says the server is in trouble (for the breaker), rather than that the
/// request was wrong.
fn counts_against_health(error: &ClientError) -> bool {
    use crate::error::ErrorClass;
    match error {
        ClientError::Rpc { code, .. } => *code == TRANSIENT_ERROR_CODE,
        other => matches!(other.class(), ErrorClass::Connection | ErrorClass::Timeout),
    }
}

fn idempotent_hint(tool: &Tool) -> bool {
    tool.annotations
        .as_ref()
        .and_then(|a| a.idempotent_hint)
        .unwrap_or(false)
}

/// JSON text with object keys sorted, so equal arguments give equal cache keys.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Settings that add nothing to a bare connection: one attempt, no breaker, no reconnection,
/// no periodic health check. For connections made elsewhere (tests, embedding), whose
/// behaviour must not change by being wrapped.
pub fn passthrough() -> Resilience {
    let mut settings = Resilience::default();
    settings.retry.max_attempts = 1;
    settings.circuit_breaker.failure_threshold = 0;
    settings.reconnect.max_attempts = 0;
    settings.health_check.interval = Duration::ZERO;
    settings
}
