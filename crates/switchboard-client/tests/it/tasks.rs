//! Calls that a 2026-07-28 server runs as tasks (SEP-2663): the client declares the
//! extension, follows the task with `tasks/get`, answers its input with `tasks/update`, and
//! cancels it when the call is given up. Against our server kit over an in-memory stream and
//! over loopback HTTP.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, EraPreference,
    callbacks::{
        CallbackFuture, Callbacks, ClientCallbacks, ElicitationRequest, ElicitationResponse,
    },
    model::{Content, Direction},
};
use switchboard_server::{HandlerError, InputRequest, Server, TaskSupport, Tool, ToolOutput};

use crate::{RecordingTap, name, tap};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Empty {}

/// Set when the `forever` handler is dropped: its task was cancelled.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn task_server(dropped: Arc<AtomicBool>) -> Server {
    Server::builder("tasks", "1")
        .tool(
            Tool::builder("long", "Takes a while; only as a task.")
                .task_support(TaskSupport::Required)
                .handler(|_: Empty, _| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(ToolOutput::text("long job done"))
                }),
        )
        .tool(
            Tool::builder("confirm", "Asks for a name inside the task.")
                .task_support(TaskSupport::Optional)
                .handler(|_: Empty, cx| async move {
                    let form = InputRequest::elicitation(
                        "Who is asking?",
                        json!({"type": "object", "properties": {"name": {"type": "string", "default": "Ada"}}}),
                    );
                    let answer = cx.input("name", form).await?;
                    Ok(ToolOutput::text(format!(
                        "confirmed by {}",
                        answer["content"]["name"].as_str().unwrap_or("?")
                    )))
                }),
        )
        .tool(
            Tool::builder("broken", "Fails with a protocol error.")
                .task_support(TaskSupport::Required)
                .handler(|_: Empty, _| async {
                    Err::<ToolOutput, _>(HandlerError::Internal("the disk is full".into()))
                }),
        )
        .tool(
            Tool::builder("forever", "Never ends on its own.")
                .task_support(TaskSupport::Required)
                .handler(move |_: Empty, _| {
                    let guard = Dropped(dropped.clone());
                    async move {
                        let _guard = guard;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(ToolOutput::text("never"))
                    }
                }),
        )
        .build()
        .unwrap()
}

/// Accepts every form with its defaults.
#[derive(Debug)]
struct Accept;

impl ClientCallbacks for Accept {
    fn supported(&self) -> Callbacks {
        Callbacks {
            elicitation: true,
            ..Callbacks::default()
        }
    }

    fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
        Box::pin(async move { Ok(ElicitationResponse::accept(request.defaults())) })
    }
}

fn options(recorder: &Arc<RecordingTap>) -> ConnectOptions {
    ConnectOptions {
        era: EraPreference::Modern,
        callbacks: Some(Arc::new(Accept)),
        tap: Some(recorder.clone() as Arc<dyn switchboard_client::WireTap>),
        ..ConnectOptions::default()
    }
}

async fn over_stdio(server: Server, recorder: &Arc<RecordingTap>) -> Connection {
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(server, server_read, server_write));
    let (client_read, client_write) = tokio::io::split(client);
    Connection::connect_io(name("tasks"), client_read, client_write, &options(recorder))
        .await
        .unwrap()
}

async fn over_http(server: Server, recorder: &Arc<RecordingTap>) -> Connection {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(switchboard_server::serve_listener(
        server,
        listener,
        switchboard_server::HttpConfig::default(),
    ));
    let entry = crate::http_entry("tasks-http", &format!("http://127.0.0.1:{port}/mcp"));
    Connection::connect(&entry, &options(recorder))
        .await
        .unwrap()
}

async fn text_of(connection: &Connection, tool: &str) -> Result<String, ClientError> {
    let result = connection
        .call_tool(tool, None, CallOptions::default())
        .await?;
    match &result.content[..] {
        [Content::Text { text }] => Ok(text.clone()),
        other => panic!("expected one text, got {other:?}"),
    }
}

/// The methods the client sent, in order.
fn sent(recorder: &RecordingTap) -> Vec<String> {
    recorder
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, direction, _)| *direction == Direction::Outgoing)
        .filter_map(|(_, _, json)| {
            serde_json::from_str::<serde_json::Value>(json).ok()?["method"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

async fn tasks_are_followed_to_their_end(connection: Connection, recorder: &RecordingTap) {
    // A tool that runs only as a task: the call returns its result.
    assert_eq!(text_of(&connection, "long").await.unwrap(), "long job done");
    assert!(sent(recorder).contains(&"tasks/get".to_owned()));

    // Input inside the task goes through the callbacks and tasks/update.
    assert_eq!(
        text_of(&connection, "confirm").await.unwrap(),
        "confirmed by Ada"
    );
    assert!(sent(recorder).contains(&"tasks/update".to_owned()));

    // A failed task is the error it carries.
    match text_of(&connection, "broken").await {
        Err(ClientError::Rpc { code, message, .. }) => {
            assert_eq!((code, message.as_str()), (-32603, "the disk is full"));
        }
        other => panic!("expected the task's error, got {other:?}"),
    }
}

#[tokio::test]
async fn over_stdio_tasks_are_followed_to_their_end() {
    let recorder = tap();
    let connection = over_stdio(task_server(Arc::default()), &recorder).await;
    tasks_are_followed_to_their_end(connection, &recorder).await;
}

#[tokio::test]
async fn over_http_tasks_are_followed_to_their_end() {
    let recorder = tap();
    let connection = over_http(task_server(Arc::default()), &recorder).await;
    tasks_are_followed_to_their_end(connection, &recorder).await;
}

#[tokio::test]
async fn a_task_that_outlives_its_call_is_cancelled() {
    let dropped = Arc::new(AtomicBool::new(false));
    let recorder = tap();
    let connection = over_http(task_server(dropped.clone()), &recorder).await;
    let started = Instant::now();
    let error = connection
        .call_tool(
            "forever",
            None,
            CallOptions {
                max_duration: Duration::from_millis(400),
                ..CallOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::RequestTimeout { after, .. } if after == Duration::from_millis(400)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The client cancels the task, and the server drops its handler.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the task still runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sent(&recorder).contains(&"tasks/cancel".to_owned()));
}
