//! What a handler can do besides returning: report progress, log, notice cancellation, ask
//! the client for input.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, OnceLock},
};

use serde_json::{Value, json, value::RawValue};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    error::HandlerError,
    input::{InputRequest, InputRequired, InputSource, ask_client},
    tasks::Task,
    wire,
};

/// Outgoing messages queued for a transport before handlers wait.
pub const OUTBOUND_QUEUE: usize = 256;

/// Which era a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: the request carried its own `_meta` (protocol version, capabilities).
    Modern,
    /// A session opened with `initialize`.
    Legacy,
}

/// Where a request's notifications go: stdout for stdio, the request's SSE stream for HTTP.
pub type Outbound = mpsc::Sender<Vec<u8>>;

/// Who sent a request, as the front that received it knows: set per request by a transport
/// (the gateway's HTTP front), absent on plain stdio. Handlers and catalogues read it with
/// [`RequestContext::caller`]; the gateway passes it on to its upstream calls and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The id the front gave the request (`x-request-id`), for logs and audit.
    pub request_id: Option<String>,
    /// The authenticated client, once authentication exists; `None` means anonymous.
    pub client_id: Option<String>,
    /// The peer's address, when the transport has one.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// The user the client acts for (a token's `sub`), when the front authenticated it.
    pub subject: Option<String>,
    /// The scopes the client holds, when the front authenticated it; `None` means the front
    /// did no authentication (a catalogue that enforces scopes then decides what that means).
    pub scopes: Option<std::collections::BTreeSet<String>>,
    /// The request's `Mcp-Param-*` headers (lowercase names, values as sent), when it came
    /// over HTTP; `None` on other transports, which have no headers. A catalogue checks them
    /// against its tools' arguments with [`crate::check_param_headers_sent`].
    pub param_headers: Option<Vec<(String, String)>>,
}

/// Handed to every tool, resource and prompt handler.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub(crate) era: Era,
    /// Who sent the request, when the transport says (see [`Caller`]).
    pub(crate) caller: Option<Arc<Caller>>,
    pub(crate) progress_token: Option<Arc<RawValue>>,
    pub(crate) outbound: Option<Outbound>,
    pub(crate) cancelled: CancellationToken,
    pub(crate) client_capabilities: Option<Arc<Value>>,
    /// The least severe level the client wants to hear; `None`: it asked for no logs.
    pub(crate) log_level: Option<LogLevel>,
    /// Where [`Self::input`] gets its answers.
    pub(crate) inputs: InputSource,
    /// The handler's own state across 2026-07-28 rounds (see [`Self::set_state`]).
    pub(crate) state: Arc<Mutex<Option<Value>>>,
    /// The task the handler runs as, once it runs as one: then input goes through the task.
    pub(crate) task: Arc<OnceLock<Arc<Task>>>,
    /// How [`Self::start_task`] asks the kit to make the call a task; `None` when it cannot be.
    pub(crate) starter: Option<Arc<Mutex<Option<TaskStarter>>>>,
}

/// Sent by [`RequestContext::start_task`]: the kit answers on the inner sender once the task
/// exists.
pub(crate) type TaskStarter = oneshot::Sender<oneshot::Sender<()>>;

/// Syslog severities, as MCP names them, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            "alert" => LogLevel::Alert,
            "emergency" => LogLevel::Emergency,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }
}

impl RequestContext {
    /// A context for calling a handler outside a session (tests, benchmarks, embedding).
    pub fn detached() -> Self {
        RequestContext {
            era: Era::Modern,
            caller: None,
            progress_token: None,
            outbound: None,
            cancelled: CancellationToken::new(),
            client_capabilities: None,
            log_level: None,
            inputs: InputSource::Unavailable("a detached context has no client to ask for input"),
            state: Arc::default(),
            task: Arc::default(),
            starter: None,
        }
    }

    pub fn era(&self) -> Era {
        self.era
    }

    /// Who sent the request, when the transport that received it says.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_deref()
    }

    /// This context with `caller` (tests and embedding).
    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = Some(Arc::new(caller));
        self
    }

    /// Where this request's notifications go, if anywhere (a catalogue that forwards a call
    /// passes its upstream's progress and logs on through it).
    pub fn outbound(&self) -> Option<&Outbound> {
        self.outbound.as_ref()
    }

    /// Whether the client cancelled this request (`notifications/cancelled`). Long handlers
    /// should check it, or select on [`Self::cancellation`].
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancelled
    }

    /// The capabilities the client declared, as sent.
    pub fn client_capabilities(&self) -> Option<&Value> {
        self.client_capabilities.as_deref()
    }

    /// Send `notifications/progress`, if the client asked for progress on this request. Inside
    /// a task, which has no stream to send on, the progress becomes the task's
    /// `statusMessage` instead.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        if let Some(task) = self.task.get() {
            let done = match total {
                Some(total) => format!("{progress}/{total}"),
                None => progress.to_string(),
            };
            task.set_message(match message {
                Some(message) => format!("{message} ({done})"),
                None => done,
            });
            return;
        }
        let (Some(token), Some(outbound)) = (&self.progress_token, &self.outbound) else {
            return;
        };
        let mut params = json!({ "progressToken": serde_json::from_str::<Value>(token.get()).unwrap_or(Value::Null), "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        let mut bytes = Vec::with_capacity(128);
        wire::write_notification(&mut bytes, "notifications/progress", &params);
        let _ = outbound.send(bytes).await;
    }

    /// Send a `notifications/message` log entry to the client, if it asked for that level:
    /// with `logging/setLevel` in a legacy session (every level until it does), or with
    /// `io.modelcontextprotocol/logLevel` in a 2026-07-28 request's `_meta` (none otherwise).
    pub async fn log(&self, level: LogLevel, data: Value) {
        let Some(outbound) = &self.outbound else {
            return;
        };
        if self.log_level.is_none_or(|least| level < least) {
            return;
        }
        let mut bytes = Vec::with_capacity(128);
        wire::write_notification(
            &mut bytes,
            "notifications/message",
            &json!({"level": level.name(), "data": data}),
        );
        let _ = outbound.send(bytes).await;
    }

    /// The least severe level the client wants logs at for this request (see [`Self::log`]);
    /// `None`: no logs. A gateway asks its upstreams for the same.
    pub fn log_level(&self) -> Option<LogLevel> {
        self.log_level
    }

    /// Whether the client declared the capability `request` needs, so that asking is allowed.
    pub fn can_ask(&self, request: &InputRequest) -> bool {
        self.client_capabilities
            .as_deref()
            .and_then(|declared| declared.get(request.capability()))
            .is_some_and(|capability| !capability.is_null())
    }

    /// Ask the client for one input: elicitation, sampling or its roots. `key` names the
    /// request; it must be the same in every round of a 2026-07-28 call. See [`Self::inputs`].
    pub async fn input(&self, key: &str, request: InputRequest) -> Result<Value, HandlerError> {
        let mut answers = self.inputs(&[(key, request)]).await?;
        answers
            .remove(key)
            .ok_or_else(|| HandlerError::Internal(format!("no answer for input {key}")))
    }

    /// Ask the client for several inputs at once; the answers come back by key.
    ///
    /// - In a legacy session the requests go to the client together, and this waits (at most
    ///   [`crate::INPUT_TIMEOUT`] each, and no longer than the call is not cancelled).
    /// - In a 2026-07-28 call the answers come from the request's `inputResponses`. When one is
    ///   missing this returns [`HandlerError::InputRequired`] with every missing request and the
    ///   current [`Self::state`]: return it with `?`. The client answers, calls again, and the
    ///   handler runs again from the start.
    ///
    /// - Inside a task (see [`crate::TaskSupport`]) the requests are published on the task,
    ///   which reports `input_required` until the client answers them with `tasks/update`;
    ///   this waits for that, for as long as the task is not cancelled.
    ///
    /// Either way a request the client's capabilities do not cover is refused
    /// ([`HandlerError::MissingClientCapability`]); check [`Self::can_ask`] first to do without.
    pub async fn inputs(
        &self,
        requests: &[(&str, InputRequest)],
    ) -> Result<HashMap<String, Value>, HandlerError> {
        if let Some(task) = self.task.get() {
            self.check_declared(requests)?;
            return task.ask(requests).await;
        }
        match &self.inputs {
            InputSource::Unavailable(reason) => Err(HandlerError::Internal((*reason).to_owned())),
            InputSource::Client(client) => {
                self.check_declared(requests)?;
                let asking = requests.iter().map(|(key, request)| async move {
                    let answer = ask_client(
                        client,
                        self.outbound.as_ref(),
                        &self.cancelled,
                        key,
                        request,
                    )
                    .await?;
                    Ok::<_, HandlerError>(((*key).to_owned(), answer))
                });
                Ok(futures::future::try_join_all(asking)
                    .await?
                    .into_iter()
                    .collect())
            }
            InputSource::Responses(responses) => {
                self.check_declared(requests)?;
                let mut answers = HashMap::new();
                let mut missing = BTreeMap::new();
                for (key, request) in requests {
                    match responses.get(*key) {
                        Some(answer) => {
                            request.check_answer(answer).map_err(|message| {
                                HandlerError::InvalidInputResponse {
                                    key: (*key).to_owned(),
                                    message: message.to_owned(),
                                }
                            })?;
                            answers.insert((*key).to_owned(), answer.clone());
                        }
                        None => {
                            missing.insert((*key).to_owned(), request.clone());
                        }
                    }
                }
                if missing.is_empty() {
                    Ok(answers)
                } else {
                    Err(HandlerError::InputRequired(InputRequired {
                        requests: missing,
                        state: self.state(),
                    }))
                }
            }
        }
    }

    /// Refuse requests the client's capabilities do not cover, before any is sent or asked for.
    /// Go on as a task, if the call can be one: the call is answered now with a task
    /// (`resultType: "task"`), and the handler carries on in the background, where the client
    /// polls it with `tasks/get`. For a tool declared with
    /// [`crate::ToolBuilder::task_starts_in_handler`], whose handler first gathers input in
    /// 2026-07-28 rounds and then starts the long part. When the call cannot become a task (the
    /// client did not declare the extension, or the tool does not support tasks) this does
    /// nothing and the handler goes on answering the call itself.
    pub async fn start_task(&self) {
        if self.task.get().is_some() {
            return;
        }
        let Some(starter) = self
            .starter
            .as_ref()
            .and_then(|starter| starter.lock().unwrap_or_else(|e| e.into_inner()).take())
        else {
            return;
        };
        let (started, created) = oneshot::channel();
        if starter.send(started).is_ok() {
            // The kit made the task (or could not, and the call ended): go on either way.
            let _ = created.await;
        }
    }

    /// The id of the task the handler runs as, if it runs as one.
    pub fn task_id(&self) -> Option<&str> {
        self.task.get().map(|task| task.id())
    }

    fn check_declared(&self, requests: &[(&str, InputRequest)]) -> Result<(), HandlerError> {
        match requests.iter().find(|(_, request)| !self.can_ask(request)) {
            Some((_, request)) => Err(HandlerError::MissingClientCapability {
                capability: request.capability().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The handler's state: on a 2026-07-28 retry, what it saved with [`Self::set_state`] in
    /// the round before (verified: the client cannot change it); `None` on a first round.
    pub fn state(&self) -> Option<Value> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keep `state` for the next round of a 2026-07-28 call: a multi-round handler saves the
    /// answers of earlier rounds here, since each retry carries only the newest answers. It
    /// travels signed (not encrypted) through the client, so it must hold no secrets.
    pub fn set_state(&self, state: Value) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
    }
}
