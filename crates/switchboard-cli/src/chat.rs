//! `switchboard ask` and `switchboard chat`: a model answers by calling the servers' tools.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{
    io::Write,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use switchboard_agent::{
    Agent, AgentOptions, Approval, ApprovalFuture, ApprovalPolicy, Observer, Stop, ToolCall,
    ToolOutcome, Turn, history::SessionStore, render,
};
use switchboard_client::callbacks::{
    CallbackError, CallbackFuture, Callbacks, ClientCallbacks, ElicitationRequest,
    ElicitationResponse, Root, SamplingRequest, SamplingResponse,
};
use switchboard_host::ServerState;
use switchboard_llm::{ChatModel, Message, ModelSettings, Role, Secret};
use switchboard_store::Location;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::{AgentArgs, ApproveArg, GlobalArgs},
    form, output,
    run::{Failure, exit},
    settings::{Settings, agent_config, data_dir, seconds},
    terminal::{Confirmation, Line, Terminal},
};

/// What `ask`/`chat` was asked to do.
#[derive(Debug)]
pub enum Mode {
    Ask(String),
    Chat,
}

/// The longest question read from stdin (`ask -`).
const MAX_QUESTION_BYTES: u64 = 1024 * 1024;

pub async fn run(global: GlobalArgs, args: AgentArgs, mode: Mode) -> Result<ExitCode, Failure> {
    let settings = Settings::resolve(&global)?;
    let model = choose_model(&global, &args)?;
    let terminal = Terminal::open(data_dir().map(|dir| dir.join("chat_history.txt")));
    let policy = if args.yes {
        ApprovalPolicy::Never
    } else {
        match args.approve {
            ApproveArg::Never => ApprovalPolicy::Never,
            ApproveArg::Writes => ApprovalPolicy::Writes,
            ApproveArg::Always => ApprovalPolicy::Always,
        }
    };
    let callbacks = Arc::new(TerminalCallbacks {
        model: model.clone(),
        terminal: terminal.clone(),
        ask_before_sampling: policy != ApprovalPolicy::Never,
        roots: roots(&args.roots)?,
    });
    let question = match &mode {
        Mode::Ask(question) => Some(read_question(question)?),
        Mode::Chat => None,
    };
    let store = match &args.session {
        Some(_) => Some(open_store(args.history_db.as_deref()).await?),
        None => None,
    };
    let mut history = match (&store, &args.session) {
        (Some(store), Some(session)) => store
            .load(session)
            .await
            .map_err(|e| Failure::usage(format!("--session {session}: {e}")))?,
        _ => Vec::new(),
    };
    if settings.config.servers.is_empty() {
        output::warn("no MCP servers are configured, so the model has no tools (see --help)");
    }
    let host = Arc::new(crate::run::connect_host(&settings, Some(callbacks)).await);
    for (_, state) in host.servers() {
        if let ServerState::Failed(error) = state {
            output::warn(&format!("{error}; its tools are not offered to the model"));
        }
    }
    let options = AgentOptions {
        system: args
            .system
            .clone()
            .unwrap_or_else(|| switchboard_agent::DEFAULT_SYSTEM.to_owned()),
        max_steps: args.max_steps,
        max_tokens: Some(args.max_tokens),
        max_output_tokens: args.max_output_tokens,
        time_limit: Some(seconds("--time-limit", args.time_limit)?),
        approval: policy,
        context_tokens: args.context_tokens,
        call: switchboard_client::CallOptions {
            timeout: settings.request_timeout,
            ..switchboard_client::CallOptions::default()
        },
        ..AgentOptions::default()
    };
    let agent = Agent::new(host.clone(), model, options);
    let session = Session {
        agent: &agent,
        store: store.as_ref(),
        name: args.session.as_deref(),
        terminal: &terminal,
    };
    let outcome = match question {
        Some(question) => session.ask(&mut history, &question, settings.json).await,
        None => session.chat(&mut history).await,
    };
    drop(agent);
    if let Some(store) = &store {
        store.close().await;
    }
    if let Ok(host) = Arc::try_unwrap(host) {
        host.shutdown().await;
    }
    outcome
}

/// `--model` and friends, then the config file's `agent` section, then the environment.
fn choose_model(global: &GlobalArgs, args: &AgentArgs) -> Result<Arc<dyn ChatModel>, Failure> {
    let file = agent_config(global)?;
    let model = args.model.clone().or(file.model).unwrap_or_default();
    let base_url = match args.base_url.clone().or(file.base_url) {
        Some(text) => Some(
            url::Url::parse(&text)
                .map_err(|e| Failure::usage(format!("--base-url {text:?} is not a URL: {e}")))?,
        ),
        None => None,
    };
    let key_var = args.api_key_env.clone().or(file.api_key_env);
    let api_key = match &key_var {
        Some(var) => Some(Secret::new(std::env::var(var).map_err(|_| {
            Failure::usage(format!(
                "the API key variable {var} (from --api-key-env or the config's agent.apiKeyEnv) is not set"
            ))
        })?)),
        None => None,
    };
    let settings = ModelSettings {
        model,
        api_key,
        base_url,
        ..ModelSettings::default()
    };
    switchboard_llm::build_model(&settings, |name| std::env::var(name).ok())
        .map(Arc::from)
        .map_err(|e| Failure {
            message: e.to_string(),
            code: ExitCode::from(exit::AGENT),
        })
}

fn read_question(question: &str) -> Result<String, Failure> {
    let text = if question == "-" {
        crate::run::read_stdin("the question", MAX_QUESTION_BYTES)?
    } else {
        question.to_owned()
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(Failure::usage("the question is empty".to_owned()));
    }
    Ok(text.to_owned())
}

fn roots(dirs: &[PathBuf]) -> Result<Vec<Root>, Failure> {
    dirs.iter()
        .map(|dir| {
            let absolute = std::fs::canonicalize(dir)
                .map_err(|e| Failure::usage(format!("--root {}: {e}", dir.display())))?;
            if !absolute.is_dir() {
                return Err(Failure::usage(format!(
                    "--root {} is not a directory",
                    dir.display()
                )));
            }
            let uri = url::Url::from_directory_path(&absolute).map_err(|()| {
                Failure::usage(format!("--root {}: not an absolute path", dir.display()))
            })?;
            Ok(Root {
                uri: uri.to_string(),
                name: absolute
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned()),
            })
        })
        .collect()
}

async fn open_store(db: Option<&str>) -> Result<SessionStore, Failure> {
    let text = match db {
        Some(db) => db.to_owned(),
        None => data_dir()
            .map(|dir| dir.join("agent.sqlite3").display().to_string())
            .ok_or_else(|| {
                Failure::usage("no data directory is known; give --history-db PATH".to_owned())
            })?,
    };
    let location = Location::parse(&text).map_err(|e| Failure::usage(e.to_string()))?;
    SessionStore::open(&location)
        .await
        .map_err(|e| Failure::usage(format!("the session store: {e}")))
}

/// One `ask` or `chat` run.
struct Session<'a> {
    agent: &'a Agent,
    store: Option<&'a SessionStore>,
    name: Option<&'a str>,
    terminal: &'a Terminal,
}

impl Session<'_> {
    /// Run one question with Ctrl-C cancelling it, and save the exchange.
    async fn turn(
        &self,
        history: &mut Vec<Message>,
        question: &str,
        observer: &TerminalObserver,
    ) -> Result<Turn, Failure> {
        let cancel = CancellationToken::new();
        // Ctrl-C at an approval prompt (a key press in raw mode, not a signal) cancels too.
        if let Ok(mut slot) = observer.cancel.lock() {
            *slot = Some(cancel.clone());
        }
        let watcher = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            }
        });
        let turn = self.agent.run(history, question, observer, &cancel).await;
        watcher.abort();
        let turn = turn.map_err(|e| Failure {
            message: e.to_string(),
            code: ExitCode::from(exit::AGENT),
        })?;
        if let (Some(store), Some(name)) = (self.store, self.name)
            && let Err(error) = store.append(name, &turn.new_messages).await
        {
            output::warn(&format!("the conversation was not saved: {error}"));
        }
        Ok(turn)
    }

    async fn ask(
        &self,
        history: &mut Vec<Message>,
        question: &str,
        json: bool,
    ) -> Result<ExitCode, Failure> {
        let observer = TerminalObserver::new(self.terminal.clone(), json);
        let turn = self.turn(history, question, &observer).await?;
        observer.end_of_text();
        if json {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(
                &mut out,
                &json!({
                    "answer": turn.answer,
                    "stop": turn.stop,
                    "model": self.agent.model().id(),
                    "steps": turn.steps,
                    "usage": turn.usage,
                    "trace": turn.trace,
                }),
            )
            .map_err(|e| Failure::from(std::io::Error::other(e)))?;
            writeln!(out)?;
        }
        report_stop(turn.stop);
        Ok(match turn.stop {
            Stop::Done => ExitCode::SUCCESS,
            Stop::Cancelled => ExitCode::from(exit::INTERRUPTED),
            Stop::OutputLimit | Stop::Budget(_) => ExitCode::from(exit::AGENT),
        })
    }

    async fn chat(&self, history: &mut Vec<Message>) -> Result<ExitCode, Failure> {
        let observer = TerminalObserver::new(self.terminal.clone(), false);
        output::notice(&format!(
            "Chatting with {} and the tools of {} server(s). /help for commands, Ctrl-D to leave.",
            self.agent.model().id(),
            self.agent.host().servers().count()
        ));
        if !history.is_empty() {
            output::notice(&format!(
                "Continuing session \"{}\" ({} messages).",
                self.name.unwrap_or_default(),
                history.len()
            ));
        }
        loop {
            let line = match self.terminal.read_line("you> ", true).await {
                Line::Text(line) => line,
                Line::Interrupted => continue,
                Line::Eof => break,
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(command) = line.strip_prefix('/') {
                if self.slash(command, history).await? {
                    break;
                }
                continue;
            }
            match self.turn(history, line, &observer).await {
                Ok(turn) => {
                    observer.end_of_text();
                    report_stop(turn.stop);
                }
                Err(failure) => output::warn(&failure.message),
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// A slash command; `true` ends the chat.
    async fn slash(&self, command: &str, history: &mut Vec<Message>) -> Result<bool, Failure> {
        let (name, _rest) = command.split_once(' ').unwrap_or((command, ""));
        match name {
            "exit" | "quit" => return Ok(true),
            "help" => output::notice(
                "/tools      the tools the model can call\n\
                 /servers    the servers and their state\n\
                 /model      the model in use\n\
                 /history    the conversation so far\n\
                 /clear      forget the conversation (and the saved session)\n\
                 /exit       leave (or Ctrl-D)\n\
                 Ctrl-C stops the current answer.",
            ),
            "tools" => match self.agent.host().tools(None).await {
                Ok((tools, errors)) => {
                    for tool in tools {
                        let marker = if tool.tool.is_read_only() {
                            "read"
                        } else {
                            "write"
                        };
                        let description = tool.tool.description.as_deref().unwrap_or_default();
                        output::notice(&format!(
                            "  {:<40} {:<5} {}",
                            tool.display_name(),
                            marker,
                            render::truncate_chars(description.lines().next().unwrap_or(""), 60)
                        ));
                    }
                    for error in errors {
                        output::warn(&error.to_string());
                    }
                }
                Err(error) => output::warn(&error.to_string()),
            },
            "servers" => {
                for (name, state) in self.agent.host().servers() {
                    let status = match state {
                        ServerState::Connected(connection) => format!(
                            "connected ({:?} era, {})",
                            connection.description().era,
                            connection
                                .description()
                                .implementation
                                .as_ref()
                                .map_or("an unnamed server", |i| i.name.as_str())
                        ),
                        ServerState::Failed(error) => format!("unavailable: {error}"),
                    };
                    output::notice(&format!("  {name:<20} {status}"));
                }
            }
            "model" => output::notice(&format!("  {}", self.agent.model().id())),
            "history" => {
                if history.is_empty() {
                    output::notice("  (empty)");
                }
                for message in history.iter() {
                    output::notice(&history_line(message));
                }
            }
            "clear" => {
                history.clear();
                if let (Some(store), Some(name)) = (self.store, self.name) {
                    store
                        .clear(name)
                        .await
                        .map_err(|e| Failure::usage(e.to_string()))?;
                }
                output::notice("  The conversation is cleared.");
            }
            other => output::warn(&format!("unknown command /{other}; /help lists them")),
        }
        Ok(false)
    }
}

fn history_line(message: &Message) -> String {
    let who = match message.role {
        Role::User => "you",
        Role::Assistant => "model",
    };
    let mut parts = Vec::new();
    for block in &message.content {
        parts.push(match block {
            switchboard_llm::Block::Text { text } => {
                render::truncate_chars(&text.split_whitespace().collect::<Vec<_>>().join(" "), 100)
            }
            switchboard_llm::Block::ToolUse { name, .. } => format!("[called {name}]"),
            switchboard_llm::Block::ToolResult { is_error, .. } => if *is_error {
                "[tool error]"
            } else {
                "[tool result]"
            }
            .to_owned(),
        });
    }
    format!("  {who:>5}: {}", parts.join(" "))
}

fn report_stop(stop: Stop) {
    match stop {
        Stop::Done => {}
        Stop::OutputLimit => {
            output::warn("the answer was cut at the output limit (--max-output-tokens)")
        }
        Stop::Budget(budget) => output::warn(&format!("stopped: {budget} ran out")),
        Stop::Cancelled => output::warn("cancelled"),
    }
}

/// Prints the run as it happens: streamed text to stdout, tool calls and results on their own
/// lines. With `--json`, prints nothing (the final JSON has the trace).
struct TerminalObserver {
    terminal: Terminal,
    /// The current turn's cancellation (Ctrl-C at an approval prompt cancels the turn).
    cancel: Mutex<Option<CancellationToken>>,
    quiet: bool,
    /// Whether the last thing printed was streamed text without its newline.
    mid_line: Mutex<bool>,
}

impl std::fmt::Debug for TerminalObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalObserver")
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl TerminalObserver {
    fn new(terminal: Terminal, quiet: bool) -> Self {
        TerminalObserver {
            terminal,
            cancel: Mutex::new(None),
            quiet,
            mid_line: Mutex::new(false),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Ok(mut mid) = self.mid_line.lock()
            && *mid
        {
            let _ = writeln!(out);
            *mid = false;
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// End streamed text with a newline.
    fn end_of_text(&self) {
        if let Ok(mut mid) = self.mid_line.lock()
            && *mid
        {
            println!();
            *mid = false;
        }
    }
}

/// Arguments as shown in a call line: compact JSON, cut to a readable length.
fn shown_arguments(arguments: &Value) -> String {
    render::truncate_chars(&arguments.to_string(), 120)
}

impl Observer for TerminalObserver {
    fn text(&self, delta: &str) {
        if self.quiet || delta.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(delta.as_bytes());
        let _ = out.flush();
        if let Ok(mut mid) = self.mid_line.lock() {
            *mid = !delta.ends_with('\n');
        }
    }

    fn notice(&self, message: &str) {
        output::warn(message);
    }

    fn tool_started(&self, call: &ToolCall) {
        self.line(&format!(
            "[Called {} with {}]",
            call.tool,
            shown_arguments(&call.arguments)
        ));
    }

    fn tool_finished(&self, call: &ToolCall, outcome: &ToolOutcome) {
        let mark = if outcome.is_error { "error: " } else { "" };
        self.line(&format!("  -> {}: {mark}{}", call.tool, outcome.summary));
    }

    fn approve<'a>(&'a self, call: &'a ToolCall) -> ApprovalFuture<'a> {
        Box::pin(async move {
            self.end_of_text();
            let kind = if call.read_only {
                "read-only"
            } else {
                "may change data"
            };
            output::notice(&format!(
                "The model wants to call {} ({kind}) with {}",
                call.tool,
                shown_arguments(&call.arguments)
            ));
            match self.terminal.confirm("Allow it?").await {
                Confirmation::Yes => Approval::Approve,
                Confirmation::No(reason) => Approval::Deny(reason),
                Confirmation::Interrupted => {
                    if let Ok(slot) = self.cancel.lock()
                        && let Some(cancel) = slot.as_ref()
                    {
                        cancel.cancel();
                    }
                    Approval::Deny(Some("the user interrupted".into()))
                }
                Confirmation::NoAnswer => {
                    output::warn(&format!(
                        "{} was not run: nobody could approve it (use --yes or --approve never to allow calls without asking)",
                        call.tool
                    ));
                    Approval::Deny(Some(
                        "nobody was at the terminal to approve it; tell the user what you would have done"
                            .into(),
                    ))
                }
            }
        })
    }
}

/// Answers what servers ask: forms in the terminal, sampling with the chat model (after the
/// user agrees), roots from `--root`.
#[derive(Debug)]
struct TerminalCallbacks {
    model: Arc<dyn ChatModel>,
    terminal: Terminal,
    ask_before_sampling: bool,
    roots: Vec<Root>,
}

impl ClientCallbacks for TerminalCallbacks {
    fn supported(&self) -> Callbacks {
        Callbacks {
            elicitation: true,
            sampling: true,
            roots: !self.roots.is_empty(),
        }
    }

    fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
        Box::pin(async move { Ok(form::fill(&self.terminal, &request).await) })
    }

    fn sample(&self, request: SamplingRequest) -> CallbackFuture<'_, SamplingResponse> {
        Box::pin(async move {
            if self.ask_before_sampling {
                let last = request
                    .messages
                    .last()
                    .map(|m| render::truncate_chars(&m.content.to_string(), 200))
                    .unwrap_or_default();
                output::notice(&format!(
                    "A server asks {} to answer: {last}",
                    self.model.id()
                ));
                match self.terminal.confirm("Let the model answer?").await {
                    Confirmation::Yes => {}
                    _ => {
                        return Err(CallbackError::rejected(
                            "the user declined the sampling request",
                        ));
                    }
                }
            }
            switchboard_agent::sampling::sample(self.model.as_ref(), &request)
                .await
                .map_err(|e| CallbackError::new(e.to_string()))
        })
    }

    fn roots(&self) -> CallbackFuture<'_, Vec<Root>> {
        Box::pin(async move { Ok(self.roots.clone()) })
    }
}
