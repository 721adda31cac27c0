//! Test fixtures for Switchboard. Dev-only: nothing here ships.
//!
//! - [`fixture::Fixture`]: an MCP server (built on rmcp, independent of our client) with tools,
//!   resources and prompts whose answers tests can assert exactly.
//! - The `sb-fixture-server` binary serves it over stdio, with fault modes that imitate broken
//!   servers (exit during the handshake, crash mid-call, garbage on stdout, silence).
//! - [`bin_path`] and [`peers`] find built binaries and the installed third-party peers.
//! - [`oauth_server`]: an MCP server that requires OAuth, with its authorization server.
//! - [`restart::Restartable`]: a 2026-07-28 HTTP server on our kit that a test can crash and
//!   start again on the same address.

#![allow(clippy::unwrap_used)]

pub mod fake_llm;
pub mod fixture;
pub mod oauth_server;
pub mod peers;
pub mod restart;
pub mod ws_bridge;

use std::path::PathBuf;

/// Path of a binary built from this workspace (`target/<profile>/<name>`).
///
/// Integration tests run from `target/<profile>/deps/`, so the binaries sit one level up.
/// `cargo test --workspace` and `cargo nextest run --workspace` build them.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let mut dir = exe
        .parent()
        .expect("the test binary is in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}
