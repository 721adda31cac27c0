//! Hosts built from a config: real child processes, one of which may fail to start.

use std::time::Duration;

use switchboard_client::ClientError;
use switchboard_config::{Config, parse_config};
use switchboard_host::{Host, HostError, HostOptions, ServerState};
use test_support::bin_path;

use crate::FIXTURE_TOOLS;

/// How long connecting to a handful of local fixture servers may take.
const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// How long [`Host::shutdown`] may take.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// Set in the environment of the fixture servers a test starts, to find them among processes.
const MARKER_VAR: &str = "SWITCHBOARD_HOST_TEST_MARKER";
const MISSING_COMMAND: &str = "switchboard-no-such-program";

fn fixture_command() -> String {
    serde_json::to_string(&bin_path("sb-fixture-server").display().to_string()).unwrap()
}

fn config(text: &str) -> Config {
    parse_config(text, None, &|_| None).unwrap()
}

async fn connect(config: &Config) -> Host {
    tokio::time::timeout(CONNECT_WAIT, Host::connect(config, HostOptions::default()))
        .await
        .expect("Host::connect finished in time")
}

#[tokio::test]
async fn a_server_that_cannot_start_leaves_the_others_working() {
    let config = config(&format!(
        r#"{{"mcpServers": {{
            "alpha": {{"command": {}}},
            "broken": {{"command": "{MISSING_COMMAND}"}}
        }}}}"#,
        fixture_command()
    ));

    let host = connect(&config).await;

    let states: Vec<(&str, &ServerState)> = host
        .servers()
        .map(|(name, state)| (name.as_str(), state))
        .collect();
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].0, "alpha");
    assert!(
        matches!(states[0].1, ServerState::Connected(_)),
        "{:?}",
        states[0].1
    );
    assert_eq!(states[1].0, "broken");
    match states[1].1 {
        ServerState::Failed(error @ ClientError::CommandNotFound { command, .. }) => {
            assert_eq!(command, MISSING_COMMAND);
            assert!(error.to_string().contains(MISSING_COMMAND), "{error}");
        }
        other => panic!("expected a CommandNotFound failure, got {other:?}"),
    }

    let (tools, errors) = host.tools(None).await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let mut listed: Vec<&str> = tools.iter().map(|t| t.qualified.as_str()).collect();
    listed.sort_unstable();
    let expected: Vec<String> = FIXTURE_TOOLS
        .iter()
        .map(|t| format!("alpha__{t}"))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        host.resolve_tool("add").await.unwrap().server.as_str(),
        "alpha"
    );

    let error = host.tools(Some("broken")).await.unwrap_err();
    match &error {
        HostError::ServerUnavailable { server, reason } => {
            assert_eq!(server.as_str(), "broken");
            assert!(reason.contains(MISSING_COMMAND), "{reason}");
        }
        other => panic!("expected ServerUnavailable, got {other:?}"),
    }

    tokio::time::timeout(SHUTDOWN_WAIT, host.shutdown())
        .await
        .unwrap();
}

/// The ids of live processes whose environment carries `marker`.
#[cfg(target_os = "linux")]
fn processes_marked(marker: &str) -> Vec<u32> {
    let needle = format!("{MARKER_VAR}={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            // Unreadable (another user's) and exited (zombie: empty environ) processes drop out.
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ
                .split(|byte| *byte == 0)
                .any(|variable| variable == needle.as_bytes())
                .then_some(pid)
        })
        .collect()
}

#[tokio::test]
async fn shutdown_is_bounded_and_ends_the_server_processes() {
    let marker = format!("shutdown-{}", std::process::id());
    let server = |name: &str| {
        format!(
            r#""{name}": {{"command": {}, "env": {{"{MARKER_VAR}": "{marker}"}}}}"#,
            fixture_command()
        )
    };
    let config = config(&format!(
        r#"{{"mcpServers": {{ {}, {} }}}}"#,
        server("alpha"),
        server("beta")
    ));
    let host = connect(&config).await;
    assert!(
        host.servers()
            .all(|(_, state)| matches!(state, ServerState::Connected(_))),
        "{host:?}"
    );
    #[cfg(target_os = "linux")]
    assert_eq!(
        processes_marked(&marker).len(),
        2,
        "both servers are running"
    );

    tokio::time::timeout(SHUTDOWN_WAIT, host.shutdown())
        .await
        .expect("shutdown finished in time");

    #[cfg(target_os = "linux")]
    crate::eventually("the server processes to exit", || async {
        processes_marked(&marker).is_empty().then_some(())
    })
    .await;
}
