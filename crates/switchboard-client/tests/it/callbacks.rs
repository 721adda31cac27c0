//! Answering what a server asks of the client, against our own server kit over an in-memory
//! stream: real server requests in a legacy session, `input_required` rounds in 2026-07-28.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, EraPreference,
    callbacks::{
        CallbackError, CallbackFuture, Callbacks, ClientCallbacks, ElicitationRequest,
        ElicitationResponse, Root, SamplingRequest, SamplingResponse,
    },
    model::{Content, Direction, Era},
};
use switchboard_server::{InputRequest, Server, Tool, ToolOutput};

use crate::{RecordingTap, name, tap};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Empty {}

fn name_form() -> InputRequest {
    InputRequest::elicitation(
        "What is your name?",
        json!({"type": "object", "properties": {"name": {"type": "string", "default": "Ada"}}}),
    )
}

/// Tools that ask for each kind of input, and one that asks twice.
fn asking_server() -> Server {
    Server::builder("asking", "1")
        .tool(
            Tool::builder("greet", "Asks the user's name.").handler(|_: Empty, cx| async move {
                let answer = cx.input("user_name", name_form()).await?;
                Ok(ToolOutput::text(format!(
                    "Hello, {}!",
                    answer["content"]["name"].as_str().unwrap_or("?")
                )))
            }),
        )
        .tool(
            Tool::builder("think", "Asks the client's model.").handler(|_: Empty, cx| async move {
                let answer = cx
                    .input("idea", InputRequest::sampling_text("An idea?", 20))
                    .await?;
                Ok(ToolOutput::text(format!(
                    "{} said {}",
                    answer["model"].as_str().unwrap_or("?"),
                    answer["content"]["text"].as_str().unwrap_or("?")
                )))
            }),
        )
        .tool(
            Tool::builder("where", "Asks for the roots.").handler(|_: Empty, cx| async move {
                let answer = cx.input("roots", InputRequest::roots()).await?;
                Ok(ToolOutput::text(
                    answer["roots"][0]["uri"].as_str().unwrap_or("none").to_owned(),
                ))
            }),
        )
        .tool(
            Tool::builder("two_steps", "Asks a name, then a colour.").handler(
                |_: Empty, cx| async move {
                    let name = match cx.state() {
                        Some(state) => state["name"].as_str().unwrap_or_default().to_owned(),
                        None => {
                            let answer = cx.input("step1", name_form()).await?;
                            let name = answer["content"]["name"].as_str().unwrap_or_default();
                            cx.set_state(json!({"name": name}));
                            name.to_owned()
                        }
                    };
                    let colour_form = InputRequest::elicitation(
                        "Your favourite colour?",
                        json!({"type": "object", "properties": {"colour": {"type": "string", "default": "green"}}}),
                    );
                    let colour = cx.input("step2", colour_form).await?;
                    Ok(ToolOutput::text(format!(
                        "{name} likes {}",
                        colour["content"]["colour"].as_str().unwrap_or("?")
                    )))
                },
            ),
        )
        .build()
        .unwrap()
}

/// Accepts forms with their defaults, answers sampling with a fixed text, lists one root, and
/// records what it was asked.
#[derive(Debug, Default)]
struct Answers {
    asked: Mutex<Vec<String>>,
}

impl ClientCallbacks for Answers {
    fn supported(&self) -> Callbacks {
        Callbacks {
            elicitation: true,
            sampling: true,
            roots: true,
        }
    }

    fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
        self.asked.lock().unwrap().push(request.message.clone());
        Box::pin(async move { Ok(ElicitationResponse::accept(request.defaults())) })
    }

    fn sample(&self, request: SamplingRequest) -> CallbackFuture<'_, SamplingResponse> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("sampling with {} tokens", request.max_tokens));
        Box::pin(async { Ok(SamplingResponse::text("test-model", "42")) })
    }

    fn roots(&self) -> CallbackFuture<'_, Vec<Root>> {
        self.asked.lock().unwrap().push("roots".to_owned());
        Box::pin(async {
            Ok(vec![Root {
                uri: "file:///work".to_owned(),
                name: None,
            }])
        })
    }
}

/// A user who declines every form.
#[derive(Debug)]
struct Refuses;

impl ClientCallbacks for Refuses {
    fn supported(&self) -> Callbacks {
        Callbacks {
            elicitation: true,
            ..Callbacks::default()
        }
    }

    fn elicit(&self, _request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
        Box::pin(async { Err(CallbackError::new("the user closed the window")) })
    }
}

async fn connect(era: EraPreference, options: ConnectOptions) -> Connection {
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(
        asking_server(),
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client);
    let options = ConnectOptions { era, ..options };
    Connection::connect_io(name("asking"), client_read, client_write, &options)
        .await
        .unwrap()
}

fn with(
    callbacks: Arc<dyn ClientCallbacks>,
    recorder: Option<Arc<RecordingTap>>,
) -> ConnectOptions {
    ConnectOptions {
        callbacks: Some(callbacks),
        tap: recorder.map(|r| r as Arc<dyn switchboard_client::WireTap>),
        ..ConnectOptions::default()
    }
}

async fn text_of(connection: &Connection, tool: &str) -> Result<String, ClientError> {
    let result = connection
        .call_tool(tool, None, CallOptions::default())
        .await?;
    assert!(!result.is_error, "{:?}", result.content);
    match &result.content[..] {
        [Content::Text { text }] => Ok(text.clone()),
        other => panic!("expected one text, got {other:?}"),
    }
}

#[tokio::test]
async fn legacy_server_requests_are_answered_by_the_callbacks() {
    let answers = Arc::new(Answers::default());
    let connection = connect(EraPreference::Legacy, with(answers.clone(), None)).await;
    assert_eq!(connection.description().era, Era::Legacy);
    assert_eq!(text_of(&connection, "greet").await.unwrap(), "Hello, Ada!");
    assert_eq!(
        text_of(&connection, "think").await.unwrap(),
        "test-model said 42"
    );
    assert_eq!(text_of(&connection, "where").await.unwrap(), "file:///work");
    assert_eq!(
        *answers.asked.lock().unwrap(),
        ["What is your name?", "sampling with 20 tokens", "roots"]
    );
}

#[tokio::test]
async fn input_required_rounds_are_answered_and_the_call_retried() {
    let answers = Arc::new(Answers::default());
    let recorder = tap();
    let connection = connect(
        EraPreference::Modern,
        with(answers.clone(), Some(recorder.clone())),
    )
    .await;
    assert_eq!(connection.description().era, Era::Modern);
    assert_eq!(text_of(&connection, "greet").await.unwrap(), "Hello, Ada!");
    assert_eq!(
        text_of(&connection, "think").await.unwrap(),
        "test-model said 42"
    );
    assert_eq!(text_of(&connection, "where").await.unwrap(), "file:///work");

    // The retry carries the answer and the server's requestState unchanged, with a new id.
    let sent: Vec<Value> = recorder
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, direction, _)| *direction == Direction::Outgoing)
        .map(|(_, _, json)| serde_json::from_str(json).unwrap())
        .filter(|message: &Value| {
            message["method"] == "tools/call" && message["params"]["name"] == "greet"
        })
        .collect();
    let received: Vec<Value> = recorder
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, direction, _)| *direction == Direction::Incoming)
        .map(|(_, _, json)| serde_json::from_str(json).unwrap())
        .collect();
    let [first, retry] = &sent[..] else {
        panic!("expected two greet calls, got {sent:#?}");
    };
    assert_ne!(first["id"], retry["id"]);
    assert!(first["params"].get("inputResponses").is_none());
    assert!(first["params"].get("requestState").is_none());
    let asked = received
        .iter()
        .find(|message| message["id"] == first["id"])
        .unwrap();
    assert_eq!(asked["result"]["resultType"], "input_required");
    assert_eq!(
        retry["params"]["requestState"],
        asked["result"]["requestState"]
    );
    assert_eq!(
        retry["params"]["inputResponses"]["user_name"],
        json!({"action": "accept", "content": {"name": "Ada"}})
    );
}

#[tokio::test]
async fn a_call_may_take_several_rounds() {
    let answers = Arc::new(Answers::default());
    let connection = connect(EraPreference::Modern, with(answers.clone(), None)).await;
    assert_eq!(
        text_of(&connection, "two_steps").await.unwrap(),
        "Ada likes green"
    );
    assert_eq!(
        *answers.asked.lock().unwrap(),
        ["What is your name?", "Your favourite colour?"]
    );
}

#[tokio::test]
async fn without_callbacks_no_capability_is_declared() {
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let connection = connect(era, ConnectOptions::default()).await;
        let error = text_of(&connection, "greet").await.unwrap_err();
        // The kit refuses to ask a client that did not declare elicitation (-32021).
        assert!(
            matches!(error, ClientError::Rpc { code: -32021, .. }),
            "{era:?}: {error}"
        );
    }
}

#[tokio::test]
async fn a_callback_that_fails_ends_the_call_with_its_reason() {
    let connection = connect(EraPreference::Modern, with(Arc::new(Refuses), None)).await;
    let error = text_of(&connection, "greet").await.unwrap_err();
    assert!(matches!(error, ClientError::Protocol { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("elicitation/create"), "{message}");
    assert!(message.contains("the user closed the window"), "{message}");

    // The same failure in a legacy session reaches the server as an error answer.
    let connection = connect(EraPreference::Legacy, with(Arc::new(Refuses), None)).await;
    let error = tokio::time::timeout(Duration::from_secs(10), text_of(&connection, "greet"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.to_string().contains("the user closed the window"),
        "{error}"
    );
}

/// A TypeScript SDK server that asks through its server object sends the request on the
/// session's GET stream, and drops it if that stream is not open yet. `connect` returns only
/// once the stream is open, so a tool called at once is still asked, and answered. The server
/// holds every GET for 300 ms to make the window wide.
#[tokio::test]
async fn a_request_on_the_standalone_stream_right_after_connect_is_answered() {
    use tokio::io::AsyncBufReadExt;
    let Some(node) = test_support::peers::require("node/node_modules/node/bin/node", "Node 22")
    else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-support/peers/ts_asking_server.mjs");
    let mut child = tokio::process::Command::new(node)
        .arg(script)
        .env("SWITCHBOARD_PEERS_DIR", test_support::peers::dir())
        .env("GET_DELAY_MS", "300")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("the TypeScript server did not start within 20 s")
        .unwrap()
        .unwrap();
    let port = line.strip_prefix("listening ").unwrap();
    let entry = crate::http_entry("ts", &format!("http://127.0.0.1:{port}/mcp"));
    let answers = Arc::new(Answers::default());
    let connection = Connection::connect(&entry, &with(answers.clone(), None))
        .await
        .unwrap();
    assert_eq!(connection.description().era, Era::Legacy);
    let options = CallOptions {
        timeout: Duration::from_secs(5),
        ..CallOptions::default()
    };
    let result = connection.call_tool("ask", None, options).await.unwrap();
    assert_eq!(
        result.content,
        vec![Content::Text {
            text: "accept: Ada".into()
        }]
    );
    assert_eq!(*answers.asked.lock().unwrap(), ["What is your name?"]);
}
