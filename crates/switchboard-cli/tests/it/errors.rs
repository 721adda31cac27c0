//! Bad input: each case gets a precise message and the documented exit code, never a hang.

use crate::{Sandbox, fixture, stderr, stdout, two_fixtures};

fn expect(output: &std::process::Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {err}\nstdout: {}",
        stdout(output)
    );
    assert!(
        err.contains(needle),
        "expected {needle:?} in stderr:\n{err}"
    );
}

#[test]
fn a_malformed_config_names_file_line_and_column() {
    let sandbox = Sandbox::new();
    let config = sandbox.config("{\n  \"mcpServers\": {\n    \"time\": {\"command\": \"x\", \"args\": \"--flag\"}\n  }\n}\n");
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("tools")
        .output()
        .unwrap();
    let expected = format!("{}:3:38: server \"time\": field \"args\"", config.display());
    expect(&output, 2, &expected);
}

#[test]
fn a_config_syntax_error_is_located() {
    let sandbox = Sandbox::new();
    let config = sandbox.config("{\"mcpServers\": {\"a\": {\"command\": \"x\"}\n");
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("tools")
        .output()
        .unwrap();
    expect(&output, 2, &format!("{}:", config.display()));
}

#[test]
fn a_missing_config_file_that_was_named_is_an_error() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--config", "/nonexistent/mcp.json", "tools"])
        .output()
        .unwrap();
    expect(
        &output,
        2,
        "cannot read the config file /nonexistent/mcp.json",
    );
}

#[test]
fn no_servers_at_all_explains_how_to_configure() {
    let sandbox = Sandbox::new();
    let output = sandbox.cmd().arg("tools").output().unwrap();
    expect(&output, 2, "no servers are configured");
}

#[test]
fn a_missing_command_is_reported_and_other_servers_still_work() {
    let sandbox = Sandbox::new();
    let fx = serde_json::to_string(&fixture()).unwrap();
    let config = sandbox.config(&format!(
        r#"{{"mcpServers": {{"good": {{"command": {fx}}}, "bad": {{"command": "switchboard-no-such-program"}}}}}}"#
    ));
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("tools")
        .output()
        .unwrap();
    expect(
        &output,
        0,
        "server \"bad\": command \"switchboard-no-such-program\" was not found on PATH",
    );
    assert!(stdout(&output).contains("good/add"), "{}", stdout(&output));
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("servers")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stdout(&output).contains("bad: FAILED"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("good: connected"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_server_that_exits_during_initialize() {
    let sandbox = Sandbox::new();
    let spec = format!("{} --mode exit-during-init", fixture());
    let output = sandbox
        .cmd()
        .args(["--stdio", &spec, "tools"])
        .output()
        .unwrap();
    expect(&output, 3, "missing API key, refusing to start");
}

#[test]
fn a_server_that_crashes_mid_call() {
    let sandbox = Sandbox::new();
    let spec = format!("{} --crash-after 0", fixture());
    let output = sandbox
        .cmd()
        .args(["--stdio", &spec, "call", "echo", "--arg", "text=x"])
        .output()
        .unwrap();
    expect(
        &output,
        3,
        "the connection was lost during tools/call; the process exited (exit status: 101)",
    );
}

#[test]
fn a_server_that_writes_garbage_to_stdout() {
    let sandbox = Sandbox::new();
    let spec = format!("{} --mode garbage", fixture());
    let output = sandbox
        .cmd()
        .args(["--connect-timeout", "1.5", "--stdio", &spec, "tools"])
        .output()
        .unwrap();
    expect(
        &output,
        3,
        "that is not JSON-RPC (stdout is reserved for the protocol), the first: \"this is not json-rpc\"",
    );
}

#[test]
fn an_unknown_tool_suggests_close_names() {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["call", "alpha/ech"])
        .output()
        .unwrap();
    expect(
        &output,
        2,
        "no tool named \"alpha/ech\"; did you mean \"alpha/echo\"?",
    );
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["call", "add"])
        .output()
        .unwrap();
    expect(
        &output,
        2,
        "tool \"add\" exists on several servers (alpha/add, beta/add)",
    );
}

#[test]
fn arguments_that_fail_the_schema_name_each_field() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args([
            "--stdio",
            &fixture(),
            "call",
            "add",
            "--args",
            r#"{"a": "one"}"#,
        ])
        .output()
        .unwrap();
    expect(
        &output,
        2,
        "the arguments for sb-fixture-server/add do not match its input schema",
    );
    let err = stderr(&output);
    assert!(
        err.contains("/a: \"one\" is not of type \"integer\""),
        "{err}"
    );
    assert!(err.contains("\"b\" is a required property"), "{err}");
}

#[test]
fn typed_args_and_malformed_json_args() {
    let sandbox = Sandbox::new();
    let fx = fixture();
    let output = sandbox
        .cmd()
        .args([
            "--stdio", &fx, "call", "add", "--arg", "a=1", "--arg", "b=two",
        ])
        .output()
        .unwrap();
    expect(
        &output,
        2,
        "argument \"b\" must be an integer, but \"two\" is not",
    );
    let output = sandbox
        .cmd()
        .args(["--stdio", &fx, "call", "add", "--args", "{\"a\":"])
        .output()
        .unwrap();
    expect(&output, 2, "--args is not valid JSON");
    let output = sandbox
        .cmd()
        .args(["--stdio", &fx, "call", "add", "--args", "[1]"])
        .output()
        .unwrap();
    expect(&output, 2, "--args must be a JSON object");
    let output = sandbox
        .cmd()
        .args(["--stdio", &fx, "call", "add", "--arg", "novalue"])
        .output()
        .unwrap();
    expect(&output, 2, "argument \"novalue\" must look like key=value");
}

#[test]
fn an_http_server_that_answers_500() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept() else {
                return;
            };
            let mut buffer = [0u8; 65536];
            let _ = socket.read(&mut buffer);
            let _ = socket.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom");
        }
    });
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--connect-timeout", "5", "--url", &url, "tools"])
        .output()
        .unwrap();
    expect(&output, 3, "500");
    drop(server);
}

#[test]
fn an_http_server_that_never_answers_is_bounded() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let started = std::time::Instant::now();
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--connect-timeout", "1", "--url", &url, "tools"])
        .output()
        .unwrap();
    expect(&output, 3, "no answer to the MCP handshake within 1s");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(listener);
}

#[test]
fn usage_errors_exit_2() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--timeout", "0", "--stdio", "x", "tools"])
        .output()
        .unwrap();
    expect(&output, 2, "--timeout must be a positive number of seconds");
    let output = sandbox
        .cmd()
        .args(["--header", "A: b", "--stdio", "x", "tools"])
        .output()
        .unwrap();
    expect(&output, 2, "--header applies to --url servers");
    let output = sandbox.cmd().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}
