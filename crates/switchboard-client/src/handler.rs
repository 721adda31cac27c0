//! Our side of the session: how we answer the server and where its notifications go.

// Server logging is deprecated in the 2026-07-28 revision (SEP-2577), but every legacy server
// still sends `notifications/message`, and users need to see those logs.
#![allow(deprecated)]

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use rmcp::{
    ClientHandler, ErrorData,
    model::{
        ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequestParams, ElicitResult, ErrorCode, GetMeta, Implementation, JsonRpcMessage,
        JsonRpcNotification, ListRootsResult, LoggingMessageNotificationParam, NumberOrString,
        ProgressNotificationParam, ProgressToken, ProtocolVersion,
        ResourceUpdatedNotificationParam, ServerNotification,
    },
    service::{
        NotificationContext, RequestContext, RoleClient, RxJsonRpcMessage, TxJsonRpcMessage,
    },
    transport::Transport,
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::mpsc;

use crate::{
    callbacks::{self, CallRelay, CallbackError, ClientCallbacks, method},
    model::{LogMessage, Progress, ServerEvent},
};

/// Server events buffered per connection before new ones are dropped (with a warning).
pub const EVENT_QUEUE: usize = 256;
/// Progress updates buffered per request before new ones are dropped.
pub const PROGRESS_QUEUE: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct ClientSide {
    server: Arc<str>,
    info: Implementation,
    events: mpsc::Sender<ServerEvent>,
    progress: Arc<Mutex<ProgressRoutes>>,
    /// What answers the server's own requests; `None` declares no client capabilities.
    callbacks: Option<Arc<dyn ClientCallbacks>>,
    /// The relays of the calls in flight that have one ([`crate::CallOptions::relay`]).
    relays: Arc<Relays>,
    /// Set for a 2026-07-28 server, whose resource updates come only on the listen streams
    /// the client opened, and are delivered by their readers.
    updates_on_streams: Arc<AtomicBool>,
}

/// Where progress updates go, by progress token. A fast server's first updates can be read
/// before the call that sent the request has registered its watch (rmcp picks the token as it
/// sends), so updates for a token nobody watches are kept, the last [`EARLY_PROGRESS`] of
/// them, and handed over when the watch comes.
#[derive(Debug, Default)]
pub(crate) struct ProgressRoutes {
    watching: HashMap<String, mpsc::Sender<Progress>>,
    early: VecDeque<(String, Progress)>,
}

/// Progress updates kept for calls whose watch is not registered yet (a server also sends
/// progress for requests no one watches: those age out).
const EARLY_PROGRESS: usize = 256;

/// The relays of the calls in flight, by a number of their own.
#[derive(Debug, Default)]
struct Relays {
    next: AtomicU64,
    live: Mutex<Vec<(u64, Arc<dyn CallRelay>)>>,
}

impl Relays {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<dyn CallRelay>)>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The one relay in flight; `Err(n)` when there are `n` ≠ 1.
    fn only(&self) -> Result<Arc<dyn CallRelay>, usize> {
        match self.live().as_slice() {
            [(_, relay)] => Ok(relay.clone()),
            live => Err(live.len()),
        }
    }
}

/// Keeps a call's relay registered until dropped.
#[derive(Debug)]
pub(crate) struct RelayGuard {
    relays: Arc<Relays>,
    id: u64,
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.relays.live().retain(|(id, _)| *id != self.id);
    }
}

pub(crate) fn progress_key(token: &ProgressToken) -> String {
    match &token.0 {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.to_string(),
    }
}

impl ClientSide {
    pub(crate) fn new(
        server: Arc<str>,
        client_name: &str,
        client_version: &str,
        callbacks: Option<Arc<dyn ClientCallbacks>>,
    ) -> (Self, mpsc::Receiver<ServerEvent>) {
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        (
            ClientSide {
                server,
                info: Implementation::new(client_name, client_version),
                events,
                progress: Arc::default(),
                callbacks,
                relays: Arc::default(),
                updates_on_streams: Arc::default(),
            },
            receiver,
        )
    }

    /// The server speaks 2026-07-28: a resource update outside a listen stream's reader is
    /// one sent on a stream this client has already ended, and is dropped.
    pub(crate) fn take_updates_from_streams_only(&self) {
        self.updates_on_streams.store(true, Ordering::Relaxed);
    }

    /// Answer a server request through the callbacks (a legacy request, or one entry of a
    /// 2026-07-28 `inputRequests`), as the JSON result the server expects.
    pub(crate) async fn answer(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, CallbackError> {
        match &self.callbacks {
            Some(callbacks) => callbacks::answer(callbacks.as_ref(), method, params).await,
            None => Err(CallbackError::unsupported(method)),
        }
    }

    /// Send a legacy server's requests and logs to `relay` while the guard lives (see
    /// [`CallRelay`] for when they can be told apart).
    pub(crate) fn watch_relay(&self, relay: Arc<dyn CallRelay>) -> RelayGuard {
        let id = self.relays.next.fetch_add(1, Ordering::Relaxed);
        self.relays.live().push((id, relay));
        RelayGuard {
            relays: self.relays.clone(),
            id,
        }
    }

    /// A legacy server request: to the relay of the one call in flight that has one, else to
    /// the callbacks. With several such calls the request is refused: the server did not say
    /// which call it belongs to, and guessing could show one caller another's request.
    async fn answer_session_request(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, CallbackError> {
        match self.relays.only() {
            Ok(relay) => relay.answer(None, method, params).await,
            Err(0) => self.answer(method, params).await,
            Err(n) => Err(CallbackError::new(format!(
                "{method} cannot be answered: {n} relayed calls are in flight on this session and the request does not say which one it belongs to"
            ))),
        }
    }

    /// A legacy server request, answered through [`Self::answer_session_request`] and converted between
    /// rmcp's types and the JSON our callbacks speak.
    async fn answer_typed<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<P>,
    ) -> Result<R, ErrorData> {
        let params = match params {
            Some(params) => serde_json::to_value(params)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?,
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        let answer = self
            .answer_session_request(method, params)
            .await
            .map_err(|error| ErrorData::new(ErrorCode(error.code), error.message, None))?;
        serde_json::from_value(answer).map_err(|e| {
            ErrorData::internal_error(format!("our {method} answer is malformed: {e}"), None)
        })
    }

    fn progress_routes(&self) -> std::sync::MutexGuard<'_, ProgressRoutes> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Route progress for `token` to `sender` until [`Self::unwatch_progress`], starting
    /// with what already arrived for it.
    pub(crate) fn watch_progress(&self, token: String, sender: mpsc::Sender<Progress>) {
        let mut routes = self.progress_routes();
        let (early, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut routes.early)
            .into_iter()
            .partition(|(key, _)| *key == token);
        routes.early = rest;
        for (_, progress) in early {
            let _ = sender.try_send(progress);
        }
        routes.watching.insert(token, sender);
    }

    pub(crate) fn unwatch_progress(&self, token: &str) {
        self.progress_routes().watching.remove(token);
    }

    /// Hand a progress update to the call that asked for it, if it is still waiting; keep it
    /// a while for a call whose watch is not registered yet.
    fn deliver_progress(&self, params: &ProgressNotificationParam) {
        let key = progress_key(&params.progress_token);
        let progress = Progress {
            progress: params.progress,
            total: params.total,
            message: params.message.clone(),
        };
        let mut routes = self.progress_routes();
        match routes.watching.get(&key) {
            Some(sender) => {
                let _ = sender.try_send(progress);
            }
            None => {
                if routes.early.len() == EARLY_PROGRESS {
                    routes.early.pop_front();
                }
                routes.early.push_back((key, progress));
            }
        }
    }

    /// A server log: to the relay of the one relayed call in flight, else to the events.
    fn deliver_log(&self, params: &LoggingMessageNotificationParam) {
        let level = serde_json::to_value(params.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "info".to_owned());
        let message = LogMessage {
            level,
            logger: params.logger.clone(),
            data: params.data.clone(),
        };
        match self.relays.only() {
            Ok(relay) => relay.log(message),
            Err(_) => self.emit(ServerEvent::Log(message)),
        }
    }

    pub(crate) fn emit(&self, event: ServerEvent) {
        if let Err(error) = self.events.try_send(event) {
            tracing::warn!(server = %self.server, %error, "dropping a server notification: the event queue is full or closed");
        }
    }
}

impl ClientHandler for ClientSide {
    fn get_info(&self) -> ClientConfig {
        // The version here is what `initialize` asks for; discovery sends its own. Asking a
        // legacy server for 2026-07-28 in `initialize` would name a revision that has no
        // handshake.
        let mut capabilities: ClientCapabilities = self
            .callbacks
            .as_ref()
            .and_then(|callbacks| serde_json::from_value(callbacks.supported().capabilities()).ok())
            .unwrap_or_default();
        // Tool calls follow tasks to their end (SEP-2663), so a server may run any call as one.
        capabilities
            .extensions
            .get_or_insert_with(Default::default)
            .insert(
                rmcp::model::TASKS_EXTENSION_ID.to_owned(),
                Default::default(),
            );
        ClientConfig::new(capabilities, self.info.clone())
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.answer_typed(method::ELICITATION, Some(request)).await
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.answer_typed(method::SAMPLING, Some(params)).await
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        self.answer_typed::<(), _>(method::ROOTS, None).await
    }

    // `on_progress` and `on_logging_message` keep rmcp's empty defaults: [`InOrder`] delivers
    // progress and logs as they are read, where rmcp would call these from a task of their
    // own, possibly after the answer.

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        // rmcp hands an update to its listen stream's reader while the stream is open; one
        // that reaches here was sent on a stream this client has already ended.
        if self.updates_on_streams.load(Ordering::Relaxed) {
            return;
        }
        self.emit(ServerEvent::ResourceUpdated { uri: params.uri });
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(ServerEvent::ToolsChanged);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(ServerEvent::ResourcesChanged);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.emit(ServerEvent::PromptsChanged);
    }
}

/// A transport wrapper that delivers progress and logs the moment they are read, before the
/// next message is.
///
/// rmcp's service loop hands each notification to the handler in a task of its own, so a
/// progress update or log sent just before a call's answer could reach the caller after it:
/// a gateway passing them on would then drop them, as the call had ended. Delivering them here,
/// on the loop's own read path, keeps them in the order the server sent them. The message still
/// goes on to rmcp, which uses progress to restart the call's timeout.
pub(crate) struct InOrder<T> {
    pub(crate) inner: T,
    pub(crate) side: ClientSide,
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for InOrder<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(JsonRpcNotification { notification, .. }) = &message {
            match notification {
                ServerNotification::ProgressNotification(progress) => {
                    self.side.deliver_progress(&progress.params);
                }
                // A log on a 2026-07-28 subscription stream belongs to that subscription.
                ServerNotification::LoggingMessageNotification(log)
                    if notification.get_meta().subscription_id().is_none() =>
                {
                    self.side.deliver_log(&log.params);
                }
                _ => {}
            }
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
