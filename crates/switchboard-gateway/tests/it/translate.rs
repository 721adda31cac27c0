//! Era translation of server-initiated requests through the gateway: an upstream that asks
//! for input during a call (elicitation, sampling, roots) reaches the gateway's own client in
//! that client's era, and its answer goes back in the upstream's.
//!
//! The upstream is `conformance-server` (our kit, both eras on one `/mcp`), served by this
//! process over HTTP. The gateway speaks to it in the era under test: a 2026-07-28 upstream
//! answers `input_required`; a legacy session sends real `sampling/createMessage` and
//! `elicitation/create` requests. The client is ours, in its own era, with callbacks.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::{Map, Value, json};
use switchboard_client::{
    CallOptions, ConnectOptions, Connection, EraPreference,
    callbacks::{
        CallbackFuture, Callbacks, ClientCallbacks, ElicitationRequest, ElicitationResponse, Root,
        SamplingRequest, SamplingResponse,
    },
    model::{Content, Era, ServerEvent},
};
use switchboard_config::{ServerEntry, ServerName, Transport};
use switchboard_gateway::{Gateway, GatewayConfig};

use crate::{HttpUpstream, Running, TIMEOUT};

/// The gateway's client: answers every kind of request, and counts them.
#[derive(Debug, Default)]
struct Answers {
    asked: AtomicUsize,
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
        self.asked.fetch_add(1, Ordering::SeqCst);
        let mut content = Map::new();
        content.insert("username".into(), json!("ada"));
        content.insert("email".into(), json!("ada@example.org"));
        let _ = request;
        Box::pin(async move { Ok(ElicitationResponse::accept(content)) })
    }

    fn sample(&self, request: SamplingRequest) -> CallbackFuture<'_, SamplingResponse> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let _ = request;
        Box::pin(async { Ok(SamplingResponse::text("test-model", "forty-two")) })
    }

    fn roots(&self) -> CallbackFuture<'_, Vec<Root>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            Ok(vec![Root {
                uri: "file:///work".into(),
                name: Some("work".into()),
            }])
        })
    }
}

fn conformance_upstream_at(url: &str) -> String {
    format!("[upstreams.conf]\nurl = \"{url}\"\n")
}

async fn conformance_upstream() -> HttpUpstream {
    crate::http_upstream(switchboard_conformance::server()).await
}

/// A gateway that speaks `upstream_era` to the conformance server.
async fn gateway(upstream: &HttpUpstream, upstream_era: EraPreference) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config =
        GatewayConfig::parse(&conformance_upstream_at(&upstream.url), None, &|_| None).unwrap();
    let connect = ConnectOptions {
        era: upstream_era,
        ..ConnectOptions::default()
    };
    let gateway = Arc::new(Gateway::connect_with(config, connect).await.unwrap());
    let era = gateway
        .upstreams()
        .host()
        .servers()
        .find_map(|(_, state)| match state {
            switchboard_host::ServerState::Connected(connection) => {
                Some(connection.description().era)
            }
            switchboard_host::ServerState::Failed(_) => None,
        });
    let expected = match upstream_era {
        EraPreference::Legacy => Some(Era::Legacy),
        _ => Some(Era::Modern),
    };
    assert_eq!(
        era, expected,
        "the gateway speaks the era under test upstream"
    );
    crate::serve(gateway).await
}

async fn client(running: &Running, era: EraPreference, answers: Arc<Answers>) -> Connection {
    let entry = ServerEntry::new(
        ServerName::new("gw").unwrap(),
        Transport::StreamableHttp {
            url: running.url().parse().unwrap(),
            headers: Default::default(),
        },
    );
    let options = ConnectOptions {
        era,
        callbacks: Some(answers),
        ..ConnectOptions::default()
    };
    Connection::connect(&entry, &options).await.unwrap()
}

fn text(result: &switchboard_client::model::ToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

async fn call(connection: &Connection, tool: &str, arguments: Value) -> String {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object")
    };
    let result = tokio::time::timeout(
        TIMEOUT,
        connection.call_tool(tool, Some(arguments), CallOptions::default()),
    )
    .await
    .expect("the call ends in time")
    .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(!result.is_error, "{tool}: {:?}", result.raw);
    text(&result)
}

/// Every pair of eras, client and upstream: elicitation and sampling asked by the upstream
/// are answered by the gateway's client, whichever era each side speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_input_cross_the_gateway_in_every_pair_of_eras() {
    let upstream = conformance_upstream().await;
    for upstream_era in [EraPreference::Modern, EraPreference::Legacy] {
        let running = gateway(&upstream, upstream_era).await;
        for client_era in [EraPreference::Legacy, EraPreference::Modern] {
            let case = format!("client {client_era:?}, upstream {upstream_era:?}");
            let answers = Arc::new(Answers::default());
            let connection = client(&running, client_era, answers.clone()).await;
            let elicited = call(
                &connection,
                "conf__test_elicitation",
                json!({"message": "Who are you?"}),
            )
            .await;
            assert!(
                elicited.contains("ada@example.org") && elicited.contains("accept"),
                "{case}: {elicited}"
            );
            let sampled = call(
                &connection,
                "conf__test_sampling",
                json!({"prompt": "What is six times seven?"}),
            )
            .await;
            assert_eq!(sampled, "LLM response: forty-two", "{case}");
            assert_eq!(answers.asked.load(Ordering::SeqCst), 2, "{case}");
            connection.close().await;
        }
    }
}

/// A modern upstream that asks for several inputs in one round, and over several rounds:
/// a legacy client answers each as a request of its session, a modern one in as many
/// `input_required` rounds as the upstream needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_inputs_and_several_rounds_pass_through() {
    let upstream = conformance_upstream().await;
    let running = gateway(&upstream, EraPreference::Modern).await;
    for client_era in [EraPreference::Legacy, EraPreference::Modern] {
        let answers = Arc::new(Answers::default());
        let connection = client(&running, client_era, answers.clone()).await;
        let multiple = call(
            &connection,
            "conf__test_input_required_result_multiple_inputs",
            json!({}),
        )
        .await;
        assert!(!multiple.is_empty(), "{client_era:?}");
        let asked_once = answers.asked.load(Ordering::SeqCst);
        assert!(asked_once >= 2, "{client_era:?}: asked {asked_once}");
        let rounds = call(
            &connection,
            "conf__test_input_required_result_multi_round",
            json!({}),
        )
        .await;
        assert!(!rounds.is_empty(), "{client_era:?}");
        assert!(answers.asked.load(Ordering::SeqCst) > asked_once);
        connection.close().await;
    }
}

/// A client that declared no sampling gets the upstream's request refused, and the call
/// fails with a clear error instead of hanging; the gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_capability_gets_a_clear_error() {
    let upstream = conformance_upstream().await;
    for upstream_era in [EraPreference::Modern, EraPreference::Legacy] {
        let running = gateway(&upstream, upstream_era).await;
        for client_era in [EraPreference::Legacy, EraPreference::Modern] {
            let case = format!("client {client_era:?}, upstream {upstream_era:?}");
            let connection = running.connect(client_era).await;
            let mut arguments = Map::new();
            arguments.insert("prompt".into(), json!("hi"));
            let outcome = tokio::time::timeout(
                TIMEOUT,
                connection.call_tool(
                    "conf__test_sampling",
                    Some(arguments),
                    CallOptions::default(),
                ),
            )
            .await
            .expect("the call ends in time");
            let failed = match outcome {
                Err(error) => error.to_string(),
                Ok(result) => {
                    assert!(result.is_error, "{case}: {:?}", result.raw);
                    text(&result)
                }
            };
            assert!(failed.contains("sampling"), "{case}: {failed}");
            // Still serving.
            assert_eq!(
                call(&connection, "conf__test_simple_text", json!({})).await,
                "This is a simple text response for testing.",
                "{case}"
            );
            connection.close().await;
        }
    }
}

/// Logs an upstream sends during a call reach the gateway's client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_logs_during_a_call_reach_the_client() {
    let upstream = conformance_upstream().await;
    for upstream_era in [EraPreference::Modern, EraPreference::Legacy] {
        let running = gateway(&upstream, upstream_era).await;
        let connection = running.connect(EraPreference::Legacy).await;
        let mut events = connection.take_events().unwrap();
        call(&connection, "conf__test_tool_with_logging", json!({})).await;
        let mut logs = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), events.recv()).await
        {
            if let ServerEvent::Log(message) = event {
                logs.push(message.data);
            }
        }
        assert!(
            logs.len() >= 3,
            "upstream {upstream_era:?}: the tool's three log entries, got {logs:?}"
        );
        connection.close().await;
    }
}

/// A tool that runs only as a task upstream works through the gateway for a client that takes
/// tasks (the gateway relays the declaration and follows the upstream's task), and is refused
/// as it would be directly to one that does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tasks_are_followed_for_clients_that_take_them() {
    let upstream = conformance_upstream().await;
    let running = gateway(&upstream, EraPreference::Modern).await;
    let connection = client(
        &running,
        EraPreference::Modern,
        Arc::new(Answers::default()),
    )
    .await;
    let result = connection
        .call_tool("conf__failing_job", None, CallOptions::default())
        .await
        .unwrap();
    assert!(result.is_error);
    assert_eq!(
        text(&result),
        "the job failed: the input data is inconsistent"
    );
    assert_eq!(
        call(
            &connection,
            "conf__slow_compute",
            json!({"seconds": 0.2, "label": "via"})
        )
        .await,
        "Computed via in 0.2 s"
    );

    let refused = crate::answer(
        crate::post(
            &running,
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"conf__failing_job",{}}}}}"#,
                crate::MODERN_META
            ),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
}

/// One raw 2026-07-28 request to the gateway from a client that declared the tasks extension
/// and elicitation.
async fn ask_with_tasks(running: &Running, id: u32, method: &str, params: Value) -> Value {
    let mut params = params.as_object().cloned().unwrap_or_default();
    params.insert(
        "_meta".into(),
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {
                "elicitation": {},
                "extensions": {"io.modelcontextprotocol/tasks": {}},
            },
        }),
    );
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    crate::answer(crate::post(running, body.to_string()).send().await.unwrap()).await
}

/// `tasks/get` until the task's status is `status` (at most [`TIMEOUT`]).
async fn task_until(running: &Running, task_id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = ask_with_tasks(running, 90, "tasks/get", json!({"taskId": task_id})).await;
        if got["result"]["status"] == status {
            return got["result"].clone();
        }
        assert!(
            got["result"]["status"] == "working" || got["result"]["status"] == "input_required",
            "task {task_id} waiting for {status}: {got}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {task_id} not {status} in time: {got}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Call `conf__confirm_delete` on `start`: the upstream answers with its task at once, and so
/// does the gateway with its own. Then, on `follow`, answer the input the task asks for and
/// see it complete. Returns the task's id.
async fn delete_through_a_task(start: &Running, follow: &Running, filename: &str) -> String {
    let created = ask_with_tasks(
        start,
        2,
        "tools/call",
        json!({"name": "conf__confirm_delete", "arguments": {"filename": filename}}),
    )
    .await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let task_id = created["result"]["taskId"].as_str().unwrap().to_owned();
    let waiting = task_until(follow, &task_id, "input_required").await;
    let requests = waiting["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{waiting}");
    let (key, request) = requests.iter().next().unwrap();
    assert_eq!(request["method"], "elicitation/create", "{waiting}");
    let updated = ask_with_tasks(
        follow,
        3,
        "tasks/update",
        json!({"taskId": task_id, "inputResponses": {
            key: {"action": "accept", "content": {"confirm": true}}
        }}),
    )
    .await;
    assert!(updated.get("result").is_some(), "{updated}");
    let done = task_until(follow, &task_id, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"],
        format!("Deleted {filename}"),
        "{done}"
    );
    task_id
}

/// Call `conf__test_tool_with_task` on `start`, which asks for a name in a plain round (no
/// task yet), answer the round on `follow`, and see the task it then becomes greet `name`.
/// Returns the task's id.
async fn greet_through_a_round(start: &Running, follow: &Running, name: &str) -> String {
    let round = ask_with_tasks(
        start,
        7,
        "tools/call",
        json!({"name": "conf__test_tool_with_task", "arguments": {}}),
    )
    .await;
    assert_eq!(round["result"]["resultType"], "input_required", "{round}");
    assert!(round["result"].get("taskId").is_none(), "{round}");
    let requests = round["result"]["inputRequests"].as_object().unwrap();
    let key = requests.keys().next().unwrap();
    let answered = ask_with_tasks(
        follow,
        8,
        "tools/call",
        json!({
            "name": "conf__test_tool_with_task",
            "arguments": {},
            "inputResponses": {key: {"action": "accept", "content": {"name": name}}},
            "requestState": round["result"]["requestState"],
        }),
    )
    .await;
    assert_eq!(answered["result"]["resultType"], "task", "{answered}");
    assert!(
        answered["result"].get("requestState").is_none(),
        "{answered}"
    );
    let task_id = answered["result"]["taskId"].as_str().unwrap().to_owned();
    let gathered = task_until(follow, &task_id, "completed").await;
    let greeting = gathered["result"]["content"][0]["text"].as_str().unwrap();
    assert!(greeting.contains(name), "{gathered}");
    task_id
}

#[tokio::test]
async fn the_gateway_runs_tasks_of_its_own_for_upstream_task_tools() {
    let upstream = conformance_upstream().await;
    let running = gateway(&upstream, EraPreference::Modern).await;

    // Listed with `execution` for a 2026-07-28 client; a legacy client is not shown it.
    let listed = ask_with_tasks(&running, 1, "tools/list", json!({})).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let execution = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {listed}"))
            .get("execution")
            .cloned()
    };
    assert_eq!(
        execution("conf__confirm_delete"),
        Some(json!({"taskSupport": "optional"}))
    );
    assert_eq!(execution("conf__test_simple_text"), None);
    let legacy = client(
        &running,
        EraPreference::Legacy,
        Arc::new(Answers::default()),
    )
    .await;
    let legacy_tools = legacy.list_tools(TIMEOUT).await.unwrap();
    assert!(legacy_tools.iter().all(|t| t.execution.is_none()));
    assert!(
        legacy_tools
            .iter()
            .any(|t| t.name == "conf__confirm_delete")
    );

    // The upstream answers with its task at once, and so does the gateway with its own; the
    // input the upstream's task asks for is the gateway task's to ask, and its answer
    // finishes the call.
    delete_through_a_task(&running, &running, "notes.txt").await;

    // A plain tool stays a plain call for the same client.
    let plain = ask_with_tasks(
        &running,
        4,
        "tools/call",
        json!({"name": "conf__test_simple_text", "arguments": {}}),
    )
    .await;
    assert_eq!(plain["result"]["resultType"], "complete", "{plain}");

    // A tool that gathers input in plain rounds before it becomes a task upstream does the
    // same through the gateway: the round carries no task, and the gateway's task starts
    // when the upstream's does, on the round that answers.
    greet_through_a_round(&running, &running, "Alice").await;

    // An upstream tool error completes the task with `isError`, as it would directly.
    let failing = ask_with_tasks(
        &running,
        5,
        "tools/call",
        json!({"name": "conf__failing_job", "arguments": {}}),
    )
    .await;
    let failing_id = failing["result"]["taskId"].as_str().unwrap().to_owned();
    let failed = task_until(&running, &failing_id, "completed").await;
    assert_eq!(failed["result"]["isError"], true, "{failed}");

    // Unknown task ids are the kit's -32602, answered by the gateway itself.
    let unknown = ask_with_tasks(&running, 6, "tasks/get", json!({"taskId": "nope"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}

/// Two gateway replicas sharing one Redis, in front of one upstream.
async fn replicas(upstream: &HttpUpstream, redis_url: &str) -> (Running, Running) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = conformance_upstream_at(&upstream.url);
    let env = |name: &str| {
        (name == switchboard_gateway::config::REDIS_URL_VAR).then(|| redis_url.to_owned())
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let config = GatewayConfig::parse(&text, None, &env).unwrap();
        let gateway = Arc::new(Gateway::connect(config).await.unwrap());
        replicas.push(crate::serve(gateway).await);
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    assert_ne!(a.gateway.replica(), b.gateway.replica());
    (a, b)
}

/// A 2026-07-28 client has no session to pin it to a replica: behind a load balancer, its
/// `tasks/get` or the retry that answers an `input_required` round may reach a replica other
/// than the one holding the task or the parked call. The ids name the holder, and the request
/// is sent on to it through the table in Redis.
#[tokio::test]
async fn tasks_and_parked_calls_are_reached_from_any_replica_through_redis() {
    let Some(redis_url) = crate::redis_url() else {
        return;
    };
    let upstream = conformance_upstream().await;
    let (a, b) = replicas(&upstream, &redis_url).await;

    // A task made on A is read, answered and seen to its end through B.
    let deleted = delete_through_a_task(&a, &b, "a.txt").await;
    assert!(
        deleted.starts_with(&format!("{}-", a.gateway.replica())),
        "{deleted}"
    );

    // A call parked on A for its client's answer is resumed through B, and the task it
    // becomes is A's.
    let greeted = greet_through_a_round(&a, &b, "Bea").await;
    assert!(
        greeted.starts_with(&format!("{}-", a.gateway.replica())),
        "{greeted}"
    );

    // A task id that names no replica known to Redis is B's to answer: unknown.
    let unknown = ask_with_tasks(
        &b,
        5,
        "tasks/get",
        json!({"taskId": "0000000000000000-not-a-task"}),
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    // The routing layer reads a call's body to find its requestState; a body over the limit
    // is refused there as it is everywhere (413), and the replica goes on serving.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"conf__test_simple_text","arguments":{{"pad":"{}"}}}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let refused = reqwest::Client::new()
        .post(b.url())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "conf__test_simple_text")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    let plain = ask_with_tasks(
        &b,
        7,
        "tools/call",
        json!({"name": "conf__test_simple_text", "arguments": {}}),
    )
    .await;
    assert_eq!(plain["result"]["resultType"], "complete", "{plain}");
    let metrics = reqwest::get(format!("{}/metrics", b.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_replica_forwarded_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
}
