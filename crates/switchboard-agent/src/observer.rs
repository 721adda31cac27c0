//! What the loop tells its user interface, and what it asks of it.

use std::{fmt, future::Future, pin::Pin};

use serde::Serialize;
use serde_json::Value;

/// When the user is asked before a tool runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// Never ask: every call runs.
    Never,
    /// Ask before a tool that does not declare `readOnlyHint` (the default).
    #[default]
    Writes,
    /// Ask before every call.
    Always,
}

impl ApprovalPolicy {
    pub fn needs_approval(self, read_only: bool) -> bool {
        match self {
            ApprovalPolicy::Never => false,
            ApprovalPolicy::Writes => !read_only,
            ApprovalPolicy::Always => true,
        }
    }
}

/// The user's answer to "may this tool run?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Approve,
    /// Refused; the reason (when given) goes back to the model with the refusal.
    Deny(Option<String>),
}

/// One tool call the model asked for, as shown to the user.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCall {
    /// The provider's call id.
    pub id: String,
    /// The name the model used (a qualified name, `server__tool`).
    pub requested: String,
    /// `server/tool` when the name resolved to a tool, else the name as requested.
    pub tool: String,
    pub arguments: Value,
    /// Whether the tool declares `readOnlyHint`.
    pub read_only: bool,
}

/// How one tool call ended.
#[derive(Debug, Clone, Serialize)]
pub struct ToolOutcome {
    pub is_error: bool,
    /// What the model is sent.
    pub content: String,
    /// One short line for the terminal.
    pub summary: String,
    pub duration_ms: u64,
}

pub type ApprovalFuture<'a> = Pin<Box<dyn Future<Output = Approval> + Send + 'a>>;

/// The user interface of one agent run: the terminal in `chat`, a quiet collector in
/// `ask --json`, a recorder in tests.
pub trait Observer: Send + Sync + fmt::Debug {
    /// Model text, as it streams in.
    fn text(&self, delta: &str);

    /// Something the user should know that is not part of the answer (a server whose tools
    /// could not be listed, say).
    fn notice(&self, message: &str);

    /// A model turn ended (after its text was streamed).
    fn model_turn_ended(&self) {}

    /// A tool call is about to run (after any approval).
    fn tool_started(&self, call: &ToolCall);

    /// A tool call ended: it ran, failed, was refused or was cancelled.
    fn tool_finished(&self, call: &ToolCall, outcome: &ToolOutcome);

    /// Ask the user whether `call` may run. Called only when the approval policy says so, one
    /// call at a time.
    fn approve<'a>(&'a self, call: &'a ToolCall) -> ApprovalFuture<'a>;
}
