//! The agent loop behind `switchboard ask` and `switchboard chat`.
//!
//! A [`switchboard_llm::ChatModel`] answers the user by calling the tools of every server the
//! [`switchboard_host::Host`] is connected to, in a loop, until it is done or a budget runs out.

mod agent;
pub mod history;
mod observer;
pub mod render;

pub use agent::{
    Agent, AgentError, AgentOptions, Budget, DEFAULT_SYSTEM, Stop, TraceEvent, Turn, tool_spec,
};
pub use observer::{Approval, ApprovalFuture, ApprovalPolicy, Observer, ToolCall, ToolOutcome};
pub mod sampling;
