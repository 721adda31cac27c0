//! The `switchboard` binary, end to end: real processes, real output, real exit codes.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod agent;
mod bookmarks;
mod commands;
mod discover;
mod errors;
mod expenses;
mod gateway;
mod interop;
mod interop_server;
mod interop_sse;
mod serve;
mod sign_in;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A sandbox: HOME and XDG dirs point into a temp dir, so the user's real config and logs are
/// never touched, and no SWITCHBOARD_* variable from the environment leaks in.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::from_std(self.std_cmd());
        cmd.timeout(std::time::Duration::from_secs(60));
        cmd
    }

    /// `switchboard` in this sandbox, as a plain process (for tests that talk to it while it
    /// runs).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("switchboard"));
        for (key, _) in std::env::vars() {
            if key.starts_with("SWITCHBOARD_")
                && key != "SWITCHBOARD_PEERS_DIR"
                && key != "SWITCHBOARD_REQUIRE_PEERS"
            {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("NO_COLOR", "1");
        cmd
    }

    /// Write a config file and return its path.
    pub fn config(&self, json: &str) -> PathBuf {
        let path = self.path().join("mcp.json");
        std::fs::write(&path, json).unwrap();
        path
    }
}

pub fn fixture() -> String {
    test_support::bin_path("sb-fixture-server")
        .display()
        .to_string()
}

/// A Claude Desktop config with two copies of the fixture server.
pub fn two_fixtures(sandbox: &Sandbox) -> PathBuf {
    let fixture = serde_json::to_string(&fixture()).unwrap();
    sandbox.config(&format!(
        r#"{{"mcpServers": {{
            "alpha": {{"command": {fixture}}},
            "beta": {{"command": {fixture}, "args": ["--legacy-only"]}}
        }}}}"#
    ))
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
