//! The tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`) against the official
//! TypeScript tasks client: `@modelcontextprotocol/ext-tasks` drives `conformance-server` over
//! Streamable HTTP at 2026-07-28 (test-support/peers/ts_tasks_client.mjs).

#![allow(clippy::unwrap_used)]

use std::{
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use test_support::peers;

/// `conformance-server` on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_conformance-server"))
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("conformance-server exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "conformance-server did not listen on {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Runs the script with a time limit and parses the one JSON line it prints.
fn run_tasks_client(node: &Path, url: &str) -> Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-support/peers/ts_tasks_client.mjs");
    let mut child = Command::new(node)
        .arg(&script)
        .arg(url)
        .env("SWITCHBOARD_PEERS_DIR", peers::dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The script bounds itself at 50 s; this is the backstop if node itself hangs.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed ({}): {}\nstdout: {stdout}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn completed(kind: &str, text: &str, is_error: bool) -> Value {
    json!({"kind": kind, "status": "completed", "text": text, "isError": is_error, "resultType": "complete"})
}

fn elicitation(input_id: &str, message: &str) -> Value {
    json!({"kind": "elicitation", "inputId": input_id, "delivery": "task-update", "message": message})
}

#[test]
fn typescript_ext_tasks_client_drives_the_task_tools() {
    let Some(node) = peers::require("node/node_modules/node/bin/node", "Node 22") else {
        return;
    };
    let Some(_) = peers::require(
        "node/node_modules/@modelcontextprotocol/ext-tasks/package.json",
        "@modelcontextprotocol/ext-tasks",
    ) else {
        return;
    };
    let server = start_server();
    let mut report = run_tasks_client(&node, &server.url);
    drop(server);

    assert_eq!(report["protocolVersion"], "2026-07-28", "{report}");
    assert_eq!(report["era"], "modern", "{report}");
    assert_eq!(
        report["taskCapabilities"],
        json!({
            "inventory": "known-handles",
            "execution": true,
            "cancellation": true,
            "inputResponses": true,
            "requestedRetention": false,
        }),
        "{report}"
    );
    // The task traffic went over ext-tasks' task wire (tasks/update, not a request retry).
    assert_eq!(
        report["rawMethods"],
        json!(["tasks/cancel", "tasks/get", "tasks/update", "tools/call"]),
        "{report}"
    );
    assert_eq!(report.get("backgroundErrors"), None, "{report}");
    assert_eq!(report.get("timedOut"), None, "{report}");

    // Both questions of multi_input arrive together; their order carries no meaning.
    if let Some(inputs) = report["cases"]["multi_input"]["inputs"].as_array_mut() {
        inputs.sort_by_key(|input| input["inputId"].to_string());
    }
    let cases = &report["cases"];
    let expected = [
        ("greet", completed("immediate", "Hello, Ann!", false)),
        (
            "slow_compute",
            completed("task", "Computed quick in 0.3 s", false),
        ),
        ("confirm_delete", {
            let mut case = completed("task", "Deleted x.txt", false);
            case["inputs"] = json!([elicitation("confirm", "Delete x.txt?")]);
            case
        }),
        ("multi_input", {
            let mut case = completed("task", "Got Ann and Bo", false);
            case["inputs"] = json!([
                elicitation("first", "First name?"),
                elicitation("second", "Second name?"),
            ]);
            case
        }),
        (
            "failing_job",
            completed(
                "task",
                "the job failed: the input data is inconsistent",
                true,
            ),
        ),
        (
            "protocol_error_job",
            json!({
                "kind": "task",
                "status": "failed",
                "code": -32603,
                "message": "the tool failed unexpectedly (it panicked)",
            }),
        ),
        (
            "cancel",
            json!({"kind": "task", "statusBeforeCancel": "working", "status": "cancelled"}),
        ),
    ];
    for (name, want) in &expected {
        assert_eq!(&cases[name], want, "case {name}; whole report: {report}");
    }
    assert_eq!(
        cases.as_object().map(|cases| cases.len()),
        Some(expected.len()),
        "{report}"
    );
}
