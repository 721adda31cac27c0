//! Integration tests for one connection: in-memory against the fixture, real child processes
//! for the failure modes, and raw TCP servers for broken HTTP peers.

#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::large_futures)]

mod callbacks;
mod cancel;
mod direct;
mod faults;
mod http_session;
mod in_memory;
mod oauth;
mod order;
mod resilience;
mod soak;
mod subscribe;
mod tasks;
mod transports;

use std::sync::{Arc, Mutex};

use switchboard_client::{WireTap, model::Direction};
use switchboard_config::{ServerEntry, ServerName, Transport};

pub fn name(s: &str) -> ServerName {
    ServerName::new(s).unwrap()
}

/// A Streamable HTTP server named `server` at `url`, with no configured headers.
pub fn http_entry(server: &str, url: &str) -> ServerEntry {
    ServerEntry::new(
        name(server),
        Transport::StreamableHttp {
            url: url.parse().unwrap(),
            headers: Default::default(),
        },
    )
}

/// A tap that records what it sees.
#[derive(Debug, Default)]
pub struct RecordingTap {
    pub lines: Mutex<Vec<(String, Direction, String)>>,
    pub garbage: Mutex<Vec<String>>,
    pub stderr: Mutex<Vec<String>>,
}

impl WireTap for RecordingTap {
    fn message(&self, server: &str, direction: Direction, json: &str) {
        self.lines
            .lock()
            .unwrap()
            .push((server.to_owned(), direction, json.to_owned()));
    }
    fn garbage(&self, _server: &str, line: &str) {
        self.garbage.lock().unwrap().push(line.to_owned());
    }
    fn stderr(&self, _server: &str, line: &str) {
        self.stderr.lock().unwrap().push(line.to_owned());
    }
}

pub fn tap() -> Arc<RecordingTap> {
    Arc::new(RecordingTap::default())
}
