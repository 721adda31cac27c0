//! Integration tests for switchboard-host: many fixture servers behind one [`Host`], in memory
//! by default and as real child processes where the test is about processes.

#![allow(clippy::unwrap_used, clippy::large_futures)]

mod cache;
mod calls;
mod naming;
mod processes;
mod resilience;
mod resolve;
mod resources;
mod scripted;

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use switchboard_client::{ConnectOptions, Connection, EraPreference, WireTap, model::Direction};
use switchboard_config::ServerName;
use switchboard_host::{Host, HostOptions};
use test_support::fixture::{FixtureOptions, serve_in_memory};

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(5);
/// Pause between two looks at something that changes asynchronously.
pub const POLL: Duration = Duration::from_millis(20);

/// The tools the fixture lists before `enable_extra` is called.
pub const FIXTURE_TOOLS: [&str; 6] = ["add", "echo", "enable_extra", "fail", "pixel", "slow"];

pub fn name(s: &str) -> ServerName {
    ServerName::new(s).unwrap()
}

/// Legacy era, so that the fixture can push `notifications/tools/list_changed` on its own.
pub fn legacy() -> ConnectOptions {
    ConnectOptions {
        era: EraPreference::Legacy,
        ..ConnectOptions::default()
    }
}

/// A connection to an in-process fixture server.
pub async fn fixture(server: &str, options: &ConnectOptions) -> Connection {
    let (reader, writer) = serve_in_memory(FixtureOptions::default());
    Connection::connect_io(name(server), reader, writer, options)
        .await
        .unwrap()
}

/// A host over one in-process fixture per name, in that order.
pub async fn host_of(servers: &[&str]) -> Host {
    host_with(servers, HostOptions::default()).await
}

pub async fn host_with(servers: &[&str], options: HostOptions) -> Host {
    let mut connections = Vec::new();
    for server in servers {
        connections.push(fixture(server, &legacy()).await);
    }
    Host::from_connections(connections, options)
}

/// Look at `probe` every [`POLL`] until it answers `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A wire tap that keeps the method of every message we sent.
#[derive(Debug, Default)]
pub struct SentMethods(Mutex<Vec<String>>);

impl SentMethods {
    pub fn methods(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl WireTap for SentMethods {
    fn message(&self, _server: &str, direction: Direction, json: &str) {
        if direction != Direction::Outgoing {
            return;
        }
        let message: serde_json::Value = serde_json::from_str(json).unwrap();
        if let Some(method) = message.get("method").and_then(|m| m.as_str()) {
            self.0.lock().unwrap().push(method.to_owned());
        }
    }
    fn garbage(&self, _server: &str, _line: &str) {}
    fn stderr(&self, _server: &str, _line: &str) {}
}

pub fn sent_methods() -> Arc<SentMethods> {
    Arc::new(SentMethods::default())
}
