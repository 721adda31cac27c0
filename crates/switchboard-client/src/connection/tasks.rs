//! Following a task to its end (the 2026-07-28 tasks extension, SEP-2663).
//!
//! The client declares `io.modelcontextprotocol/tasks`, so a server may answer a `tools/call`
//! with a task (`resultType: "task"`) instead of the result. [`Connection::follow_task`] then
//! polls `tasks/get` at the server's `pollIntervalMs`, answers the task's `inputRequests`
//! through the same callbacks as any other request for input (sending the answers with
//! `tasks/update`), and returns the task's result as if the call had answered with it. A task
//! that fails is the JSON-RPC error it carries; one that outlives the call's limit, or whose
//! caller gives up, is cancelled with `tasks/cancel`.

use std::{collections::HashSet, time::Duration};

use rmcp::model::{
    CancelTaskParams, CancelTaskRequest, ClientRequest, GetTaskParams, GetTaskRequest,
    UpdateTaskParams, UpdateTaskRequest,
};
use serde_json::{Map, Value};

use super::{Connection, Extras, Limits};
use crate::error::ClientError;

/// The pause between polls when the server suggests none.
pub const TASK_POLL_DEFAULT: Duration = Duration::from_millis(500);
/// The shortest and longest pause between polls, whatever the server suggests.
pub const TASK_POLL_MIN: Duration = Duration::from_millis(50);
pub const TASK_POLL_MAX: Duration = Duration::from_secs(10);
/// How long the best-effort `tasks/cancel` of an abandoned task may take.
const TASK_CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

const METHOD: &str = "tools/call";

/// The server's suggested pause, within bounds.
fn poll_interval(task: &Value) -> Duration {
    task.get("pollIntervalMs")
        .and_then(Value::as_u64)
        .map_or(TASK_POLL_DEFAULT, Duration::from_millis)
        .clamp(TASK_POLL_MIN, TASK_POLL_MAX)
}

/// Cancels the task when dropped armed: the caller gave up on the call (or its limit passed).
struct CancelTask {
    peer: Option<rmcp::service::Peer<rmcp::RoleClient>>,
    task_id: String,
    meta: Option<rmcp::model::RequestMetaObject>,
}

impl Drop for CancelTask {
    fn drop(&mut self) {
        let Some(peer) = self.peer.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let params = CancelTaskParams::new(std::mem::take(&mut self.task_id));
        tracing::debug!(task = %params.task_id, "task abandoned by its caller; cancelling it");
        // The call's `_meta` goes in the options: rmcp sets the connection's over the params'.
        let mut options = rmcp::service::PeerRequestOptions::with_timeout(TASK_CANCEL_TIMEOUT);
        options.meta = self.meta.take();
        runtime.spawn(async move {
            let request = ClientRequest::CancelTaskRequest(CancelTaskRequest::new(params));
            let cancelling = async {
                peer.send_request_with_option(request, options)
                    .await?
                    .await_response()
                    .await
            };
            let _ = tokio::time::timeout(TASK_CANCEL_TIMEOUT, cancelling).await;
        });
    }
}

impl Connection {
    /// Poll the task that `created` (a `CreateTaskResult`) announced until it ends, and return
    /// its result. `limits.max_duration` (else `limits.timeout`) bounds the whole wait;
    /// `limits.timeout` each poll.
    pub(super) async fn follow_task(
        &self,
        created: &Value,
        limits: Limits,
        extras: &Extras,
    ) -> Result<Value, ClientError> {
        let Some(task_id) = created.get("taskId").and_then(Value::as_str) else {
            return Err(self.protocol(METHOD, "the server made a task without a taskId".into()));
        };
        let task_id = task_id.to_owned();
        let whole = limits.max_duration.unwrap_or(limits.timeout);
        let deadline = tokio::time::Instant::now() + whole;
        let poll = Limits::plain(limits.timeout);
        // The polls carry the call's own `_meta` (its client capabilities, say), not its
        // progress or relay.
        let quiet = Extras {
            meta: extras.meta.clone(),
            ..Extras::default()
        };
        let mut cancel = CancelTask {
            peer: Some(self.service.peer().clone()),
            task_id: task_id.clone(),
            meta: extras.meta.clone(),
        };
        let mut pause = poll_interval(created);
        let mut answered: HashSet<String> = HashSet::new();
        let outcome = tokio::time::timeout_at(deadline, async {
            loop {
                let params = GetTaskParams::new(task_id.clone());
                let request = ClientRequest::GetTaskRequest(GetTaskRequest::new(params));
                let task = self
                    .request_once("tasks/get", &request, poll, &quiet)
                    .await?;
                pause = poll_interval(&task);
                match task.get("status").and_then(Value::as_str) {
                    Some("working") => {}
                    Some("input_required") => {
                        if self
                            .answer_task_input(&task_id, &task, &mut answered, poll, extras, &quiet)
                            .await?
                        {
                            // Look again at once: the answers may have finished it.
                            continue;
                        }
                    }
                    Some("completed" | "failed" | "cancelled") => return Ok(task),
                    other => {
                        return Err(self.protocol(
                            METHOD,
                            format!("task {task_id} has an unknown status {other:?}"),
                        ));
                    }
                }
                tokio::time::sleep(pause).await;
            }
        })
        .await;
        // Whatever went wrong before the task ended (a poll failed, the limit passed), the
        // call is given up and `cancel`, still armed, cancels the task when dropped.
        let task = match outcome {
            Ok(Ok(task)) => task,
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                return Err(ClientError::RequestTimeout {
                    server: self.name.clone(),
                    method: METHOD,
                    after: whole,
                });
            }
        };
        cancel.peer = None;
        match task.get("status").and_then(Value::as_str) {
            Some("completed") => match task.get("result") {
                Some(Value::Object(result)) => Ok(Value::Object(result.clone())),
                _ => Err(self.protocol(
                    METHOD,
                    format!("task {task_id} completed without a result object"),
                )),
            },
            Some("failed") => Err(self.task_failed(&task_id, &task)),
            _ => Err(self.protocol(
                METHOD,
                format!("the server cancelled task {task_id} before it finished"),
            )),
        }
    }

    /// Answer the task's input requests that were not answered yet, with `tasks/update`.
    /// Whether any answer went out.
    async fn answer_task_input(
        &self,
        task_id: &str,
        task: &Value,
        answered: &mut HashSet<String>,
        poll: Limits,
        extras: &Extras,
        quiet: &Extras,
    ) -> Result<bool, ClientError> {
        let fresh: Map<String, Value> = match task.get("inputRequests") {
            Some(Value::Object(requests)) => requests
                .iter()
                .filter(|(key, _)| !answered.contains(*key))
                .map(|(key, request)| (key.clone(), request.clone()))
                .collect(),
            _ => {
                return Err(self.protocol(
                    METHOD,
                    format!("task {task_id} waits for input but lists no inputRequests"),
                ));
            }
        };
        if fresh.is_empty() {
            return Ok(false);
        }
        let asking = Value::Object(Map::from_iter([(
            "inputRequests".to_owned(),
            Value::Object(fresh),
        )]));
        let (responses, _) = self
            .answer_input_requests(METHOD, &asking, extras.relay.as_ref())
            .await?;
        let Some(responses) = responses else {
            return Ok(false);
        };
        answered.extend(responses.keys().cloned());
        let params = UpdateTaskParams::new(task_id.to_owned(), responses);
        let request = ClientRequest::UpdateTaskRequest(UpdateTaskRequest::new(params));
        self.request_once("tasks/update", &request, poll, quiet)
            .await?;
        Ok(true)
    }

    /// The error a failed task carries, as if the call had answered with it.
    fn task_failed(&self, task_id: &str, task: &Value) -> ClientError {
        let error = task.get("error");
        match error
            .and_then(|e| e.get("code"))
            .and_then(Value::as_i64)
            .zip(error.and_then(|e| e.get("message")).and_then(Value::as_str))
        {
            Some((code, message)) => ClientError::Rpc {
                server: self.name.clone(),
                method: METHOD,
                code,
                message: message.to_owned(),
                data: error.and_then(|e| e.get("data")).cloned().map(Box::new),
            },
            None => self.protocol(
                METHOD,
                format!("task {task_id} failed without a JSON-RPC error object"),
            ),
        }
    }
}
