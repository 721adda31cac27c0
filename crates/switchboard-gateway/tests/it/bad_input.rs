//! What clients should never send, and upstreams that fail: each gets the right status or
//! error, and the gateway keeps serving.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_client::{CallOptions, EraPreference};

use crate::{MODERN_META, Running, answer, fixture_upstream, post, start};

fn echo_call(id: u32) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"fx__echo","arguments":{{"text":"still here"}},{MODERN_META}}}}}"#
    )
}

/// The gateway still answers a good request.
async fn still_serving(running: &Running) {
    let response = post(running, echo_call(99)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = answer(response).await;
    assert_eq!(body["result"]["content"][0]["text"], "still here", "{body}");
}

#[tokio::test]
async fn refusals_get_their_status_and_the_gateway_keeps_serving() {
    let config = format!(
        "[limits]\nmax_body_bytes = 4096\nmax_json_depth = 16\n{}",
        fixture_upstream("fx", &[])
    );
    let running = start(&config).await;
    still_serving(&running).await;

    // Oversized body: 413.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fx__echo","arguments":{{"text":"{}"}},{MODERN_META}}}}}"#,
        "x".repeat(8192)
    );
    let response = post(&running, big).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    still_serving(&running).await;

    // Deep JSON: 400, before anything parses it.
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"fx__echo","arguments":{{"text":{}1{}}}}}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let response = post(&running, deep).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("levels deep"),
        "{body}"
    );
    still_serving(&running).await;

    // An unknown session id: 404, which tells a legacy client to initialize again.
    let response = post(
        &running,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    )
    .header("mcp-session-id", "no-such-session")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    still_serving(&running).await;

    // A wrong Host or Origin (DNS rebinding): 403.
    let response = post(&running, echo_call(4))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post(&running, echo_call(5))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post(&running, echo_call(6))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "an allowed origin passes"
    );

    // Not JSON at all, and a request id echoed back.
    let response = post(&running, "{not json")
        .header("x-request-id", "req-from-client")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-request-id"], "req-from-client");
    still_serving(&running).await;
}

#[tokio::test]
async fn an_upstream_that_dies_mid_call_is_a_retryable_error() {
    let config = format!(
        "{}\n{}",
        fixture_upstream("fragile", &["--crash-after", "1"]),
        fixture_upstream("fx", &[])
    );
    let running = start(&config).await;
    let client = running.connect(EraPreference::Auto).await;
    let first = client
        .call_tool(
            "fragile__echo",
            json!({"text": "one"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(!first.is_error);
    // The second call kills the upstream while it is being answered. `slow` may change
    // something (it is not read-only), so it is not repeated, and the client is told that
    // repeating it blindly is not safe.
    let error = client
        .call_tool(
            "fragile__slow",
            json!({"ms": 10}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("-32000"), "{message}");
    assert!(
        message.contains("fragile"),
        "the error names the upstream: {message}"
    );
    match &error {
        switchboard_client::ClientError::Rpc { data, .. } => {
            assert_eq!(
                data.as_deref().map(|d| &d["retryable"]),
                Some(&json!(false)),
                "{message}"
            );
        }
        other => panic!("expected an error answer, got {other}"),
    }

    // The other upstream, and the gateway, carry on; readiness reports the dead one.
    let other = client
        .call_tool(
            "fx__echo",
            json!({"text": "fine"}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(!other.is_error);
    still_serving(&running).await;
}

#[tokio::test]
async fn in_flight_limits_refuse_the_excess_and_recover() {
    let config = format!(
        "[limits]\nmax_in_flight_per_client = 1\n{}\nmax_in_flight = 1\n",
        fixture_upstream("fx", &[])
    );
    let running = start(&config).await;
    let slow = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fx__slow","arguments":{{"ms":600}},{MODERN_META}}}}}"#
    );
    // JSON only: the answer (and so the request's slot) waits for the call.
    let busy = tokio::spawn(
        reqwest::Client::new()
            .post(running.url())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "fx__slow")
            .body(slow)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = post(&running, echo_call(2)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["data"]["retryable"], true);

    let answered = busy.await.unwrap().unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let _ = answer(answered).await;
    still_serving(&running).await;
}

#[tokio::test]
async fn an_upstream_at_its_in_flight_limit_refuses_as_retryable() {
    let config = format!("{}\nmax_in_flight = 1\n", fixture_upstream("fx", &[]));
    let running = start(&config).await;
    let slow = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fx__slow","arguments":{{"ms":600}},{MODERN_META}}}}}"#
    );
    let busy = tokio::spawn(post(&running, slow).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = post(&running, echo_call(2)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::OK);
    let body = answer(refused).await;
    assert_eq!(body["error"]["code"], -32000, "{body}");
    assert_eq!(body["error"]["data"]["retryable"], true, "{body}");
    let answered = busy.await.unwrap().unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let body = answer(answered).await;
    assert!(
        body["result"]["content"].is_array(),
        "the slow call finished: {body}"
    );
    still_serving(&running).await;
}

#[tokio::test]
async fn an_upstream_that_cannot_start_is_not_ready_and_the_rest_serve() {
    let config = format!(
        "[upstreams.missing]\ncommand = \"/nonexistent/sb-no-such-server\"\n\n{}",
        fixture_upstream("fx", &[])
    );
    let running = start(&config).await;
    let ready = reqwest::get(format!("{}/readyz", running.base()))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    let upstreams = body["upstreams"].as_array().unwrap();
    let missing = upstreams.iter().find(|u| u["name"] == "missing").unwrap();
    assert_eq!(missing["healthy"], false, "{body}");
    assert_eq!(missing["status"], "down", "{body}");
    assert!(
        missing["reason"]
            .as_str()
            .unwrap()
            .contains("sb-no-such-server"),
        "{body}"
    );
    let fx = upstreams.iter().find(|u| u["name"] == "fx").unwrap();
    assert_eq!(fx["healthy"], true, "{body}");
    // Still alive, and the healthy upstream serves.
    let health = reqwest::get(format!("{}/healthz", running.base()))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    still_serving(&running).await;
}

#[tokio::test]
async fn websocket_upgrades_are_checked() {
    let running = start(&fixture_upstream("fx", &[])).await;
    let url = format!("{}/ws", running.base());
    let handshake = |origin: Option<&str>| {
        let mut request = reqwest::Client::new()
            .get(&url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", "mcp");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let refused = handshake(Some("http://evil.example")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let accepted = handshake(None).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        accepted.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        "the RFC 6455 example key"
    );
    assert_eq!(accepted.headers()["sec-websocket-protocol"], "mcp");
    let plain = reqwest::get(&url).await.unwrap();
    assert_eq!(plain.status(), StatusCode::UPGRADE_REQUIRED);
    still_serving(&running).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = format!(
        "[limits]\nheader_timeout_secs = 1\n{}",
        fixture_upstream("fx", &[])
    );
    let running = start(&config).await;
    let mut slow = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the connection was kept open past the header timeout"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    // Other clients are served meanwhile and after.
    still_serving(&running).await;
}

#[tokio::test]
async fn a_silent_websocket_is_closed_after_the_idle_time() {
    let config = format!(
        "[limits]\nsession_idle_secs = 1\n{}",
        fixture_upstream("fx", &[])
    );
    let running = start(&config).await;
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let (mut socket, response) =
        tokio_tungstenite::client_async(format!("ws://{}/ws", running.addr), tcp)
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        use futures::StreamExt;
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the silent connection was kept open");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    still_serving(&running).await;
}

/// An upstream tool whose `region` argument travels also as the `Mcp-Param-Region` header.
fn routed_upstream() -> switchboard_server::Server {
    switchboard_server::Server::builder("routed", "1")
        .tool(
            switchboard_server::Tool::builder("route", "Echoes the region.")
                .input_schema(json!({
                    "type": "object",
                    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
                    "required": ["region"],
                }))
                .handler(|args: Value, _| async move {
                    Ok(switchboard_server::ToolOutput::text(
                        args["region"].as_str().unwrap_or_default().to_owned(),
                    ))
                }),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn param_headers_must_match_the_arguments_of_upstream_tools() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let upstream = crate::http_upstream(routed_upstream()).await;
    let running = start(&format!("[upstreams.up]\nurl = \"{}\"\n", upstream.url)).await;
    let call = |header: Option<&str>| {
        let mut request = post(
            &running,
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"up__route","arguments":{{"region":"eu-west"}},{MODERN_META}}}}}"#
            ),
        );
        if let Some(value) = header {
            request = request.header("mcp-param-region", value);
        }
        request.send()
    };
    let body = answer(call(Some("eu-west")).await.unwrap()).await;
    assert_eq!(body["result"]["content"][0]["text"], "eu-west", "{body}");
    for (header, expected) in [
        (Some("us-east"), "does not match"),
        (None, "is missing"),
        (Some("=?base64?SGVs!!!bG8=?="), "not valid Base64"),
    ] {
        // The tool list is cached by now, so the refusal is found without waiting on
        // anything: it is still HTTP 400, as the 2026-07-28 transport requires.
        let response = call(header).await.unwrap();
        assert_eq!(response.status(), 400, "{header:?}");
        let body = answer(response).await;
        assert_eq!(body["error"]["code"], -32020, "{header:?}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{header:?}: {body}"
        );
    }
    // Base64 of the same text is the same value.
    let body = answer(call(Some("=?base64?ZXUtd2VzdA==?=")).await.unwrap()).await;
    assert_eq!(body["result"]["content"][0]["text"], "eu-west", "{body}");
}
