//! Interop with real third-party peers, installed by `scripts/install-peers.sh`:
//! the official TypeScript "everything" server (legacy era) over stdio and Streamable HTTP,
//! PyPI `mcp-server-time` (modern era) over stdio, and a server written with the official
//! Python SDK (modern era) over Streamable HTTP and stdio.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use test_support::peers;

use crate::{Sandbox, stderr, stdout};

struct Peers {
    node: PathBuf,
    everything: PathBuf,
    time: PathBuf,
    python: PathBuf,
}

fn peers() -> Option<Peers> {
    Some(Peers {
        node: peers::require("node/node_modules/node/bin/node", "Node 22")?,
        everything: peers::require(
            "node/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
            "@modelcontextprotocol/server-everything",
        )?,
        time: peers::require("venv/bin/mcp-server-time", "mcp-server-time")?,
        python: peers::require("venv/bin/python", "the Python venv with mcp")?,
    })
}

fn python_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-support/peers/py_modern_server.py")
}

fn json(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

/// A background server process, killed when the test ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `command` and wait (bounded) until it accepts TCP connections on `port`.
fn start_http(mut command: std::process::Command, port: u16) -> Background {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Background(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server on port {port} did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn run(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
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

/// The acceptance scenario: a Claude Desktop config naming server-everything and
/// mcp-server-time; `tools` lists both, `call time/get_current_time` prints the real result,
/// and `servers` shows the right era for the legacy and the modern peer.
#[test]
fn claude_desktop_config_with_everything_and_time() {
    let Some(p) = peers() else { return };
    let sandbox = Sandbox::new();
    let config = sandbox.config(&format!(
        r#"{{"mcpServers": {{
            "everything": {{"command": {}, "args": [{}, "stdio"]}},
            "time": {{"command": {}, "args": ["--local-timezone", "UTC"]}}
        }}}}"#,
        json(&p.node),
        json(&p.everything),
        json(&p.time)
    ));
    let config = config.display().to_string();

    let tools = stdout(&run(&sandbox, &["--config", &config, "tools"]));
    assert!(tools.contains("everything/echo"), "{tools}");
    assert!(tools.contains("everything/get-sum"), "{tools}");
    assert!(tools.contains("time/get_current_time"), "{tools}");
    assert!(tools.contains("time/convert_time"), "{tools}");

    let result = stdout(&run(
        &sandbox,
        &[
            "--config",
            &config,
            "call",
            "time/get_current_time",
            "--arg",
            "timezone=Europe/Paris",
            "--json",
        ],
    ));
    let result: Value = serde_json::from_str(&result).unwrap();
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"]["timezone"], "Europe/Paris");
    let datetime = result["structuredContent"]["datetime"].as_str().unwrap();
    assert!(
        datetime.ends_with("+01:00") || datetime.ends_with("+02:00"),
        "{datetime}"
    );

    let echo = stdout(&run(
        &sandbox,
        &[
            "--config",
            &config,
            "call",
            "everything/echo",
            "--arg",
            "message=hi",
        ],
    ));
    assert_eq!(echo, "Echo: hi\n");

    let servers: Value = serde_json::from_str(&stdout(&run(
        &sandbox,
        &["--config", &config, "--json", "servers"],
    )))
    .unwrap();
    assert_eq!(servers[0]["name"], "everything");
    assert_eq!(servers[0]["era"], "legacy");
    assert_eq!(servers[0]["protocolVersion"], "2025-11-25");
    assert_eq!(servers[0]["serverInfo"]["name"], "mcp-servers/everything");
    assert_eq!(servers[1]["name"], "time");
    assert_eq!(servers[1]["era"], "modern");
    assert_eq!(servers[1]["protocolVersion"], "2026-07-28");
}

#[test]
fn time_server_reports_an_unknown_zone_as_a_tool_error() {
    let Some(p) = peers() else { return };
    let sandbox = Sandbox::new();
    let spec = format!("{} --local-timezone UTC", p.time.display());
    let output = sandbox
        .cmd()
        .args([
            "--stdio",
            &spec,
            "call",
            "get_current_time",
            "--arg",
            "timezone=Mars/Olympus",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[test]
fn everything_over_streamable_http() {
    let Some(p) = peers() else { return };
    let port = free_port();
    let mut command = std::process::Command::new(&p.node);
    command
        .arg(&p.everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string());
    let _server = start_http(command, port);
    let sandbox = Sandbox::new();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let echo = stdout(&run(
        &sandbox,
        &["--url", &url, "call", "echo", "--arg", "message=over http"],
    ));
    assert_eq!(echo, "Echo: over http\n");
    let sum = stdout(&run(
        &sandbox,
        &[
            "--url", &url, "call", "get-sum", "--arg", "a=2", "--arg", "b=3",
        ],
    ));
    assert!(sum.contains('5'), "{sum}");
    let servers: Value = serde_json::from_str(&stdout(&run(
        &sandbox,
        &["--url", &url, "--json", "servers"],
    )))
    .unwrap();
    assert_eq!(servers[0]["era"], "legacy");
    assert_eq!(servers[0]["transport"], "streamable-http");
    let resources = stdout(&run(&sandbox, &["--url", &url, "resources"]));
    assert!(resources.contains("demo://"), "{resources}");
}

#[test]
fn python_sdk_server_over_streamable_http_speaks_the_modern_revision() {
    let Some(p) = peers() else { return };
    let port = free_port();
    let mut command = std::process::Command::new(&p.python);
    command
        .arg(python_fixture())
        .arg("--http")
        .arg(port.to_string());
    let _server = start_http(command, port);
    let sandbox = Sandbox::new();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let servers: Value = serde_json::from_str(&stdout(&run(
        &sandbox,
        &["--url", &url, "--json", "servers"],
    )))
    .unwrap();
    assert_eq!(servers[0]["era"], "modern");
    assert_eq!(servers[0]["protocolVersion"], "2026-07-28");
    assert_eq!(servers[0]["serverInfo"]["name"], "py-modern-server");
    assert_eq!(
        stdout(&run(
            &sandbox,
            &[
                "--url", &url, "call", "add", "--arg", "a=20", "--arg", "b=22"
            ]
        )),
        "42\n"
    );
    assert_eq!(
        stdout(&run(&sandbox, &["--url", &url, "read", "fixture://hello"])),
        "hello from python\n"
    );
    let output = sandbox
        .cmd()
        .args(["--url", &url, "call", "fail"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("this tool always fails"),
        "{}",
        stdout(&output)
    );
    // Forcing the legacy era works against the same dual-era server.
    let servers: Value = serde_json::from_str(&stdout(&run(
        &sandbox,
        &["--url", &url, "--era", "legacy", "--json", "servers"],
    )))
    .unwrap();
    assert_eq!(servers[0]["era"], "legacy");
}

#[test]
fn python_sdk_server_over_stdio() {
    let Some(p) = peers() else { return };
    let sandbox = Sandbox::new();
    let spec = format!(
        "{} {} --stdio",
        p.python.display(),
        python_fixture().display()
    );
    assert_eq!(
        stdout(&run(
            &sandbox,
            &["--stdio", &spec, "call", "greet", "--arg", "name=Ada"]
        )),
        "Hello, Ada!\n"
    );
}
