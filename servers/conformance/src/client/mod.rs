//! The client side of the conformance fixture contract: what `conformance-client` does in each
//! scenario of the suite (`shared/conformance.md`, section 6).
//!
//! The suite starts a mock server per scenario and runs `conformance-client <url>` with the
//! scenario's name, the protocol revision to speak and, for some scenarios, a JSON context in
//! the environment. Everything here goes through Switchboard's own client and host crates, so
//! the suite scores them: the handshake in both eras, the Streamable HTTP transport (headers,
//! SSE resumption), the callbacks that answer elicitation and `input_required` rounds, the
//! host's tool resolution and argument checks, and OAuth.

mod answers;
mod auth;
mod scenarios;

use std::time::Duration;

use serde_json::Value;
use switchboard_client::{ClientError, EraPreference};
use switchboard_host::HostError;

pub use answers::FixtureAnswers;
pub use scenarios::run;

/// Time allowed for the handshake and for each request. The suite gives a whole scenario 30 s.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What the suite asks for, read from its environment variables and arguments by the binary.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `MCP_CONFORMANCE_SCENARIO`, e.g. `tools_call` or `auth/metadata-default`.
    pub scenario: String,
    /// The mock server's URL (the last argument).
    pub url: url::Url,
    /// `MCP_CONFORMANCE_PROTOCOL_VERSION`.
    pub protocol_version: Option<String>,
    /// `MCP_CONFORMANCE_CONTEXT`, parsed; `Null` when absent.
    pub context: Value,
}

impl Invocation {
    /// The era the revision asks for: `2025-11-25` and older use the `initialize` handshake,
    /// `2026-07-28` is stateless. Without a revision both are tried, as a user's client would.
    pub fn era(&self) -> EraPreference {
        match self.protocol_version.as_deref() {
            Some("2026-07-28") => EraPreference::Modern,
            Some(_) => EraPreference::Legacy,
            None => EraPreference::Auto,
        }
    }
}

/// Why a scenario could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("MCP_CONFORMANCE_CONTEXT: {0}")]
    Context(String),
    #[error("{0}")]
    Unexpected(String),
}
