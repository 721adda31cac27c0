//! The Switchboard benchmark (issue 10): our echo server against an rmcp echo server, the
//! TypeScript and Python SDKs and a raw floor, over stdio and Streamable HTTP, in one run; and
//! our expense tracker against the same tools on the Python SDK (issue 4).
//!
//! This library only shares code between the crate's three binaries:
//!
//! - `switchboard-bench`, the driver: it starts every server, drives the same workload
//!   against each (one Rust driver for all, so the comparison is fair), reads CPU time and
//!   memory from `/proc`, and prints a Markdown table;
//! - `bench-rmcp-echo`, the rmcp peer, wired the way rmcp servers usually are;
//! - `bench-floor`, the floor: no MCP, a fixed reply per message.
//!
//! Two workloads, each after a legacy `initialize` (protocol 2025-06-18):
//!
//! - **echo** (issue 10, [`workload`]): `tools/call echo {"text": …}` against every peer:
//!   warm-up, then sequential calls timed one by one, then calls with 32 in flight.
//! - **expenses** (issue 4, [`expenses`]): `add_expense` and `list_expenses` against
//!   `switchboard serve expenses` and an equivalent server on the Python SDK
//!   (`bench/peers/expenses_server.py`), each on a fresh SQLite file: sequential calls, then
//!   calls with 8 in flight.
//! - **tools** and **agent** (issue 10, [`host_side`]): `switchboard tools` against the MCP
//!   Inspector CLI listing the same server, and the agent loop's own cost per tool call
//!   against a scripted model (the fake LLM of the dev-only `test-support` crate).
//! - **gateway** (issues 8 and 10, [`gateway`]): `switchboard gateway` against calling its
//!   echo upstream directly, and memory per idle legacy session on the gateway and on our
//!   plain HTTP server.
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
pub mod expenses;
pub mod gateway;
pub mod host_side;
pub mod http_driver;
pub mod peers;
pub mod phase;
pub mod procfs;
pub mod protocol;
pub mod report;
pub mod settings;
pub mod stdio_driver;
pub mod workload;
