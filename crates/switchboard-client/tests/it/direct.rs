//! The direct path of a 2026-07-28 Streamable HTTP server's calls (`connection/direct.rs`),
//! against a scripted server on loopback that answers `server/discover` and `tools/list` as
//! the revision says and each tool its own way: well, badly, slowly or not at all.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, EraPreference,
    model::{Direction, Era, ServerEvent},
};
use switchboard_config::ServerEntry;
use tokio::sync::mpsc;

use crate::tap;

/// What the scripted server saw: the `Mcp-*` headers of each call, and calls whose
/// response was dropped before it was finished (the client went away).
#[derive(Default)]
struct Seen {
    heads: Mutex<Vec<HeaderMap>>,
    abandoned: Mutex<Vec<String>>,
    /// The id of the call whose answer stream broke off, for its resumption.
    resumable: Mutex<Option<Value>>,
}

/// Records an abandoned call when dropped before [`Finished::done`].
struct Finished {
    tool: String,
    seen: Arc<Seen>,
    done: bool,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if !self.done {
            self.seen.abandoned.lock().unwrap().push(self.tool.clone());
        }
    }
}

fn json_response(status: StatusCode, message: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        message.to_string(),
    )
        .into_response()
}

fn sse(events: Vec<(Duration, Value)>) -> Response {
    let stream = futures::stream::iter(events).then(|(pause, message)| async move {
        tokio::time::sleep(pause).await;
        Ok::<_, std::io::Error>(Bytes::from(format!("data: {message}\n\n")))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn handle(seen: Arc<Seen>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap();
    let id = request["id"].clone();
    let answer = |mut result: Value| {
        result["resultType"] = json!("complete");
        json!({"jsonrpc": "2.0", "id": id, "result": result})
    };
    match request["method"].as_str().unwrap_or_default() {
        "server/discover" => json_response(
            StatusCode::OK,
            answer(json!({
                "supportedVersions": ["2026-07-28"],
                "ttlMs": 0,
                "cacheScope": "private",
                "capabilities": {"tools": {}, "logging": {}},
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "scripted", "version": "1"}}
            })),
        ),
        "tools/list" => json_response(
            StatusCode::OK,
            answer(json!({"tools": [{
                "name": "headers",
                "inputSchema": {"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "place": {"type": "object", "properties": {
                        "city": {"type": "string", "x-mcp-header": "City"}
                    }},
                    "note": {"type": "string"}
                }}
            }]})),
        ),
        "tools/call" => {
            let tool = request["params"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let token = request["params"]["_meta"]["progressToken"].clone();
            let progress = |n: u32| {
                json!({"jsonrpc": "2.0", "method": "notifications/progress",
                       "params": {"progressToken": token, "progress": n, "total": 2}})
            };
            let mut finished = Finished {
                tool: tool.clone(),
                seen: seen.clone(),
                done: false,
            };
            let response = match tool.as_str() {
                "headers" => {
                    seen.heads.lock().unwrap().push(headers);
                    json_response(StatusCode::OK, answer(json!({"content": []})))
                }
                "slow-with-progress" => {
                    let step = Duration::from_millis(250);
                    let log = json!({"jsonrpc": "2.0", "method": "notifications/message",
                        "params": {"level": "info", "logger": "scripted", "data": "halfway"}});
                    sse(vec![
                        (Duration::ZERO, progress(1)),
                        (step, log),
                        (Duration::ZERO, progress(2)),
                        (
                            step,
                            answer(json!({"content": [{"type": "text", "text": "done"}]})),
                        ),
                    ])
                }
                "silent" => {
                    // Never answers: only the client's timeout ends the call.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    json_response(StatusCode::OK, answer(json!({"content": []})))
                }
                "hang-up" => sse(vec![(Duration::ZERO, progress(1))]),
                "stalls" => sse(vec![
                    (Duration::ZERO, progress(1)),
                    (Duration::from_secs(30), answer(json!({"content": []}))),
                ]),
                "dies" => {
                    let stream = futures::stream::iter([
                        Ok(Bytes::from(format!("data: {}\n\n", progress(1)))),
                        Err(std::io::Error::other("the process died")),
                    ]);
                    (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        Body::from_stream(stream),
                    )
                        .into_response()
                }
                "wrong-id" => json_response(
                    StatusCode::OK,
                    json!({"jsonrpc": "2.0", "id": 7, "result": {"content": []}}),
                ),
                "not-json" => (StatusCode::OK, "hello").into_response(),
                "resumable" => {
                    // An id on every event, then the stream breaks off before the answer.
                    *seen.resumable.lock().unwrap() = Some(id.clone());
                    let body = format!("id: e1\nretry: 10\ndata: \n\nid: e2\ndata: {}\n\n", progress(1));
                    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
                }
                "asks" => sse(vec![(
                    Duration::ZERO,
                    json!({"jsonrpc": "2.0", "id": 99, "method": "roots/list"}),
                )]),
                "changes-tools" => sse(vec![
                    (Duration::ZERO, json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})),
                    (Duration::ZERO, json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}, "_ignored": true})),
                    (Duration::ZERO, answer(json!({"content": []}))),
                ]),
                "lenient" => (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    format!(
                        "event: ping\ndata: not json\n\ndata: not json either\n\ndata: {}\n\n",
                        json!({"jsonrpc": "2.0", "id": id.to_string(), "result": {"resultType": "complete", "content": []}})
                    ),
                )
                    .into_response(),
                "unauthorized" => (StatusCode::UNAUTHORIZED, "who are you").into_response(),
                "bad-event" => (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    "data: {not json\n\n",
                )
                    .into_response(),
                "huge" => {
                    let text = "x".repeat(17 * 1024 * 1024);
                    json_response(
                        StatusCode::OK,
                        answer(json!({"content": [{"type": "text", "text": text}]})),
                    )
                }
                "huge-unannounced" => {
                    // Chunked, with no Content-Length to refuse it by.
                    let head = format!(
                        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":""#
                    );
                    let chunks = std::iter::once(Bytes::from(head))
                        .chain((0..17).map(|_| Bytes::from(vec![b'x'; 1024 * 1024])))
                        .map(Ok::<_, std::io::Error>);
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        Body::from_stream(futures::stream::iter(chunks)),
                    )
                        .into_response()
                }
                "refused" => json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": -32602, "message": "no such tool", "data": {"tool": "refused"}}}),
                ),
                "overloaded" => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/plain")],
                    "try later",
                )
                    .into_response(),
                _ => json_response(StatusCode::OK, answer(json!({"content": []}))),
            };
            finished.done = true;
            response
        }
        _ => json_response(
            StatusCode::OK,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "unknown"}}),
        ),
    }
}

/// `GET /mcp` with `Last-Event-ID`: the rest of the answer stream that broke off.
async fn resume(seen: Arc<Seen>, headers: HeaderMap) -> Response {
    let from = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let pending = seen.resumable.lock().unwrap().take();
    match (from, pending) {
        (Some("e2"), Some(id)) => sse(vec![(
            Duration::ZERO,
            json!({"jsonrpc": "2.0", "id": id, "result": {"resultType": "complete",
                   "content": [{"type": "text", "text": "resumed"}]}}),
        )]),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn scripted() -> (ServerEntry, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (posted, resumed) = (seen.clone(), seen.clone());
    let app = Router::new().route(
        "/mcp",
        post(move |headers: HeaderMap, body: Bytes| handle(posted.clone(), headers, body))
            .get(move |headers: HeaderMap| resume(resumed.clone(), headers)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let entry = crate::http_entry("scripted", &url);
    (entry, seen)
}

/// The tools called on a [`counted`] server, each with the number of the connection it came on.
type CallLog = Arc<Mutex<Vec<(usize, String)>>>;

/// The scripted server on a hand-run accept loop that numbers the connections it accepts and
/// logs which connection each tool call came on. With `lifetime`, it drops each connection
/// that long after accepting it, without a word, as a server or a load balancer closes an
/// idle connection.
async fn counted(lifetime: Option<Duration>) -> (ServerEntry, CallLog) {
    let seen = Arc::new(Seen::default());
    let log = CallLog::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let calls = log.clone();
    tokio::spawn(async move {
        for number in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, calls) = (seen.clone(), calls.clone());
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let (seen, calls) = (seen.clone(), calls.clone());
                async move {
                    let (parts, body) = request.into_parts();
                    let body = http_body_util::BodyExt::collect(body).await?.to_bytes();
                    let message: Value = serde_json::from_slice(&body).unwrap_or_default();
                    if message["method"] == "tools/call" {
                        let tool = message["params"]["name"].as_str().unwrap_or_default();
                        calls.lock().unwrap().push((number, tool.to_owned()));
                    }
                    Ok::<_, hyper::Error>(handle(seen, parts.headers, body).await)
                }
            });
            tokio::spawn(async move {
                let serving = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                match lifetime {
                    Some(lifetime) => {
                        let _ = tokio::time::timeout(lifetime, serving).await;
                    }
                    None => {
                        let _ = serving.await;
                    }
                }
            });
        }
    });
    let entry = crate::http_entry("counted", &url);
    (entry, log)
}

/// The connections the calls logged from `from` on came on, in order.
fn connections_of(log: &CallLog, from: usize) -> Vec<usize> {
    log.lock().unwrap()[from..]
        .iter()
        .map(|(number, _)| *number)
        .collect()
}

async fn connect(entry: &ServerEntry) -> Connection {
    let options = ConnectOptions {
        era: EraPreference::Modern,
        connect_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    };
    let connection = Connection::connect(entry, &options).await.unwrap();
    assert_eq!(connection.description().era, Era::Modern);
    connection
}

fn quick_call() -> CallOptions {
    CallOptions {
        timeout: Duration::from_secs(5),
        ..CallOptions::default()
    }
}

async fn call(
    connection: &Connection,
    tool: &str,
    options: CallOptions,
) -> Result<Value, ClientError> {
    connection
        .call_tool(tool, Some(serde_json::Map::new()), options)
        .await
        .map(|result| result.raw)
}

#[tokio::test]
async fn calls_carry_the_revisions_headers_and_annotated_arguments() {
    let (entry, seen) = scripted().await;
    // Not listed first: the connection lists the tools itself to learn their headers.
    let connection = connect(&entry).await;
    let arguments =
        json!({"region": "eu-west", "place": {"city": "Zürich"}, "note": "not a header"});
    connection
        .call_tool("headers", arguments.as_object().cloned(), quick_call())
        .await
        .unwrap();
    let heads = seen.heads.lock().unwrap();
    let head = heads.last().unwrap();
    let get = |name: &str| head.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(get("mcp-protocol-version").as_deref(), Some("2026-07-28"));
    assert_eq!(get("mcp-method").as_deref(), Some("tools/call"));
    assert_eq!(get("mcp-name").as_deref(), Some("headers"));
    assert_eq!(get("mcp-param-region").as_deref(), Some("eu-west"));
    // Not ASCII: sent as Base64 of its UTF-8 text.
    assert_eq!(
        get("mcp-param-city").as_deref(),
        Some("=?base64?WsO8cmljaA==?=")
    );
    assert!(
        !head.keys().any(|name| name.as_str() == "mcp-param-note"),
        "only annotated arguments become headers: {head:?}"
    );
}

#[tokio::test]
async fn progress_restarts_the_timeout_and_progress_and_logs_reach_the_caller() {
    let (entry, _seen) = scripted().await;
    let connection = connect(&entry).await;
    let mut events = connection.take_events().unwrap();
    let (progress, mut updates) = mpsc::channel(8);
    // The answer comes 500 ms after the request, but never 400 ms after the last progress.
    let options = CallOptions {
        timeout: Duration::from_millis(400),
        max_duration: Duration::from_secs(5),
        progress: Some(progress),
        ..CallOptions::default()
    };
    let result = call(&connection, "slow-with-progress", options)
        .await
        .unwrap();
    assert_eq!(result["content"][0]["text"], "done");
    let first = updates.recv().await.unwrap();
    let second = updates.recv().await.unwrap();
    assert_eq!((first.progress, second.progress), (1.0, 2.0));
    assert_eq!(second.total, Some(2.0));
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    let ServerEvent::Log(log) = event else {
        panic!("expected the server's log, got {event:?}");
    };
    assert_eq!((log.level.as_str(), log.data), ("info", json!("halfway")));
}

#[tokio::test]
async fn a_call_that_is_not_answered_times_out_and_is_cancelled_at_the_server() {
    let (entry, seen) = scripted().await;
    let connection = connect(&entry).await;
    let options = CallOptions {
        timeout: Duration::from_millis(300),
        ..CallOptions::default()
    };
    let error = call(&connection, "silent", options).await.unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::RequestTimeout {
                method: "tools/call",
                ..
            }
        ),
        "{error:?}"
    );
    // Closing the request's stream is this revision's cancellation over HTTP.
    for _ in 0..50 {
        if seen
            .abandoned
            .lock()
            .unwrap()
            .contains(&"silent".to_owned())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.abandoned
            .lock()
            .unwrap()
            .contains(&"silent".to_owned())
    );
    // The hard limit ends a call that keeps sending progress but never answers.
    let options = CallOptions {
        timeout: Duration::from_secs(5),
        max_duration: Duration::from_millis(300),
        ..CallOptions::default()
    };
    let error = call(&connection, "silent", options).await.unwrap_err();
    assert!(
        matches!(error, ClientError::RequestTimeout { after, .. } if after == Duration::from_millis(300)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_or_dies_mid_call_loses_the_call() {
    let (entry, _seen) = scripted().await;
    let connection = connect(&entry).await;
    for tool in ["hang-up", "dies"] {
        let error = call(&connection, tool, quick_call()).await.unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::ConnectionLost {
                    method: "tools/call",
                    ..
                }
            ),
            "{tool}: {error:?}"
        );
    }
    // The connection still works.
    call(&connection, "fine", quick_call()).await.unwrap();
}

#[tokio::test]
async fn malformed_answers_get_precise_errors() {
    let (entry, _seen) = scripted().await;
    let connection = connect(&entry).await;
    let cases = [
        ("wrong-id", "answered request 7"),
        ("not-json", "without a JSON-RPC answer: hello"),
        ("huge", "larger than 16777216 bytes"),
        ("huge-unannounced", "larger than 16777216 bytes"),
        ("asks", "sent a request (roots/list) on the answer stream"),
    ];
    for (tool, expected) in cases {
        let error = call(&connection, tool, quick_call()).await.unwrap_err();
        let ClientError::Protocol { detail, .. } = &error else {
            panic!("{tool}: expected a protocol error, got {error:?}");
        };
        assert!(detail.contains(expected), "{tool}: {detail}");
    }
    // A JSON-RPC error with an HTTP error status is the server's error, data and all.
    let error = call(&connection, "refused", quick_call())
        .await
        .unwrap_err();
    let ClientError::Rpc {
        code,
        message,
        data,
        ..
    } = error
    else {
        panic!("expected the server's error, got {error:?}");
    };
    assert_eq!((code, message.as_str()), (-32602, "no such tool"));
    assert_eq!(data.as_deref(), Some(&json!({"tool": "refused"})));
    // An event that is not JSON is skipped, as rmcp does; a stream with nothing else ends
    // without an answer.
    let error = call(&connection, "bad-event", quick_call())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::ConnectionLost { diagnostics, .. } if diagnostics.contains("without answering")),
        "{error:?}"
    );
    // HTTP refusals without a JSON-RPC error are classed as a transport would class them:
    // unavailable (counts against health, retried when idempotent), or authorization.
    let error = call(&connection, "overloaded", quick_call())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::ConnectionLost { diagnostics, .. } if diagnostics.contains("HTTP 503 Service Unavailable: try later")),
        "{error:?}"
    );
    let error = call(&connection, "unauthorized", quick_call())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Authorization { reason, .. } if reason.contains("401")),
        "{error:?}"
    );
    call(&connection, "fine", quick_call()).await.unwrap();
}

#[tokio::test]
async fn an_answer_stream_that_breaks_off_is_resumed_from_its_last_event() {
    let (entry, seen) = scripted().await;
    let connection = connect(&entry).await;
    let result = call(&connection, "resumable", quick_call()).await.unwrap();
    assert_eq!(result["content"][0]["text"], "resumed");
    assert!(
        seen.resumable.lock().unwrap().is_none(),
        "the stream was resumed"
    );
}

#[tokio::test]
async fn streams_are_read_leniently_and_list_changes_reach_the_connection() {
    let (entry, _seen) = scripted().await;
    let connection = connect(&entry).await;
    let mut events = connection.take_events().unwrap();
    // Other event types and data that is not JSON are skipped; the id may come as a string.
    call(&connection, "lenient", quick_call()).await.unwrap();
    call(&connection, "changes-tools", quick_call())
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, ServerEvent::ToolsChanged), "{event:?}");
    // A timeout too long for the clock is no panic.
    let options = CallOptions {
        timeout: Duration::MAX,
        max_duration: Duration::MAX,
        ..CallOptions::default()
    };
    call(&connection, "fine", options).await.unwrap();
}

#[tokio::test]
async fn the_wire_tap_sees_calls_on_the_direct_path() {
    let (entry, _seen) = scripted().await;
    let recording = tap();
    let options = ConnectOptions {
        era: EraPreference::Modern,
        connect_timeout: Duration::from_secs(5),
        tap: Some(recording.clone()),
        ..ConnectOptions::default()
    };
    let connection = Connection::connect(&entry, &options).await.unwrap();
    call(&connection, "fine", quick_call()).await.unwrap();
    let lines = recording.lines.lock().unwrap();
    let sent = lines
        .iter()
        .find(|(_, direction, json)| {
            *direction == Direction::Outgoing && json.contains("tools/call")
        })
        .expect("the call was tapped");
    let sent: Value = serde_json::from_str(&sent.2).unwrap();
    let answered = lines
        .iter()
        .filter(|(_, direction, _)| *direction == Direction::Incoming)
        .filter_map(|(_, _, json)| serde_json::from_str::<Value>(json).ok())
        .any(|answer| answer["id"] == sent["id"] && answer.get("result").is_some());
    assert!(answered, "the answer was tapped: {lines:?}");
    assert_eq!(
        sent["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
}

#[tokio::test]
async fn calls_reuse_their_connections_and_take_a_new_one_when_the_server_closed_it() {
    let (entry, log) = counted(Some(Duration::from_millis(1500))).await;
    let connection = connect(&entry).await;
    // Sequential calls take turns on one connection.
    for _ in 0..5 {
        call(&connection, "fine", quick_call()).await.unwrap();
    }
    let sequential = connections_of(&log, 0);
    assert!(
        sequential.iter().all(|c| *c == sequential[0]),
        "{sequential:?}"
    );
    // Calls at once need a connection each; the pool keeps them for the next ones.
    let calls: Vec<_> = (0..4)
        .map(|_| call(&connection, "fine", quick_call()))
        .collect();
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    for _ in 0..4 {
        call(&connection, "fine", quick_call()).await.unwrap();
    }
    let mut used = connections_of(&log, 0);
    used.sort_unstable();
    used.dedup();
    assert!(used.len() <= 4, "{used:?}");
    let after_busy = connections_of(&log, 9);
    assert!(
        after_busy.iter().all(|c| used.contains(c)),
        "{after_busy:?}"
    );
    // The server drops every idle connection; the next call is not lost with them.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    call(&connection, "fine", quick_call()).await.unwrap();
    let last = connections_of(&log, 13);
    assert!(!used.contains(&last[0]), "{last:?} after {used:?}");
}

#[tokio::test]
async fn a_connection_left_with_a_half_read_answer_is_not_reused() {
    let (entry, log) = counted(None).await;
    let connection = connect(&entry).await;
    call(&connection, "fine", quick_call()).await.unwrap();
    // No answer at all, and an answer stream that sends progress and then nothing: the
    // timeout drops each with its connection, which has the rest of that answer coming.
    for tool in ["silent", "stalls"] {
        let options = CallOptions {
            timeout: Duration::from_millis(300),
            ..CallOptions::default()
        };
        let error = call(&connection, tool, options).await.unwrap_err();
        assert!(
            matches!(error, ClientError::RequestTimeout { .. }),
            "{tool}: {error:?}"
        );
        call(&connection, "fine", quick_call()).await.unwrap();
    }
    let calls = log.lock().unwrap().clone();
    let tools: Vec<&str> = calls.iter().map(|(_, tool)| tool.as_str()).collect();
    assert_eq!(tools, ["fine", "silent", "fine", "stalls", "fine"]);
    // Each call after a fine one reuses its connection; none reuses an abandoned one.
    assert_eq!(calls[1].0, calls[0].0);
    assert_ne!(calls[2].0, calls[1].0);
    assert_eq!(calls[3].0, calls[2].0);
    assert_ne!(calls[4].0, calls[3].0);
}

/// A socket belongs to the runtime it was made on: a single-threaded runtime takes again only
/// the connections it made, while a multi-threaded runtime's workers share theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_threaded_runtime_reuses_only_the_connections_it_made() {
    let (entry, log) = counted(None).await;
    let connection = Arc::new(connect(&entry).await);
    let first_runtime = ThreeCallsAtATime::start(connection.clone());
    let second_runtime = ThreeCallsAtATime::start(connection.clone());
    let one_connection = |from: usize| {
        let used = connections_of(&log, from);
        assert_eq!(used.len(), 3, "{used:?}");
        assert!(used.iter().all(|c| *c == used[0]), "{used:?}");
        used[0]
    };

    first_runtime.calls();
    let first = one_connection(0);
    // Both runtimes are alive, and the first one's connection is idle in the pool.
    second_runtime.calls();
    let second = one_connection(3);
    assert_ne!(
        first, second,
        "another runtime took the first one's connection"
    );
    first_runtime.calls();
    assert_eq!(one_connection(6), first);
    for _ in 0..3 {
        call(&connection, "fine", quick_call()).await.unwrap();
    }
    let shared = one_connection(9);
    assert!(
        shared != first && shared != second,
        "the multi-threaded runtime took a single-threaded one's connection"
    );
}

/// A thread with a single-threaded runtime of its own that makes three sequential calls
/// when told to. The runtime lives as long as this does.
struct ThreeCallsAtATime {
    orders: std::sync::mpsc::Sender<()>,
    done: std::sync::mpsc::Receiver<()>,
}

impl ThreeCallsAtATime {
    fn start(connection: Arc<Connection>) -> ThreeCallsAtATime {
        let (orders, ordered) = std::sync::mpsc::channel::<()>();
        let (finished, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            while ordered.recv().is_ok() {
                runtime.block_on(async {
                    for _ in 0..3 {
                        call(&connection, "fine", quick_call()).await.unwrap();
                    }
                });
                let _ = finished.send(());
            }
        });
        ThreeCallsAtATime { orders, done }
    }

    fn calls(&self) {
        self.orders.send(()).unwrap();
        self.done
            .recv_timeout(Duration::from_secs(20))
            .expect("the calls were made");
    }
}
