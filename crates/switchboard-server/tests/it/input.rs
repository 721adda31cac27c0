//! Handlers that ask the client for input: real server-to-client requests in legacy sessions
//! (over stdio and HTTP), `input_required` results and their retries in 2026-07-28.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use switchboard_server::{
    InputRequest, Prompt, PromptOutput, Resource, Server, Session, Tool, ToolOutput,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::{Empty, exchange};

fn name_form() -> InputRequest {
    InputRequest::elicitation(
        "What is your name?",
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
    )
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Greeting {
    pub greeting: String,
}

/// Tools, a prompt and a resource that ask for input.
fn input_server() -> Server {
    Server::builder("input-test", "1")
        .request_state_key([9; 32])
        .tool(Tool::builder("ask_name", "Asks the user's name.").handler(
            |args: Greeting, cx| async move {
                let answer = cx.input("user_name", name_form()).await?;
                Ok(ToolOutput::text(format!(
                    "{}, {}!",
                    args.greeting,
                    answer["content"]["name"].as_str().unwrap_or("?")
                )))
            },
        ))
        .tool(
            Tool::builder(
                "ask_all",
                "Asks for a name, a sample and the roots at once.",
            )
            .handler(|_: Empty, cx| async move {
                let answers = cx
                    .inputs(&[
                        ("user_name", name_form()),
                        ("idea", InputRequest::sampling_text("An idea?", 20)),
                        ("roots", InputRequest::roots()),
                    ])
                    .await?;
                Ok(ToolOutput::text(format!(
                    "{} / {} / {}",
                    answers["user_name"]["content"]["name"],
                    answers["idea"]["content"]["text"],
                    answers["roots"]["roots"].as_array().map_or(0, Vec::len)
                )))
            }),
        )
        .tool(
            Tool::builder(
                "two_steps",
                "Asks a name, then a colour, keeping the name in state.",
            )
            .handler(|_: Empty, cx| async move {
                let name = match cx.state() {
                    Some(state) => state["name"].as_str().unwrap_or_default().to_owned(),
                    None => {
                        let answer = cx.input("step1", name_form()).await?;
                        let name = answer["content"]["name"].as_str().unwrap_or_default();
                        cx.set_state(json!({"name": name}));
                        name.to_owned()
                    }
                };
                let colour = cx
                    .input(
                        "step2",
                        InputRequest::elicitation(
                            "Colour?",
                            json!({"type": "object", "properties": {"color": {"type": "string"}}}),
                        ),
                    )
                    .await?;
                Ok(ToolOutput::text(format!(
                    "{name} likes {}",
                    colour["content"]["color"].as_str().unwrap_or_default()
                )))
            }),
        )
        .tool(
            Tool::builder("polite", "Asks only what the client can answer.").handler(
                |_: Empty, cx| async move {
                    let wanted = [
                        ("user_name", name_form()),
                        ("idea", InputRequest::sampling_text("An idea?", 20)),
                    ];
                    let askable: Vec<_> =
                        wanted.into_iter().filter(|(_, r)| cx.can_ask(r)).collect();
                    let answers = cx.inputs(&askable).await?;
                    Ok(ToolOutput::text(format!("{} answers", answers.len())))
                },
            ),
        )
        .prompt(
            Prompt::builder("ask_prompt", "Asks the user for context.").handler(
                |_, cx| async move {
                    let answer = cx.input("user_name", name_form()).await?;
                    Ok(PromptOutput::user_text(format!(
                        "Write to {}.",
                        answer["content"]["name"].as_str().unwrap_or_default()
                    )))
                },
            ),
        )
        .resource(Resource::new(
            "kit://asks",
            "asks",
            "text/plain",
            |cx| async move {
                cx.input("user_name", name_form()).await?;
                Ok(vec![])
            },
        ))
        .build()
        .unwrap()
}

const ALL_CAPABILITIES: &str = r#"{"elicitation":{},"sampling":{},"roots":{"listChanged":true}}"#;

fn meta(capabilities: &str) -> String {
    format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{capabilities}}}"#
    )
}

/// A 2026-07-28 `tools/call`; `extra` is more params (`inputResponses`, `requestState`).
fn call(id: u32, tool: &str, arguments: &str, extra: &str) -> String {
    call_with(id, tool, arguments, extra, ALL_CAPABILITIES)
}

fn call_with(id: u32, tool: &str, arguments: &str, extra: &str, capabilities: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("{extra},")
    };
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments},{extra}{}}}}}"#,
        meta(capabilities)
    )
}

fn one(server: &Server, line: &str) -> Value {
    exchange(server, &mut Session::new(None), &[line]).remove(0)
}

fn accept(content: Value) -> Value {
    json!({"action": "accept", "content": content})
}

fn retry_params(answers: &Value, state: &Value) -> String {
    format!(r#""inputResponses":{answers},"requestState":{state}"#)
}

#[test]
fn mrtr_first_round_asks_for_input_with_a_signed_state() {
    let server = input_server();
    let answer = one(&server, &call(1, "ask_name", r#"{"greeting":"Hi"}"#, ""));
    let result = &answer["result"];
    assert_eq!(result["resultType"], "input_required", "{answer}");
    assert_eq!(
        result["inputRequests"],
        json!({"user_name": {"method": "elicitation/create", "params": {
            "message": "What is your name?",
            "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        }}})
    );
    assert!(
        result["requestState"]
            .as_str()
            .is_some_and(|s| s.starts_with("v1.")),
        "{result}"
    );
    assert!(result.get("content").is_none());
}

#[test]
fn mrtr_retry_with_the_answers_completes() {
    let server = input_server();
    let first = one(&server, &call(1, "ask_name", r#"{"greeting":"Hi"}"#, ""));
    let state = &first["result"]["requestState"];
    let answers = json!({"user_name": accept(json!({"name": "Alice"}))});
    // The arguments may come back in another key order: they are compared canonically.
    let second = one(
        &server,
        &call(
            2,
            "ask_name",
            r#"{ "greeting" : "Hi" }"#,
            &retry_params(&answers, state),
        ),
    );
    assert_eq!(
        second["result"],
        json!({"resultType": "complete", "content": [{"type": "text", "text": "Hi, Alice!"}]})
    );
    // Without the state (it is optional), with extra keys the handler did not ask for.
    let answers =
        json!({"user_name": accept(json!({"name": "Bob"})), "extra": {"action": "cancel"}});
    let third = one(
        &server,
        &call(
            3,
            "ask_name",
            r#"{"greeting":"Yo"}"#,
            &format!(r#""inputResponses":{answers}"#),
        ),
    );
    assert_eq!(third["result"]["content"][0]["text"], "Yo, Bob!");
}

#[test]
fn mrtr_tampered_or_foreign_state_is_refused() {
    let server = input_server();
    let first = one(&server, &call(1, "ask_name", r#"{"greeting":"Hi"}"#, ""));
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    let answers = json!({"user_name": accept(json!({"name": "Alice"}))});
    let tampered = one(
        &server,
        &call(
            2,
            "ask_name",
            r#"{"greeting":"Hi"}"#,
            &retry_params(&answers, &json!(format!("{state}-TAMPERED"))),
        ),
    );
    assert_eq!(tampered["error"]["code"], -32602, "{tampered}");
    assert!(
        tampered["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requestState"),
        "{tampered}"
    );
    // A genuine state, but issued for other arguments.
    let other = one(
        &server,
        &call(
            3,
            "ask_name",
            r#"{"greeting":"Bye"}"#,
            &retry_params(&answers, &json!(state)),
        ),
    );
    assert_eq!(other["error"]["code"], -32602, "{other}");
    // A state from another server (another key).
    let stranger = Server::builder("input-test", "1")
        .tool(Tool::builder("ask_name", "Asks the user's name.").handler(
            |_: Greeting, cx| async move {
                cx.input("user_name", name_form()).await?;
                Ok(ToolOutput::text("?"))
            },
        ))
        .build()
        .unwrap();
    let foreign = one(
        &stranger,
        &call(
            4,
            "ask_name",
            r#"{"greeting":"Hi"}"#,
            &retry_params(&answers, &json!(state)),
        ),
    );
    assert_eq!(foreign["error"]["code"], -32602, "{foreign}");
}

#[test]
fn mrtr_missing_answers_are_asked_for_again() {
    let server = input_server();
    let wrong = json!({"wrong_key": accept(json!({"data": "wrong"}))});
    let answer = one(
        &server,
        &call(
            1,
            "ask_name",
            r#"{"greeting":"Hi"}"#,
            &format!(r#""inputResponses":{wrong}"#),
        ),
    );
    assert_eq!(answer["result"]["resultType"], "input_required", "{answer}");
    assert!(answer["result"]["inputRequests"]["user_name"].is_object());
    // In a batch, only what is still missing is asked for again.
    let partial = json!({"idea": {"role": "assistant", "content": {"type": "text", "text": "tea"}, "model": "m"}});
    let answer = one(
        &server,
        &call(
            2,
            "ask_all",
            "{}",
            &format!(r#""inputResponses":{partial}"#),
        ),
    );
    let asked: Vec<&String> = answer["result"]["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(asked, ["roots", "user_name"], "{answer}");
    assert_eq!(
        answer["result"]["inputRequests"]["roots"],
        json!({"method": "roots/list", "params": {}})
    );
}

#[test]
fn mrtr_malformed_answers_are_errors() {
    let server = input_server();
    for extra in [
        r#""inputResponses":null"#,
        r#""inputResponses":{"user_name":12345}"#,
        r#""inputResponses":{"user_name":{"content":{"name":"no action"}}}"#,
    ] {
        let answer = one(&server, &call(1, "ask_name", r#"{"greeting":"Hi"}"#, extra));
        assert_eq!(answer["error"]["code"], -32602, "{extra}: {answer}");
    }
}

#[test]
fn mrtr_asks_only_for_declared_capabilities() {
    let server = input_server();
    // A handler that checks first asks only for what the client can answer.
    let answer = one(
        &server,
        &call_with(1, "polite", "{}", "", r#"{"sampling":{}}"#),
    );
    assert_eq!(
        answer["result"]["inputRequests"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["idea"],
        "{answer}"
    );
    // One that asks anyway gets -32021 naming the capability, never an input_required.
    let answer = one(
        &server,
        &call_with(
            2,
            "ask_name",
            r#"{"greeting":"Hi"}"#,
            "",
            r#"{"sampling":{}}"#,
        ),
    );
    assert_eq!(answer["error"]["code"], -32021, "{answer}");
    assert_eq!(
        answer["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
}

#[test]
fn mrtr_multi_round_state_carries_earlier_answers() {
    let server = input_server();
    let first = one(&server, &call(1, "two_steps", "{}", ""));
    assert!(
        first["result"]["inputRequests"]["step1"].is_object(),
        "{first}"
    );
    let answers = json!({"step1": accept(json!({"name": "Alice"}))});
    let second = one(
        &server,
        &call(
            2,
            "two_steps",
            "{}",
            &retry_params(&answers, &first["result"]["requestState"]),
        ),
    );
    assert!(
        second["result"]["inputRequests"]["step2"].is_object(),
        "{second}"
    );
    assert!(second["result"]["inputRequests"].get("step1").is_none());
    assert_ne!(
        second["result"]["requestState"], first["result"]["requestState"],
        "the new round carries the new state"
    );
    // The last round carries only the newest answer; the name comes from the state.
    let answers = json!({"step2": accept(json!({"color": "blue"}))});
    let third = one(
        &server,
        &call(
            3,
            "two_steps",
            "{}",
            &retry_params(&answers, &second["result"]["requestState"]),
        ),
    );
    assert_eq!(
        third["result"]["content"][0]["text"], "Alice likes blue",
        "{third}"
    );
}

#[test]
fn mrtr_works_for_prompts_and_nowhere_else() {
    let server = input_server();
    let get = |id: u32, extra: &str| {
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("{extra},")
        };
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"prompts/get","params":{{"name":"ask_prompt",{extra}{}}}}}"#,
            meta(ALL_CAPABILITIES)
        )
    };
    let first = one(&server, &get(1, ""));
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let answers = json!({"user_name": accept(json!({"name": "Ada"}))});
    let second = one(
        &server,
        &get(2, &retry_params(&answers, &first["result"]["requestState"])),
    );
    assert_eq!(second["result"]["resultType"], "complete");
    assert_eq!(
        second["result"]["messages"][0]["content"]["text"],
        "Write to Ada."
    );
    // A tool's state is not good for the prompt of the same name's sibling, and vice versa.
    let tool = one(&server, &call(3, "ask_name", r#"{"greeting":"Hi"}"#, ""));
    let crossed = one(
        &server,
        &get(4, &retry_params(&answers, &tool["result"]["requestState"])),
    );
    assert_eq!(crossed["error"]["code"], -32602, "{crossed}");
    // resources/read may not answer input_required: the reader's ask fails.
    let read = one(
        &server,
        &format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{{"uri":"kit://asks",{}}}}}"#,
            meta(ALL_CAPABILITIES)
        ),
    );
    assert!(read.get("result").is_none(), "{read}");
    assert_eq!(read["error"]["code"], -32603, "{read}");
}

// Legacy sessions: the kit sends real requests and waits for the answers.

type Lines = tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>;

async fn next(lines: &mut Lines) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("an answer within 5 s")
        .unwrap()
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

/// A legacy stdio session over an in-memory stream, initialized with `capabilities`.
async fn stdio_session(
    capabilities: &str,
) -> (tokio::io::WriteHalf<tokio::io::DuplexStream>, Lines) {
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(
        input_server(),
        server_read,
        server_write,
    ));
    let (client_read, mut input) = tokio::io::split(client);
    let mut output = BufReader::new(client_read).lines();
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{capabilities},"clientInfo":{{"name":"t","version":"0"}}}}}}"#
    );
    send(&mut input, &init).await;
    assert_eq!(next(&mut output).await["id"], 0);
    send(
        &mut input,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    (input, output)
}

async fn send(input: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>, line: &str) {
    input.write_all(line.as_bytes()).await.unwrap();
    input.write_all(b"\n").await.unwrap();
}

fn legacy_call(id: u32, tool: &str, arguments: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    )
}

#[tokio::test]
async fn legacy_stdio_requests_go_to_the_client_and_answers_come_back() {
    let (mut input, mut output) = stdio_session(ALL_CAPABILITIES).await;
    send(&mut input, &legacy_call(1, "ask_all", "{}")).await;
    // All three requests go out together, with ids of the server's own.
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(next(&mut output).await);
    }
    let mut methods: Vec<&str> = requests
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    methods.sort_unstable();
    assert_eq!(
        methods,
        ["elicitation/create", "roots/list", "sampling/createMessage"]
    );
    for request in &requests {
        assert!(
            request["id"].as_str().unwrap().starts_with("s-"),
            "{request}"
        );
    }
    let sampling = requests
        .iter()
        .find(|r| r["method"] == "sampling/createMessage")
        .unwrap();
    assert_eq!(sampling["params"]["maxTokens"], 20);
    // Answered in reverse order.
    for request in requests.iter().rev() {
        let result = match request["method"].as_str().unwrap() {
            "elicitation/create" => accept(json!({"name": "Alice"})),
            "sampling/createMessage" => {
                json!({"role": "assistant", "content": {"type": "text", "text": "tea"}, "model": "m"})
            }
            _ => json!({"roots": [{"uri": "file:///a"}, {"uri": "file:///b"}]}),
        };
        send(
            &mut input,
            &json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string(),
        )
        .await;
    }
    let answer = next(&mut output).await;
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["content"][0]["text"], r#""Alice" / "tea" / 2"#,
        "{answer}"
    );
    assert!(answer["result"].get("resultType").is_none());
}

#[tokio::test]
async fn legacy_stdio_failures_reach_the_handler() {
    // The client did not declare elicitation: refused before anything is sent.
    let (mut input, mut output) = stdio_session(r#"{"sampling":{}}"#).await;
    send(
        &mut input,
        &legacy_call(1, "ask_name", r#"{"greeting":"Hi"}"#),
    )
    .await;
    let answer = next(&mut output).await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], -32021);

    // The client answers with an error.
    let (mut input, mut output) = stdio_session(ALL_CAPABILITIES).await;
    send(
        &mut input,
        &legacy_call(2, "ask_name", r#"{"greeting":"Hi"}"#),
    )
    .await;
    let request = next(&mut output).await;
    assert_eq!(request["method"], "elicitation/create");
    send(
        &mut input,
        &json!({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -1, "message": "user rejected"}}).to_string(),
    )
    .await;
    let answer = next(&mut output).await;
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["error"]["code"], -32603);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("user rejected"),
        "{answer}"
    );

    // The call is cancelled while it waits: the server cancels its own request too.
    send(
        &mut input,
        &legacy_call(3, "ask_name", r#"{"greeting":"Hi"}"#),
    )
    .await;
    let request = next(&mut output).await;
    send(
        &mut input,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
    )
    .await;
    let cancelled = next(&mut output).await;
    assert_eq!(
        cancelled["method"], "notifications/cancelled",
        "{cancelled}"
    );
    assert_eq!(cancelled["params"]["requestId"], request["id"]);

    // End of input while a handler waits: it fails at once rather than at its timeout.
    send(
        &mut input,
        &legacy_call(4, "ask_name", r#"{"greeting":"Hi"}"#),
    )
    .await;
    let request = next(&mut output).await;
    assert_eq!(request["method"], "elicitation/create", "{request}");
    input.shutdown().await.unwrap();
    let answer = next(&mut output).await;
    assert_eq!(answer["id"], 4);
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
}

// Legacy over HTTP: the request travels on the POST's event stream, the answer in a new POST.

struct Running {
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_http() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(switchboard_server::serve_listener(
        input_server(),
        listener,
        switchboard_server::HttpConfig::default(),
    ));
    Running {
        url: format!("http://127.0.0.1:{port}/mcp"),
        task,
    }
}

async fn http_session(server: &Running) -> String {
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{ALL_CAPABILITIES},"clientInfo":{{"name":"t","version":"0"}}}}}}"#
    );
    let response = crate::http::post(&server.url, &init, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Read server-sent events until `count` messages have come.
async fn read_events(
    response: &mut reqwest::Response,
    buffer: &mut String,
    count: usize,
) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                messages.push(serde_json::from_str(data).unwrap());
            }
        }
        if messages.len() >= count {
            return messages;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream is still open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn legacy_http_requests_travel_on_the_calls_event_stream() {
    let server = start_http().await;
    let session = http_session(&server).await;
    let mut call = crate::http::post(
        &server.url,
        &legacy_call(1, "ask_name", r#"{"greeting":"Hello"}"#),
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(call.status(), StatusCode::OK);
    assert!(
        call.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let request = read_events(&mut call, &mut buffer, 1).await.remove(0);
    assert_eq!(request["method"], "elicitation/create", "{request}");
    assert_eq!(request["params"]["message"], "What is your name?");
    let answered = crate::http::post(
        &server.url,
        &json!({"jsonrpc": "2.0", "id": request["id"], "result": accept(json!({"name": "Alice"}))})
            .to_string(),
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(answered.status(), StatusCode::ACCEPTED);
    let answer = read_events(&mut call, &mut buffer, 1).await.remove(0);
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["content"][0]["text"], "Hello, Alice!");
}

#[tokio::test]
async fn legacy_http_clients_that_take_only_json_cannot_be_asked() {
    let server = start_http().await;
    let session = http_session(&server).await;
    let response = crate::http::client()
        .post(&server.url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header("mcp-session-id", &session)
        .body(legacy_call(1, "ask_name", r#"{"greeting":"Hello"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text/event-stream"),
        "{body}"
    );
}
