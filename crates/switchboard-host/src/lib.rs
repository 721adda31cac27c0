//! Many MCP servers behind one API.
//!
//! [`Host`] connects to every server of a [`switchboard_config::Config`] in parallel (a server
//! that fails is reported, the rest work), keeps their tool, resource and prompt lists cached
//! until the server says they changed, gives every tool a qualified name that is unique and
//! valid for LLM tool-calling APIs ([`naming`]), and checks arguments against a tool's input
//! schema before the call leaves the process ([`validate`]). Every server is reached through the
//! resilience policies of its config entry (retries, circuit breaker, rate limit, reconnection,
//! replicas), and [`Host::health`] and [`Host::available_tools`] tell an agent which servers are
//! down so that it can carry on with the others.
//!
//! ```no_run
//! # async fn demo(config: switchboard_config::Config) -> Result<(), switchboard_host::HostError> {
//! use switchboard_host::{Host, HostOptions};
//!
//! let host = Host::connect(&config, HostOptions::default()).await;
//! let tool = host.resolve_tool("time/get_current_time").await?;
//! let result = host
//!     .call_tool(&tool, serde_json::json!({"timezone": "Europe/Paris"}), Default::default())
//!     .await?;
//! assert!(!result.is_error);
//! host.shutdown().await;
//! # Ok(()) }
//! ```

pub mod args;
mod error;
mod host;
pub mod naming;
pub mod validate;

pub use error::HostError;
pub use host::{
    AvailableTools, Cached, EventObserver, Host, HostOptions, HostTool, Listed, ServerHealth,
    ServerState,
};
pub use switchboard_client::resilience::{BreakerState, HealthStatus, ResilienceStats};
