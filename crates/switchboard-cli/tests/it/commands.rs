//! What each command prints, as snapshots, in human and --json form.

use insta::assert_snapshot;
use serde_json::Value;

use crate::{Sandbox, fixture, stderr, stdout, two_fixtures};

#[test]
fn tools_lists_every_server_human() {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("tools")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_snapshot!(stdout(&output));
}

#[test]
fn tools_json_has_qualified_names_and_schemas() {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let output = sandbox
        .cmd()
        .args(["--json", "--config"])
        .arg(&config)
        .args(["tools", "beta"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let tools: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let add = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "add")
        .unwrap();
    assert_eq!(add["server"], "beta");
    assert_eq!(add["qualifiedName"], "beta__add");
    assert_eq!(
        add["inputSchema"]["required"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(add["annotations"]["readOnlyHint"], true);
}

#[test]
fn servers_shows_the_era_of_each_server() {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("servers")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    insta::with_settings!({filters => vec![(r"latency \d+(\.\d+)? ms", "latency [ms]")]}, {
        assert_snapshot!(stdout(&output));
    });
    let output = sandbox
        .cmd()
        .args(["--json", "--config"])
        .arg(&config)
        .arg("servers")
        .output()
        .unwrap();
    let servers: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(servers[0]["era"], "modern");
    assert_eq!(servers[0]["protocolVersion"], "2026-07-28");
    assert_eq!(servers[1]["era"], "legacy");
    assert_eq!(servers[1]["protocolVersion"], "2025-11-25");
    assert_eq!(servers[1]["tools"], 6);
    for server in servers.as_array().unwrap() {
        assert_eq!(server["health"], "healthy", "{server}");
        assert_eq!(server["breaker"], "closed", "{server}");
        assert!(server["latencyMs"].as_f64().is_some(), "{server}");
    }
}

#[test]
fn call_prints_text_and_structured_content() {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["call", "alpha/add", "--arg", "a=2", "--arg", "b=40"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_snapshot!(stdout(&output));
}

#[test]
fn call_json_prints_the_exact_result() {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let output = sandbox
        .cmd()
        .args(["--json", "--config"])
        .arg(&config)
        .args(["call", "beta__add", "--args", r#"{"a": 1, "b": 2}"#])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_snapshot!(stdout(&output));
}

#[test]
fn call_reads_arguments_from_stdin() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--stdio", &fixture(), "call", "echo", "--args", "-"])
        .write_stdin(r#"{"text": "from stdin"}"#)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "from stdin\n");
}

#[test]
fn a_tool_error_exits_1_and_prints_the_tools_words() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--stdio", &fixture(), "call", "fail"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "this tool always fails\n");
    assert!(
        stderr(&output).contains("sb-fixture-server/fail reported an error"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn images_are_summarised_or_saved() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["--stdio", &fixture(), "call", "pixel"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        "one pixel\n[image image/png, 70 bytes; use --save DIR to write it to a file]\n"
    );
    let out = sandbox.path().join("saved");
    let output = sandbox
        .cmd()
        .args(["--stdio", &fixture(), "call", "pixel", "--save"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let png = std::fs::read(out.join("image-2.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn resources_read_prompts_and_prompt() {
    let sandbox = Sandbox::new();
    let fx = fixture();
    let run = |args: &[&str]| {
        let output = sandbox
            .cmd()
            .args(["--stdio", &fx])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    };
    assert_snapshot!("resources", run(&["resources"]));
    assert_eq!(
        run(&["read", "fixture://greeting"]),
        "Hello from the fixture\n"
    );
    assert_eq!(run(&["read", "fixture://items/5"]), "{\"id\":\"5\"}\n");
    assert_snapshot!("prompts", run(&["prompts"]));
    assert_snapshot!("prompt", run(&["prompt", "greet", "--arg", "name=Ada"]));
}

#[test]
fn progress_and_verbose_go_to_stderr_not_stdout() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .cmd()
        .args([
            "-v",
            "--stdio",
            &fixture(),
            "call",
            "slow",
            "--arg",
            "ms=40",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "done after 40 ms\n");
    let err = stderr(&output);
    assert!(
        err.contains(
            "sb-fixture-server → {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"server/discover\""
        ),
        "{err}"
    );
    assert!(err.contains("sb-fixture-server ← "), "{err}");
    assert!(err.contains("notifications/progress"), "{err}");
}

#[test]
fn a_broken_pipe_is_not_an_error() {
    for args in [
        &["tools"][..],
        &["--json", "tools"][..],
        &["call", "alpha/add", "--arg", "a=1", "--arg", "b=2"][..],
    ] {
        a_closed_stdout_is_fine(args);
    }
}

fn a_closed_stdout_is_fine(args: &[&str]) {
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("switchboard"))
        .env("HOME", sandbox.path())
        .env("XDG_CONFIG_HOME", sandbox.path())
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end of stdout at once, like `| head -0`.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("Broken pipe"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn help_teaches_by_example() {
    let sandbox = Sandbox::new();
    let output = sandbox.cmd().arg("--help").output().unwrap();
    let text = stdout(&output);
    assert!(
        text.contains("switchboard call time/get_current_time --arg timezone=Europe/Paris"),
        "{text}"
    );
    assert!(text.contains("Exit codes:"), "{text}");
    let output = sandbox.cmd().args(["call", "--help"]).output().unwrap();
    assert!(stdout(&output).contains("--args -"), "{}", stdout(&output));
}

#[test]
fn the_era_of_a_server_is_remembered_between_runs() {
    let sandbox = Sandbox::new();
    let spec = format!("{} --legacy-only", fixture());
    let run = || {
        let output = sandbox
            .cmd()
            .args(["-v", "--stdio", &spec, "tools"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stderr(&output)
            .lines()
            .find(|line| line.contains(" → "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    // First run: probe with server/discover, which a legacy-only server refuses.
    assert!(run().contains("\"method\":\"server/discover\""));
    let memory =
        std::fs::read_to_string(sandbox.path().join("data/switchboard/eras.json")).unwrap();
    assert!(memory.contains("\"era\": \"legacy\""), "{memory}");
    assert!(
        !memory.contains("--legacy-only"),
        "the file holds a fingerprint, not the command: {memory}"
    );
    // Second run: straight to initialize.
    assert!(run().contains("\"method\":\"initialize\""));
}

/// PIDs of processes whose environment holds `marker` (Linux /proc).
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn ctrl_c_interrupts_a_call_and_stops_the_server() {
    let sandbox = Sandbox::new();
    let marker = format!("SB_TEST_MARKER={}", std::process::id());
    let (key, value) = marker.split_once('=').unwrap();
    let fx = serde_json::to_string(&fixture()).unwrap();
    let config = sandbox.config(&format!(
        r#"{{"mcpServers": {{"slow": {{"command": {fx}, "env": {{"{key}": "{value}"}}}}}}}}"#
    ));
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("switchboard"))
        .env("HOME", sandbox.path())
        .env("XDG_DATA_HOME", sandbox.path())
        .arg("--config")
        .arg(&config)
        .args([
            "call",
            "slow/slow",
            "--arg",
            "ms=30000",
            "--arg",
            "steps=60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes_with(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Let the call get under way, then press Ctrl-C.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted"),
        "{}",
        stderr(&output)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !processes_with(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server outlived the interrupted CLI"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Regression: a pipe closed in the middle of a JSON document (`| head -3`) failed with
/// "Broken pipe", because serde_json's write error hid the I/O kind.
#[test]
fn a_pipe_closed_in_the_middle_of_json_output_is_not_an_error() {
    use std::io::Read;
    let sandbox = Sandbox::new();
    let config = two_fixtures(&sandbox);
    // Larger than any pipe buffer, so the writer is still writing when we stop reading.
    let text = "x".repeat(1 << 20);
    let args = serde_json::json!({ "text": text }).to_string();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("switchboard"))
        .env("HOME", sandbox.path())
        .env("XDG_CONFIG_HOME", sandbox.path())
        .env("XDG_DATA_HOME", sandbox.path())
        .arg("--config")
        .arg(&config)
        .args(["--json", "call", "alpha/echo", "--args", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(args.as_bytes()).unwrap();
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("Broken pipe"),
        "{}",
        stderr(&output)
    );
}
