//! `switchboard ask` and `chat` end to end: the real binary, real MCP servers as child
//! processes, and the scripted fake LLM on loopback in place of a provider.

use std::{path::Path, process::Output, time::Duration};

use serde_json::{Value, json};
use test_support::fake_llm::{ErrorTurn, FakeLlm, Reply, Script};

use crate::{Sandbox, fixture, stderr, stdout};

const KEY: &str = "sk-live-do-not-print-0123456789";

fn switchboard() -> String {
    test_support::bin_path("switchboard").display().to_string()
}

/// A config with the expense tracker on a fresh SQLite file.
fn expenses_config(sandbox: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = sandbox.path().join("expenses.sqlite3");
    let config = sandbox.config(
        &json!({"mcpServers": {"expenses": {
            "command": switchboard(),
            "args": ["serve", "expenses", "--db", db.display().to_string()],
        }}})
        .to_string(),
    );
    (config, db)
}

/// Run the binary off the async runtime, so the fake LLM keeps answering.
async fn run(sandbox: &Sandbox, config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = sandbox.cmd();
    cmd.arg("--config").arg(config).args(args);
    cmd.env("OPENAI_API_KEY", KEY)
        .env_remove("ANTHROPIC_API_KEY");
    cmd.write_stdin(stdin.to_owned());
    tokio::task::spawn_blocking(move || cmd.output().expect("switchboard runs"))
        .await
        .expect("the command thread")
}

/// Run the binary with `args` and the flags that point it at the fake model.
async fn ask(
    sandbox: &Sandbox,
    config: &Path,
    fake: &FakeLlm,
    args: &[&str],
    stdin: &str,
) -> Output {
    let model = model_args(fake);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(model.iter().map(String::as_str));
    run(sandbox, config, &all, stdin).await
}

fn model_args(fake: &FakeLlm) -> Vec<String> {
    vec![
        "--model".into(),
        "openai/gpt-test".into(),
        "--base-url".into(),
        fake.openai_base_url(),
    ]
}

fn add_lunch() -> Reply {
    Reply::tool_call(
        "expenses__add_expense",
        json!({"amount": "12.50", "category": "food", "description": "lunch"}),
    )
}

async fn expenses_in(sandbox: &Sandbox, config: &Path) -> Value {
    let output = run(
        sandbox,
        config,
        &["--json", "call", "expenses/list_expenses"],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    result["structuredContent"]["expenses"].clone()
}

fn assert_no_key(output: &Output) {
    assert!(!stdout(output).contains(KEY), "the key is on stdout");
    assert!(!stderr(output).contains(KEY), "the key is on stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_adds_an_expense_through_the_model() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(add_lunch().with_text("I'll add that."))
            .reply(Reply::text("Done: {last_tool_result}")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["-v", "ask", "add a 12.50 lunch expense in food", "--yes"],
        "",
    )
    .await;
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", stderr(&output));
    assert!(
        out.contains(r#"[Called expenses/add_expense with {"amount":"12.50","category":"food","description":"lunch"}]"#),
        "{out}"
    );
    assert!(out.contains("I'll add that."), "{out}");
    assert!(out.contains("Done: "), "{out}");
    assert_no_key(&output);
    // The key went to the provider, in its header, and nowhere else.
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let expenses = expenses_in(&sandbox, &config).await;
    assert_eq!(expenses.as_array().map(Vec::len), Some(1), "{expenses}");
    assert_eq!(expenses[0]["category"], "food");
    assert_eq!(expenses[0]["description"], "lunch");
    assert_eq!(expenses[0]["amount"], "12.50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_json_prints_the_answer_and_the_trace() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(add_lunch())
            .reply(Reply::text("Added.")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["--json", "ask", "add lunch", "--approve", "never"],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).expect("only JSON on stdout");
    assert_eq!(report["answer"], "Added.");
    assert_eq!(report["stop"]["reason"], "done");
    assert_eq!(report["model"], "openai/gpt-test");
    assert_eq!(report["steps"], 2);
    let tool = &report["trace"][1];
    assert_eq!(tool["type"], "tool");
    assert_eq!(tool["tool"], "expenses/add_expense");
    assert_eq!(tool["outcome"]["is_error"], false);
    assert_eq!(tool["arguments"]["amount"], "12.50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_nobody_approves_is_not_run_and_the_model_is_told() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(add_lunch())
            .reply(Reply::text("I could not: {last_tool_result}")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    // stdin is empty: nobody answers the approval prompt.
    let output = ask(&sandbox, &config, &fake, &["ask", "add lunch"], "").await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("was not run: nobody could approve it"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("I could not: "),
        "{}",
        stdout(&output)
    );
    assert_eq!(expenses_in(&sandbox, &config).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_approved_at_the_prompt_runs() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(add_lunch())
            .reply(Reply::text("Added.")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = ask(&sandbox, &config, &fake, &["ask", "add lunch"], "y\n").await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("The model wants to call expenses/add_expense (may change data)")
    );
    assert_eq!(
        expenses_in(&sandbox, &config)
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_ask_says_how_to_configure_one() {
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = run(&sandbox, &config, &["ask", "hello"], "").await;
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("--model"), "{err}");
    assert!(err.contains("ANTHROPIC_API_KEY"), "{err}");
    // The direct tool commands still work without a model.
    assert_eq!(expenses_in(&sandbox, &config).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_are_one_sentence_without_the_key() {
    let fake = FakeLlm::start(Script::new().error(ErrorTurn::new(
        401,
        format!("Incorrect API key provided: {KEY}"),
    )))
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = ask(&sandbox, &config, &fake, &["-v", "ask", "hello"], "").await;
    assert_eq!(output.status.code(), Some(4));
    let err = stderr(&output);
    assert!(err.contains("refused the API key (401)"), "{err}");
    assert_no_key(&output);
    assert_eq!(fake.requests().len(), 1, "401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_provider_is_retried() {
    let fake = FakeLlm::start(
        Script::new()
            .error(ErrorTurn::new(429, "slow down").with_retry_after("0"))
            .reply(Reply::text("Hello after waiting.")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = ask(&sandbox, &config, &fake, &["ask", "hello"], "").await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Hello after waiting."));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_saved_and_continued() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::text("Nice to meet you, Ada."))
            .reply(Reply::text("You are Ada.")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    for question in ["I am Ada", "who am I?"] {
        let output = ask(
            &sandbox,
            &config,
            &fake,
            &["ask", question, "--session", "intro"],
            "",
        )
        .await;
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let second = fake.requests()[1].body["messages"].to_string();
    assert!(second.contains("I am Ada"), "{second}");
    assert!(second.contains("Nice to meet you, Ada."), "{second}");
    assert!(second.contains("who am I?"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reads_questions_and_slash_commands() {
    let fake = FakeLlm::start(Script::new().reply(Reply::text("Hi there.")))
        .await
        .expect("fake LLM");
    let sandbox = Sandbox::new();
    let (config, _db) = expenses_config(&sandbox);
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["chat"],
        "/tools\nhello\n/history\n/model\n/nonsense\n/exit\n",
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Hi there."), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(
        err.contains("expenses/add_expense"),
        "/tools lists tools: {err}"
    );
    assert!(
        err.contains("you: hello"),
        "/history shows the exchange: {err}"
    );
    assert!(err.contains("openai/gpt-test"), "/model: {err}");
    assert!(err.contains("unknown command /nonsense"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_answer_and_the_running_call() {
    let fake = FakeLlm::start(
        Script::new().reply(Reply::tool_call("fixture__slow", json!({"ms": 30000}))),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let journal = sandbox.path().join("journal.jsonl");
    let config = sandbox.config(
        &json!({"mcpServers": {"fixture": {
            "command": fixture(),
            "args": ["--record", journal.display().to_string()],
        }}})
        .to_string(),
    );
    let mut cmd = std::process::Command::new(switchboard());
    cmd.arg("--config")
        .arg(&config)
        .args(["ask", "be slow", "--yes"])
        .args(model_args(&fake))
        .env("HOME", sandbox.path())
        .env("XDG_DATA_HOME", sandbox.path().join("data"))
        .env("OPENAI_API_KEY", KEY)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    // Wait until the call reached the server, then interrupt.
    let mut reached = false;
    for _ in 0..200 {
        if std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("\"call\"")) {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reached, "the slow call never reached the fixture");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("thread")
        .expect("output");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("cancelled"), "{}", stderr(&output));
    let entries = std::fs::read_to_string(&journal).expect("journal");
    assert!(
        entries.contains("\"cancelled\""),
        "the server was told: {entries}"
    );
}

/// The conformance fixture server on a free port, killed when dropped.
struct ConformanceServer {
    child: std::process::Child,
    url: String,
}

impl Drop for ConformanceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn conformance_server() -> ConformanceServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let child = std::process::Command::new(test_support::bin_path("conformance-server"))
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("conformance-server starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    ConformanceServer {
        child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    }
}

/// A server's sampling request is answered by the chat model, after the user agrees, in both
/// eras: a real request in a legacy session, an `input_required` round in 2026-07-28.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_requests_are_answered_by_the_model_after_approval() {
    for era in ["legacy", "modern"] {
        let fake = FakeLlm::start(
            Script::new()
                .reply(Reply::tool_call(
                    "conformance__test_sampling",
                    json!({"prompt": "What is 2+2?"}),
                ))
                .reply(Reply::text("4"))
                .reply(Reply::text("The tool said: {last_tool_result}")),
        )
        .await
        .expect("fake LLM");
        let server = conformance_server().await;
        let sandbox = Sandbox::new();
        let config = sandbox
            .config(&json!({"mcpServers": {"conformance": {"url": server.url}}}).to_string());
        // Approve the tool call, then the sampling request.
        let output = ask(
            &sandbox,
            &config,
            &fake,
            &["--era", era, "ask", "sample", "--approve", "always"],
            "y\ny\n",
        )
        .await;
        assert!(output.status.success(), "{era}: {}", stderr(&output));
        assert!(
            stdout(&output).contains("The tool said: LLM response: 4"),
            "{era}: {}",
            stdout(&output)
        );
        assert!(stderr(&output).contains("Let the model answer?"), "{era}");
        // The sampling request reached the model as a plain completion, without tools.
        let sampled = &fake.requests()[1].body;
        assert!(
            sampled["messages"].to_string().contains("What is 2+2?"),
            "{sampled}"
        );
        assert!(
            sampled.get("tools").is_none_or(|t| t == &json!([])),
            "{sampled}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_sampling_request_fails_the_call_not_the_program() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::tool_call(
                "conformance__test_sampling",
                json!({"prompt": "What is 2+2?"}),
            ))
            .reply(Reply::text("Could not: {last_tool_result}")),
    )
    .await
    .expect("fake LLM");
    let server = conformance_server().await;
    let sandbox = Sandbox::new();
    let config =
        sandbox.config(&json!({"mcpServers": {"conformance": {"url": server.url}}}).to_string());
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["--era", "legacy", "ask", "sample", "--approve", "always"],
        "y\nn\n",
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Could not: "),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        fake.requests().len(),
        2,
        "the model was not asked to sample"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_forms_are_asked_in_the_terminal() {
    for era in ["legacy", "modern"] {
        let fake = FakeLlm::start(
            Script::new()
                .reply(Reply::tool_call(
                    "conformance__test_elicitation",
                    json!({"message": "Who are you?"}),
                ))
                .reply(Reply::text("{last_tool_result}")),
        )
        .await
        .expect("fake LLM");
        let server = conformance_server().await;
        let sandbox = Sandbox::new();
        let config = sandbox
            .config(&json!({"mcpServers": {"conformance": {"url": server.url}}}).to_string());
        // Agree to answer, then the two fields.
        let output = ask(
            &sandbox,
            &config,
            &fake,
            &["--era", era, "ask", "who", "--yes"],
            "y\nada\nada@example.com\n",
        )
        .await;
        assert!(output.status.success(), "{era}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains("A server asks: Who are you?"), "{era}: {err}");
        assert!(err.contains("username (User's response): "), "{era}: {err}");
        let out = stdout(&output);
        assert!(out.contains("User response: action=accept"), "{era}: {out}");
        assert!(out.contains("ada@example.com"), "{era}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_come_from_the_root_flag() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::tool_call(
                "conformance__test_input_required_result_list_roots",
                json!({}),
            ))
            .reply(Reply::text("{last_tool_result}")),
    )
    .await
    .expect("fake LLM");
    let server = conformance_server().await;
    let sandbox = Sandbox::new();
    let project = sandbox.path().join("project");
    std::fs::create_dir(&project).expect("mkdir");
    let config =
        sandbox.config(&json!({"mcpServers": {"conformance": {"url": server.url}}}).to_string());
    let root = project.display().to_string();
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["ask", "roots?", "--yes", "--root", &root],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let expected =
        url::Url::from_directory_path(project.canonicalize().expect("path")).expect("a file URL");
    assert!(
        stdout(&output).contains(&format!("Client roots: {expected}")),
        "{}",
        stdout(&output)
    );
    // A root that is not a directory is a usage error.
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["ask", "roots?", "--root", "/no/such/dir"],
        "",
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--root /no/such/dir"),
        "{}",
        stderr(&output)
    );
}

/// The model uses two real servers in one turn: an expense and a bookmark, added concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_uses_the_tools_of_every_server() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(add_lunch().with_tool_call(
                "bookmarks__add_bookmark",
                json!({"url": "https://example.com/lunch-places", "tags": ["food"]}),
            ))
            .reply(Reply::text("Both saved.")),
    )
    .await
    .expect("fake LLM");
    let sandbox = Sandbox::new();
    let config = sandbox.config(
        &json!({"mcpServers": {
            "expenses": {"command": switchboard(), "args": ["serve", "expenses", "--db", sandbox.path().join("e.sqlite3").display().to_string()]},
            "bookmarks": {"command": switchboard(), "args": ["serve", "bookmarks", "--db", sandbox.path().join("b.sqlite3").display().to_string()]},
        }})
        .to_string(),
    );
    let output = ask(
        &sandbox,
        &config,
        &fake,
        &["ask", "save my lunch and the lunch places page", "--yes"],
        "",
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("[Called expenses/add_expense with"), "{out}");
    assert!(out.contains("[Called bookmarks/add_bookmark with"), "{out}");
    let offered = fake.requests()[0].body["tools"].to_string();
    assert!(
        offered.contains("expenses__get_summary")
            && offered.contains("bookmarks__search_bookmarks")
    );
    let listed = run(
        &sandbox,
        &config,
        &[
            "--json",
            "call",
            "bookmarks/list_by_tag",
            "--arg",
            "tag=food",
        ],
        "",
    )
    .await;
    assert!(
        stdout(&listed).contains("https://example.com/lunch-places"),
        "{}",
        stdout(&listed)
    );
    assert_eq!(
        expenses_in(&sandbox, &config)
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
