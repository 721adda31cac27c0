//! The Streamable HTTP front, over real loopback HTTP.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use switchboard_client::{
    CallOptions, ConnectOptions, Connection, EraPreference,
    model::{Content, Era},
};
use switchboard_config::{ServerEntry, ServerName, Transport};
use switchboard_server::HttpConfig;

use crate::{MODERN_META, test_server};

pub(crate) struct Running {
    pub(crate) url: String,
    port: u16,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Running {
    start_with(HttpConfig::default()).await
}

async fn start_with(config: HttpConfig) -> Running {
    serve(test_server(), config).await
}

pub(crate) async fn serve(server: switchboard_server::Server, config: HttpConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(switchboard_server::serve_listener(server, listener, config));
    Running {
        url: format!("http://127.0.0.1:{port}/mcp"),
        port,
        task,
    }
}

pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub(crate) async fn post(url: &str, body: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client()
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(body.to_owned());
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn modern(id: u32, method: &str, params: &str) -> String {
    let comma = if params.is_empty() { "" } else { "," };
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params}{comma}{MODERN_META}}}}}"#
    )
}

#[tokio::test]
async fn a_modern_call_is_stateless_json() {
    let server = start().await;
    let response = post(
        &server.url,
        &modern(
            1,
            "tools/call",
            r#""name":"echo","arguments":{"text":"hi"}"#,
        ),
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("mcp-protocol-version", "2026-07-28"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("mcp-session-id").is_none());
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["result"],
        json!({"resultType": "complete", "content": [{"type": "text", "text": "hi"}]})
    );
}

#[tokio::test]
async fn modern_header_rules() {
    let server = start().await;
    let call = modern(
        1,
        "tools/call",
        r#""name":"echo","arguments":{"text":"hi"}"#,
    );
    let method = ("mcp-method", "tools/call");
    let name = ("mcp-name", "echo");
    for (case, headers) in [
        (
            "wrong version",
            vec![("mcp-protocol-version", "2025-11-25"), method, name],
        ),
        ("wrong method", vec![("mcp-method", "tools/list"), name]),
        ("wrong name", vec![method, ("mcp-name", "other")]),
        ("no method header", vec![name]),
        ("no name header", vec![method]),
    ] {
        let response = post(&server.url, &call, &headers).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32020, "{case}: {body}");
    }
    // Header names are case-insensitive and values may carry spaces.
    let response = post(
        &server.url,
        &call,
        &[("MCP-METHOD", " tools/call "), ("Mcp-Name", "echo ")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = post(
        &server.url,
        &modern(2, "tools/list", r#""_meta2":1"#).replace("2026-07-28", "2099-01-01"),
        &[("mcp-method", "tools/list")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32022
    );
    let response = post(
        &server.url,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32602
    );
    // A method error is not an HTTP error.
    let response = post(
        &server.url,
        &modern(4, "tools/call", r#""name":"nope""#),
        &[("mcp-method", "tools/call"), ("mcp-name", "nope")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        -32602
    );
}

#[tokio::test]
async fn legacy_sessions_live_until_deleted() {
    let server = start().await;
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let response = post(&server.url, init, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    let notified = post(
        &server.url,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(notified.status(), StatusCode::ACCEPTED);
    let listed = post(
        &server.url,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        listed.json::<Value>().await.unwrap()["result"]["tools"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let unknown = post(
        &server.url,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("mcp-session-id", "not-a-session")],
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let deleted = client()
        .delete(&server.url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let after = post(
        &server.url,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dns_rebinding_is_refused() {
    let server = start().await;
    let ping = modern(1, "tools/list", "");
    let evil_host = client()
        .post(&server.url)
        .header(header::HOST, "evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header("mcp-method", "tools/list")
        .body(ping.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(evil_host.status(), StatusCode::FORBIDDEN);
    let list = ("mcp-method", "tools/list");
    let evil_origin = post(
        &server.url,
        &ping,
        &[("origin", "http://evil.example"), list],
    )
    .await;
    assert_eq!(evil_origin.status(), StatusCode::FORBIDDEN);
    let local_origin = format!("http://localhost:{}", server.port);
    let fine = post(&server.url, &ping, &[("origin", &local_origin), list]).await;
    assert_eq!(fine.status(), StatusCode::OK);
    let localhost_url = format!("http://localhost:{}/mcp", server.port);
    assert_eq!(
        post(&localhost_url, &ping, &[list]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_requests_get_the_right_status() {
    let server = start_with(HttpConfig {
        max_body_bytes: 4096,
        ..HttpConfig::default()
    })
    .await;
    let ping = modern(1, "tools/list", "");
    let text = client()
        .post(&server.url)
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::ACCEPT, "application/json")
        .body(ping.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let html = client()
        .post(&server.url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/html")
        .body(ping.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::NOT_ACCEPTABLE);
    let huge = post(
        &server.url,
        &format!(r#"{{"x":"{}"}}"#, "a".repeat(10_000)),
        &[],
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let garbage = post(&server.url, "{not json", &[]).await;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        garbage.json::<Value>().await.unwrap()["error"]["code"],
        -32700
    );
    let get = client().get(&server.url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_slow_call_streams_progress_then_the_result() {
    let server = start().await;
    let body = modern(
        5,
        "tools/call",
        r#""name":"slow","arguments":{"ms":80},"_meta":{"progressToken":"p"}"#,
    )
    .replace(r#","_meta":{"progressToken":"p"},"_meta""#, r#","_meta""#);
    // Put the progress token into the one _meta object.
    let body = body.replace(
        r#""io.modelcontextprotocol/clientCapabilities":{}"#,
        r#""io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p""#,
    );
    let response = post(
        &server.url,
        &body,
        &[("mcp-method", "tools/call"), ("mcp-name", "slow")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let messages = sse_messages(&text);
    assert_eq!(messages.len(), 5, "{text}");
    for (i, note) in messages[..4].iter().enumerate() {
        assert_eq!(note["method"], "notifications/progress");
        assert_eq!(note["params"]["progress"], (i + 1) as f64);
    }
    assert_eq!(messages[4]["id"], 5);
    assert_eq!(messages[4]["result"]["content"][0]["text"], "slept");
}

/// Nagle's algorithm holds a small write while an earlier one is unacknowledged, and a client
/// that is only reading delays its ACK by 40 ms: together they stall every answer written in
/// more than one piece (rmcp's default HTTP server takes 44 ms a call this way; issue 10). An
/// answer streamed as five events, on one keep-alive connection, is such a series of writes,
/// so with `TCP_NODELAY` on every accepted connection none of them waits. The calls sleep 4 ms
/// in all; the stall would make every one of them take over 40 ms.
#[tokio::test]
async fn streamed_answers_never_wait_for_a_delayed_ack() {
    let server = start().await;
    let client = client();
    let body = modern(7, "tools/call", r#""name":"slow","arguments":{"ms":4}"#).replace(
        r#""io.modelcontextprotocol/clientCapabilities":{}"#,
        r#""io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p""#,
    );
    let mut times = Vec::new();
    // Past TCP's quick-ACK start, which acknowledges the first segments at once.
    for _ in 0..25 {
        let started = std::time::Instant::now();
        let response = client
            .post(&server.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "slow")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        assert_eq!(sse_messages(&text).len(), 5, "{text}");
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(36),
        "answers waited for delayed ACKs: median {median:?} of {times:?}"
    );
}

fn http_entry(url: &str) -> ServerEntry {
    ServerEntry::new(
        ServerName::new("kit-http").unwrap(),
        Transport::StreamableHttp {
            url: url.parse().unwrap(),
            headers: Default::default(),
        },
    )
}

#[tokio::test]
async fn our_client_speaks_both_eras_over_http() {
    let server = start().await;
    for (era, expected) in [
        (EraPreference::Auto, Era::Modern),
        (EraPreference::Legacy, Era::Legacy),
    ] {
        let options = ConnectOptions {
            era,
            ..ConnectOptions::default()
        };
        let connection = Connection::connect(&http_entry(&server.url), &options)
            .await
            .unwrap();
        assert_eq!(connection.description().era, expected);
        let result = connection
            .call_tool(
                "echo",
                json!({"text": "http"}).as_object().cloned(),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            result.content,
            vec![Content::Text {
                text: "http".into()
            }]
        );
        let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
        let slow = connection
            .call_tool(
                "slow",
                json!({"ms": 40}).as_object().cloned(),
                CallOptions {
                    progress: Some(sender),
                    ..CallOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            slow.content,
            vec![Content::Text {
                text: "slept".into()
            }]
        );
        let mut progress = 0;
        while receiver.try_recv().is_ok() {
            progress += 1;
        }
        assert_eq!(progress, 4, "{era:?}");
        connection.close().await;
    }
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

async fn open_session(url: &str) -> reqwest::Response {
    post(url, INITIALIZE, &[]).await
}

#[tokio::test]
async fn idle_legacy_sessions_end_and_make_room() {
    let server = start_with(HttpConfig {
        max_sessions: 1,
        // Generous against the pauses below: a loaded machine (CI runs the tests in
        // parallel on two cores) can stall a request by a good part of 100 ms.
        session_idle_timeout: Some(Duration::from_millis(600)),
        ..HttpConfig::default()
    })
    .await;
    let first = open_session(&server.url).await;
    assert_eq!(first.status(), StatusCode::OK);
    let id = first.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    // Used within the idle time, the session lives on, and it fills the only place.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let used = post(&server.url, list, &[("mcp-session-id", &id)]).await;
        assert_eq!(used.status(), StatusCode::OK);
    }
    assert_eq!(
        open_session(&server.url).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Left idle, it ends: its next request is 404, and a new session takes its place.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let stale = post(&server.url, list, &[("mcp-session-id", &id)]).await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    assert_eq!(open_session(&server.url).await.status(), StatusCode::OK);
}

/// SEP-2243: a parameter whose schema names a header travels in both, and they must agree.
#[tokio::test]
async fn custom_param_headers_must_match_the_arguments() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Region {
        region: String,
    }
    let server = switchboard_server::Server::builder("headers", "1.0.0")
        .tool(
            switchboard_server::Tool::builder("where", "Echo the region.")
                .input_schema(json!({
                    "type": "object",
                    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
                    "required": ["region"]
                }))
                .handler(|args: Region, _| async move {
                    Ok(switchboard_server::ToolOutput::text(args.region))
                }),
        )
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let task = tokio::spawn(switchboard_server::serve_listener(
        server,
        listener,
        HttpConfig::default(),
    ));
    let call = |region: &str| {
        modern(
            1,
            "tools/call",
            &format!(r#""name":"where","arguments":{{"region":{region:?}}}"#),
        )
    };
    let send = |body: String, param: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut headers = vec![("mcp-method", "tools/call"), ("mcp-name", "where")];
            if let Some(value) = param {
                headers.push(("mcp-param-region", value));
            }
            post(&url, &body, &headers).await
        }
    };
    // Literal and Base64 forms of the same value are accepted.
    for header in ["eu-west", "=?base64?ZXUtd2VzdA==?="] {
        let response = send(call("eu-west"), Some(header)).await;
        assert_eq!(response.status(), StatusCode::OK, "{header}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["content"][0]["text"], "eu-west", "{header}");
    }
    // Missing, different, unpadded or non-alphabet Base64: refused before the tool runs.
    for (case, header) in [
        ("missing", None),
        ("different", Some("us-east")),
        ("bad padding", Some("=?base64?ZXUtd2VzdA?=")),
        ("bad characters", Some("=?base64?ZXUt!!d2VzdA==?=")),
    ] {
        let response = send(call("eu-west"), header).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32020, "{case}: {body}");
    }
    // A value that merely looks half-encoded is taken literally.
    let response = send(call("=?base64?ZXU"), Some("=?base64?ZXU")).await;
    assert_eq!(response.status(), StatusCode::OK);
    task.abort();
}

/// The JSON-RPC messages of an event-stream body.
fn sse_messages(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_running_call_that_ends_quietly_within_the_window_is_answered_as_json() {
    let server = start().await;
    // 2 ms of sleep: the handler is still running when dispatched, and sends nothing (no
    // progress token).
    let response = post(
        &server.url,
        &modern(6, "tools/call", r#""name":"slow","arguments":{"ms":2}"#),
        &[("mcp-method", "tools/call"), ("mcp-name", "slow")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "slept");
}

#[tokio::test]
async fn a_quiet_call_longer_than_the_window_streams_its_answer() {
    let server = start().await;
    let ms = 8 * switchboard_server::JSON_WINDOW.as_millis();
    let response = post(
        &server.url,
        &modern(
            7,
            "tools/call",
            &format!(r#""name":"slow","arguments":{{"ms":{ms}}}"#),
        ),
        &[("mcp-method", "tools/call"), ("mcp-name", "slow")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    let messages = sse_messages(&text);
    assert_eq!(messages.len(), 1, "{text}");
    assert_eq!(messages[0]["result"]["content"][0]["text"], "slept");
}

/// A tool that finds, after starting, that the client lacks a capability (as a gateway learns
/// it from its upstream).
fn late_refusal_server() -> switchboard_server::Server {
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    struct Empty {}
    switchboard_server::Server::builder("late", "1")
        .tool(
            switchboard_server::Tool::builder("ask", "Needs elicitation.").handler(
                |_: Empty, _| async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Err::<switchboard_server::ToolOutput, _>(
                        switchboard_server::HandlerError::MissingClientCapability {
                            capability: "elicitation".into(),
                        },
                    )
                },
            ),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_missing_capability_found_while_running_is_http_400_in_the_modern_era() {
    let server = serve(late_refusal_server(), HttpConfig::default()).await;
    let response = post(
        &server.url,
        &modern(8, "tools/call", r#""name":"ask","arguments":{}"#),
        &[("mcp-method", "tools/call"), ("mcp-name", "ask")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(content_type(&response), "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], 8);
    assert_eq!(body["error"]["code"], -32021);
}
