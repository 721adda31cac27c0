//! The 2026-07-28 tasks extension (SEP-2663): tools that answer with a task and run on, and
//! `tasks/get`, `tasks/update`, `tasks/cancel` against them, through `Server::handle` on a
//! real runtime and once over HTTP.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_server::{
    Caller, HandlerError, HttpConfig, InputRequest, Server, Session, TASKS_EXTENSION, TaskStart,
    TaskSupport, Tool, ToolOutput,
};

use crate::{Empty, legacy_session};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Work {
    pub ms: u64,
}

/// Sets its flag when dropped before it was disarmed: the handler was dropped mid-way.
struct Dropped(Arc<AtomicBool>, bool);

impl Drop for Dropped {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

fn name_form(message: &str) -> InputRequest {
    InputRequest::elicitation(
        message,
        json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
    )
}

/// Tools of every task kind. `dropped` is set when `work`'s handler is dropped unfinished.
fn task_server(dropped: Arc<AtomicBool>) -> Server {
    Server::builder("tasks-test", "1")
        .request_state_key([7; 32])
        .tool(
            Tool::builder("plain", "Never a task.")
                .handler(|_: Empty, _| async { Ok(ToolOutput::text("plain")) }),
        )
        .tool(
            Tool::builder("work", "Works `ms` milliseconds.")
                .task_support(TaskSupport::Optional)
                .handler(move |args: Work, cx| {
                    let dropped = dropped.clone();
                    async move {
                        let mut guard = Dropped(dropped, false);
                        cx.progress(1.0, Some(2.0), Some("halfway")).await;
                        tokio::time::sleep(Duration::from_millis(args.ms)).await;
                        guard.1 = true;
                        Ok(ToolOutput::text(format!("worked {} ms", args.ms)))
                    }
                }),
        )
        .tool(
            Tool::builder("must", "Only as a task.")
                .task_support(TaskSupport::Required)
                .handler(|_: Empty, _| async { Ok(ToolOutput::text("done as a task")) }),
        )
        .tool(
            Tool::builder("tool_error", "Reports a tool error.")
                .task_support(TaskSupport::Optional)
                .handler(|_: Empty, _| async { Ok(ToolOutput::error("no such report")) }),
        )
        .tool(
            Tool::builder("broken", "Fails with a protocol error.")
                .task_support(TaskSupport::Required)
                .handler(|_: Empty, _| async {
                    Err::<ToolOutput, _>(HandlerError::Internal("the disk is full".into()))
                }),
        )
        .tool(
            Tool::builder("panics", "Panics.")
                .task_support(TaskSupport::Required)
                .handler(|_: Empty, _| async {
                    tokio::task::yield_now().await;
                    panic!("a bug")
                }),
        )
        .tool(
            Tool::builder("ask_two", "Asks two names at once.")
                .task_support(TaskSupport::Optional)
                .handler(|_: Empty, cx| async move {
                    let answers = cx
                        .inputs(&[("a", name_form("First?")), ("b", name_form("Second?"))])
                        .await?;
                    Ok(ToolOutput::text(format!(
                        "{} and {}",
                        answers["a"]["content"]["name"].as_str().unwrap_or("?"),
                        answers["b"]["content"]["name"].as_str().unwrap_or("?")
                    )))
                }),
        )
        .tool(
            Tool::builder("ask_twice", "Asks with the same key twice in a row.")
                .task_support(TaskSupport::Optional)
                .handler(|_: Empty, cx| async move {
                    let first = cx.input("name", name_form("Name?")).await?;
                    let second = cx.input("name", name_form("Name again?")).await?;
                    Ok(ToolOutput::text(format!(
                        "{} then {}",
                        first["content"]["name"], second["content"]["name"]
                    )))
                }),
        )
        .tool(
            Tool::builder(
                "gather_then_task",
                "Asks a name in rounds, then runs as a task.",
            )
            .task_starts_in_handler()
            .handler(|_: Empty, cx| async move {
                let answer = cx.input("user_name", name_form("Name?")).await?;
                cx.start_task().await;
                let in_task = cx.task_id().is_some();
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(ToolOutput::text(format!(
                    "Hi {} (task: {in_task})",
                    answer["content"]["name"].as_str().unwrap_or("?")
                )))
            }),
        )
        .build()
        .unwrap()
}

fn server() -> Server {
    task_server(Arc::default())
}

/// Client capabilities that declare the extension (and elicitation).
fn with_tasks() -> Value {
    json!({"elicitation": {}, "extensions": {TASKS_EXTENSION: {}}})
}

fn without_tasks() -> Value {
    json!({"elicitation": {}})
}

/// A 2026-07-28 request with these client capabilities.
fn modern(method: &str, mut params: Value, capabilities: &Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

/// Send one request and wait for its answer.
async fn send(server: &Server, session: &mut Session, line: &str) -> Value {
    let mut out = Vec::new();
    if let Some(pending) = server.handle(session, line.as_bytes(), &mut out) {
        out = tokio::time::timeout(Duration::from_secs(10), pending)
            .await
            .expect("answered within 10 s")
            .expect("not cancelled");
    }
    serde_json::from_slice(&out).unwrap()
}

async fn ask(server: &Server, method: &str, params: Value, capabilities: &Value) -> Value {
    send(
        server,
        &mut Session::new(None),
        &modern(method, params, capabilities),
    )
    .await
}

async fn call(server: &Server, tool: &str, arguments: Value) -> Value {
    ask(
        server,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        &with_tasks(),
    )
    .await
}

async fn get(server: &Server, task_id: &str) -> Value {
    ask(
        server,
        "tasks/get",
        json!({"taskId": task_id}),
        &with_tasks(),
    )
    .await
}

/// Poll `tasks/get` until `done` holds (at most 5 s).
async fn until(server: &Server, task_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(server, task_id).await;
        let task = &answer["result"];
        if done(task) {
            return task.clone();
        }
        assert!(
            Instant::now() < deadline,
            "task {task_id} never got there: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ended(task: &Value) -> bool {
    matches!(
        task["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Start a task with `tool` and return its id.
async fn start(server: &Server, tool: &str, arguments: Value) -> String {
    let answer = call(server, tool, arguments).await;
    assert_eq!(answer["result"]["resultType"], "task", "{answer}");
    answer["result"]["taskId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_task_tool_answers_with_a_task_and_tasks_get_shows_its_result() {
    let server = server();
    let answer = call(&server, "work", json!({"ms": 200})).await;
    let created = &answer["result"];
    assert_eq!(created["resultType"], "task");
    assert_eq!(created["status"], "working");
    for key in ["taskId", "createdAt", "lastUpdatedAt"] {
        assert!(created[key].is_string(), "{key} in {created}");
    }
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["ttlMs"], 3_600_000);
    assert_eq!(created["pollIntervalMs"], 500);
    for absent in [
        "task",
        "result",
        "error",
        "inputRequests",
        "requestState",
        "ttl",
    ] {
        assert!(created.get(absent).is_none(), "{absent} in {created}");
    }
    let id = created["taskId"].as_str().unwrap();

    // Readable at once, working, then with the handler's progress as its message.
    let working = get(&server, id).await;
    assert_eq!(working["result"]["resultType"], "complete");
    assert_eq!(working["result"]["taskId"], id);
    assert_eq!(working["result"]["status"], "working");
    assert!(working["result"].get("result").is_none());
    let working = until(&server, id, |t| t.get("statusMessage").is_some()).await;
    assert_eq!(working["status"], "working");
    assert_eq!(working["statusMessage"], "halfway (1/2)");

    let done = until(&server, id, ended).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["content"][0]["text"], "worked 200 ms");
    assert_eq!(done["result"]["resultType"], "complete");
    assert!(done.get("error").is_none());
}

#[tokio::test]
async fn clients_without_the_extension_get_plain_results_or_a_clear_refusal() {
    let server = server();
    // Optional: the plain result, as from any tool.
    let plain = ask(
        &server,
        "tools/call",
        json!({"name": "work", "arguments": {"ms": 1}}),
        &without_tasks(),
    )
    .await;
    assert_eq!(plain["result"]["resultType"], "complete");
    assert_eq!(plain["result"]["content"][0]["text"], "worked 1 ms");
    assert!(plain["result"].get("taskId").is_none());

    // Required: -32021 naming the extension.
    let refused = ask(
        &server,
        "tools/call",
        json!({"name": "must"}),
        &without_tasks(),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert_eq!(
        refused["error"]["data"]["requiredCapabilities"]["extensions"][TASKS_EXTENSION],
        json!({})
    );

    // The task methods too, before the id is even looked at.
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let answer = ask(
            &server,
            method,
            json!({"taskId": "x", "inputResponses": {}}),
            &without_tasks(),
        )
        .await;
        assert_eq!(answer["error"]["code"], -32021, "{method}: {answer}");
    }

    // A sync-only tool stays sync for a client that declared it, legacy `task` hint or not.
    let greet = ask(
        &server,
        "tools/call",
        json!({"name": "plain", "task": {"ttl": 60000}}),
        &with_tasks(),
    )
    .await;
    assert_eq!(greet["result"]["content"][0]["text"], "plain");
    assert!(greet["result"].get("taskId").is_none());

    // A legacy session runs optional task tools plainly and refuses required ones.
    let mut session = legacy_session(&server);
    let legacy = send(
        &server,
        &mut session,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"work","arguments":{"ms":1}}}"#,
    )
    .await;
    assert_eq!(legacy["result"]["content"][0]["text"], "worked 1 ms");
    let legacy = send(
        &server,
        &mut session,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"must"}}"#,
    )
    .await;
    assert_eq!(legacy["error"]["code"], -32021);
    let legacy = send(
        &server,
        &mut session,
        r#"{"jsonrpc":"2.0","id":4,"method":"tasks/get","params":{"taskId":"x"}}"#,
    )
    .await;
    assert_eq!(legacy["error"]["code"], -32601);
}

#[tokio::test]
async fn the_extension_is_advertised_to_modern_clients_only() {
    let server = server();
    let discover = ask(&server, "server/discover", json!({}), &without_tasks()).await;
    assert_eq!(
        discover["result"]["capabilities"]["extensions"][TASKS_EXTENSION],
        json!({})
    );
    assert!(discover["result"]["capabilities"].get("tasks").is_none());
    let list = ask(&server, "tools/list", json!({}), &without_tasks()).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let support = |name: &str| {
        tools.iter().find(|t| t["name"] == name).unwrap()["execution"]["taskSupport"].clone()
    };
    assert_eq!(support("work"), "optional");
    assert_eq!(support("must"), "required");
    assert_eq!(support("plain"), Value::Null);

    // Legacy sessions hear of neither: `execution.taskSupport` means the older tasks there.
    let mut session = Session::new(None);
    let answers = crate::exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ],
    );
    assert!(
        answers[0]["result"]["capabilities"]
            .get("extensions")
            .is_none()
    );
    assert!(
        answers[1]["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("execution").is_none())
    );
}

#[tokio::test]
async fn tool_errors_complete_and_protocol_errors_and_panics_fail() {
    let server = server();
    let id = start(&server, "tool_error", json!({})).await;
    let task = until(&server, &id, ended).await;
    assert_eq!(task["status"], "completed");
    assert_eq!(task["result"]["isError"], true);
    assert_eq!(task["result"]["content"][0]["text"], "no such report");

    for (tool, message) in [
        ("broken", "the disk is full"),
        ("panics", "the tool failed unexpectedly (it panicked)"),
    ] {
        let id = start(&server, tool, json!({})).await;
        let task = until(&server, &id, ended).await;
        assert_eq!(task["status"], "failed", "{tool}: {task}");
        assert_eq!(task["error"]["code"], -32603);
        assert_eq!(task["error"]["message"], message);
        assert!(task.get("result").is_none());
    }
    // The server lives on.
    let answer = call(&server, "plain", json!({})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "plain");
}

#[tokio::test]
async fn cancelling_ends_a_task_and_drops_its_handler() {
    let dropped = Arc::new(AtomicBool::new(false));
    let server = task_server(dropped.clone());
    let id = start(&server, "work", json!({"ms": 60_000})).await;
    // Once the handler runs (it reports progress first thing):
    until(&server, &id, |t| t.get("statusMessage").is_some()).await;
    let ack = ask(
        &server,
        "tasks/cancel",
        json!({"taskId": id}),
        &with_tasks(),
    )
    .await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}));
    let task = get(&server, &id).await;
    assert_eq!(task["result"]["status"], "cancelled");
    assert!(task["result"].get("result").is_none());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the handler still runs");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Cancelling an ended task is acknowledged the same way and changes nothing.
    let id = start(&server, "work", json!({"ms": 1})).await;
    until(&server, &id, ended).await;
    let ack = ask(
        &server,
        "tasks/cancel",
        json!({"taskId": id}),
        &with_tasks(),
    )
    .await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}));
    assert_eq!(get(&server, &id).await["result"]["status"], "completed");
}

#[tokio::test]
async fn a_task_waits_for_input_until_every_request_is_answered() {
    let server = server();
    let id = start(&server, "ask_two", json!({})).await;
    let task = until(&server, &id, |t| t["status"] == "input_required").await;
    let requests = task["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests["a"]["method"], "elicitation/create");
    assert_eq!(requests["b"]["params"]["message"], "Second?");

    let update = |responses: Value| {
        let server = server.clone();
        let id = id.clone();
        async move {
            ask(
                &server,
                "tasks/update",
                json!({"taskId": id, "inputResponses": responses}),
                &with_tasks(),
            )
            .await
        }
    };
    // A malformed answer is refused and nothing is taken from the same update.
    let bad =
        update(json!({"a": {"action": "accept", "content": {"name": "Ann"}}, "b": {"nope": true}}))
            .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert_eq!(bad["error"]["data"]["key"], "b");
    let task = get(&server, &id).await;
    assert_eq!(
        task["result"]["inputRequests"].as_object().unwrap().len(),
        2
    );

    // One answer (and one for a key nobody asked): acknowledged, the other stays open.
    let ack =
        update(json!({"a": {"action": "accept", "content": {"name": "Ann"}}, "zzz": {}})).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}));
    let task = get(&server, &id).await;
    assert_eq!(task["result"]["status"], "input_required");
    let open: Vec<&String> = task["result"]["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(open, ["b"]);

    let ack = update(json!({"b": {"action": "accept", "content": {"name": "Bo"}}})).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}));
    let task = until(&server, &id, ended).await;
    assert_eq!(task["result"]["content"][0]["text"], "Ann and Bo");

    // tasks/update without answers is refused.
    let missing = ask(
        &server,
        "tasks/update",
        json!({"taskId": id}),
        &with_tasks(),
    )
    .await;
    assert_eq!(missing["error"]["code"], -32602);
}

#[tokio::test]
async fn a_key_asked_again_gets_a_fresh_name_on_the_wire() {
    let server = server();
    let id = start(&server, "ask_twice", json!({})).await;
    for (key, name) in [("name", "Ann"), ("name-2", "Bo")] {
        let task = until(&server, &id, |t| t["status"] == "input_required").await;
        let open: Vec<&String> = task["inputRequests"].as_object().unwrap().keys().collect();
        assert_eq!(open, [key]);
        ask(
            &server,
            "tasks/update",
            json!({"taskId": id, "inputResponses": {key: {"action": "accept", "content": {"name": name}}}}),
            &with_tasks(),
        )
        .await;
    }
    let task = until(&server, &id, ended).await;
    assert_eq!(task["result"]["content"][0]["text"], r#""Ann" then "Bo""#);
}

#[tokio::test]
async fn a_handler_can_gather_input_in_rounds_and_then_become_a_task() {
    gathers_then_becomes_a_task(&server(), "gather_then_task").await;
}

/// `tool` asks for a name in a 2026-07-28 round, then (for a client that takes tasks) goes on
/// as a task, whose result greets the name; without the extension the call answers itself.
async fn gathers_then_becomes_a_task(server: &Server, tool: &str) {
    let first = call(server, tool, json!({})).await;
    assert_eq!(first["result"]["resultType"], "input_required");
    assert!(first["result"].get("taskId").is_none());
    let state = first["result"]["requestState"].clone();
    // The second round: the user's name, with or without the tasks extension declared.
    let answer_with = |name: &'static str, capabilities: Value| {
        let params = json!({
            "name": tool,
            "inputResponses": {"user_name": {"action": "accept", "content": {"name": name}}},
            "requestState": state,
        });
        async move { ask(server, "tools/call", params, &capabilities).await }
    };
    let second = answer_with("Alice", with_tasks()).await;
    let created = &second["result"];
    assert_eq!(created["resultType"], "task", "{second}");
    assert!(created.get("requestState").is_none());
    assert!(created.get("inputRequests").is_none());
    let task = until(server, created["taskId"].as_str().unwrap(), ended).await;
    assert_eq!(
        task["result"]["content"][0]["text"],
        "Hi Alice (task: true)"
    );

    // Without the extension the same handler answers the call itself.
    let plain = answer_with("Bob", without_tasks()).await;
    assert_eq!(
        plain["result"]["content"][0]["text"],
        "Hi Bob (task: false)"
    );
}

#[tokio::test]
async fn unknown_malformed_and_foreign_task_ids_are_invalid_params() {
    let server = server();
    let unknown = get(&server, "no-such-task").await;
    assert_eq!(unknown["error"]["code"], -32602);
    assert_eq!(unknown["error"]["message"], "unknown task: no-such-task");
    for params in [json!({}), json!({"taskId": 7}), json!({"taskId": null})] {
        let answer = ask(&server, "tasks/get", params.clone(), &with_tasks()).await;
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
    }
    // The removed methods of the first tasks revision do not exist.
    for method in ["tasks/result", "tasks/list"] {
        let answer = ask(&server, method, json!({"taskId": "x"}), &with_tasks()).await;
        assert_eq!(answer["error"]["code"], -32601, "{method}");
    }

    // A task belongs to the caller who made it.
    let as_caller = |subject: &str| {
        let mut session = Session::new(None);
        session.set_caller(Some(Arc::new(Caller {
            subject: Some(subject.to_owned()),
            ..Caller::default()
        })));
        session
    };
    let created = send(
        &server,
        &mut as_caller("alice"),
        &modern(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 1}}),
            &with_tasks(),
        ),
    )
    .await;
    let id = created["result"]["taskId"].as_str().unwrap();
    let get_as = |subject: &str| {
        let mut session = as_caller(subject);
        let server = server.clone();
        let line = modern("tasks/get", json!({"taskId": id}), &with_tasks());
        async move { send(&server, &mut session, &line).await }
    };
    assert_eq!(get_as("mallory").await["error"]["code"], -32602);
    assert_eq!(get_as("alice").await["result"]["taskId"], id);
}

#[tokio::test]
async fn tasks_are_bounded_and_ended_ones_expire() {
    let server = Server::builder("bounded", "1")
        .task_ttl(Duration::from_millis(50))
        .max_tasks(2)
        .tool(
            Tool::builder("work", "Works `ms` milliseconds.")
                .task_support(TaskSupport::Required)
                .handler(|args: Work, _| async move {
                    tokio::time::sleep(Duration::from_millis(args.ms)).await;
                    Ok(ToolOutput::text("worked"))
                }),
        )
        .build()
        .unwrap();
    let first = start(&server, "work", json!({"ms": 1})).await;
    let created = call(&server, "work", json!({"ms": 1})).await;
    assert_eq!(created["result"]["ttlMs"], 50);
    let full = call(&server, "work", json!({"ms": 1})).await;
    assert_eq!(full["error"]["code"], -32000, "{full}");
    assert_eq!(full["error"]["data"]["retryable"], true);

    // Once they ended and their ttl passed, they are gone and make room.
    until(&server, &first, ended).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(get(&server, &first).await["error"]["code"], -32602);
    start(&server, "work", json!({"ms": 1})).await;
    start(&server, "work", json!({"ms": 1})).await;
}

#[tokio::test]
async fn over_http_the_task_id_travels_in_mcp_name() {
    let server = crate::http::serve(server(), HttpConfig::default()).await;
    fn headers<'a>(method: &'a str, name: &'a str) -> [(&'a str, &'a str); 3] {
        [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", method),
            ("mcp-name", name),
        ]
    }
    let body = modern(
        "tools/call",
        json!({"name": "work", "arguments": {"ms": 1}}),
        &with_tasks(),
    );
    let created: Value = crate::http::post(&server.url, &body, &headers("tools/call", "work"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["result"]["taskId"].as_str().unwrap();
    let get_body = modern("tasks/get", json!({"taskId": id}), &with_tasks());

    let ok = crate::http::post(&server.url, &get_body, &headers("tasks/get", id)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(ok["result"]["taskId"], id);

    for name in ["another-task", ""] {
        let wrong = crate::http::post(&server.url, &get_body, &headers("tasks/get", name)).await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "Mcp-Name {name:?}");
        let wrong: Value = wrong.json().await.unwrap();
        assert_eq!(wrong["error"]["code"], -32020);
        assert_eq!(wrong["id"], 1, "the refusal names the request");
    }
    let missing = crate::http::post(
        &server.url,
        &get_body,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tasks/get"),
        ],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
}

/// A catalogue whose one tool can run as a task; the server answers tasks for it like for a
/// static tool.
struct TaskCatalogue;

impl switchboard_server::Catalogue for TaskCatalogue {
    fn list(
        &self,
        _list: switchboard_server::ListRequest,
        _cx: switchboard_server::RequestContext,
    ) -> futures::future::BoxFuture<'static, Result<Vec<Value>, HandlerError>> {
        Box::pin(async {
            Ok(["later", "sooner", "gather"]
                .into_iter()
                .map(|name| json!({"name": name, "inputSchema": {"type": "object"}}))
                .collect())
        })
    }

    fn call_tool(
        &self,
        name: String,
        _arguments: serde_json::Map<String, Value>,
        cx: switchboard_server::RequestContext,
    ) -> switchboard_server::CatalogueResult {
        Box::pin(async move {
            let mut name = name;
            if name == "gather" {
                let answer = cx.input("user_name", name_form("Name?")).await?;
                cx.start_task().await;
                name = format!("Hi {}", answer["content"]["name"].as_str().unwrap_or("?"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let text = format!("{name} (task: {})", cx.task_id().is_some());
            match json!({"content": [{"type": "text", "text": text}]}) {
                Value::Object(result) => Ok(result),
                _ => unreachable!(),
            }
        })
    }

    fn read_resource(
        &self,
        uri: String,
        _cx: switchboard_server::RequestContext,
    ) -> switchboard_server::CatalogueResult {
        Box::pin(async move { Err(HandlerError::Internal(format!("no {uri}"))) })
    }

    fn get_prompt(
        &self,
        name: String,
        _arguments: serde_json::Map<String, Value>,
        _cx: switchboard_server::RequestContext,
    ) -> switchboard_server::CatalogueResult {
        Box::pin(async move { Err(HandlerError::Internal(format!("no {name}"))) })
    }

    fn runs_tasks(&self) -> bool {
        true
    }

    fn task_start(
        &self,
        tool: String,
        _cx: switchboard_server::RequestContext,
    ) -> futures::future::BoxFuture<'static, Option<TaskStart>> {
        Box::pin(async move {
            match tool.as_str() {
                "later" => Some(TaskStart::Upfront),
                "gather" => Some(TaskStart::InHandler),
                _ => None,
            }
        })
    }
}

#[tokio::test]
async fn a_catalogue_tool_can_run_as_a_task() {
    let server = Server::builder("catalogue-tasks", "1")
        .catalogue(Arc::new(TaskCatalogue))
        .build()
        .unwrap();
    let discover = ask(&server, "server/discover", json!({}), &without_tasks()).await;
    assert_eq!(
        discover["result"]["capabilities"]["extensions"][TASKS_EXTENSION],
        json!({})
    );
    let id = start(&server, "later", json!({})).await;
    let task = until(&server, &id, ended).await;
    assert_eq!(task["result"]["content"][0]["text"], "later (task: true)");

    let plain = ask(
        &server,
        "tools/call",
        json!({"name": "later"}),
        &without_tasks(),
    )
    .await;
    assert_eq!(plain["result"]["content"][0]["text"], "later (task: false)");
    // A tool the catalogue does not run as a task answers plainly even to a client that
    // takes tasks.
    let other = call(&server, "sooner", json!({})).await;
    assert_eq!(
        other["result"]["content"][0]["text"],
        "sooner (task: false)"
    );
}

#[tokio::test]
async fn a_catalogue_tool_can_gather_input_and_then_become_a_task() {
    let server = Server::builder("catalogue-tasks", "1")
        .request_state_key([7; 32])
        .catalogue(Arc::new(TaskCatalogue))
        .build()
        .unwrap();
    gathers_then_becomes_a_task(&server, "gather").await;
}
