//! Every upstream's tools, resources, templates and prompts through one endpoint, in both eras.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard_client::{
    CallOptions, ConnectOptions, Connection, EraPreference,
    model::{Content, Era, ServerEvent},
};
use switchboard_config::ServerName;
use switchboard_gateway::{Gateway, GatewayConfig};

use crate::{TIMEOUT, fixture_upstream, http_echo_upstream, start, switchboard_upstream};

fn args(value: Value) -> Option<Map<String, Value>> {
    value.as_object().cloned()
}

fn text(content: &[Content]) -> String {
    match content.first() {
        Some(Content::Text { text }) => text.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn clients_of_both_eras_reach_stdio_and_http_upstreams() {
    let web = http_echo_upstream().await;
    let config = format!(
        "{}\n{}\n[upstreams.web]\nurl = \"{}\"\n",
        fixture_upstream("fx", &[]),
        switchboard_upstream("echo", &["serve", "echo"]),
        web.url
    );
    let running = start(&config).await;
    for (era, expected) in [
        (EraPreference::Modern, Era::Modern),
        (EraPreference::Legacy, Era::Legacy),
    ] {
        let client = running.connect(era).await;
        assert_eq!(client.description().era, expected);
        assert!(client.description().capabilities.tools_list_changed);

        let tools = client.list_tools(TIMEOUT).await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        for name in ["fx__echo", "fx__add", "echo__echo", "web__echo"] {
            assert!(
                names.contains(&name),
                "{era:?}: {name} missing from {names:?}"
            );
        }
        // Schemas pass through unchanged.
        let add = tools.iter().find(|t| t.name == "fx__add").unwrap();
        assert_eq!(add.input_schema["required"], json!(["a", "b"]));

        for (tool, arguments, expected) in [
            ("fx__echo", json!({"text": "via gateway"}), "via gateway"),
            ("echo__echo", json!({"text": "stdio kit"}), "stdio kit"),
            ("web__echo", json!({"text": "over http"}), "over http"),
        ] {
            let result = client
                .call_tool(tool, args(arguments), CallOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{era:?} {tool}: {e}"));
            assert!(!result.is_error, "{era:?} {tool}");
            assert!(
                text(&result.content).contains(expected),
                "{era:?} {tool}: {:?}",
                result.content
            );
        }
        let sum = client
            .call_tool(
                "fx__add",
                args(json!({"a": 2, "b": 40})),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(text(&sum.content), "42");

        // Names other than the exact qualified one are refused, like unknown ones.
        for wrong in ["echo", "fx/echo", "fx__nope"] {
            let error = client
                .call_tool(wrong, args(json!({"text": "x"})), CallOptions::default())
                .await
                .unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("unknown tool: {wrong}")),
                "{era:?} {wrong}: {error}"
            );
        }
        // Arguments are checked against the upstream's schema before they leave.
        let error = client
            .call_tool("fx__add", args(json!({"a": "two"})), CallOptions::default())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("-32602"), "{era:?}: {error}");

        // Resources and templates, under gateway:// URIs that map back.
        let resources = client.list_resources(TIMEOUT).await.unwrap();
        assert!(
            resources
                .iter()
                .any(|r| r.uri == "gateway://fx/fixture://greeting"),
            "{resources:?}"
        );
        let templates = client.list_resource_templates(TIMEOUT).await.unwrap();
        assert!(
            templates
                .iter()
                .any(|t| t.uri_template == "gateway://fx/fixture://items/{id}"),
            "{templates:?}"
        );
        let read = client
            .read_resource("gateway://fx/fixture://greeting", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(read.contents[0].uri, "gateway://fx/fixture://greeting");
        assert_eq!(
            read.contents[0].text.as_deref(),
            Some(test_support::fixture::GREETING)
        );
        let item = client
            .read_resource("gateway://fx/fixture://items/7", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(item.contents[0].text.as_deref(), Some(r#"{"id":"7"}"#));
        let error = client
            .read_resource("fixture://greeting", TIMEOUT)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("gateway://"), "{error}");

        // Prompts, qualified like tools.
        let prompts = client.list_prompts(TIMEOUT).await.unwrap();
        assert!(prompts.iter().any(|p| p.name == "fx__greet"), "{prompts:?}");
        let mut prompt_args = Map::new();
        prompt_args.insert("name".into(), json!("Ada"));
        let prompt = client
            .get_prompt("fx__greet", prompt_args, TIMEOUT)
            .await
            .unwrap();
        assert!(!prompt.messages.is_empty());
        client.close().await;
    }
}

#[tokio::test]
async fn our_expense_server_works_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("expenses.sqlite3");
    let config = switchboard_upstream(
        "expenses",
        &["serve", "expenses", "--db", &db.display().to_string()],
    );
    let running = start(&config).await;
    let client = running.connect(EraPreference::Auto).await;
    let tools = client.list_tools(TIMEOUT).await.unwrap();
    assert!(
        tools.iter().any(|t| t.name == "expenses__add_expense"),
        "{tools:?}"
    );
    let added = client
        .call_tool(
            "expenses__add_expense",
            args(json!({"amount": "12.50", "category": "food", "description": "lunch"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(!added.is_error, "{:?}", added.content);
    let listed = client
        .call_tool(
            "expenses__list_expenses",
            args(json!({})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        format!("{:?}", listed.raw).contains("lunch"),
        "{:?}",
        listed.raw
    );
    let categories = client
        .read_resource("gateway://expenses/expenses://categories", TIMEOUT)
        .await
        .unwrap();
    assert!(!categories.contents.is_empty());
}

#[tokio::test]
async fn upstream_list_changes_reach_gateway_clients_of_both_eras() {
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let running = start(&fixture_upstream("fx", &[])).await;
        let client = running.connect(era).await;
        let mut events = client.take_events().unwrap();
        let before = client.list_tools(TIMEOUT).await.unwrap();
        assert!(!before.iter().any(|t| t.name == "fx__extra"), "{era:?}");
        // A modern client opens its listen stream in the background; give it a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        client
            .call_tool("fx__enable_extra", None, CallOptions::default())
            .await
            .unwrap();
        let event = tokio::time::timeout(TIMEOUT, async {
            loop {
                match events.recv().await {
                    Some(ServerEvent::ToolsChanged) => return true,
                    Some(_) => continue,
                    None => return false,
                }
            }
        })
        .await;
        assert_eq!(
            event,
            Ok(true),
            "{era:?}: no tools/list_changed from the gateway"
        );
        let after = client.list_tools(TIMEOUT).await.unwrap();
        assert!(
            after.iter().any(|t| t.name == "fx__extra"),
            "{era:?}: {after:?}"
        );
        client.close().await;
    }
}

/// Whether a `tools/list_changed` reaches `events` within `within`.
async fn tools_changed(
    events: &mut tokio::sync::mpsc::Receiver<ServerEvent>,
    within: Duration,
) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Some(ServerEvent::ToolsChanged) => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn list_changes_keep_coming_after_a_modern_upstream_restarts() {
    let mut upstream = test_support::restart::Restartable::start();
    let running = start(&format!("[upstreams.up]\nurl = \"{}\"\n", upstream.url())).await;
    let client = running.connect(EraPreference::Legacy).await;
    let mut events = client.take_events().unwrap();
    // The gateway's listen stream to the upstream opens in the background: announce until a
    // change gets through.
    let mut heard = false;
    for _ in 0..50 {
        upstream
            .server()
            .notify_list_changed(switchboard_server::ListKind::Tools);
        if tools_changed(&mut events, Duration::from_millis(100)).await {
            heard = true;
            break;
        }
    }
    assert!(
        heard,
        "the upstream's announcements never reached the client"
    );

    // The upstream crashes and comes back on the same address: the gateway listens again and
    // tells its clients the lists may have changed meanwhile.
    upstream.crash();
    tokio::time::sleep(Duration::from_millis(100)).await;
    while events.try_recv().is_ok() {}
    upstream.restart().await;
    assert!(
        tools_changed(&mut events, TIMEOUT).await,
        "nothing told the client after the upstream came back"
    );
    // And the new upstream's own announcements get through.
    while events.try_recv().is_ok() {}
    upstream
        .server()
        .notify_list_changed(switchboard_server::ListKind::Tools);
    assert!(
        tools_changed(&mut events, TIMEOUT).await,
        "the restarted upstream's announcement never reached the client"
    );
    client.close().await;
}

#[tokio::test]
async fn progress_from_an_upstream_reaches_the_client() {
    let running = start(&fixture_upstream("fx", &[])).await;
    let client = running.connect(EraPreference::Legacy).await;
    let (progress, mut updates) = tokio::sync::mpsc::channel(16);
    let options = CallOptions {
        progress: Some(progress),
        ..CallOptions::default()
    };
    let result = client
        .call_tool("fx__slow", args(json!({"ms": 200, "steps": 3})), options)
        .await
        .unwrap();
    assert!(!result.is_error);
    let first = tokio::time::timeout(TIMEOUT, updates.recv())
        .await
        .expect("a progress update in time")
        .expect("at least one progress update");
    assert!(first.progress >= 1.0, "{first:?}");
}

#[tokio::test]
async fn the_stdio_front_serves_the_same_catalogue() {
    let config = GatewayConfig::parse(&fixture_upstream("fx", &[]), None, &|_| None).unwrap();
    let gateway = Gateway::connect(config).await.unwrap();
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let (client_side, server_side) = tokio::io::duplex(1 << 16);
        let (read, write) = tokio::io::split(server_side);
        let serving = tokio::spawn(switchboard_server::serve(
            gateway.server().clone(),
            read,
            write,
        ));
        let (client_read, client_write) = tokio::io::split(client_side);
        let options = ConnectOptions {
            era,
            ..ConnectOptions::default()
        };
        let client = Connection::connect_io(
            ServerName::new("gw").unwrap(),
            client_read,
            client_write,
            &options,
        )
        .await
        .unwrap();
        let result = client
            .call_tool(
                "fx__echo",
                args(json!({"text": "stdio"})),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(text(&result.content), "stdio", "{era:?}");
        client.close().await;
        let _ = tokio::time::timeout(TIMEOUT, serving).await;
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn websocket_clients_of_both_eras_use_the_gateway() {
    let running = start(&fixture_upstream("fx", &[])).await;
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let entry = switchboard_config::ServerEntry::new(
            ServerName::new("gw").unwrap(),
            switchboard_config::Transport::WebSocket {
                url: format!("ws://{}/ws", running.addr).parse().unwrap(),
                headers: Default::default(),
            },
        );
        let options = ConnectOptions {
            era,
            ..ConnectOptions::default()
        };
        let client = Connection::connect(&entry, &options)
            .await
            .unwrap_or_else(|e| panic!("{era:?}: {e}"));
        let mut events = client.take_events().unwrap();
        let tools = client.list_tools(TIMEOUT).await.unwrap();
        assert!(tools.iter().any(|t| t.name == "fx__echo"), "{era:?}");
        let result = client
            .call_tool(
                "fx__echo",
                args(json!({"text": "over websocket"})),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(text(&result.content), "over websocket", "{era:?}");
        // List changes reach a WebSocket session too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        client
            .call_tool("fx__enable_extra", None, CallOptions::default())
            .await
            .unwrap();
        let heard = tokio::time::timeout(TIMEOUT, async {
            loop {
                match events.recv().await {
                    Some(ServerEvent::ToolsChanged) => return true,
                    Some(_) => continue,
                    None => return false,
                }
            }
        })
        .await;
        assert_eq!(heard, Ok(true), "{era:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn a_cancelled_call_is_cancelled_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let running = start(&fixture_upstream(
        "fx",
        &["--record", &journal.display().to_string()],
    ))
    .await;
    for (round, era) in [(1, EraPreference::Legacy), (2, EraPreference::Modern)] {
        let client = running.connect(era).await;
        // The client gives up after 300 ms and cancels; the gateway must cancel upstream.
        let options = CallOptions {
            timeout: Duration::from_millis(300),
            max_duration: Duration::from_millis(300),
            ..CallOptions::default()
        };
        let error = client
            .call_tool("fx__slow", args(json!({"ms": 5000})), options)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no answer"), "{era:?}: {error}");
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let entries = test_support::fixture::Journal::read_file(&journal);
            let calls = test_support::fixture::count_calls(&entries, "slow");
            let cancelled = entries
                .iter()
                .filter(|e| matches!(e, test_support::fixture::JournalEntry::Cancelled { .. }))
                .count();
            if calls == round && cancelled == round {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{era:?}: the upstream call was never cancelled: {entries:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.close().await;
    }
}

#[tokio::test]
async fn an_unprefixed_upstream_keeps_its_own_names_and_uris() {
    let web = http_echo_upstream().await;
    let config = format!(
        "{}prefix = false\n\n[upstreams.web]\nurl = \"{}\"\n",
        fixture_upstream("fx", &[]),
        web.url
    );
    let running = start(&config).await;
    let client = running.connect(EraPreference::Auto).await;
    let tools = client.list_tools(TIMEOUT).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"echo") && names.contains(&"web__echo"),
        "{names:?}"
    );
    assert!(!names.contains(&"fx__echo"), "{names:?}");
    let mine = client
        .call_tool(
            "echo",
            args(json!({"text": "own name"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(text(&mine.content), "own name");
    // The qualified form of an unprefixed upstream's tool is not a second name for it.
    let error = client
        .call_tool(
            "fx__echo",
            args(json!({"text": "x"})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("unknown tool"), "{error}");
    let prefixed = client
        .call_tool(
            "web__echo",
            args(json!({"text": "prefixed"})),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(text(&prefixed.content), "prefixed");
    let read = client
        .read_resource("fixture://greeting", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(read.contents[0].uri, "fixture://greeting");
    let prompts = client.list_prompts(TIMEOUT).await.unwrap();
    assert!(prompts.iter().any(|p| p.name == "greet"), "{prompts:?}");
}

/// A gateway in front of `test_support::oauth_server`, with `[upstreams.protected.oauth]`
/// naming the machine client and the variable that holds `secret`.
async fn gateway_to_protected(secret: &str) -> crate::Running {
    let (base, _) = test_support::oauth_server::protected_server().await;
    let (client_id, _) = test_support::oauth_server::MACHINE_CLIENT;
    let text = format!(
        "[upstreams.protected]\nurl = \"{base}/mcp\"\n[upstreams.protected.oauth]\nclient_id = \"{client_id}\"\nclient_secret_env = \"PROTECTED_SECRET\"\n"
    );
    let secret = secret.to_owned();
    let env = move |name: &str| (name == "PROTECTED_SECRET").then(|| secret.clone());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = GatewayConfig::parse(&text, None, &env).unwrap();
    let gateway = std::sync::Arc::new(Gateway::connect(config).await.unwrap());
    crate::serve(gateway).await
}

/// An upstream that requires OAuth gets the gateway's own token, by client credentials: no
/// user is there to consent, and the gateway's clients never see the upstream's tokens.
#[tokio::test]
async fn an_upstream_that_requires_oauth_is_reached_with_client_credentials() {
    let running = gateway_to_protected(test_support::oauth_server::MACHINE_CLIENT.1).await;
    let client = running.connect(EraPreference::Modern).await;
    let tools = client.list_tools(TIMEOUT).await.unwrap();
    assert!(
        tools.iter().any(|t| t.name == "protected__write"),
        "{tools:?}"
    );
    let result = client
        .call_tool("protected__write", args(json!({})), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(text(&result.content), "written");
}

/// Credentials the authorization server refuses leave that upstream out and say why on
/// `/readyz`; the gateway starts and serves the rest.
#[tokio::test]
async fn refused_upstream_credentials_are_reported_not_fatal() {
    let running = gateway_to_protected("not-the-secret").await;
    let ready = reqwest::get(format!("{}/readyz", running.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    let upstream = &body["upstreams"][0];
    assert_eq!(upstream["name"], "protected", "{body}");
    assert_eq!(upstream["healthy"], false, "{body}");
    let reason = upstream["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("authoriz"), "{body}");
    let client = running.connect(EraPreference::Modern).await;
    let tools = client.list_tools(TIMEOUT).await.unwrap();
    assert!(tools.is_empty(), "{tools:?}");
}
