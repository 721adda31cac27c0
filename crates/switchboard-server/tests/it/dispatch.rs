//! Raw JSON-RPC in, exact JSON out.

use serde_json::json;
use switchboard_server::Session;

use crate::{MODERN_META, exchange, legacy_session, test_server};

#[test]
fn initialize_negotiates_a_legacy_version() {
    let server = test_server();
    let mut session = Session::new(None);
    let answer = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        ],
    );
    assert_eq!(answer[0]["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        answer[0]["result"]["serverInfo"],
        json!({"name": "kit-test", "version": "9.9.9"})
    );
    assert_eq!(answer[0]["result"]["instructions"], "For tests.");
    assert_eq!(
        answer[0]["result"]["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    assert!(
        answer[0]["result"].get("resultType").is_none(),
        "legacy results carry no resultType"
    );
    // An unknown or modern version in initialize gets the newest legacy revision.
    let mut session = Session::new(None);
    let answer = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        ],
    );
    assert_eq!(answer[0]["result"]["protocolVersion"], "2025-11-25");
}

#[test]
fn discover_describes_the_server_with_cache_hints() {
    let server = test_server();
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{{{MODERN_META}}}}}"#
    );
    let answer = exchange(&server, &mut Session::new(None), &[&line]);
    let result = &answer[0]["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(result["ttlMs"], 0);
    assert_eq!(result["cacheScope"], "private");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "kit-test"
    );
}

#[test]
fn modern_requests_need_their_meta() {
    let server = test_server();
    let mut session = Session::new(None);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        ],
    );
    assert_eq!(answers[0]["error"]["code"], -32602);
    assert!(
        answers[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initialize"),
        "{}",
        answers[0]
    );
    assert_eq!(answers[1]["error"]["code"], -32602);
    assert_eq!(answers[2]["error"]["code"], -32602);
    assert!(
        answers[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );
    assert_eq!(answers[3]["error"]["code"], -32022);
    assert_eq!(
        answers[3]["error"]["data"],
        json!({"supported": ["2026-07-28"], "requested": "2099-01-01"})
    );
}

#[test]
fn a_modern_call_is_answered_with_result_type() {
    let server = test_server();
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hi"}},{MODERN_META}}}}}"#
    );
    let mut out = Vec::new();
    assert!(
        server
            .handle(&mut Session::new(None), line.as_bytes(), &mut out)
            .is_none()
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"resultType\":\"complete\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n"
    );
}

#[test]
fn lists_are_answered_in_both_eras() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"resources/templates/list"}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"prompts/list"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#,
        ],
    );
    let names: Vec<&str> = answers[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "slow", "fail", "busy"]);
    let echo = &answers[0]["result"]["tools"][0];
    assert_eq!(echo["inputSchema"]["properties"]["text"]["maxLength"], 16);
    assert_eq!(echo["inputSchema"]["additionalProperties"], false);
    assert_eq!(echo["annotations"]["readOnlyHint"], true);
    assert_eq!(answers[1]["result"]["resources"][0]["uri"], "kit://hello");
    assert_eq!(
        answers[2]["result"]["resourceTemplates"][0]["uriTemplate"],
        "kit://item/{id}"
    );
    assert_eq!(
        answers[3]["result"]["prompts"][0]["arguments"][0],
        json!({"name": "name", "description": "Who", "required": true})
    );
    assert_eq!(answers[4]["result"], json!({}));
    let line =
        format!(r#"{{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{{{MODERN_META}}}}}"#);
    let modern = exchange(&server, &mut Session::new(None), &[&line]);
    assert_eq!(modern[0]["result"]["resultType"], "complete");
    assert_eq!(modern[0]["result"]["ttlMs"], 0);
    assert_eq!(modern[0]["result"]["tools"].as_array().unwrap().len(), 4);
}

#[test]
fn bad_tool_calls_get_precise_errors() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":5,"more":true}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"this is far too long"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":"text"}}"#,
        ],
    );
    assert_eq!(answers[0]["error"]["code"], -32602);
    assert_eq!(answers[0]["error"]["message"], "unknown tool: nope");
    assert_eq!(answers[0]["error"]["data"], json!({"name": "nope"}));
    assert_eq!(answers[1]["error"]["code"], -32602);
    let violations = answers[1]["error"]["data"]["violations"]
        .as_array()
        .unwrap();
    let pointers: Vec<&str> = violations
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/text"), "{violations:?}");
    assert!(
        violations
            .iter()
            .any(|v| v["message"].as_str().unwrap().contains("more")),
        "{violations:?}"
    );
    assert_eq!(
        answers[2]["error"]["data"]["violations"][0]["pointer"],
        "/text"
    );
    assert!(
        answers[2]["error"]["data"]["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 16"),
        "{}",
        answers[2]
    );
    assert_eq!(answers[3]["error"]["code"], -32602);
    assert!(
        answers[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "{}",
        answers[3]
    );
    assert_eq!(answers[4]["error"]["code"], -32602);
}

#[test]
fn tool_failures_and_transient_errors() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"busy"}}"#,
        ],
    );
    assert_eq!(answers[0]["result"]["isError"], true);
    assert_eq!(
        answers[0]["result"]["content"][0]["text"],
        "no expense with id 7; list_expenses shows the ids"
    );
    assert_eq!(answers[1]["error"]["code"], -32000);
    assert_eq!(
        answers[1]["error"]["data"],
        json!({"retryable": true, "retry_after_ms": 250})
    );
}

#[test]
fn resources_templates_and_prompts() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"kit://hello"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"kit://item/42"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"kit://missing"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"greet","arguments":{"name":"Ada"}}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"greet"}}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"prompts/get","params":{"name":"nope"}}"#,
        ],
    );
    assert_eq!(answers[0]["result"]["contents"][0]["text"], "hello");
    assert_eq!(
        answers[1]["result"]["contents"][0]["text"],
        "{\"id\":\"42\"}"
    );
    assert_eq!(answers[2]["error"]["code"], -32602);
    assert_eq!(answers[2]["error"]["data"], json!({"uri": "kit://missing"}));
    assert_eq!(
        answers[3]["result"]["messages"][0],
        json!({"role": "user", "content": {"type": "text", "text": "Greet Ada warmly."}})
    );
    assert_eq!(answers[4]["error"]["code"], -32602);
    assert_eq!(answers[4]["error"]["data"], json!({"missing": ["name"]}));
    assert_eq!(answers[5]["error"]["message"], "unknown prompt: nope");
}

#[test]
fn malformed_messages_get_json_rpc_errors() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            "this is not json",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#,
            r#"{"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
            r#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#,
            r#"{"jsonrpc":"2.0","id":"é-\u00e9","method":"ping"}"#,
        ],
    );
    assert_eq!(answers[0]["error"]["code"], -32700);
    assert_eq!(answers[0]["id"], json!(null));
    assert_eq!(answers[1]["error"]["code"], -32700);
    assert_eq!(answers[2]["error"]["code"], -32600);
    assert_eq!(answers[2]["id"], 2);
    assert_eq!(answers[3]["error"]["code"], -32600);
    assert_eq!(answers[4]["error"]["code"], -32600);
    assert_eq!(answers[5]["error"]["code"], -32601);
    assert_eq!(
        answers[5]["error"]["data"],
        json!({"method": "no/such/method"})
    );
    assert_eq!(answers[6]["id"], "é-é");
    assert_eq!(answers.len(), 7);
}

#[test]
fn notifications_and_stray_responses_get_no_answer() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}"#,
            r#"{"jsonrpc":"2.0","id":5,"result":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/whatever","params":{"x":1}}"#,
        ],
    );
    assert!(answers.is_empty(), "{answers:?}");
}

#[tokio::test]
async fn a_slow_call_is_pending_reports_progress_and_can_be_cancelled() {
    let server = test_server();
    let (outbound, mut notes) = tokio::sync::mpsc::channel(16);
    let mut session = Session::new(Some(outbound));
    let mut out = Vec::new();
    server.handle(&mut session, br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#, &mut out);
    out.clear();
    let pending = server
        .handle(&mut session, br#"{"jsonrpc":"2.0","id":"s1","method":"tools/call","params":{"name":"slow","arguments":{"ms":80},"_meta":{"progressToken":"tok"}}}"#, &mut out)
        .expect("a sleeping tool is still running after the first poll");
    assert!(out.is_empty());
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["id"], "s1");
    assert_eq!(answer["result"]["content"][0]["text"], "slept");
    let mut progress = Vec::new();
    while let Ok(note) = notes.try_recv() {
        let note: serde_json::Value = serde_json::from_slice(&note).unwrap();
        assert_eq!(note["method"], "notifications/progress");
        assert_eq!(note["params"]["progressToken"], "tok");
        progress.push(note["params"]["progress"].as_f64().unwrap());
    }
    assert_eq!(progress, [1.0, 2.0, 3.0, 4.0]);

    // Cancelled: no answer at all.
    let pending = server
        .handle(&mut session, br#"{"jsonrpc":"2.0","id":"s2","method":"tools/call","params":{"name":"slow","arguments":{"ms":4000}}}"#, &mut out)
        .unwrap();
    server.handle(&mut session, br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s2","reason":"user"}}"#, &mut out);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(2), pending)
        .await
        .unwrap();
    assert_eq!(answer, None);
    assert!(out.is_empty());
}

#[test]
fn oversized_messages_are_refused() {
    let server = test_server();
    let mut session = legacy_session(&server);
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(switchboard_server::MAX_MESSAGE_BYTES)
    );
    let answers = exchange(&server, &mut session, &[&huge]);
    assert_eq!(answers[0]["error"]["code"], -32600);
}

#[test]
fn methods_removed_in_2026_are_unknown_to_modern_requests() {
    use switchboard_server::Handled;
    let server = test_server();
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "no/such/method",
    ] {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"uri":"kit://hello","level":"info",{MODERN_META}}}}}"#
        );
        let mut out = Vec::new();
        let handled = server.dispatch(&mut Session::new(None), line.as_bytes(), &mut out);
        assert!(
            matches!(handled, Handled::UnknownMethod),
            "{method}: {handled:?}"
        );
        let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(answer["error"]["code"], -32601, "{method}");
    }
    // The same methods still work in a legacy session.
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#],
    );
    assert_eq!(answers[0]["result"], json!({}));
}

#[test]
fn a_tool_needing_an_undeclared_client_capability_is_refused() {
    use switchboard_server::{Handled, Server, Tool, ToolOutput};
    let server = Server::builder("caps", "1")
        .tool(
            Tool::builder("ask", "Needs sampling.")
                .requires_client_capability("sampling")
                .handler(|_: crate::Empty, _| async { Ok(ToolOutput::text("asked")) }),
        )
        .build()
        .unwrap();
    let without = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"ask",{MODERN_META}}}}}"#
    );
    let mut out = Vec::new();
    assert!(matches!(
        server.dispatch(&mut Session::new(None), without.as_bytes(), &mut out),
        Handled::Rejected
    ));
    let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(answer["error"]["code"], -32021);
    assert_eq!(
        answer["error"]["data"],
        json!({"requiredCapabilities": {"sampling": {}}})
    );
    let with = without.replace(
        r#"clientCapabilities":{}"#,
        r#"clientCapabilities":{"sampling":{}}"#,
    );
    assert_ne!(with, without);
    let mut out = Vec::new();
    let handled = server.dispatch(&mut Session::new(None), with.as_bytes(), &mut out);
    assert!(
        matches!(handled, Handled::Answered),
        "{handled:?}: {}",
        String::from_utf8_lossy(&out)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "asked");
}

#[test]
fn completions_are_declared_exactly_when_the_server_has_a_completer() {
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let without = exchange(&test_server(), &mut Session::new(None), &[initialize]);
    assert!(
        without[0]["result"]["capabilities"]
            .get("completions")
            .is_none()
    );
    let with = switchboard_server::Server::builder("completing", "1")
        .completions(|request| vec![format!("{}!", request.value)])
        .build()
        .unwrap();
    let answer = exchange(&with, &mut Session::new(None), &[initialize]);
    assert_eq!(
        answer[0]["result"]["capabilities"]["completions"],
        json!({})
    );
}

#[test]
fn completion_context_reaches_the_completer_and_bad_params_are_refused() {
    // Candidates depend on the other argument already chosen: cities of the chosen country.
    let server = switchboard_server::Server::builder("completing", "1")
        .completions(|request| {
            let cities: &[&str] = match request.context.get("country").map(String::as_str) {
                Some("fr") => &["paris", "pau"],
                Some(_) => &[],
                None => &["paris", "pau", "perth"],
            };
            cities
                .iter()
                .filter(|city| request.argument == "city" && city.starts_with(&request.value))
                .map(|city| (*city).to_owned())
                .collect()
        })
        .build()
        .unwrap();
    let mut session = legacy_session(&server);
    let ask = |params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{params}}}"#)
    };
    let reference =
        r#""ref":{"type":"ref/prompt","name":"trip"},"argument":{"name":"city","value":"p"}"#;
    let answers = exchange(
        &server,
        &mut session,
        &[
            &ask(&format!("{{{reference}}}")),
            &ask(&format!(
                r#"{{{reference},"context":{{"arguments":{{"country":"fr"}}}}}}"#
            )),
            &ask(&format!(r#"{{{reference},"context":{{}}}}"#)),
            // Context values are strings; anything else is refused, precisely.
            &ask(&format!(
                r#"{{{reference},"context":{{"arguments":{{"country":7}}}}}}"#
            )),
            &ask(&format!(r#"{{{reference},"context":"fr"}}"#)),
        ],
    );
    let values = |answer: &serde_json::Value| answer["result"]["completion"]["values"].clone();
    assert_eq!(values(&answers[0]), json!(["paris", "pau", "perth"]));
    assert_eq!(values(&answers[1]), json!(["paris", "pau"]));
    assert_eq!(values(&answers[2]), json!(["paris", "pau", "perth"]));
    for bad in &answers[3..] {
        assert_eq!(bad["error"]["code"], -32602, "{bad}");
        assert!(
            bad["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("completion/complete")),
            "{bad}"
        );
    }
}

#[test]
fn resource_subscriptions_are_declared_in_both_eras() {
    let server = switchboard_server::Server::builder("watched", "1")
        .resource(switchboard_server::Resource::new(
            "kit://a",
            "a",
            "text/plain",
            |_| async move { Ok(Vec::new()) },
        ))
        .resource_subscriptions()
        .build()
        .unwrap();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    let legacy = exchange(&server, &mut Session::new(None), &[initialize]);
    assert_eq!(
        legacy[0]["result"]["capabilities"]["resources"]["subscribe"],
        true
    );
    let discover = format!(
        r#"{{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{{{MODERN_META}}}}}"#
    );
    let modern = exchange(&server, &mut Session::new(None), &[&discover]);
    assert_eq!(
        modern[0]["result"]["capabilities"]["resources"]["subscribe"],
        true
    );
}

#[tokio::test]
async fn a_session_whose_caller_polls_its_handlers_gets_them_unpolled() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    use switchboard_server::{Handled, Server, Tool, ToolOutput};
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let server = Server::builder("deferred", "1")
        .tool(
            Tool::builder("ready", "Answers at its first poll.").handler(
                move |_: crate::Empty, _| {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        Ok(ToolOutput::text("done"))
                    }
                },
            ),
        )
        .build()
        .unwrap();
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"ready",{MODERN_META}}}}}"#
    );

    // By default a handler that is ready at once is answered during dispatch.
    let mut out = Vec::new();
    let handled = server.dispatch(&mut Session::new(None), call.as_bytes(), &mut out);
    assert!(matches!(handled, Handled::Answered), "{handled:?}");
    assert_eq!(polls.load(Ordering::SeqCst), 1);

    // Deferred: dispatch runs none of the handler and writes nothing; the caller's poll does.
    let mut session = Session::new(None).handlers_polled_by_caller();
    let mut out = Vec::new();
    let Handled::Pending(pending) = server.dispatch(&mut session, call.as_bytes(), &mut out) else {
        panic!("a deferred session's handler must come back pending");
    };
    assert!(out.is_empty());
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "dispatch polled the handler"
    );
    drop(session);
    let answer: serde_json::Value =
        serde_json::from_slice(&pending.await.expect("the call is answered")).unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["content"][0]["text"], "done");

    // A deferred call can still be cancelled by its id before it first runs.
    let mut session = Session::new(None).handlers_polled_by_caller();
    let Handled::Pending(pending) = server.dispatch(&mut session, call.as_bytes(), &mut Vec::new())
    else {
        panic!("a deferred session's handler must come back pending");
    };
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#;
    assert!(matches!(
        server.dispatch(&mut session, cancel.as_bytes(), &mut Vec::new()),
        Handled::Nothing
    ));
    assert_eq!(pending.await, None, "a cancelled call is not answered");
}
