//! One connection to one MCP server.
//!
//! `switchboard-client` owns everything about talking to a single upstream: starting a stdio
//! server as a child process, or reaching a URL over Streamable HTTP (falling back to the
//! legacy HTTP+SSE transport when the server is older) or WebSocket; the dual-era handshake
//! (`server/discover` for revision 2026-07-28, falling back to the legacy `initialize`), typed
//! requests with timeouts and progress, and precise errors when the peer misbehaves. What a
//! server asks of the client (elicitation, sampling, roots; as legacy requests or as 2026-07-28
//! `input_required` rounds) is answered through [`callbacks::ClientCallbacks`], and a
//! Streamable HTTP server that requires authorization gets OAuth 2.1 ([`oauth`]).
//!
//! A request whose caller stops waiting (its future is dropped) is cancelled on the server with
//! `notifications/cancelled`, as a timed-out one is. [`resilience::Resilient`] puts one server
//! behind the resilience policies: per-tool timeouts, retries with backoff and a budget, a circuit
//! breaker, a rate limit, reconnection, health checks and a result cache.
//!
//! It is the only crate besides the server kit that imports `rmcp`; everything it returns is our
//! own type (see [`model`]), so the crates above it are insulated from rmcp's API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_client::{CallOptions, ConnectOptions, Connection};
//! use switchboard_config::{Transport, ServerEntry, ServerName};
//!
//! let entry = ServerEntry::new(
//!     ServerName::new("time")?,
//!     Transport::Stdio {
//!         command: "mcp-server-time".into(),
//!         args: vec![],
//!         env: Default::default(),
//!         cwd: None,
//!     },
//! );
//! let connection = Connection::connect(&entry, &ConnectOptions::default()).await?;
//! println!("{} speaks {}", entry.name, connection.description().protocol_version);
//! let args = serde_json::json!({"timezone": "Europe/Paris"});
//! let result = connection
//!     .call_tool("get_current_time", args.as_object().cloned(), CallOptions::default())
//!     .await?;
//! println!("{:?}", result.content);
//! # Ok(()) }
//! ```

pub mod callbacks;
mod connection;
mod error;
mod handler;
pub mod model;
pub mod oauth;
pub mod resilience;
mod sse;
mod standalone;
mod stdio;
mod tap;
mod ws;

pub use connection::{
    CANCEL_SEND_TIMEOUT, CANCELLED_BY_CALLER, CallOptions, ConnectOptions, Connection,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CALL_DURATION, DEFAULT_REQUEST_TIMEOUT, EraPreference,
    HTTP_CONNECT_TIMEOUT, MAX_INPUT_ROUNDS, MAX_LIST_PAGES, TASK_POLL_DEFAULT, TASK_POLL_MAX,
    TASK_POLL_MIN,
};
pub use error::{ClientError, ErrorClass};
pub use handler::{EVENT_QUEUE, PROGRESS_QUEUE};
pub use stdio::MAX_STDIO_LINE_BYTES;
pub use tap::WireTap;
