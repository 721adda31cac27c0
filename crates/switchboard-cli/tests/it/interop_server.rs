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
    serve_over_http(&["serve", "echo"])
}

/// `switchboard <serve args> --http 127.0.0.1:PORT` on a free port.
fn serve_over_http(serve: &[&str]) -> HttpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(switchboard())
        .args(serve)
        .args(["--http", &format!("127.0.0.1:{port}")])
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

/// The servers users run, driven by both official SDK clients, over stdio and HTTP.
#[test]
fn sdk_clients_use_the_expense_and_bookmark_servers_over_stdio_and_http() {
    let Some(python) = peers::require("venv/bin/python", "the Python venv with mcp") else {
        return;
    };
    let Some(node) = peers::require("node/node_modules/node/bin/node", "Node 22") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let me = switchboard();
    let cases = [
        (
            "expenses",
            "add_expense",
            r#"{"amount":"12.50","category":"food","description":"lunch"}"#,
            "USD 12.50",
        ),
        (
            "bookmarks",
            "add_bookmark",
            r#"{"url":"https://example.com/Docs","tags":["rust"]}"#,
            "example.com",
        ),
    ];
    for (name, tool, args, expected) in cases {
        let db = dir
            .path()
            .join(format!("{name}.sqlite3"))
            .display()
            .to_string();
        let http = serve_over_http(&["serve", name, "--db", &db]);
        let stdio: Vec<&str> = vec![&me, "serve", name, "--db", &db];
        for (client, program, script) in [
            ("python", &python, "py_client.py"),
            ("typescript", &node, "ts_client.mjs"),
        ] {
            let mut over_stdio = vec!["--call", tool, "--args", args, "--stdio"];
            over_stdio.extend(&stdio);
            let over_http = vec!["--call", tool, "--args", args, "--url", &http.url];
            for (transport, arguments) in [("stdio", over_stdio), ("http", over_http)] {
                let report = run_client(program, &peer_script(script), &arguments);
                assert!(
                    report["tools"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t == tool),
                    "{client}/{transport}/{name}: {report}"
                );
                let text = report["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default();
                assert!(
                    text.contains(expected),
                    "{client}/{transport}/{name}: {report}"
                );
                assert!(
                    report["result"].get("structuredContent").is_some(),
                    "{client}/{transport}/{name}: {report}"
                );
            }
        }
    }
}

/// Eight clients writing at once over HTTP to one SQLite file: WAL and the busy timeout
/// mean nobody sees "database is locked".
#[test]
fn eight_concurrent_writers_over_http_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("expenses.sqlite3").display().to_string();
    let http = serve_over_http(&["serve", "expenses", "--db", &db]);
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let url = http.url.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for call in 0..5 {
                    let output = std::process::Command::new(switchboard())
                        .env("XDG_DATA_HOME", std::env::temp_dir())
                        .args([
                            "--url",
                            &url,
                            "call",
                            "add_expense",
                            "--arg",
                            "amount=1.25",
                            "--arg",
                            "category=load",
                        ])
                        .args(["--arg", &format!("description=writer {writer} call {call}")])
                        .output()
                        .unwrap();
                    if !output.status.success() {
                        failures.push(String::from_utf8_lossy(&output.stderr).into_owned());
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let output = std::process::Command::new(switchboard())
        .env("XDG_DATA_HOME", std::env::temp_dir())
        .args([
            "--url",
            &http.url,
            "--json",
            "call",
            "get_summary",
            "--arg",
            "period=year",
        ])
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["structuredContent"]["count"], 40, "{summary}");
}
