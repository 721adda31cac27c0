//! The loop: ask the model, run the tools it asks for, give it the results, until it answers
//! or a budget runs out.

use std::{
    collections::HashMap,
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use switchboard_client::CallOptions;
use switchboard_host::{Host, HostError, HostTool};
use switchboard_llm::{
    Block, ChatModel, ChatRequest, ChatResponse, Message, ModelError, Role, StopReason, ToolSpec,
    Usage,
};
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;

use crate::{
    history,
    observer::{Approval, ApprovalPolicy, Observer, ToolCall, ToolOutcome},
    render,
};

/// The system prompt when none is given.
pub const DEFAULT_SYSTEM: &str = "You are a helpful assistant with access to tools from MCP servers. \
Use the tools when they help answer the user; do not invent results. \
When a tool fails, read its error, fix the arguments or try another way, and tell the user what happened. \
Be concise.";

/// Limits and choices for a run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub system: String,
    /// Model turns per user message.
    pub max_steps: u32,
    /// Input plus output tokens per user message, as the provider counts them.
    pub max_tokens: Option<u64>,
    /// Output tokens per model turn.
    pub max_output_tokens: u32,
    /// Wall-clock time per user message.
    pub time_limit: Option<Duration>,
    pub approval: ApprovalPolicy,
    /// Roughly how many tokens of history to send; older exchanges are left out.
    pub context_tokens: usize,
    /// Longest tool result, in characters, the model is sent.
    pub max_result_chars: usize,
    /// Timeouts of each tool call.
    pub call: CallOptions,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            system: DEFAULT_SYSTEM.to_owned(),
            max_steps: 20,
            max_tokens: Some(400_000),
            max_output_tokens: 4096,
            time_limit: Some(Duration::from_secs(600)),
            approval: ApprovalPolicy::Writes,
            context_tokens: 100_000,
            max_result_chars: 20_000,
            call: CallOptions::default(),
        }
    }
}

/// The budget that ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "budget", content = "limit", rename_all = "snake_case")]
pub enum Budget {
    Steps(u32),
    Tokens(u64),
    #[serde(serialize_with = "seconds")]
    Time(Duration),
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::Steps(n) => write!(f, "the step budget ({n} model turns; --max-steps)"),
            Budget::Tokens(n) => write!(f, "the token budget ({n} tokens; --max-tokens)"),
            Budget::Time(d) => write!(f, "the time budget ({} s; --time-limit)", d.as_secs_f64()),
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Stop {
    /// The model answered.
    Done,
    /// The model's answer was cut at its output limit.
    OutputLimit,
    /// A budget ran out before the model answered.
    Budget(Budget),
    /// The user cancelled (Ctrl-C).
    Cancelled,
}

/// One entry of a run's trace.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceEvent {
    Model {
        step: u32,
        text: String,
        tool_calls: usize,
        usage: Usage,
        stop: StopReason,
    },
    Tool {
        step: u32,
        #[serde(flatten)]
        call: ToolCall,
        approved: bool,
        outcome: ToolOutcome,
    },
}

/// How a run went.
#[derive(Debug, Clone, Serialize)]
pub struct Turn {
    /// The model's final text (what it said in its last turn).
    pub answer: String,
    pub stop: Stop,
    pub steps: u32,
    pub usage: Usage,
    pub trace: Vec<TraceEvent>,
    /// The messages this run added, unmerged, to save with the session.
    #[serde(skip)]
    pub new_messages: Vec<Message>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A model and the tools of a host's servers.
#[derive(Debug, Clone)]
pub struct Agent {
    host: Arc<Host>,
    model: Arc<dyn ChatModel>,
    options: AgentOptions,
}

/// The tools offered in one run, by the name the model knows them by.
struct Toolbox {
    specs: Vec<ToolSpec>,
    by_name: HashMap<String, HostTool>,
    /// A note for the model about the servers that are down, if any.
    unavailable: Option<String>,
}

/// What a tool call needs once its name is resolved.
struct Planned {
    call: ToolCall,
    tool: Result<HostTool, String>,
    approved: bool,
}

impl Agent {
    pub fn new(host: Arc<Host>, model: Arc<dyn ChatModel>, options: AgentOptions) -> Agent {
        Agent {
            host,
            model,
            options,
        }
    }

    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    pub fn options(&self) -> &AgentOptions {
        &self.options
    }

    /// Answer `input`, with `history` as the conversation so far. On success the history
    /// holds the new exchange; on a model error it is left as it was, so the user can retry.
    pub async fn run(
        &self,
        history: &mut Vec<Message>,
        input: &str,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<Turn, AgentError> {
        let started = TokioInstant::now();
        let deadline = self.options.time_limit.map(|limit| started + limit);
        let mut working = history.clone();
        let mut turn = Turn {
            answer: String::new(),
            stop: Stop::Done,
            steps: 0,
            usage: Usage::default(),
            trace: Vec::new(),
            new_messages: Vec::new(),
        };
        let user = Message::user(input);
        turn.new_messages.push(user.clone());
        history::push(&mut working, user);
        let toolbox = self.toolbox(observer).await;

        loop {
            if turn.steps >= self.options.max_steps {
                turn.stop = Stop::Budget(Budget::Steps(self.options.max_steps));
                break;
            }
            if let Some(max) = self.options.max_tokens
                && turn.usage.input_tokens + turn.usage.output_tokens >= max
            {
                turn.stop = Stop::Budget(Budget::Tokens(max));
                break;
            }
            turn.steps += 1;
            let system = match &toolbox.unavailable {
                Some(note) => format!("{}\n\n{note}", self.options.system),
                None => self.options.system.clone(),
            };
            let request = ChatRequest {
                system: Some(system),
                messages: history::fit(&working, self.options.context_tokens).to_vec(),
                tools: toolbox.specs.clone(),
                max_tokens: self.output_allowance(&turn.usage),
                temperature: None,
            };
            let sink = |delta: &str| observer.text(delta);
            let response = match self
                .bounded(deadline, cancel, self.model.complete(&request, &sink))
                .await
            {
                Bounded::Done(response) => response?,
                Bounded::Cancelled => {
                    turn.stop = Stop::Cancelled;
                    break;
                }
                Bounded::OutOfTime => {
                    turn.stop = Stop::Budget(Budget::Time(self.time_limit()));
                    break;
                }
            };
            observer.model_turn_ended();
            turn.usage.input_tokens += response.usage.input_tokens;
            turn.usage.output_tokens += response.usage.output_tokens;
            let text = Message {
                role: Role::Assistant,
                content: response.content.clone(),
            }
            .text();
            turn.trace.push(TraceEvent::Model {
                step: turn.steps,
                text: text.clone(),
                tool_calls: response.tool_uses().count(),
                usage: response.usage,
                stop: response.stop,
            });
            turn.answer = text;
            let assistant = Message {
                role: Role::Assistant,
                content: response.content.clone(),
            };
            turn.new_messages.push(assistant.clone());
            history::push(&mut working, assistant);

            if response.tool_uses().next().is_none() {
                turn.stop = match response.stop {
                    StopReason::MaxTokens => Stop::OutputLimit,
                    _ => Stop::Done,
                };
                break;
            }
            let (results, stop) = self
                .run_tools(&toolbox, &response, observer, cancel, deadline)
                .await;
            let mut blocks = Vec::with_capacity(results.len());
            for (call, approved, outcome) in results {
                blocks.push(Block::ToolResult {
                    tool_use_id: call.id.clone(),
                    content: outcome.content.clone(),
                    is_error: outcome.is_error,
                });
                turn.trace.push(TraceEvent::Tool {
                    step: turn.steps,
                    call,
                    approved,
                    outcome,
                });
            }
            let results = Message {
                role: Role::User,
                content: blocks,
            };
            turn.new_messages.push(results.clone());
            history::push(&mut working, results);
            if let Some(stop) = stop {
                turn.stop = stop;
                break;
            }
        }
        *history = working;
        Ok(turn)
    }

    /// The tools of the servers that are available now. The others are left out: the user is
    /// told through the observer, and the model through the system prompt, so it does not
    /// promise what it cannot do.
    async fn toolbox(&self, observer: &dyn Observer) -> Toolbox {
        let available = self.host.available_tools().await;
        let mut down = Vec::new();
        for (server, reason) in &available.unavailable {
            observer.notice(&format!(
                "server \"{server}\" is unavailable ({reason}); its tools are not offered to the model"
            ));
            down.push(format!("\"{server}\" ({reason})"));
        }
        let specs = available.tools.iter().map(tool_spec).collect();
        let by_name = available
            .tools
            .into_iter()
            .map(|tool| (tool.qualified.clone(), tool))
            .collect();
        let unavailable = (!down.is_empty()).then(|| {
            format!(
                "These MCP servers are unavailable right now, so their tools are not offered: {}. \
                 If the user needs them, say so.",
                down.join(", ")
            )
        });
        Toolbox {
            specs,
            by_name,
            unavailable,
        }
    }

    fn time_limit(&self) -> Duration {
        self.options.time_limit.unwrap_or_default()
    }

    /// Output tokens for the next turn: the per-turn limit, or what is left of the token budget.
    fn output_allowance(&self, used: &Usage) -> u32 {
        let Some(max) = self.options.max_tokens else {
            return self.options.max_output_tokens;
        };
        let left = max.saturating_sub(used.input_tokens + used.output_tokens);
        u32::try_from(left)
            .unwrap_or(u32::MAX)
            .clamp(1, self.options.max_output_tokens)
    }

    /// Run `future` unless the user cancels or the time budget ends first. Losing the race
    /// drops the future, which cancels what it was doing (a tool call's drop sends
    /// `notifications/cancelled`).
    async fn bounded<F: Future>(
        &self,
        deadline: Option<TokioInstant>,
        cancel: &CancellationToken,
        future: F,
    ) -> Bounded<F::Output> {
        let out_of_time = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            output = future => Bounded::Done(output),
            () = cancel.cancelled() => Bounded::Cancelled,
            () = out_of_time => Bounded::OutOfTime,
        }
    }

    /// Resolve, approve and run every tool call of one model turn. Approvals are asked one at
    /// a time; the approved calls then run concurrently. Every call gets an outcome, also when
    /// the run is cancelled or out of time, so the history stays well-formed.
    async fn run_tools(
        &self,
        toolbox: &Toolbox,
        response: &ChatResponse,
        observer: &dyn Observer,
        cancel: &CancellationToken,
        deadline: Option<TokioInstant>,
    ) -> (Vec<(ToolCall, bool, ToolOutcome)>, Option<Stop>) {
        let mut planned = Vec::new();
        for (id, name, input) in response.tool_uses() {
            planned.push(self.plan(toolbox, id, name, input).await);
        }
        let mut stop = None;
        for plan in &mut planned {
            let needs = self.options.approval.needs_approval(plan.call.read_only);
            if plan.tool.is_err() || !needs {
                continue;
            }
            match self
                .bounded(deadline, cancel, observer.approve(&plan.call))
                .await
            {
                Bounded::Done(Approval::Approve) => {}
                Bounded::Done(Approval::Deny(reason)) => {
                    plan.approved = false;
                    plan.tool = Err(match reason {
                        Some(reason) => format!("The user did not allow this call: {reason}"),
                        None => "The user did not allow this call. Do not retry it; ask the user or continue without it.".to_owned(),
                    });
                }
                Bounded::Cancelled => {
                    stop = Some(Stop::Cancelled);
                    break;
                }
                Bounded::OutOfTime => {
                    stop = Some(Stop::Budget(Budget::Time(self.time_limit())));
                    break;
                }
            }
        }
        if let Some(stop) = stop {
            let outcomes = planned
                .into_iter()
                .map(|plan| {
                    let outcome = interrupted(stop);
                    observer.tool_finished(&plan.call, &outcome);
                    (plan.call, false, outcome)
                })
                .collect();
            return (outcomes, Some(stop));
        }
        let calls = planned.iter().map(|plan| self.execute(plan, observer));
        match self.bounded(deadline, cancel, join_all(calls)).await {
            Bounded::Done(outcomes) => {
                let results = planned
                    .into_iter()
                    .zip(outcomes)
                    .map(|(plan, outcome)| (plan.call, plan.approved, outcome))
                    .collect();
                (results, None)
            }
            interrupted_by => {
                let stop = match interrupted_by {
                    Bounded::Cancelled => Stop::Cancelled,
                    _ => Stop::Budget(Budget::Time(self.time_limit())),
                };
                let results = planned
                    .into_iter()
                    .map(|plan| {
                        let outcome = interrupted(stop);
                        observer.tool_finished(&plan.call, &outcome);
                        (plan.call, plan.approved, outcome)
                    })
                    .collect();
                (results, Some(stop))
            }
        }
    }

    async fn plan(&self, toolbox: &Toolbox, id: &str, name: &str, input: &Value) -> Planned {
        let found = match toolbox.by_name.get(name) {
            Some(tool) => Ok(tool.clone()),
            None => self
                .host
                .resolve_tool(name)
                .await
                .map_err(|error| unknown_tool_message(name, &error, toolbox)),
        };
        let call = ToolCall {
            id: id.to_owned(),
            requested: name.to_owned(),
            tool: found
                .as_ref()
                .map(HostTool::display_name)
                .unwrap_or_else(|_| name.to_owned()),
            arguments: input.clone(),
            read_only: found.as_ref().is_ok_and(|tool| tool.tool.is_read_only()),
        };
        Planned {
            call,
            tool: found,
            approved: true,
        }
    }

    async fn execute(&self, plan: &Planned, observer: &dyn Observer) -> ToolOutcome {
        let started = Instant::now();
        let tool = match &plan.tool {
            Ok(tool) => tool,
            Err(message) => {
                let outcome = outcome(true, message.clone(), started);
                observer.tool_finished(&plan.call, &outcome);
                return outcome;
            }
        };
        observer.tool_started(&plan.call);
        let result = self
            .host
            .call_tool(tool, plan.call.arguments.clone(), self.options.call.clone())
            .await;
        let outcome = match result {
            Ok(result) => outcome(
                result.is_error,
                render::tool_result_text(&result, self.options.max_result_chars),
                started,
            ),
            Err(error) => outcome(true, call_error_message(&error), started),
        };
        observer.tool_finished(&plan.call, &outcome);
        outcome
    }
}

enum Bounded<T> {
    Done(T),
    Cancelled,
    OutOfTime,
}

fn outcome(is_error: bool, content: String, started: Instant) -> ToolOutcome {
    ToolOutcome {
        is_error,
        summary: render::summary_line(&content, 100),
        content,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

fn interrupted(stop: Stop) -> ToolOutcome {
    let content = match stop {
        Stop::Cancelled => "The user cancelled this call before it finished.".to_owned(),
        Stop::Budget(budget) => format!("Not run to the end: {budget} ran out."),
        Stop::Done | Stop::OutputLimit => "Not run.".to_owned(),
    };
    ToolOutcome {
        is_error: true,
        summary: render::summary_line(&content, 100),
        content,
        duration_ms: 0,
    }
}

/// A host tool as the model is offered it: its qualified name, its description followed by the
/// server it comes from, and its input schema.
pub fn tool_spec(tool: &HostTool) -> ToolSpec {
    let mut description = tool
        .tool
        .description
        .clone()
        .or_else(|| tool.tool.title.clone())
        .unwrap_or_default();
    if !description.is_empty() {
        description.push(' ');
    }
    description.push_str(&format!("(MCP server \"{}\")", tool.server));
    ToolSpec {
        name: tool.qualified.clone(),
        description,
        input_schema: tool.tool.input_schema.clone(),
    }
}

/// The error a model gets for a tool name that names nothing: what it asked for, the closest
/// names, and the tools it can call, so it can correct itself.
fn unknown_tool_message(name: &str, error: &HostError, toolbox: &Toolbox) -> String {
    let mut names: Vec<&str> = toolbox
        .specs
        .iter()
        .map(|spec| spec.name.as_str())
        .collect();
    names.sort_unstable();
    let available = if names.is_empty() {
        "No tools are available.".to_owned()
    } else {
        format!("The tools you can call are: {}.", names.join(", "))
    };
    format!("There is no tool named \"{name}\" ({error}). {available}")
}

/// A failed call as a sentence the model can act on.
fn call_error_message(error: &HostError) -> String {
    match error {
        HostError::InvalidArguments { .. } => {
            format!("{error}. Fix the arguments to match the tool's input schema and try again.")
        }
        _ => format!("The call failed: {error}"),
    }
}
