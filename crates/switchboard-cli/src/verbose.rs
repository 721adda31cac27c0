//! `--verbose`: every JSON-RPC message and every line of server stderr, on stderr.

use std::{io::Write, time::Instant};

use switchboard_client::{WireTap, model::Direction};

#[derive(Debug)]
pub struct StderrTap {
    start: Instant,
}

impl StderrTap {
    pub fn new() -> Self {
        StderrTap {
            start: Instant::now(),
        }
    }

    fn line(&self, server: &str, marker: &str, text: &str) {
        let elapsed = self.start.elapsed().as_secs_f64();
        // One write per line so that lines from concurrent servers do not interleave.
        let line = format!("{elapsed:>8.3}s {server} {marker} {text}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

impl WireTap for StderrTap {
    fn message(&self, server: &str, direction: Direction, json: &str) {
        let marker = match direction {
            Direction::Outgoing => "→",
            Direction::Incoming => "←",
        };
        self.line(server, marker, json);
    }

    fn garbage(&self, server: &str, line: &str) {
        self.line(server, "✗ not JSON-RPC, skipped:", line);
    }

    fn stderr(&self, server: &str, line: &str) {
        self.line(server, "stderr|", line);
    }
}
