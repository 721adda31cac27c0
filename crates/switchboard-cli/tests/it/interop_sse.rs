//! Interop over the legacy HTTP+SSE transport (2024-11-05) with the official TypeScript
//! "everything" server, started in its `sse` mode (installed by `scripts/install-peers.sh`):
//! directly by URL, and through the fallback from Streamable HTTP that a config entry without a
//! type goes through.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use test_support::peers;

use crate::{Sandbox, stderr, stdout};

/// How long server-everything may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often we check whether it listens yet.
const STARTUP_POLL: Duration = Duration::from_millis(100);

/// server-everything serving HTTP+SSE on a loopback port; killed when dropped.
struct EverythingSse {
    child: Child,
    port: u16,
}

impl EverythingSse {
    /// `None` (the test is skipped, or fails under `SWITCHBOARD_REQUIRE_PEERS=1`) when the
    /// peers are not installed.
    fn start() -> Option<Self> {
        let node = peers::require("node/node_modules/node/bin/node", "Node 22")?;
        let everything: PathBuf = peers::require(
            "node/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
            "@modelcontextprotocol/server-everything",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(node)
            .arg(everything)
            .arg("sse")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = EverythingSse { child, port };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server-everything (sse) did not listen on port {port} within {STARTUP_TIMEOUT:?}"
            );
            std::thread::sleep(STARTUP_POLL);
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sse", self.port)
    }
}

impl Drop for EverythingSse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn succeed(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let output = sandbox.cmd().args(args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}\nstderr: {}\nstdout: {}",
        stderr(&output),
        stdout(&output)
    );
    output
}

#[test]
fn everything_over_legacy_sse_by_url() {
    let Some(server) = EverythingSse::start() else {
        return;
    };
    let sandbox = Sandbox::new();
    let url = server.url();
    let echo = stdout(&succeed(
        &sandbox,
        &["--url", &url, "call", "echo", "--arg", "message=hi"],
    ));
    assert_eq!(echo, "Echo: hi\n");
    let sum = stdout(&succeed(
        &sandbox,
        &[
            "--url", &url, "call", "get-sum", "--arg", "a=2", "--arg", "b=3",
        ],
    ));
    assert!(sum.contains('5'), "{sum}");
    let servers: Value = serde_json::from_str(&stdout(&succeed(
        &sandbox,
        &["--url", &url, "--json", "servers"],
    )))
    .unwrap();
    assert_eq!(servers[0]["transport"], "sse");
    assert_eq!(servers[0]["era"], "legacy");
    assert_eq!(servers[0]["serverInfo"]["name"], "mcp-servers/everything");
}

#[test]
fn a_config_url_without_a_type_falls_back_from_streamable_http_to_sse() {
    let Some(server) = EverythingSse::start() else {
        return;
    };
    let sandbox = Sandbox::new();
    let url = serde_json::to_string(&server.url()).unwrap();
    let config = sandbox.config(&format!(
        r#"{{"mcpServers": {{"everything": {{"url": {url}}}}}}}"#
    ));
    let config = config.display().to_string();

    let output = succeed(&sandbox, &["--config", &config, "-v", "--json", "servers"]);
    let servers: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(servers[0]["name"], "everything");
    assert_eq!(servers[0]["transport"], "sse");
    assert_eq!(servers[0]["era"], "legacy");
    // `-v` shows that Streamable HTTP was tried first and refused.
    let log = stderr(&output);
    assert!(
        log.contains("falling back to the legacy HTTP+SSE transport"),
        "{log}"
    );
    assert!(log.contains("404"), "{log}");
    assert!(log.contains("server/discover"), "{log}");

    let echo = stdout(&succeed(
        &sandbox,
        &[
            "--config",
            &config,
            "call",
            "everything/echo",
            "--arg",
            "message=through the fallback",
        ],
    ));
    assert_eq!(echo, "Echo: through the fallback\n");
}
