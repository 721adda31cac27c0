//! Era translation for server-initiated requests: what an upstream asks during a `tools/call`
//! (elicitation, sampling, roots) and the logs it sends reach the gateway's own client, in
//! that client's era.
//!
//! Each forwarded call gets a [`ChannelRelay`] ([`switchboard_client::callbacks::CallRelay`]):
//! the client crate hands it a legacy upstream's requests and logs, and a 2026-07-28
//! upstream's `input_required` rounds. The catalogue (`upstreams::forward_call`) asks its own
//! client through [`switchboard_server::RequestContext::inputs`]:
//!
//! - a **legacy** client gets real JSON-RPC requests on its session, and the answers go back
//!   to the upstream at once;
//! - a **2026-07-28** client cannot be waited on inside one request, so the gateway answers
//!   `input_required` and *parks* the upstream call ([`ParkedCalls`]) under a random id carried in
//!   its (signed) `requestState`. The client's retry, with `inputResponses`, finds the call
//!   still waiting, hands it the answers and goes on waiting for its result. A parked call
//!   that nobody comes back for is dropped after [`PARK_TIMEOUT`], which cancels it upstream.
//!
//! A parked call lives in one gateway process: replicas need the client's retries to reach
//! the same replica (as legacy sessions do without Redis).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use switchboard_client::{
    callbacks::{CallRelay, CallbackError, CallbackFuture},
    model::{LogMessage, Progress},
};
use switchboard_host::HostError;
use switchboard_server::{HandlerError, InputRequest, RequestContext};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

/// How long a parked call waits for its client to come back with the answers.
pub const PARK_TIMEOUT: Duration = switchboard_server::INPUT_TIMEOUT;
/// Most calls parked at once; beyond it a 2026-07-28 client's call that needs input is
/// refused as retryable rather than held.
pub const MAX_PARKED: usize = 1024;
/// Requests and logs of one call waiting to be passed on.
const RELAY_QUEUE: usize = 32;
/// The `requestState` key that names a parked call.
const STATE_KEY: &str = "gatewayCall";

type Answer = Result<Value, CallbackError>;
/// A forwarded request on its way: its raw result (`tools/call`, `prompts/get` or
/// `resources/read`).
pub(crate) type UpstreamCall = BoxFuture<'static, Result<Value, HostError>>;

/// What an upstream sent during one call.
#[derive(Debug)]
pub(crate) enum RelayEvent {
    Ask {
        key: Option<String>,
        method: String,
        params: Value,
        reply: oneshot::Sender<Answer>,
    },
    Log(LogMessage),
    /// The upstream made the call a task: the gateway's own task starts now.
    TaskStarted,
}

/// The relay given to the client crate for one call: a channel to the catalogue.
#[derive(Debug)]
pub(crate) struct ChannelRelay {
    events: mpsc::Sender<RelayEvent>,
}

impl ChannelRelay {
    pub(crate) fn new() -> (Self, mpsc::Receiver<RelayEvent>) {
        let (events, receiver) = mpsc::channel(RELAY_QUEUE);
        (ChannelRelay { events }, receiver)
    }
}

impl CallRelay for ChannelRelay {
    fn answer<'a>(
        &'a self,
        key: Option<&'a str>,
        method: &'a str,
        params: Value,
    ) -> CallbackFuture<'a, Value> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.events
                .send(RelayEvent::Ask {
                    key: key.map(str::to_owned),
                    method: method.to_owned(),
                    params,
                    reply,
                })
                .await
                .map_err(|_| CallbackError::new("the gateway's client is gone"))?;
            answer
                .await
                .map_err(|_| CallbackError::new("the gateway's client did not answer"))?
        })
    }

    fn log(&self, message: LogMessage) {
        // Logs are advisory: a full queue drops them rather than slowing the call.
        let _ = self.events.try_send(RelayEvent::Log(message));
    }

    fn task_started(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            // A call whose flight is gone has nobody to start a task for.
            let _ = self.events.send(RelayEvent::TaskStarted).await;
        })
    }
}

/// The connection-level callbacks of every upstream: they declare elicitation, sampling and
/// roots, so that upstreams ask (the gateway's own client answers, per call, through its
/// [`ChannelRelay`]); a request outside any call is refused by the trait's defaults.
#[derive(Debug)]
pub(crate) struct RelayOnly;

impl switchboard_client::callbacks::ClientCallbacks for RelayOnly {
    fn supported(&self) -> switchboard_client::callbacks::Callbacks {
        switchboard_client::callbacks::Callbacks {
            elicitation: true,
            sampling: true,
            roots: true,
        }
    }
}

/// One upstream request waiting for the gateway's client to answer it.
#[derive(Debug)]
pub(crate) struct PendingAsk {
    key: String,
    request: InputRequest,
    reply: oneshot::Sender<Answer>,
}

/// Turn an upstream's request into one for the gateway's client; a method the gateway cannot
/// pass on is answered at once with an error.
fn pending(
    key: Option<String>,
    method: String,
    params: Value,
    reply: oneshot::Sender<Answer>,
    asked: &mut u32,
) -> Option<PendingAsk> {
    let request = match method.as_str() {
        "elicitation/create" => InputRequest::Elicitation(params),
        "sampling/createMessage" => InputRequest::Sampling(params),
        "roots/list" => InputRequest::Roots,
        _ => {
            let _ = reply.send(Err(CallbackError {
                code: -32601,
                message: format!("the gateway does not pass on {method}"),
            }));
            return None;
        }
    };
    *asked += 1;
    // A legacy upstream names none; the key only has to be unique within the call.
    let key = key.unwrap_or_else(|| format!("upstream-{asked}"));
    Some(PendingAsk {
        key,
        request,
        reply,
    })
}

/// A forwarded call in flight: the upstream call and what it sends back.
pub(crate) struct Flight {
    call: UpstreamCall,
    events: mpsc::Receiver<RelayEvent>,
    progress: mpsc::Receiver<Progress>,
    /// The upstream's in-flight permit, held for as long as the call is.
    _permit: OwnedSemaphorePermit,
    /// Requests the gateway's client has yet to answer.
    asks: Vec<PendingAsk>,
    asked: u32,
    /// Who made the call: only they may resume it.
    owner: Option<String>,
}

impl Flight {
    pub(crate) fn new(
        call: UpstreamCall,
        events: mpsc::Receiver<RelayEvent>,
        progress: mpsc::Receiver<Progress>,
        permit: OwnedSemaphorePermit,
        owner: Option<String>,
    ) -> Self {
        Flight {
            call,
            events,
            progress,
            _permit: permit,
            asks: Vec::new(),
            asked: 0,
            owner,
        }
    }

    /// Run the call to its end, passing progress, logs and requests to `cx`'s client. A
    /// 2026-07-28 client that must answer first gets [`HandlerError::InputRequired`], and the
    /// call waits in `parked` for its retry.
    pub(crate) async fn run(
        mut self,
        cx: &RequestContext,
        parked: &ParkedCalls,
    ) -> Result<Result<Value, HostError>, HandlerError> {
        loop {
            if !self.asks.is_empty() {
                self = match self.ask(cx, parked).await {
                    Ok(flight) => flight,
                    Err(error) => return Err(error),
                };
            }
            tokio::select! {
                biased;
                () = cx.cancellation().cancelled() => {
                    return Err(HandlerError::Internal("the call was cancelled".into()));
                }
                result = &mut self.call => {
                    // What the upstream sent just before its answer still goes first.
                    while let Ok(update) = self.progress.try_recv() {
                        pass_progress(cx, update).await;
                    }
                    while let Ok(event) = self.events.try_recv() {
                        if let RelayEvent::Log(_) = event {
                            self.take(event, cx).await;
                        }
                    }
                    return Ok(result);
                }
                Some(update) = self.progress.recv() => pass_progress(cx, update).await,
                Some(event) = self.events.recv() => {
                    self.take(event, cx).await;
                    // Requests sent together (one `input_required` round) are asked together.
                    while let Ok(event) = self.events.try_recv() {
                        self.take(event, cx).await;
                    }
                }
            }
        }
    }

    async fn take(&mut self, event: RelayEvent, cx: &RequestContext) {
        match event {
            RelayEvent::Log(message) => {
                // The kit's log entries carry no `logger`; the level and data pass on as sent.
                if let Some(level) = switchboard_server::LogLevel::parse(&message.level) {
                    cx.log(level, message.data).await;
                }
            }
            RelayEvent::Ask {
                key,
                method,
                params,
                reply,
            } => {
                if let Some(ask) = pending(key, method, params, reply, &mut self.asked) {
                    self.asks.push(ask);
                }
            }
            // Does nothing where the call cannot become a task (the gateway's client did not
            // declare the extension): the upstream's task is then followed within the call.
            RelayEvent::TaskStarted => cx.start_task().await,
        }
    }

    /// Ask the gateway's client for every pending request at once.
    async fn ask(
        mut self,
        cx: &RequestContext,
        parked: &ParkedCalls,
    ) -> Result<Self, HandlerError> {
        // The id goes into the state before asking: a 2026-07-28 client's `input_required`
        // carries the state as it is when the answers turn out to be missing.
        let id = parked.new_id();
        cx.set_state(json!({ STATE_KEY: id }));
        let requests: Vec<(&str, InputRequest)> = self
            .asks
            .iter()
            .map(|ask| (ask.key.as_str(), ask.request.clone()))
            .collect();
        match cx.inputs(&requests).await {
            Ok(mut answers) => {
                for ask in self.asks.drain(..) {
                    let answer = answers
                        .remove(&ask.key)
                        .ok_or_else(|| CallbackError::new(format!("no answer for {}", ask.key)));
                    let _ = ask.reply.send(answer);
                }
                Ok(self)
            }
            Err(HandlerError::InputRequired(required)) => {
                parked.park(id, self)?;
                Err(HandlerError::InputRequired(required))
            }
            Err(error) => {
                let code = match &error {
                    HandlerError::MissingClientCapability { .. } => -32601,
                    HandlerError::InvalidInputResponse { .. } => -32602,
                    _ => -32603,
                };
                for ask in self.asks.drain(..) {
                    let _ = ask.reply.send(Err(CallbackError {
                        code,
                        message: error.to_string(),
                    }));
                }
                Ok(self)
            }
        }
    }
}

/// An upstream's progress on the call, to the gateway's client.
async fn pass_progress(cx: &RequestContext, update: Progress) {
    cx.progress(update.progress, update.total, update.message.as_deref())
        .await;
}

/// The id of the parked call a 2026-07-28 retry resumes, from the state the kit verified.
pub(crate) fn resumed_id(cx: &RequestContext) -> Option<String> {
    cx.state()?.get(STATE_KEY)?.as_str().map(str::to_owned)
}

/// The replica that parked the call a `requestState` token resumes, read from the token
/// without verifying it (the replica it names verifies it): for routing the retry there.
pub(crate) fn parked_by(request_state: &str) -> Option<String> {
    let state = switchboard_server::unverified_state(request_state)?;
    let id = state.get(STATE_KEY)?.as_str()?;
    id.split_once('-').map(|(replica, _)| replica.to_owned())
}

/// Calls waiting for a 2026-07-28 client's answers, by id.
pub(crate) struct ParkedCalls {
    calls: Mutex<HashMap<String, (Instant, Flight)>>,
    /// This replica's id: parked-call ids begin with it and a dash, so that a retry that
    /// reaches another replica can be sent on to this one ([`crate::sessions`]).
    replica: String,
}

impl std::fmt::Debug for ParkedCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedCalls")
            .field("parked", &self.lock().len())
            .finish()
    }
}

impl ParkedCalls {
    pub(crate) fn new(replica: String) -> Self {
        ParkedCalls {
            calls: Mutex::default(),
            replica,
        }
    }

    /// A new parked-call id: this replica's id, a dash and a random part.
    fn new_id(&self) -> String {
        format!("{}-{}", self.replica, uuid::Uuid::new_v4().simple())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Flight)>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drop the calls nobody came back for (which cancels them upstream).
    fn sweep(calls: &mut HashMap<String, (Instant, Flight)>) {
        let now = Instant::now();
        calls.retain(|_, (deadline, _)| *deadline > now);
    }

    fn park(&self, id: String, flight: Flight) -> Result<(), HandlerError> {
        let mut calls = self.lock();
        Self::sweep(&mut calls);
        if calls.len() >= MAX_PARKED {
            return Err(HandlerError::Transient {
                message: format!(
                    "the gateway already holds {MAX_PARKED} calls waiting for input; try again later"
                ),
                retry_after_ms: Some(1_000),
            });
        }
        calls.insert(id, (Instant::now() + PARK_TIMEOUT, flight));
        Ok(())
    }

    /// Take the parked call `id` back for `owner`, with the answers now in `cx`.
    pub(crate) fn resume(&self, id: &str, owner: Option<&str>) -> Result<Flight, HandlerError> {
        let mut calls = self.lock();
        Self::sweep(&mut calls);
        let gone = || {
            HandlerError::NotFound {
            message: "the call this requestState belongs to is no longer waiting at this gateway (it timed out, or the retry reached another replica); send the call again without requestState".to_owned(),
            data: json!({ "requestState": "expired" }),
        }
        };
        match calls.get(id) {
            None => Err(gone()),
            Some((_, flight)) if flight.owner.as_deref() != owner => Err(gone()),
            Some(_) => calls.remove(id).map(|(_, flight)| flight).ok_or_else(gone),
        }
    }
}
