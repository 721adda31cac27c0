//! Retries, error sentences, and the key staying secret.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use switchboard_llm::{
    AnthropicModel, Block, ChatModel, ClientOptions, ModelError, OpenAiFlavor, OpenAiModel,
    RetryPolicy, Secret, Streaming,
};
use test_support::fake_llm::{ErrorTurn, FakeLlm, Reply, Script};

use crate::{BOTH, KEY, anthropic, openai, options, question, url};

#[tokio::test]
async fn unauthorized_is_not_retried_and_the_echoed_key_is_scrubbed() {
    for streaming in BOTH {
        let fake = FakeLlm::start(
            Script::new()
                .error(ErrorTurn::new(
                    401,
                    format!("Incorrect API key provided: {KEY}"),
                ))
                .reply(Reply::text("never sent")),
        )
        .await
        .expect("the fake starts");
        let model = openai(&fake, streaming);
        let error = model
            .complete(&question("hi"), &|_| {})
            .await
            .expect_err("401 is an error");
        assert!(
            matches!(error, ModelError::Unauthorized { status: 401, .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "OpenAI refused the API key (401): Incorrect API key provided: <redacted>"
        );
        assert!(!format!("{error:?}").contains(KEY));
        assert_eq!(fake.requests().len(), 1, "401 is never retried");
    }
}

#[tokio::test]
async fn forbidden_is_not_retried() {
    let fake = FakeLlm::start(
        Script::new()
            .error(ErrorTurn::new(
                403,
                "This key has no access to claude-test.",
            ))
            .reply(Reply::text("never sent")),
    )
    .await
    .expect("the fake starts");
    let error = anthropic(&fake, Streaming::On)
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("403 is an error");
    assert_eq!(
        error.to_string(),
        "Anthropic refused the API key (403): This key has no access to claude-test."
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success_takes_exactly_two_attempts() {
    for streaming in BOTH {
        let fake = FakeLlm::start(
            Script::new()
                .error(ErrorTurn::new(429, "slow down").with_retry_after("0"))
                .reply(Reply::text("finally")),
        )
        .await
        .expect("the fake starts");
        let response = anthropic(&fake, streaming)
            .complete(&question("hi"), &|_| {})
            .await
            .expect("the retry succeeds");
        assert_eq!(response.content, vec![Block::text("finally")]);
        assert_eq!(fake.requests().len(), 2);
    }
}

#[tokio::test]
async fn the_wait_retry_after_asks_for_is_honoured() {
    let fake = FakeLlm::start(
        Script::new()
            .error(ErrorTurn::new(429, "slow down").with_retry_after("1"))
            .reply(Reply::text("finally")),
    )
    .await
    .expect("the fake starts");
    // Backoff alone would wait at most 20 ms; `retry-after: 1` asks for a second.
    let mut options = options(Streaming::On);
    options.retry = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_secs(5));
    let model = OpenAiModel::new(
        OpenAiFlavor::OpenAi,
        "gpt-test",
        &url(&fake.openai_base_url()),
        Some(Secret::new(KEY)),
        options,
    )
    .expect("the model builds");
    let started = Instant::now();
    model
        .complete(&question("hi"), &|_| {})
        .await
        .expect("the retry succeeds");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_reported_instead_of_waited_for() {
    let fake = FakeLlm::start(
        Script::new()
            .error(ErrorTurn::new(429, "Rate limit reached for requests").with_retry_after("120"))
            .reply(Reply::text("never sent")),
    )
    .await
    .expect("the fake starts");
    let error = openai(&fake, Streaming::On)
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("the wait is longer than the cap");
    assert!(
        matches!(error, ModelError::RateLimited { retry_after: Some(wait), .. } if wait == Duration::from_secs(120)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "OpenAI is rate limiting this key: Rate limit reached for requests (it asks to wait 120 s)"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_retries_run_out() {
    for streaming in BOTH {
        let mut script = Script::new();
        for _ in 0..5 {
            script = script.error(ErrorTurn::new(
                500,
                "The server had an error processing your request.",
            ));
        }
        let fake = FakeLlm::start(script).await.expect("the fake starts");
        let error = openai(&fake, streaming)
            .complete(&question("hi"), &|_| {})
            .await
            .expect_err("every attempt fails");
        assert_eq!(
            error.to_string(),
            "OpenAI answered HTTP 500: The server had an error processing your request."
        );
        assert_eq!(fake.requests().len(), 4, "one attempt and three retries");
        assert_eq!(fake.turns_left(), 1);
    }
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_a_non_json_body_is_quoted() {
    let fake = FakeLlm::start(
        Script::new()
            .error(ErrorTurn::new(400, "").with_body("  model   `nope` \n does not exist  "))
            .reply(Reply::text("never sent")),
    )
    .await
    .expect("the fake starts");
    let error = anthropic(&fake, Streaming::On)
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("400 is an error");
    assert_eq!(
        error.to_string(),
        "Anthropic answered HTTP 400: model `nope` does not exist"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_exhausted_script_says_so() {
    let fake = FakeLlm::start(Script::new())
        .await
        .expect("the fake starts");
    let mut options = options(Streaming::On);
    options.retry = RetryPolicy::never();
    let model = AnthropicModel::new(
        "claude-test",
        &url(fake.base_url()),
        Secret::new(KEY),
        options,
    )
    .expect("the model builds");
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("no turns left");
    assert_eq!(
        error.to_string(),
        "Anthropic answered HTTP 500: the fake LLM's script has no more turns: all 0 were played"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_one_sentence_after_bounded_retries() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    let base = url(&format!("http://127.0.0.1:{port}"));
    let model = AnthropicModel::new(
        "claude-test",
        &base,
        Secret::new(KEY),
        options(Streaming::On),
    )
    .expect("the model builds");
    let started = Instant::now();
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(error, ModelError::Unreachable { .. }), "{error:?}");
    let sentence = error.to_string();
    assert!(
        sentence.starts_with(&format!(
            "could not reach Anthropic at http://127.0.0.1:{port}/v1/messages: "
        )),
        "{sentence}"
    );
    assert!(
        sentence.to_lowercase().contains("connection refused"),
        "{sentence}"
    );
    assert!(!sentence.contains(KEY));
}

#[tokio::test]
async fn a_silent_provider_times_out_without_a_retry() {
    let fake = FakeLlm::start(
        Script::new()
            .reply(Reply::text("too late").with_delay(Duration::from_millis(1500)))
            .reply(Reply::text("never sent")),
    )
    .await
    .expect("the fake starts");
    let mut options = options(Streaming::Off);
    options.idle_timeout = Duration::from_millis(200);
    let model = OpenAiModel::new(
        OpenAiFlavor::OpenAi,
        "gpt-test",
        &url(&fake.openai_base_url()),
        Some(Secret::new(KEY)),
        options,
    )
    .expect("the model builds");
    let started = Instant::now();
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("the answer comes too late");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        error.to_string(),
        format!(
            "could not reach OpenAI at {}/chat/completions: no data within 0.2 s",
            fake.openai_base_url()
        )
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_connection_closed_before_any_answer_is_retried() {
    // A server that accepts connections and closes them without a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    let accepted = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            *counter.lock().expect("counter lock") += 1;
            drop(socket);
        }
    });
    let base = url(&format!("http://127.0.0.1:{port}/v1"));
    let model = OpenAiModel::new(
        OpenAiFlavor::Compatible,
        "m",
        &base,
        None,
        options(Streaming::On),
    )
    .expect("the model builds");
    let error = model
        .complete(&question("hi"), &|_| {})
        .await
        .expect_err("every connection is closed");
    server.abort();
    assert!(matches!(error, ModelError::Unreachable { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with(&format!(
            "could not reach the OpenAI-compatible server at http://127.0.0.1:{port}/v1/chat/completions: "
        )),
        "{error}"
    );
    assert_eq!(
        *accepted.lock().expect("counter lock"),
        4,
        "one attempt and three retries"
    );
}

#[tokio::test]
async fn the_key_is_not_in_debug_output() {
    let fake = FakeLlm::start(Script::new())
        .await
        .expect("the fake starts");
    let anthropic = format!("{:?}", anthropic(&fake, Streaming::On));
    let openai = format!("{:?}", openai(&fake, Streaming::On));
    for debug in [anthropic, openai] {
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}

/// A writer that keeps everything logged, for the trace-level test below.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_is_not_in_trace_level_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeLlm::start(
        Script::new()
            .error(ErrorTurn::new(503, format!("overloaded, key {KEY}")))
            .reply(Reply::text("ok")),
    )
    .await
    .expect("the fake starts");
    let model = OpenAiModel::new(
        OpenAiFlavor::OpenAi,
        "gpt-test",
        &url(&fake.openai_base_url()),
        Some(Secret::new(KEY)),
        ClientOptions {
            streaming: Streaming::On,
            ..options(Streaming::On)
        },
    )
    .expect("the model builds");
    model
        .complete(&question("hi"), &|_| {})
        .await
        .expect("the retry succeeds");

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("log lock")).into_owned();
    assert!(
        logs.contains("sending a chat request"),
        "attempts are logged: {logs}"
    );
    assert!(logs.contains("retrying the chat request"), "{logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs:\n{logs}");
}
