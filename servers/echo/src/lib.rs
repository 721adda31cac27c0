//! The echo server: one tool, `echo(text)`, which returns the text as text content.
//!
//! It is the workload of the performance benchmark, so it is kept exactly as small as the
//! peers it is compared with, and built on the same server kit as every other server.
//!
//! ```
//! let server = switchboard_echo::server();
//! assert_eq!(server.name(), "switchboard-echo");
//! ```

use schemars::JsonSchema;
use serde::Deserialize;
use switchboard_server::{Server, Tool, ToolOutput};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// Build the echo server.
pub fn server() -> Server {
    Server::builder("switchboard-echo", env!("CARGO_PKG_VERSION"))
        .tool(
            Tool::builder("echo", "Send the text back unchanged.")
                .read_only()
                .idempotent()
                .open_world(false)
                .handler(|args: EchoArgs, _context| async move { Ok(ToolOutput::text(args.text)) }),
        )
        .build()
        .unwrap_or_else(|error| unreachable!("the echo server's declarations are valid: {error}"))
}
