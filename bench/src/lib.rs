//! The Switchboard benchmark (issue 10): our echo server against an rmcp echo server, the
//! TypeScript and Python SDKs and a raw floor, over stdio and Streamable HTTP, in one run.
//!
//! This library only shares code between the crate's three binaries:
//!
//! - `switchboard-bench`, the driver: it starts every server, drives the same workload
//!   against each (one Rust driver for all, so the comparison is fair), reads CPU time and
//!   memory from `/proc`, and prints a Markdown table;
//! - `bench-rmcp-echo`, the rmcp peer, wired the way rmcp servers usually are;
//! - `bench-floor`, the floor: no MCP, a fixed reply per message.
//!
//! The workload is `tools/call echo {"text": …}` after a legacy `initialize` (protocol
//! 2025-06-18): warm-up, then sequential calls timed one by one, then calls with 32 in flight.
//!
//! ```
//! use switchboard_bench::protocol;
//!
//! let mut request = Vec::new();
//! protocol::write_echo_call(&mut request, 7);
//! let request: serde_json::Value = serde_json::from_slice(&request).unwrap();
//! assert_eq!(request["params"]["arguments"]["text"], protocol::ECHO_TEXT);
//! ```

pub mod children;
pub mod environment;
pub mod http_driver;
pub mod peers;
pub mod phase;
pub mod procfs;
pub mod protocol;
pub mod report;
pub mod settings;
pub mod stdio_driver;
pub mod workload;
