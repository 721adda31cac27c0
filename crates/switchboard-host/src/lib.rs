//! Many MCP servers behind one API.
//!
//! [`Host`] connects to every server of a [`switchboard_config::Config`] in parallel (a server
//! that fails is reported, the rest work), keeps their tool, resource and prompt lists cached
//! until the server says they changed, gives every tool a qualified name that is unique and
//! valid for LLM tool-calling APIs ([`naming`]), and checks arguments against a tool's input
//! schema before the call leaves the process ([`validate`]).
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
pub use host::{EventObserver, Host, HostOptions, HostTool, Listed, ServerState};
