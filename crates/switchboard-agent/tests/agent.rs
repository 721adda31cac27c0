//! The agent loop against a real MCP server (the rmcp fixture, in memory) and the fake LLM
//! endpoint on loopback, in both providers' wire formats.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchboard_agent::{
    Agent, AgentError, AgentOptions, Approval, ApprovalFuture, ApprovalPolicy, Budget, Observer,
    Stop, ToolCall, ToolOutcome, TraceEvent,
};
use switchboard_client::{ConnectOptions, Connection};
use switchboard_config::ServerName;
use switchboard_host::{Host, HostOptions};
use switchboard_llm::{Block, ChatModel, Message, ModelError, ModelSettings, Role};
use test_support::{
    fake_llm::{ErrorTurn, FakeLlm, Reply, Script},
    fixture::{FixtureOptions, Journal, JournalEntry, serve_in_memory},
};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
enum Provider {
    Anthropic,
    OpenAi,
}

const PROVIDERS: [Provider; 2] = [Provider::Anthropic, Provider::OpenAi];

fn model(provider: Provider, fake: &FakeLlm) -> Arc<dyn ChatModel> {
    let (model, base) = match provider {
        Provider::Anthropic => ("anthropic/claude-test", fake.base_url().to_owned()),
        Provider::OpenAi => ("openai-compatible/fake", fake.openai_base_url()),
    };
    let settings = ModelSettings {
        model: model.to_owned(),
        api_key: Some(switchboard_llm::Secret::new("sk-test-key")),
        base_url: Some(base.parse().expect("a URL")),
        ..ModelSettings::default()
    };
    Arc::from(switchboard_llm::build_model(&settings, |_| None).expect("a model"))
}

async fn fixture_host(options: FixtureOptions) -> Arc<Host> {
    let (read, write) = serve_in_memory(options);
    let connection = Connection::connect_io(
        ServerName::new("fixture").expect("a name"),
        read,
        write,
        &ConnectOptions::default(),
    )
    .await
    .expect("the fixture connects");
    Arc::new(Host::from_connections(
        vec![connection],
        HostOptions::default(),
    ))
}

/// Records what the loop shows, and answers approvals as told.
#[derive(Debug)]
struct Recorder {
    events: Mutex<Vec<String>>,
    answer: Approval,
    cancel_on_start: Option<CancellationToken>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder::answering(Approval::Approve)
    }

    fn answering(answer: Approval) -> Recorder {
        Recorder {
            events: Mutex::new(Vec::new()),
            answer,
            cancel_on_start: None,
        }
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().expect("lock").clone()
    }

    fn push(&self, event: String) {
        self.events.lock().expect("lock").push(event);
    }
}

impl Observer for Recorder {
    fn text(&self, delta: &str) {
        self.push(format!("text {delta}"));
    }
    fn notice(&self, message: &str) {
        self.push(format!("notice {message}"));
    }
    fn tool_started(&self, call: &ToolCall) {
        self.push(format!("start {} {}", call.tool, call.arguments));
        if let Some(cancel) = &self.cancel_on_start {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                cancel.cancel();
            });
        }
    }
    fn tool_finished(&self, call: &ToolCall, outcome: &ToolOutcome) {
        self.push(format!(
            "finish {} error={} {}",
            call.tool, outcome.is_error, outcome.summary
        ));
    }
    fn approve<'a>(&'a self, call: &'a ToolCall) -> ApprovalFuture<'a> {
        self.push(format!("approve? {}", call.tool));
        let answer = self.answer.clone();
        Box::pin(async move { answer })
    }
}

fn options() -> AgentOptions {
    AgentOptions {
        approval: ApprovalPolicy::Never,
        ..AgentOptions::default()
    }
}

/// The tool results the model was sent in the request at `index`, as (content, is_error), in
/// either wire format.
fn tool_results_sent(fake: &FakeLlm, index: usize) -> Vec<(String, bool)> {
    let request = &fake.requests()[index];
    let messages = request.body["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let mut results = Vec::new();
    for message in messages {
        if message["role"] == "tool" {
            let content = message["content"].as_str().unwrap_or_default().to_owned();
            let is_error = content.starts_with("Error");
            results.push((content, is_error));
        }
        if let Some(blocks) = message["content"].as_array() {
            for block in blocks {
                if block["type"] == "tool_result" {
                    let content = match &block["content"] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    results.push((content, block["is_error"] == true));
                }
            }
        }
    }
    results
}

#[tokio::test]
async fn the_model_calls_a_tool_and_reads_its_result() {
    for provider in PROVIDERS {
        let fake = FakeLlm::start(
            Script::new()
                .reply(
                    Reply::tool_call("fixture__add", json!({"a": 2, "b": 3})).with_text("Adding."),
                )
                .reply(Reply::text("The sum is {last_tool_result}.")),
        )
        .await
        .expect("fake LLM");
        let host = fixture_host(FixtureOptions::default()).await;
        let agent = Agent::new(host, model(provider, &fake), options());
        let recorder = Recorder::new();
        let mut history = Vec::new();
        let turn = agent
            .run(
                &mut history,
                "What is 2 + 3?",
                &recorder,
                &CancellationToken::new(),
            )
            .await
            .expect("a turn");
        assert_eq!(turn.stop, Stop::Done, "{provider:?}");
        assert_eq!(turn.answer, "The sum is 5.", "{provider:?}");
        assert_eq!(turn.steps, 2);
        assert_eq!(fake.requests().len(), 2);
        // The tools were offered under their qualified names, with their schemas.
        let first = &fake.requests()[0].body;
        let offered = first["tools"].to_string();
        assert!(offered.contains("fixture__add"), "{offered}");
        assert!(offered.contains("First addend"), "{offered}");
        assert_eq!(
            tool_results_sent(&fake, 1),
            vec![("5".to_owned(), false)],
            "{provider:?}"
        );
        let events = recorder.events();
        assert!(
            events.contains(&"start fixture/add {\"a\":2,\"b\":3}".to_owned()),
            "{events:?}"
        );
        assert!(
            events.contains(&"finish fixture/add error=false 5".to_owned()),
            "{events:?}"
        );
        let streamed: String = events
            .iter()
            .filter_map(|e| e.strip_prefix("text "))
            .collect();
        assert_eq!(streamed, "Adding.The sum is 5.", "{provider:?}");
        // The history holds the whole exchange, well-formed, for the next question.
        let roles: Vec<Role> = history.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::User, Role::Assistant, Role::User, Role::Assistant]
        );
        assert_eq!(turn.new_messages.len(), 4);
        assert!(matches!(
            &turn.trace[1],
            TraceEvent::Tool { approved: true, .. }
        ));
    }
}

#[tokio::test]
async fn the_step_budget_stops_the_loop() {
    let looping = Reply::tool_call("fixture__add", json!({"a": 1, "b": 1}));
    let fake = FakeLlm::start(
        Script::new()
            .reply(looping.clone())
            .reply(looping.clone())
            .reply(looping),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(
        host,
        model(Provider::OpenAi, &fake),
        AgentOptions {
            max_steps: 2,
            ..options()
        },
    );
    let mut history = Vec::new();
    let turn = agent
        .run(
            &mut history,
            "loop",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    assert_eq!(turn.stop, Stop::Budget(Budget::Steps(2)));
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.turns_left(), 1);
    // The history ends with the answered tool calls: a next question can follow.
    assert_eq!(history.last().map(|m| m.role), Some(Role::User));
}

#[tokio::test]
async fn the_token_budget_stops_the_loop_and_caps_output() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::tool_call("fixture__add", json!({"a": 1, "b": 1})).with_usage(700, 400))
            .reply(Reply::text("never asked")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(
        host,
        model(Provider::Anthropic, &fake),
        AgentOptions {
            max_tokens: Some(1000),
            max_output_tokens: 4096,
            ..options()
        },
    );
    let turn = agent
        .run(
            &mut Vec::new(),
            "spend",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    assert_eq!(turn.stop, Stop::Budget(Budget::Tokens(1000)));
    assert_eq!(fake.requests().len(), 1);
    // The first turn may not produce more output than the whole budget.
    assert_eq!(fake.requests()[0].body["max_tokens"], 1000);
    assert_eq!(turn.usage.input_tokens + turn.usage.output_tokens, 1100);
}

#[tokio::test]
async fn a_denied_call_is_not_run_and_the_model_is_told() {
    let journal = Journal::new();
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::tool_call("fixture__slow", json!({"ms": 10})))
            .reply(Reply::text("Understood: {last_tool_result}")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions {
        journal: Some(journal.clone()),
        ..FixtureOptions::default()
    })
    .await;
    let agent = Agent::new(
        host,
        model(Provider::Anthropic, &fake),
        AgentOptions {
            approval: ApprovalPolicy::Writes,
            ..options()
        },
    );
    let recorder = Recorder::answering(Approval::Deny(Some("not today".into())));
    let turn = agent
        .run(
            &mut Vec::new(),
            "echo",
            &recorder,
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    assert_eq!(
        journal.calls_of("slow"),
        0,
        "a refused call never reaches the server"
    );
    let sent = tool_results_sent(&fake, 1);
    assert_eq!(
        sent,
        vec![(
            "The user did not allow this call: not today".to_owned(),
            true
        )]
    );
    assert_eq!(
        turn.answer,
        "Understood: The user did not allow this call: not today"
    );
    assert!(
        recorder
            .events()
            .contains(&"approve? fixture/slow".to_owned())
    );
    assert!(matches!(
        &turn.trace[1],
        TraceEvent::Tool {
            approved: false,
            ..
        }
    ));
}

#[tokio::test]
async fn read_only_tools_need_no_approval_under_the_default_policy() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::tool_call("fixture__add", json!({"a": 1, "b": 2})))
            .reply(Reply::text("3")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(
        host,
        model(Provider::OpenAi, &fake),
        AgentOptions {
            approval: ApprovalPolicy::Writes,
            ..options()
        },
    );
    let recorder = Recorder::answering(Approval::Deny(None));
    agent
        .run(&mut Vec::new(), "add", &recorder, &CancellationToken::new())
        .await
        .expect("a turn");
    assert!(!recorder.events().iter().any(|e| e.starts_with("approve?")));
    assert_eq!(tool_results_sent(&fake, 1), vec![("3".to_owned(), false)]);
}

#[tokio::test]
async fn tool_errors_unknown_tools_and_bad_arguments_go_back_to_the_model() {
    let journal = Journal::new();
    let fake = FakeLlm::start(
        Script::new()
            .reply(
                Reply::tool_call("fixture__fail", json!({}))
                    .with_tool_call("fixture__nope", json!({}))
                    .with_tool_call("fixture__add", json!({"a": "two", "b": 3})),
            )
            .reply(Reply::tool_call("fixture__add", json!({"a": 2, "b": 3})))
            .reply(Reply::text("Recovered: {last_tool_result}")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions {
        journal: Some(journal.clone()),
        ..FixtureOptions::default()
    })
    .await;
    let agent = Agent::new(host, model(Provider::Anthropic, &fake), options());
    let turn = agent
        .run(
            &mut Vec::new(),
            "try",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    assert_eq!(turn.stop, Stop::Done);
    assert_eq!(turn.answer, "Recovered: 5");
    let sent = tool_results_sent(&fake, 1);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|(_, is_error)| *is_error), "{sent:?}");
    assert!(
        sent[1]
            .0
            .contains("There is no tool named \"fixture__nope\""),
        "{sent:?}"
    );
    assert!(
        sent[1].0.contains("fixture__add"),
        "the error lists the real tools: {sent:?}"
    );
    assert!(sent[2].0.contains("input schema"), "{sent:?}");
    // Bad arguments are caught before the server: only the good add reached it.
    assert_eq!(journal.calls_of("add"), 1);
    assert_eq!(journal.calls_of("fail"), 1);
}

#[tokio::test]
async fn tool_calls_of_one_turn_run_concurrently() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(
                Reply::tool_call("fixture__slow", json!({"ms": 600, "steps": 1}))
                    .with_tool_call("fixture__slow", json!({"ms": 600, "steps": 1}))
                    .with_tool_call("fixture__slow", json!({"ms": 600, "steps": 1})),
            )
            .reply(Reply::text("done")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(host, model(Provider::OpenAi, &fake), options());
    let started = Instant::now();
    let turn = agent
        .run(
            &mut Vec::new(),
            "three",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    let elapsed = started.elapsed();
    assert_eq!(turn.stop, Stop::Done);
    assert_eq!(tool_results_sent(&fake, 1).len(), 3);
    // In sequence they would take 1.8 s.
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

async fn wait_for_cancellation(journal: &Journal) -> Vec<JournalEntry> {
    for _ in 0..100 {
        let entries = journal.entries();
        if entries
            .iter()
            .any(|e| matches!(e, JournalEntry::Cancelled { .. }))
        {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    journal.entries()
}

#[tokio::test]
async fn cancelling_stops_the_turn_and_cancels_running_calls() {
    let journal = Journal::new();
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::tool_call("fixture__slow", json!({"ms": 20000})))
            .reply(Reply::text("after")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions {
        journal: Some(journal.clone()),
        ..FixtureOptions::default()
    })
    .await;
    let agent = Agent::new(host, model(Provider::OpenAi, &fake), options());
    let cancel = CancellationToken::new();
    let recorder = Recorder {
        cancel_on_start: Some(cancel.clone()),
        ..Recorder::new()
    };
    let mut history = Vec::new();
    let started = Instant::now();
    let turn = agent
        .run(&mut history, "slow", &recorder, &cancel)
        .await
        .expect("a turn");
    assert_eq!(turn.stop, Stop::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));
    let entries = wait_for_cancellation(&journal).await;
    let call_id = entries.iter().find_map(|e| match e {
        JournalEntry::Call { id, .. } => Some(id.clone()),
        _ => None,
    });
    let cancelled_id = entries.iter().find_map(|e| match e {
        JournalEntry::Cancelled { id, .. } => Some(id.clone()),
        _ => None,
    });
    assert!(call_id.is_some(), "{entries:?}");
    assert_eq!(cancelled_id, call_id, "the server was told: {entries:?}");
    // The cancelled call is answered in the history, so the conversation can go on.
    let last = history.last().expect("history");
    assert!(matches!(
        &last.content[0],
        Block::ToolResult { is_error: true, content, .. } if content.contains("cancelled")
    ));
    // The model was asked once; the loop did not go on after the cancel.
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn the_time_budget_stops_a_slow_turn() {
    let fake = FakeLlm::start(
        Script::new().reply(Reply::tool_call("fixture__slow", json!({"ms": 20000}))),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(
        host,
        model(Provider::Anthropic, &fake),
        AgentOptions {
            time_limit: Some(Duration::from_millis(500)),
            ..options()
        },
    );
    let started = Instant::now();
    let turn = agent
        .run(
            &mut Vec::new(),
            "slow",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    assert_eq!(
        turn.stop,
        Stop::Budget(Budget::Time(Duration::from_millis(500)))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_model_error_leaves_the_history_as_it_was() {
    let fake = FakeLlm::start(Script::new().error(ErrorTurn::new(401, "invalid x-api-key")))
        .await
        .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(host, model(Provider::Anthropic, &fake), options());
    let mut history = vec![
        Message::user("earlier"),
        Message {
            role: Role::Assistant,
            content: vec![Block::text("answer")],
        },
    ];
    let before = history.clone();
    let error = agent
        .run(
            &mut history,
            "now",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect_err("401");
    assert!(
        matches!(
            error,
            AgentError::Model(ModelError::Unauthorized { status: 401, .. })
        ),
        "{error}"
    );
    assert!(!error.to_string().contains("sk-test-key"));
    assert_eq!(history, before);
    assert_eq!(fake.requests().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn the_history_is_sent_and_grows_across_questions() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::text("first"))
            .reply(Reply::text("second")),
    )
    .await
    .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(host, model(Provider::OpenAi, &fake), options());
    let mut history = Vec::new();
    let recorder = Recorder::new();
    let cancel = CancellationToken::new();
    agent
        .run(&mut history, "one", &recorder, &cancel)
        .await
        .expect("turn");
    agent
        .run(&mut history, "two", &recorder, &cancel)
        .await
        .expect("turn");
    let messages = fake.requests()[1].body["messages"].to_string();
    assert!(messages.contains("one") && messages.contains("first") && messages.contains("two"));
    assert_eq!(history.len(), 4);
}

#[tokio::test]
async fn long_histories_are_trimmed_to_the_context_budget() {
    let fake = FakeLlm::start(Script::new().reply(Reply::text("ok")))
        .await
        .expect("fake LLM");
    let host = fixture_host(FixtureOptions::default()).await;
    let agent = Agent::new(
        host,
        model(Provider::Anthropic, &fake),
        AgentOptions {
            context_tokens: 1_000,
            ..options()
        },
    );
    let mut history = Vec::new();
    for n in 0..5 {
        history.push(Message::user(format!(
            "old question {n} {}",
            "x".repeat(2_000)
        )));
        history.push(Message {
            role: Role::Assistant,
            content: vec![Block::text(format!("old answer {n}"))],
        });
    }
    agent
        .run(
            &mut history,
            "new question",
            &Recorder::new(),
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    let sent = fake.requests()[0].body["messages"].to_string();
    assert!(sent.contains("new question"), "{sent}");
    // Each old exchange is about 500 tokens: only the newest one fits beside the question.
    assert!(sent.contains("old question 4"), "{sent}");
    assert!(
        !sent.contains("old question 3"),
        "older exchanges were left out"
    );
    assert_eq!(
        fake.requests()[0].body["messages"].as_array().map(Vec::len),
        Some(3)
    );
    // The saved history keeps everything; only what is sent is trimmed.
    assert_eq!(history.len(), 12);
}

#[tokio::test]
async fn a_server_that_is_down_is_left_out_and_the_model_is_told() {
    let fixture = test_support::bin_path("sb-fixture-server");
    let config = switchboard_config::parse_config(
        &json!({"mcpServers": {
            "good": {"command": fixture.display().to_string()},
            "bad": {"command": "/nonexistent/mcp-server"},
        }})
        .to_string(),
        None,
        &|_: &str| None,
    )
    .expect("a config");
    let host = Arc::new(Host::connect(&config, HostOptions::default()).await);
    let fake = FakeLlm::start(Script::new().reply(Reply::text("Only good is up.")))
        .await
        .expect("fake LLM");
    let agent = Agent::new(host, model(Provider::Anthropic, &fake), options());
    let recorder = Recorder::new();
    agent
        .run(
            &mut Vec::new(),
            "what can you do?",
            &recorder,
            &CancellationToken::new(),
        )
        .await
        .expect("a turn");
    let request = &fake.requests()[0].body;
    let tools = request["tools"].to_string();
    assert!(tools.contains("good__add"), "{tools}");
    assert!(!tools.contains("bad__"), "{tools}");
    let system = request["system"].to_string();
    assert!(
        system.contains("unavailable right now") && system.contains("\\\"bad\\\""),
        "{system}"
    );
    assert!(
        recorder
            .events()
            .iter()
            .any(|e| e.starts_with("notice server \"bad\" is unavailable")),
        "{:?}",
        recorder.events()
    );
}
