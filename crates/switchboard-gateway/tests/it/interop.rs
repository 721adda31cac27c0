//! The official SDK clients use the gateway over Streamable HTTP and call tools of a stdio
//! upstream and of an HTTP upstream: the Python SDK in both eras, the TypeScript SDK v1
//! (legacy only).

use std::path::{Path, PathBuf};

use serde_json::Value;
use test_support::peers;

use crate::{http_echo_upstream, start, switchboard_upstream};

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-support/peers")
        .join(name)
}

/// Run a client script and parse the one JSON line it prints.
async fn run_client(program: &Path, script: &Path, args: &[&str]) -> Value {
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(program)
            .arg(script)
            .args(args)
            .env("SWITCHBOARD_PEERS_DIR", peers::dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the client finishes within a minute")
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

fn text_of(report: &Value) -> &str {
    report["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text result: {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_call_stdio_and_http_upstreams_through_the_gateway() {
    let Some(python) = peers::require("venv/bin/python", "the Python venv with mcp") else {
        return;
    };
    let Some(node) = peers::require("node/node_modules/node/bin/node", "Node 22") else {
        return;
    };
    if peers::require(
        "node/node_modules/@modelcontextprotocol/sdk/package.json",
        "the TypeScript SDK",
    )
    .is_none()
    {
        return;
    }
    let web = http_echo_upstream().await;
    let config = format!(
        "{}\n[upstreams.web]\nurl = \"{}\"\n",
        switchboard_upstream("local", &["serve", "echo"]),
        web.url
    );
    let running = start(&config).await;
    let url = running.url();
    let clients: [(&str, &Path, &str, &[&str]); 3] = [
        ("python auto", &python, "py_client.py", &["--mode", "auto"]),
        (
            "python legacy",
            &python,
            "py_client.py",
            &["--mode", "legacy"],
        ),
        ("typescript", &node, "ts_client.mjs", &[]),
    ];
    for (label, program, script, mode) in clients {
        for tool in ["local__echo", "web__echo"] {
            let text = format!("{label} via {tool}");
            let arguments = serde_json::json!({ "text": text }).to_string();
            let mut args: Vec<&str> = mode.to_vec();
            args.extend(["--call", tool, "--args", &arguments, "--url", &url]);
            let report = run_client(program, &peer_script(script), &args).await;
            let tools: Vec<&str> = report["tools"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                tools.contains(&"local__echo") && tools.contains(&"web__echo"),
                "{label}: {tools:?}"
            );
            assert_eq!(text_of(&report), text, "{label} {tool}: {report}");
            assert_eq!(
                report["serverInfo"]["name"], "switchboard-gateway",
                "{label}: {report}"
            );
        }
    }
}
