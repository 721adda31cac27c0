//! `switchboard gateway`: init, config errors, the HTTP front with a graceful stop, and the
//! stdio front used by our own host.

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use crate::{Sandbox, fixture};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A gateway.toml with the fixture as upstream `fx`.
fn fixture_gateway(sandbox: &Sandbox, listen: &str) -> std::path::PathBuf {
    let path = sandbox.path().join("gateway.toml");
    let text = format!(
        "[listen]\naddress = \"{listen}\"\n\n[upstreams.fx]\ncommand = {}\n",
        serde_json::to_string(&fixture()).unwrap()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `GET path` over a fresh connection: the status line and the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn init_writes_an_example_that_the_gateway_accepts_and_does_not_overwrite() {
    let sandbox = Sandbox::new();
    let path = sandbox.path().join("gateway.toml");
    let output = sandbox
        .cmd()
        .args(["gateway", "init"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[upstreams.expenses]") && text.contains("[upstreams.bookmarks]"));
    assert!(text.contains("address = \"127.0.0.1:8787\""));
    let again = sandbox
        .cmd()
        .args(["gateway", "init"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
}

#[test]
fn config_errors_name_the_file_and_key_and_exit_2() {
    let sandbox = Sandbox::new();
    let path = sandbox.path().join("gateway.toml");
    std::fs::write(
        &path,
        "[limits]\nmax_json_depth = 0\n[upstreams.a]\ncommand = \"x\"\n",
    )
    .unwrap();
    let output = sandbox
        .cmd()
        .args(["gateway", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("{}: limits.max_json_depth", path.display())),
        "{message}"
    );
    let missing = sandbox.cmd().arg("gateway").output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--config gateway.toml"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn an_open_gateway_on_a_public_address_or_a_missing_secret_refuses_to_start() {
    let sandbox = Sandbox::new();
    // Without [security], a non-loopback address is refused before any upstream starts.
    let config = fixture_gateway(&sandbox, "0.0.0.0:0");
    let output = sandbox
        .cmd()
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("0.0.0.0:0 is not a loopback address")
            && message.contains("allow_unauthenticated"),
        "{message}"
    );
    // [security] whose JWT secret variable is not set: refused, naming the variable.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("address = \"0.0.0.0:0\"", "address = \"127.0.0.1:0\"")
        + "[security.jwt]\nissuer = \"i\"\naudience = [\"a\"]\nhs256_secret_env = \"SB_TEST_UNSET_SECRET\"\n";
    std::fs::write(&config, text).unwrap();
    let output = sandbox
        .cmd()
        .args(["gateway", "--config"])
        .arg(&config)
        .env_remove("SB_TEST_UNSET_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("security.jwt.hs256_secret_env")
            && message.contains("SB_TEST_UNSET_SECRET is not set"),
        "{message}"
    );
}

#[test]
fn the_http_front_serves_and_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = fixture_gateway(&sandbox, &format!("127.0.0.1:{port}"));
    let mut child = std::process::Command::new(test_support::bin_path("switchboard"))
        .args(["gateway", "--config"])
        .arg(&config)
        .env("HOME", sandbox.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        if let Some(answer) = http_get(port, "/readyz") {
            break answer;
        }
        assert!(Instant::now() < deadline, "the gateway never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains(r#""name":"fx""#), "{ready}");
    let missing = http_get(port, "/nope").unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert_eq!(exit.code(), Some(0), "{logs}");
    // Logs are JSON lines, and the request carried an id.
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "not JSON: {first}"
    );
    // A request that went wrong has its line, with its request id; one that succeeded is
    // logged only at debug level (calls have lines of their own).
    let refused = logs
        .lines()
        .find(|line| line.contains("request refused or failed"))
        .unwrap_or_else(|| panic!("no line for the 404: {logs}"));
    let refused: serde_json::Value = serde_json::from_str(refused).unwrap();
    assert_eq!(refused["fields"]["status"], 404, "{refused}");
    assert!(
        refused["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{refused}"
    );
    assert!(!logs.contains("request answered"), "{logs}");
}

#[test]
fn the_stdio_front_is_one_server_for_a_host() {
    let sandbox = Sandbox::new();
    let config = fixture_gateway(&sandbox, "127.0.0.1:0");
    let gateway = format!(
        "{} gateway --front stdio --config {}",
        test_support::bin_path("switchboard").display(),
        config.display()
    );
    let output = sandbox
        .cmd()
        .args([
            "--stdio",
            &gateway,
            "call",
            "fx__echo",
            "--arg",
            "text=through the gateway",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "through the gateway"
    );
}

#[test]
fn hash_key_prints_the_sha256_of_the_key_on_stdin() {
    let sandbox = crate::Sandbox::new();
    let output = sandbox
        .cmd()
        .args(["gateway", "hash-key"])
        .write_stdin("secret-key-1\n")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", crate::stderr(&output));
    assert_eq!(
        crate::stdout(&output).trim(),
        "a6c1eaef9d5f23f4e13d9b574cbbe07ae877227d92be87d077005dc6776bcdcc"
    );
    // No key on stdin is a usage error, not an empty hash.
    let output = sandbox
        .cmd()
        .args(["gateway", "hash-key"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(crate::stderr(&output).contains("no key on stdin"));
}

#[test]
fn revoke_needs_redis_and_a_sane_duration() {
    let sandbox = Sandbox::new();
    let config = fixture_gateway(&sandbox, "127.0.0.1:0");
    let revoke = |args: &[&str], redis: Option<&str>| {
        let mut cmd = sandbox.cmd();
        cmd.arg("--config")
            .arg(&config)
            .args(["gateway", "revoke"])
            .args(args);
        match redis {
            Some(url) => cmd.env("REDIS_URL", url),
            None => cmd.env_remove("REDIS_URL"),
        };
        cmd.output().unwrap()
    };
    let output = revoke(&["stolen-1"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("security.jwt.revoked"),
        "{}",
        stderr(&output)
    );
    let output = revoke(
        &["stolen-1", "--for", "forever"],
        Some("redis://127.0.0.1:1"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--for \"forever\""),
        "{}",
        stderr(&output)
    );

    let Ok(url) = std::env::var("SWITCHBOARD_TEST_REDIS_URL") else {
        eprintln!("SKIPPED: SWITCHBOARD_TEST_REDIS_URL is not set");
        return;
    };
    let jti = format!("cli-revoke-{}", std::process::id());
    let output = revoke(&[&jti, "--for", "1m"], Some(&url));
    assert!(output.status.success(), "{}", stderr(&output));
    let revoked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use switchboard_policy::revocation::{RedisRevocations, Revocations};
            let list = RedisRevocations::connect(
                &url,
                switchboard_gateway::security::REDIS_REVOCATION_PREFIX,
            )
            .await
            .unwrap();
            list.is_revoked(&jti).await.unwrap()
        });
    assert!(revoked, "every replica now refuses {jti}");
}
