//! The tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`) of 2026-07-28: a long tool
//! call answers at once with a task, runs on in the background, and the client polls it.
//!
//! - A tool opts in with [`crate::ToolBuilder::task_support`]. When a 2026-07-28 client declares
//!   the extension in its request's client capabilities, the kit records a task, answers
//!   `resultType: "task"` with the task's id, and runs the handler detached from the request.
//!   A client that did not declare it gets the plain result (optional support) or `-32021`
//!   (required support).
//! - `tasks/get` shows the task; once it ends it carries the tool's `result` (a tool error is
//!   `completed` with `isError: true`) or the protocol `error` (`failed`).
//! - A handler inside a task asks for input with [`crate::RequestContext::input`] as anywhere
//!   else. The task then reports `input_required` with the open `inputRequests`, the client
//!   answers with `tasks/update`, and the handler, which kept waiting, carries on.
//! - `tasks/cancel` ends the task as `cancelled` and drops its handler.
//! - Tasks belong to whoever created them (the authenticated subject or client, when the
//!   transport knows one); to anyone else an id is unknown, as it is after it expires.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{
    context::{Caller, Era},
    error::HandlerError,
    input::InputRequest,
    wire::{ErrorObject, code},
};

/// The extension's identifier, under `capabilities.extensions`.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// How long a task stays readable after it was created (its `ttlMs`), unless
/// [`crate::ServerBuilder::task_ttl`] says otherwise. A task that is still running is kept until
/// it ends, and an ended one for at least [`TASK_GRACE`] after that.
pub const TASK_TTL: Duration = Duration::from_secs(60 * 60);
/// The least time an ended task stays readable, so a client that polls can see the end of a
/// task that outran its `ttlMs`.
pub const TASK_GRACE: Duration = Duration::from_secs(60);
/// How often clients are asked to poll (`pollIntervalMs`).
pub const TASK_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Most tasks one server keeps at once, unless [`crate::ServerBuilder::max_tasks`] says
/// otherwise. A call that would make one more gets a retryable `-32000` error.
pub const MAX_TASKS: usize = 10_000;

/// Whether a tool can run as a task (`execution.taskSupport` in `tools/list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    /// As a task when the client declared the extension, else as a plain call.
    Optional,
    /// Only as a task: a client that did not declare the extension gets `-32021`.
    Required,
}

impl TaskSupport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        }
    }
}

/// When a catalogue's tool call becomes a task, for a client that takes tasks
/// ([`crate::Catalogue::task_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStart {
    /// At once: the call is answered with a task before the catalogue's `call_tool` runs.
    Upfront,
    /// When the catalogue's `call_tool` calls [`crate::RequestContext::start_task`]: until
    /// then it is a plain call, which may ask for input in 2026-07-28 rounds (a gateway starts
    /// its task when its upstream does).
    InHandler,
}

/// Whether a request of this era, with these client capabilities, takes tasks: a 2026-07-28
/// request that declares the extension.
pub(crate) fn takes_tasks(era: Era, capabilities: Option<&Value>) -> bool {
    era == Era::Modern
        && capabilities
            .and_then(|c| c.get("extensions"))
            .and_then(|e| e.get(TASKS_EXTENSION))
            .is_some_and(|v| !v.is_null())
}

/// `-32021` for a request that needs the extension from a client that did not declare it.
pub(crate) fn extension_required(what: &str) -> ErrorObject {
    ErrorObject::new(
        code::MISSING_CLIENT_CAPABILITY,
        format!("{what} needs the {TASKS_EXTENSION} extension, which the client did not declare"),
    )
    .with_data(json!({"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}}))
}

/// Who a task belongs to: the authenticated subject, else the client id, else nobody (any
/// caller who knows the id).
fn owner_of(caller: Option<&Caller>) -> Option<String> {
    let caller = caller?;
    caller.subject.clone().or_else(|| caller.client_id.clone())
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How a task ended.
#[derive(Debug)]
enum End {
    /// The tool's result, `isError` or not.
    Completed(Value),
    /// A protocol error: the handler failed or panicked.
    Failed(ErrorObject),
    Cancelled,
}

/// An input request of a running task that the client has not answered yet.
#[derive(Debug)]
struct Waiting {
    request: InputRequest,
    answer: oneshot::Sender<Value>,
}

#[derive(Debug)]
struct State {
    end: Option<End>,
    ended_at: Option<Instant>,
    last_updated: String,
    message: Option<String>,
    /// Open input requests by their key on the wire.
    waiting: BTreeMap<String, Waiting>,
    /// Every key the task has used: a key answered once is never reused, since clients
    /// remember what they answered.
    used_keys: HashSet<String>,
}

/// One task.
#[derive(Debug)]
pub(crate) struct Task {
    id: String,
    owner: Option<String>,
    created_at: String,
    created: Instant,
    ttl: Duration,
    poll_interval: Duration,
    cancel: CancellationToken,
    state: Mutex<State>,
}

impl Task {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(state: &State) -> &'static str {
        match &state.end {
            Some(End::Completed(_)) => "completed",
            Some(End::Failed(_)) => "failed",
            Some(End::Cancelled) => "cancelled",
            None if state.waiting.is_empty() => "working",
            None => "input_required",
        }
    }

    /// The fields every task shape shares (`Task` in the schema).
    fn base(&self, state: &State) -> Map<String, Value> {
        let mut task = Map::new();
        task.insert("taskId".into(), json!(self.id));
        task.insert("status".into(), json!(Self::status(state)));
        if let Some(message) = &state.message {
            task.insert("statusMessage".into(), json!(message));
        }
        task.insert("createdAt".into(), json!(self.created_at));
        task.insert("lastUpdatedAt".into(), json!(state.last_updated));
        task.insert("ttlMs".into(), json!(duration_ms(self.ttl)));
        task.insert(
            "pollIntervalMs".into(),
            json!(duration_ms(self.poll_interval)),
        );
        task
    }

    /// The `CreateTaskResult` that answers the call that made the task.
    pub(crate) fn created(&self) -> Value {
        let mut task = self.base(&self.state());
        task.insert("resultType".into(), json!("task"));
        Value::Object(task)
    }

    /// The `DetailedTask` of `tasks/get`: with its result, its error, or the input it waits
    /// for.
    pub(crate) fn detailed(&self) -> Value {
        let state = self.state();
        let mut task = self.base(&state);
        match &state.end {
            Some(End::Completed(result)) => {
                task.insert("result".into(), result.clone());
            }
            Some(End::Failed(error)) => {
                task.insert("error".into(), json!(error));
            }
            Some(End::Cancelled) => {}
            None if !state.waiting.is_empty() => {
                let requests: Map<String, Value> = state
                    .waiting
                    .iter()
                    .map(|(key, waiting)| {
                        (
                            key.clone(),
                            json!({"method": waiting.request.method(), "params": waiting.request.params()}),
                        )
                    })
                    .collect();
                task.insert("inputRequests".into(), Value::Object(requests));
            }
            None => {}
        }
        Value::Object(task)
    }

    /// Record how the task ended, unless it already has (a cancelled task stays cancelled).
    fn end(&self, end: End) {
        let mut state = self.state();
        if state.end.is_some() {
            return;
        }
        state.end = Some(end);
        state.ended_at = Some(Instant::now());
        state.last_updated = now_rfc3339();
        // Whoever still waits for input gets an error: the senders are dropped.
        state.waiting.clear();
    }

    /// `tasks/cancel`: a running task ends as `cancelled` and its handler is dropped. Cancelling
    /// an ended task changes nothing.
    pub(crate) fn cancel(&self) {
        self.end(End::Cancelled);
        self.cancel.cancel();
    }

    /// Set the status message (from the handler's progress reports).
    pub(crate) fn set_message(&self, message: String) {
        let mut state = self.state();
        if state.end.is_none() && state.message.as_ref() != Some(&message) {
            state.message = Some(message);
            state.last_updated = now_rfc3339();
        }
    }

    /// `tasks/update`: hand each answer to the request waiting for it. Every answer to an open
    /// request is checked before any is delivered; answers to keys the task is not waiting on
    /// (answered already, or never asked) are ignored.
    pub(crate) fn answer(&self, mut responses: HashMap<String, Value>) -> Result<(), ErrorObject> {
        let mut state = self.state();
        let mut answered = Vec::new();
        for (key, waiting) in &state.waiting {
            let Some(answer) = responses.remove(key) else {
                continue;
            };
            if let Err(message) = waiting.request.check_answer(&answer) {
                return Err(ErrorObject::invalid_params(format!(
                    "inputResponses.{key}: {message}"
                ))
                .with_data(json!({"key": key})));
            }
            answered.push((key.clone(), answer));
        }
        let any = !answered.is_empty();
        for (key, answer) in answered {
            if let Some(waiting) = state.waiting.remove(&key) {
                // The handler may have stopped waiting (cancelled): nothing to do then.
                let _ = waiting.answer.send(answer);
            }
        }
        if any {
            state.last_updated = now_rfc3339();
        }
        Ok(())
    }

    /// Ask the client for these inputs through the task, and wait for every answer. The
    /// requests are published on the task (`input_required`) until `tasks/update` answers
    /// them; a key the task used before is published under a fresh one.
    pub(crate) async fn ask(
        &self,
        requests: &[(&str, InputRequest)],
    ) -> Result<HashMap<String, Value>, HandlerError> {
        let mut receivers = Vec::with_capacity(requests.len());
        {
            let mut state = self.state();
            if state.end.is_some() {
                return Err(HandlerError::Internal("the task has ended".into()));
            }
            for (key, request) in requests {
                let mut wire_key = (*key).to_owned();
                let mut round = 1;
                while state.used_keys.contains(&wire_key) {
                    round += 1;
                    wire_key = format!("{key}-{round}");
                }
                state.used_keys.insert(wire_key.clone());
                let (sender, receiver) = oneshot::channel();
                state.waiting.insert(
                    wire_key,
                    Waiting {
                        request: request.clone(),
                        answer: sender,
                    },
                );
                receivers.push(((*key).to_owned(), receiver));
            }
            state.last_updated = now_rfc3339();
        }
        let mut answers = HashMap::with_capacity(receivers.len());
        for (key, receiver) in receivers {
            let answer = tokio::select! {
                answer = receiver => answer.map_err(|_| HandlerError::Internal("the task ended while it waited for input".into()))?,
                () = self.cancel.cancelled() => return Err(HandlerError::Internal("the task was cancelled".into())),
            };
            answers.insert(key, answer);
        }
        Ok(answers)
    }

    /// Whether the task can be forgotten: it ended, its `ttlMs` has passed, and so has the
    /// grace after its end.
    fn expired(&self, now: Instant) -> bool {
        let state = self.state();
        state.ended_at.is_some_and(|ended| {
            now >= self.created + self.ttl && now >= ended + TASK_GRACE.min(self.ttl)
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The tasks of one server.
#[derive(Debug)]
pub(crate) struct Tasks {
    tasks: Mutex<HashMap<String, Arc<Task>>>,
    ttl: Duration,
    max: usize,
    last_sweep: Mutex<Instant>,
    /// What every task id begins with ([`crate::ServerBuilder::task_id_prefix`]).
    id_prefix: String,
}

impl Tasks {
    pub(crate) fn new(ttl: Duration, max: usize, id_prefix: String) -> Self {
        Tasks {
            tasks: Mutex::new(HashMap::new()),
            ttl,
            max,
            last_sweep: Mutex::new(Instant::now()),
            id_prefix,
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Task>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new task for `caller`, cancelled through `cancel`. It is readable with
    /// `tasks/get` as soon as this returns.
    pub(crate) fn create(
        &self,
        caller: Option<&Caller>,
        cancel: CancellationToken,
    ) -> Result<Arc<Task>, ErrorObject> {
        let now = Instant::now();
        let mut tasks = self.tasks();
        let sweep = {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            let due =
                tasks.len() >= self.max || now.duration_since(*last) >= Duration::from_secs(1);
            if due {
                *last = now;
            }
            due
        };
        if sweep {
            tasks.retain(|_, task| !task.expired(now));
        }
        if tasks.len() >= self.max {
            return Err(ErrorObject::new(
                code::SERVER_ERROR,
                format!(
                    "the server holds {} tasks, its limit; try again once some have ended and expired",
                    tasks.len()
                ),
            )
            .with_data(json!({"retryable": true, "retry_after_ms": 1000})));
        }
        let created_at = now_rfc3339();
        let task = Arc::new(Task {
            id: format!("{}{}", self.id_prefix, uuid::Uuid::new_v4()),
            owner: owner_of(caller),
            created: now,
            ttl: self.ttl,
            poll_interval: TASK_POLL_INTERVAL,
            cancel,
            state: Mutex::new(State {
                end: None,
                ended_at: None,
                last_updated: created_at.clone(),
                message: None,
                waiting: BTreeMap::new(),
                used_keys: HashSet::new(),
            }),
            created_at,
        });
        tasks.insert(task.id.clone(), task.clone());
        Ok(task)
    }

    /// The task `id` of `caller`; `-32602` when there is none (never was, expired, or someone
    /// else's).
    pub(crate) fn find(&self, id: &str, caller: Option<&Caller>) -> Result<Arc<Task>, ErrorObject> {
        let now = Instant::now();
        let mut tasks = self.tasks();
        let found = tasks.get(id).cloned();
        match found {
            Some(task) if task.expired(now) => {
                tasks.remove(id);
            }
            Some(task) if task.owner.is_none() || task.owner == owner_of(caller) => {
                return Ok(task);
            }
            _ => {}
        }
        Err(ErrorObject::invalid_params(format!("unknown task: {id}"))
            .with_data(json!({"taskId": id})))
    }
}

/// A tool's output as the result object a completed task carries.
pub(crate) fn tool_result<T: Serialize + Send + 'static>(
    work: BoxFuture<'static, Result<T, HandlerError>>,
) -> BoxFuture<'static, Result<Map<String, Value>, HandlerError>> {
    Box::pin(async move {
        match serde_json::to_value(work.await?) {
            Ok(Value::Object(result)) => Ok(result),
            _ => Err(HandlerError::Internal(
                "the tool's result is not a JSON object".into(),
            )),
        }
    })
}

/// Tasks run on the tokio runtime the server runs on: `-32603` when there is none.
pub(crate) fn runtime_available() -> Result<(), ErrorObject> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| {
            ErrorObject::internal("this server runs no tokio runtime, so it cannot run tasks")
        })
}

/// Run `work` as `task`: its result, its error or its panic ends the task, unless
/// `tasks/cancel` ended it first, which drops `work`.
pub(crate) fn run(
    task: Arc<Task>,
    work: BoxFuture<'static, Result<Map<String, Value>, HandlerError>>,
) {
    tokio::spawn(async move {
        // A task of its own, so that a panic ends this task as failed instead of unwinding here.
        let mut running = tokio::spawn(work);
        let joined = tokio::select! {
            joined = &mut running => joined,
            () = task.cancel.cancelled() => {
                running.abort();
                task.end(End::Cancelled);
                return;
            }
        };
        task.end(match joined {
            Ok(Ok(mut result)) => {
                result.insert("resultType".into(), json!("complete"));
                End::Completed(Value::Object(result))
            }
            Ok(Err(error)) => End::Failed(error.to_wire()),
            Err(error) if error.is_panic() => {
                tracing::error!(task = %task.id, "a task's handler panicked");
                End::Failed(ErrorObject::internal(
                    "the tool failed unexpectedly (it panicked)",
                ))
            }
            Err(_) => End::Cancelled,
        });
    });
}
