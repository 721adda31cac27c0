//! Our servers driven by the official SDK clients: the Python SDK (both eras) and the
//! TypeScript SDK v1 (legacy), over stdio.

use std::path::{Path, PathBuf};

use serde_json::Value;
use test_support::peers;

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-support/peers")
        .join(name)
}

fn switchboard() -> String {
    assert_cmd::cargo::cargo_bin("switchboard")
        .display()
        .to_string()
}

/// Run a client script and parse the one JSON line it prints.
fn run_client(program: &Path, script: &Path, args: &[&str]) -> Value {
    let output = std::process::Command::new(program)
        .arg(script)
        .args(args)
        .env("SWITCHBOARD_PEERS_DIR", peers::dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed: {}\nstdout: {stdout}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn python_sdk_client_calls_the_echo_server_in_both_eras() {
    let Some(python) = peers::require("venv/bin/python", "the Python venv with mcp") else {
        return;
    };
    let script = peer_script("py_client.py");
    let me = switchboard();
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let report = run_client(
            &python,
            &script,
            &[
                "--mode",
                mode,
                "--call",
                "echo",
                "--args",
                r#"{"text":"from python"}"#,
                "--stdio",
                &me,
                "serve",
                "echo",
            ],
        );
        assert_eq!(report["protocolVersion"], version, "{report}");
        assert_eq!(report["serverInfo"]["name"], "switchboard-echo");
        assert_eq!(report["tools"], serde_json::json!(["echo"]));
        assert_eq!(report["result"]["content"][0]["text"], "from python");
    }
    let report = run_client(
        &python,
        &script,
        &[
            "--call",
            "echo",
            "--args",
            r#"{"text":5}"#,
            "--stdio",
            &me,
            "serve",
            "echo",
        ],
    );
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("/text: 5 is not of type \"string\""),
        "{error}"
    );
}

#[test]
fn typescript_sdk_client_calls_the_echo_server() {
    let Some(node) = peers::require("node/node_modules/node/bin/node", "Node 22") else {
        return;
    };
    peers::require(
        "node/node_modules/@modelcontextprotocol/sdk/package.json",
        "@modelcontextprotocol/sdk",
    )
    .expect("the TS SDK is installed with Node 22");
    let script = peer_script("ts_client.mjs");
    let me = switchboard();
    let report = run_client(
        &node,
        &script,
        &[
            "--call",
            "echo",
            "--args",
            r#"{"text":"from ts"}"#,
            "--stdio",
            &me,
            "serve",
            "echo",
        ],
    );
    assert_eq!(report["serverInfo"]["name"], "switchboard-echo");
    assert_eq!(report["result"]["content"][0]["text"], "from ts");
    let report = run_client(
        &node,
        &script,
        &["--call", "nope", "--stdio", &me, "serve", "echo"],
    );
    assert_eq!(
        report["error"],
        "McpError: MCP error -32602: unknown tool: nope"
    );
}

/// `switchboard serve echo --http` on a free port, stopped when dropped.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_echo_over_http() -> HttpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(switchboard())
        .args(["serve", "echo", "--http", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "serve --http did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    HttpServer {
        child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    }
}

#[test]
fn sdk_clients_call_the_echo_server_over_streamable_http() {
    let Some(python) = peers::require("venv/bin/python", "the Python venv with mcp") else {
        return;
    };
    let Some(node) = peers::require("node/node_modules/node/bin/node", "Node 22") else {
        return;
    };
    let server = serve_echo_over_http();
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let report = run_client(
            &python,
            &peer_script("py_client.py"),
            &[
                "--mode",
                mode,
                "--call",
                "echo",
                "--args",
                r#"{"text":"py over http"}"#,
                "--url",
                &server.url,
            ],
        );
        assert_eq!(report["protocolVersion"], version, "{report}");
        assert_eq!(report["result"]["content"][0]["text"], "py over http");
    }
    let report = run_client(
        &node,
        &peer_script("ts_client.mjs"),
        &[
            "--call",
            "echo",
            "--args",
            r#"{"text":"ts over http"}"#,
            "--url",
            &server.url,
        ],
    );
    assert_eq!(report["serverInfo"]["name"], "switchboard-echo");
    assert_eq!(report["result"]["content"][0]["text"], "ts over http");
}
