//! Switchboard's MCP server kit.
//!
//! Declare tools (typed arguments, schemas derived with `schemars` and checked with
//! `jsonschema`), resources, resource templates and prompts; build a [`Server`]; serve it on
//! stdio with [`serve_stdio`]. One server answers both protocol eras: legacy sessions opened with
//! `initialize` (2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05) and stateless 2026-07-28
//! requests that carry their `_meta`.
//!
//! A handler can ask the client for input (an elicitation form, a sampling call, its roots)
//! with [`RequestContext::input`], the same way in both eras: a legacy session gets a real
//! request and the handler waits for the answer; a 2026-07-28 call is answered with an
//! `input_required` result and a signed `requestState`, and the handler runs again when the
//! client retries with the answers.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::json;
//! use switchboard_server::{InputRequest, Server, Session, Tool, ToolOutput};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct NoArguments {}
//!
//! let server = Server::builder("greeter", "1.0.0")
//!     .tool(Tool::builder("greet", "Greet the user by name.").handler(
//!         |_: NoArguments, cx| async move {
//!             let form = json!({"type": "object", "properties": {"name": {"type": "string"}}});
//!             let answer = cx.input("name", InputRequest::elicitation("Your name?", form)).await?;
//!             Ok(ToolOutput::text(format!("Hello, {}!", answer["content"]["name"])))
//!         },
//!     ))
//!     .build()
//!     .expect("valid names");
//!
//! // A 2026-07-28 call: the first round asks for the name.
//! let mut out = Vec::new();
//! server.handle(&mut Session::new(None), br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}}"#, &mut out);
//! let answer: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
//! assert_eq!(answer["result"]["resultType"], "input_required");
//! assert_eq!(answer["result"]["inputRequests"]["name"]["method"], "elicitation/create");
//! assert!(answer["result"]["requestState"].is_string());
//! ```
//!
//! The dispatch path is our own rather than rmcp's service layer, because rmcp's costs 18 to
//! 100 µs of CPU per call (see ARCHITECTURE.md): messages are decoded in two phases with borrowed
//! slices, the request id is echoed as raw bytes, handlers are polled once inline, list answers
//! are encoded once, and stdio writes are batched.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use switchboard_server::{Server, Tool, ToolOutput};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Echo {
//!     /// The text to send back.
//!     text: String,
//! }
//!
//! let server = Server::builder("echo", "1.0.0")
//!     .tool(
//!         Tool::builder("echo", "Send the text back.")
//!             .read_only()
//!             .handler(|args: Echo, _cx| async move { Ok(ToolOutput::text(args.text)) }),
//!     )
//!     .build()
//!     .expect("valid names");
//!
//! // One legacy handshake and one call, as a stdio client would send them.
//! let mut session = switchboard_server::Session::new(None);
//! let mut out = Vec::new();
//! server.handle(&mut session, br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"doc","version":"0"}}}"#, &mut out);
//! out.clear();
//! server.handle(&mut session, br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#, &mut out);
//! assert_eq!(out, b"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n");
//! ```

mod announce;
mod catalogue;
mod context;
mod error;
mod http;
mod input;
pub mod model;
mod registry;
mod request_state;
mod server;
mod stdio;
mod tasks;
pub mod wire;

pub use catalogue::{Catalogue, CatalogueResult, LIST_CHANGES_QUEUE, ListKind, ListRequest};
pub use context::{Caller, Era, LogLevel, OUTBOUND_QUEUE, Outbound, RequestContext};
pub use error::{HandlerError, Violation};
pub use http::{
    HttpConfig, JSON_WINDOW, METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, SESSION_HEADER,
    check_host_and_origin, check_param_headers_sent, router, serve_http, serve_listener,
};
pub use input::{INPUT_TIMEOUT, InputRequest, InputRequired};
pub use model::{Content, PromptOutput, ResourceContents, Role, ToolOutput};
pub use registry::{
    Prompt, PromptBuilder, Resource, ResourceTemplate, SCOPE_META_KEY, Tool, ToolBuilder,
    schema_for,
};
pub use request_state::{MAX_REQUEST_STATE_BYTES, REQUEST_STATE_TTL, unverified_state};
pub use server::{
    BuildError, CacheScope, Completer, CompletionRef, CompletionRequest, Handled, LEGACY_VERSIONS,
    MAX_COMPLETIONS, MAX_MESSAGE_BYTES, MAX_RESOURCE_SUBSCRIPTIONS, MODERN_VERSION, Pending,
    REMOVED_IN_MODERN, RESOURCE_UPDATES_QUEUE, Server, ServerBuilder, Session, meta_key,
};
pub use stdio::{SHUTDOWN_GRACE, serve, serve_session, serve_stdio};
pub use tasks::{
    MAX_TASKS, TASK_GRACE, TASK_POLL_INTERVAL, TASK_TTL, TASKS_EXTENSION, TaskStart, TaskSupport,
};
