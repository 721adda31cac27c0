//! Health, readiness, metrics, request ids and graceful shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{MODERN_META, TIMEOUT, fixture_upstream, post, start};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let running = start(&fixture_upstream("fx", &[])).await;
    let health = reqwest::get(format!("{}/healthz", running.base()))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = reqwest::get(format!("{}/readyz", running.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["upstreams"][0]["name"], "fx");
    assert_eq!(body["upstreams"][0]["healthy"], true);

    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fx__fail",{MODERN_META}}}}}"#
    );
    let answer = post(&running, call).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let request_id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        request_id.len(),
        36,
        "a UUID is made when the client sends none"
    );
    let body = crate::answer(answer).await;
    assert_eq!(body["result"]["isError"], true, "{body}");

    let metrics = reqwest::get(format!("{}/metrics", running.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"gateway_calls_total{server="fx",tool="fail",outcome="tool_error"}"#,
        r#"gateway_call_duration_seconds_bucket{server="fx",tool="fail""#,
        r#"gateway_upstream_requests_total{server="fx",method="tools/call"}"#,
        r#"gateway_upstream_up{server="fx"} 1"#,
        "gateway_http_requests_total{status=\"200\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn shutdown_drains_calls_in_flight() {
    let mut running = start(&fixture_upstream("fx", &[])).await;
    let slow = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fx__slow","arguments":{{"ms":500}},{MODERN_META}}}}}"#
    );
    let in_flight = tokio::spawn(
        reqwest::Client::new()
            .post(running.url())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "fx__slow")
            .body(slow)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let serving = running.stop();
    let answered = in_flight.await.unwrap().unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let body: Value = answered.json().await.unwrap();
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("done"),
        "{body}"
    );
    tokio::time::timeout(TIMEOUT, serving)
        .await
        .unwrap()
        .unwrap();
    // Nothing listens any more.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", running.base()))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

/// Log lines written by the gateway in this test process.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_request_id_travels_with_the_call_to_its_upstream() {
    // Each test runs in its own process under nextest, so this subscriber sees only this test.
    let captured = Captured::default();
    let writer = captured.clone();
    let _ = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let running = start(&fixture_upstream("fx", &[])).await;
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fx__echo","arguments":{{"text":"traced"}},{MODERN_META}}}}}"#
    );
    let answer = post(&running, call)
        .header("x-request-id", "req-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-request-id"], "req-trace-42");
    let body = crate::answer(answer).await;
    assert_eq!(body["result"]["content"][0]["text"], "traced", "{body}");
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let line = logs
        .lines()
        .find(|line| line.contains("tools/call") && line.contains("server=fx"))
        .unwrap_or_else(|| panic!("no call record in:\n{logs}"));
    assert!(line.contains("req-trace-42"), "{line}");
    assert!(line.contains("client=\"anonymous\""), "{line}");
    assert!(line.contains("outcome=\"ok\""), "{line}");
}

#[tokio::test]
async fn the_upstreams_are_listed_in_the_registry_shape() {
    let config = format!(
        "{}{}",
        fixture_upstream("fx", &[]),
        crate::switchboard_upstream("echo", &["serve", "echo"])
    );
    let running = start(&config).await;
    let list: Value = reqwest::get(format!("{}/v0/servers", running.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dev.switchboard.gateway/echo", "dev.switchboard.gateway/fx"]
    );
    let echo = &list["servers"][0]["server"];
    assert_eq!(echo["remotes"][0]["type"], "streamable-http");
    assert_eq!(echo["remotes"][0]["url"], format!("{}/mcp", running.base()));
    let gateway = &echo["_meta"]["dev.switchboard/gateway"];
    assert_eq!(gateway["toolPrefix"], "echo__");
    assert_eq!(gateway["resourcePrefix"], "gateway://echo/");
    assert_eq!(list["metadata"]["count"], 2);
    assert!(list["metadata"]["nextCursor"].is_null());

    // Paging and search.
    let first: Value = reqwest::get(format!("{}/v0/servers?limit=1", running.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["metadata"]["nextCursor"],
        "dev.switchboard.gateway/echo"
    );
    let second: Value = reqwest::get(format!(
        "{}/v0/servers?limit=1&cursor=dev.switchboard.gateway/echo",
        running.base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        second["servers"][0]["server"]["name"],
        "dev.switchboard.gateway/fx"
    );
    let searched: Value = reqwest::get(format!("{}/v0/servers?search=FX", running.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(searched["metadata"]["count"], 1);

    // A rebinding page cannot read it.
    let evil = reqwest::Client::new()
        .get(format!("{}/v0/servers", running.base()))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
}

/// An upstream whose one tool reports progress three times, a millisecond apart, then answers.
fn stepping_upstream() -> switchboard_server::Server {
    switchboard_server::Server::builder("steps", "1")
        .tool(
            switchboard_server::Tool::builder("steps", "Three progress steps, then done.").handler(
                |_: Value, cx| async move {
                    for step in 1..=3u32 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        cx.progress(f64::from(step), Some(3.0), None).await;
                    }
                    Ok(switchboard_server::ToolOutput::text("done"))
                },
            ),
        )
        .build()
        .unwrap()
}

/// The gateway's front sets `TCP_NODELAY` on every connection it accepts: an answer it streams
/// as several events (the upstream's progress, then the result) is a series of small writes,
/// and Nagle's algorithm with the client's delayed ACK would hold each one for 40 ms (issue
/// 10). Each call here takes a few milliseconds; with the stall every one would take over 40.
#[tokio::test]
async fn streamed_answers_never_wait_for_a_delayed_ack() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = crate::http_upstream(stepping_upstream()).await;
    let running = start(&format!("[upstreams.up]\nurl = \"{}\"\n", upstream.url)).await;
    let meta = MODERN_META.replace(
        r#""io.modelcontextprotocol/clientCapabilities":{}"#,
        r#""io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p""#,
    );
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"up__steps","arguments":{{}},{meta}}}}}"#
    );
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    // Past TCP's quick-ACK start, which acknowledges the first segments at once.
    for _ in 0..25 {
        let started = std::time::Instant::now();
        let mut request = client
            .post(running.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (name, value) in crate::modern_headers(&body) {
            request = request.header(name, value);
        }
        let response = request.body(body.clone()).send().await.unwrap();
        let text = response.text().await.unwrap();
        assert!(text.contains("notifications/progress"), "{text}");
        assert!(text.contains(r#""text":"done""#), "{text}");
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(36),
        "answers waited for delayed ACKs: median {median:?} of {times:?}"
    );
}
