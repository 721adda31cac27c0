//! Host-side numbers (issue 10).
//!
//! - **Listing** (`--workload tools`): the wall time of `switchboard tools --stdio "<server>"`
//!   against the MCP Inspector CLI doing the same listing
//!   (`node <inspector>/clients/launcher/build/index.js --cli <server> --method tools/list`,
//!   which is what `npx @modelcontextprotocol/inspector --cli` runs), from spawn to exit, for
//!   `switchboard serve echo` and `switchboard serve expenses`. Both start the server, finish a
//!   handshake, list its tools, print them and stop it. Runs alternate between the two.
//! - **Agent loop** (`--workload agent`): [`switchboard_agent::Agent`] in this process, with a
//!   [`switchboard_host::Host`] connected to `switchboard serve echo` over stdio and the
//!   scripted fake LLM of `test-support` (a loopback HTTP server speaking the Anthropic wire
//!   format) that calls `echo` K times, then answers. After each turn the same K + 1 model
//!   requests (the same messages, tools and system prompt, rebuilt from the turn's history)
//!   are sent to the model directly, and K direct [`Host::call_tool`] calls are made. The
//!   loop's own cost per tool call is (turn − model round trips − direct calls) ÷ K.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use switchboard_agent::{
    Agent, AgentOptions, Approval, ApprovalFuture, ApprovalPolicy, Observer, Stop, ToolCall,
    ToolOutcome,
};
use switchboard_client::{CallOptions, model::Content};
use switchboard_config::{Config, ServerEntry, ServerName, Transport as ConfigTransport};
use switchboard_host::{Host, HostOptions};
use switchboard_llm::{Block, ChatModel, ChatRequest, Message, ModelSettings};
use test_support::fake_llm::{FakeLlm, Reply, Script};
use tokio_util::sync::CancellationToken;

use crate::{
    children::{self, Finished},
    expenses::ScratchDatabase,
    peers::Locations,
    protocol::ECHO_TEXT,
    settings::HostPlan,
};

/// Where the Inspector's launcher is, under the peers directory.
const INSPECTOR_LAUNCHER: &str =
    "node/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js";
/// Its package.json, for the version.
pub const INSPECTOR_PACKAGE: &str =
    "node/node_modules/@modelcontextprotocol/inspector/package.json";

/// A server whose tools are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Echo,
    Expenses,
}

impl Listed {
    pub fn label(self) -> &'static str {
        match self {
            Listed::Echo => "serve echo",
            Listed::Expenses => "serve expenses",
        }
    }

    /// A tool the listing must show.
    fn expected_tool(self) -> &'static str {
        match self {
            Listed::Echo => "echo",
            Listed::Expenses => "add_expense",
        }
    }

    /// `switchboard serve ...` for this server.
    fn server_args(self, db: &Path) -> Vec<String> {
        match self {
            Listed::Echo => vec!["serve".into(), "echo".into()],
            Listed::Expenses => vec![
                "serve".into(),
                "expenses".into(),
                "--db".into(),
                db.display().to_string(),
            ],
        }
    }
}

/// Wall times of one lister, sorted.
#[derive(Debug, Clone, Default)]
pub struct WallTimes {
    pub runs: Vec<Duration>,
}

impl WallTimes {
    /// The value at `quantile` (nearest rank), in ms.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.runs.is_empty() {
            return f64::NAN;
        }
        let rank = ((quantile * self.runs.len() as f64).ceil() as usize).clamp(1, self.runs.len());
        self.runs[rank - 1].as_secs_f64() * 1e3
    }
}

/// One server listed by both.
#[derive(Debug, Clone)]
pub struct Listing {
    pub server: Listed,
    pub ours: WallTimes,
    /// `Err` when the Inspector is not installed (the reason).
    pub inspector: Result<WallTimes, String>,
    /// Whether the phase cap stopped the runs early.
    pub capped: bool,
}

/// Whether the Inspector is installed; the reason when it is not.
pub fn inspector_available(places: &Locations) -> Result<(PathBuf, PathBuf), String> {
    let node = places.node();
    let launcher = places.peers_dir.join(INSPECTOR_LAUNCHER);
    for (path, what) in [
        (&node, "Node 22"),
        (
            &launcher,
            "the MCP Inspector (@modelcontextprotocol/inspector)",
        ),
    ] {
        if !path.is_file() {
            return Err(format!(
                "{what} not found at {} (run scripts/install-peers.sh)",
                path.display()
            ));
        }
    }
    Ok((node, launcher))
}

/// A command with a scratch `HOME` (the Inspector writes `~/.mcp-inspector`; `switchboard`
/// would read a user's config) and none of our own settings from the environment.
fn clean_command(program: &Path, home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(&name);
        }
    }
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"));
    command
}

/// A command line as one `--stdio` string (POSIX shell words).
fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@".contains(c))
            {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn timed(
    command: tokio::process::Command,
    timeout: Duration,
) -> anyhow::Result<(Duration, Finished)> {
    let started = Instant::now();
    let finished = children::run_to_end(command, timeout).await?;
    let elapsed = started.elapsed();
    if !finished.status.success() {
        bail!(
            "exited with {}; stderr: {}",
            finished.status,
            String::from_utf8_lossy(&finished.stderr).trim()
        );
    }
    Ok((elapsed, finished))
}

/// `switchboard tools --stdio "<server>"`, checked for the expected tool.
async fn list_with_ours(
    places: &Locations,
    server: Listed,
    db: &Path,
    home: &Path,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let mut words = vec![places.switchboard().display().to_string()];
    words.extend(server.server_args(db));
    let mut command = clean_command(&places.switchboard(), home);
    command.arg("tools").arg("--stdio").arg(shell_line(&words));
    let (elapsed, finished) = timed(command, timeout).await.context("switchboard tools")?;
    let stdout = String::from_utf8_lossy(&finished.stdout);
    if !stdout.contains(&format!("/{}", server.expected_tool())) {
        bail!(
            "switchboard tools did not list {}: {}",
            server.expected_tool(),
            stdout.trim()
        );
    }
    Ok(elapsed)
}

/// The Inspector CLI's `tools/list` against the same server, checked for the expected tool.
async fn list_with_inspector(
    places: &Locations,
    (node, launcher): &(PathBuf, PathBuf),
    server: Listed,
    db: &Path,
    home: &Path,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let mut command = clean_command(node, home);
    command
        .arg(launcher)
        .arg("--cli")
        .arg(places.switchboard())
        .args(server.server_args(db))
        .args(["--method", "tools/list"]);
    let (elapsed, finished) = timed(command, timeout).await.context("the Inspector CLI")?;
    let listed: Value = serde_json::from_slice(&finished.stdout).with_context(|| {
        format!(
            "the Inspector CLI printed no JSON: {}",
            String::from_utf8_lossy(&finished.stdout).trim()
        )
    })?;
    let found = listed["tools"].as_array().is_some_and(|tools| {
        tools
            .iter()
            .any(|tool| tool["name"] == server.expected_tool())
    });
    if !found {
        bail!(
            "the Inspector CLI did not list {}: {listed}",
            server.expected_tool()
        );
    }
    Ok(elapsed)
}

/// List every server's tools with both, alternating, `plan.listing_runs` times each.
pub async fn measure_listing(places: &Locations, plan: &HostPlan) -> anyhow::Result<Vec<Listing>> {
    let scratch = ScratchDatabase::create("listing")?;
    let home = scratch.dir().join("home");
    std::fs::create_dir_all(&home).context("could not create a scratch HOME")?;
    let db = scratch.path();
    let inspector = inspector_available(places);
    let mut listings = Vec::new();
    for server in [Listed::Echo, Listed::Expenses] {
        let started = Instant::now();
        let mut ours = WallTimes::default();
        let mut theirs = WallTimes::default();
        let total = plan.listing_warmups + plan.listing_runs;
        let mut capped = false;
        for run in 0..total {
            if run > 0 && started.elapsed() >= plan.phase_cap {
                capped = true;
                break;
            }
            let measured = run >= plan.listing_warmups;
            let elapsed = list_with_ours(places, server, &db, &home, plan.listing_timeout)
                .await
                .with_context(|| format!("{}: run {run}", server.label()))?;
            if measured {
                ours.runs.push(elapsed);
            }
            if let Ok(found) = &inspector {
                let elapsed =
                    list_with_inspector(places, found, server, &db, &home, plan.listing_timeout)
                        .await
                        .with_context(|| format!("{}: run {run}", server.label()))?;
                if measured {
                    theirs.runs.push(elapsed);
                }
            }
        }
        ours.runs.sort();
        theirs.runs.sort();
        listings.push(Listing {
            server,
            ours,
            inspector: inspector.as_ref().map(|_| theirs).map_err(Clone::clone),
            capped,
        });
    }
    Ok(listings)
}

/// The agent loop's figures, per turn, in µs.
#[derive(Debug, Clone, Default)]
pub struct AgentMeasurements {
    /// Tool calls per turn (K).
    pub tool_calls: u32,
    /// Whole `Agent::run` of each timed turn.
    pub turns_us: Vec<f64>,
    /// The same K + 1 model requests, sent directly.
    pub model_us: Vec<f64>,
    /// K direct `Host::call_tool` calls.
    pub calls_us: Vec<f64>,
    /// Whether the phase cap stopped the turns early.
    pub capped: bool,
}

impl AgentMeasurements {
    /// Per timed turn: the loop's own cost per tool call.
    pub fn overhead_per_call_us(&self) -> Vec<f64> {
        let k = f64::from(self.tool_calls.max(1));
        self.turns_us
            .iter()
            .zip(&self.model_us)
            .zip(&self.calls_us)
            .map(|((turn, model), calls)| (turn - model - calls) / k)
            .collect()
    }
}

/// The value at `quantile` (nearest rank) of `values`.
pub fn quantile(values: &[f64], quantile: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Shows nothing and approves nothing (the policy is `Never`, so it is never asked).
#[derive(Debug)]
struct Silent;

impl Observer for Silent {
    fn text(&self, _delta: &str) {}
    fn notice(&self, _message: &str) {}
    fn tool_started(&self, _call: &ToolCall) {}
    fn tool_finished(&self, _call: &ToolCall, _outcome: &ToolOutcome) {}
    fn approve<'a>(&'a self, _call: &'a ToolCall) -> ApprovalFuture<'a> {
        Box::pin(async { Approval::Approve })
    }
}

/// The final answer of every scripted turn.
const ANSWER_PREFIX: &str = "The tool said: ";

/// The server's name in the host, and so the prefix of the qualified tool name.
const ECHO_SERVER: &str = "echo";

/// The model's turns for one cycle: K calls and an answer for the agent, then the same for
/// the direct replay.
fn cycle(script: Script, qualified: &str, tool_calls: u32) -> Script {
    let mut script = script;
    for _ in 0..2 {
        for _ in 0..tool_calls {
            script = script.reply(Reply::tool_call(qualified, json!({ "text": ECHO_TEXT })));
        }
        script = script.reply(Reply::text(format!("{ANSWER_PREFIX}{{last_tool_result}}")));
    }
    script
}

fn echoed(content: &[Content]) -> bool {
    content
        .iter()
        .any(|block| matches!(block, Content::Text { text } if text == ECHO_TEXT))
}

/// Connect a host to `switchboard serve echo` over stdio.
async fn echo_host(places: &Locations, plan: &HostPlan) -> anyhow::Result<Host> {
    let name = ServerName::new(ECHO_SERVER).context("a server name")?;
    let entry = ServerEntry::new(
        name.clone(),
        ConfigTransport::Stdio {
            command: places.switchboard().display().to_string(),
            args: vec!["serve".into(), "echo".into()],
            env: Default::default(),
            cwd: None,
        },
    );
    let mut config = Config::empty();
    config.servers.insert(name, entry);
    let mut options = HostOptions::default();
    options.connect.connect_timeout = plan.startup_timeout;
    let host = Host::connect(&config, options).await;
    let available = host.available_tools().await;
    if let Some((server, reason)) = available.unavailable.first() {
        bail!("{server} did not connect: {reason}");
    }
    Ok(host)
}

/// Run the agent workload.
pub async fn measure_agent(
    places: &Locations,
    plan: &HostPlan,
) -> anyhow::Result<AgentMeasurements> {
    let host = Arc::new(echo_host(places, plan).await?);
    let result = agent_turns(&host, plan).await;
    if let Ok(host) = Arc::try_unwrap(host) {
        host.shutdown().await;
    }
    result
}

async fn agent_turns(host: &Arc<Host>, plan: &HostPlan) -> anyhow::Result<AgentMeasurements> {
    let k = plan.agent_tool_calls;
    let (tools, errors) = host.tools(None).await.context("listing the echo tools")?;
    if let Some(error) = errors.first() {
        bail!("listing the echo tools: {error}");
    }
    let tool = tools
        .into_iter()
        .find(|tool| tool.tool.name == "echo")
        .context("the echo server has no echo tool")?;
    let cycles = plan.agent_warmup_turns + plan.agent_turns;
    let mut script = Script::new();
    for _ in 0..cycles {
        script = cycle(script, &tool.qualified, k);
    }
    let fake = FakeLlm::start(script)
        .await
        .context("could not start the fake LLM")?;
    let settings = ModelSettings {
        model: "anthropic/claude-bench".to_owned(),
        api_key: Some(switchboard_llm::Secret::new("sk-bench-not-a-key")),
        base_url: Some(fake.base_url().parse().context("the fake LLM's URL")?),
        ..ModelSettings::default()
    };
    let model: Arc<dyn ChatModel> =
        Arc::from(switchboard_llm::build_model(&settings, |_| None).context("the scripted model")?);
    let options = AgentOptions {
        approval: ApprovalPolicy::Never,
        max_steps: k + 1,
        ..AgentOptions::default()
    };
    let system = options.system.clone();
    let max_tokens = options.max_output_tokens;
    let agent = Agent::new(Arc::clone(host), Arc::clone(&model), options);
    let specs = vec![switchboard_agent::tool_spec(&tool)];
    let cancel = CancellationToken::new();
    let question = "Call echo a few times, then tell me what it said.";

    let mut measurements = AgentMeasurements {
        tool_calls: k,
        ..AgentMeasurements::default()
    };
    let started = Instant::now();
    for cycle in 0..cycles {
        if cycle > 0 && started.elapsed() >= plan.phase_cap {
            measurements.capped = true;
            break;
        }
        // The agent loop.
        let mut history = Vec::new();
        let turn_started = Instant::now();
        let turn = agent
            .run(&mut history, question, &Silent, &cancel)
            .await
            .with_context(|| format!("agent turn {cycle}"))?;
        let turn_us = turn_started.elapsed().as_secs_f64() * 1e6;
        if turn.stop != Stop::Done
            || turn.steps != k + 1
            || turn.answer != format!("{ANSWER_PREFIX}{ECHO_TEXT}")
        {
            bail!(
                "agent turn {cycle} ended {:?} after {} steps with {:?}",
                turn.stop,
                turn.steps,
                turn.answer
            );
        }
        // The request the agent sent at step i held the history up to its i-th assistant
        // message: the question, then (assistant, tool results) pairs.
        if history.len() != 2 * k as usize + 2 {
            bail!("agent turn {cycle} left {} messages", history.len());
        }
        let requests: Vec<ChatRequest> = (0..=k as usize)
            .map(|step| ChatRequest {
                system: Some(system.clone()),
                messages: history[..1 + 2 * step].to_vec(),
                tools: specs.clone(),
                max_tokens,
                temperature: None,
            })
            .collect();
        check_tool_results(&history[..])?;

        // The same model round trips, directly.
        let sink = |_: &str| {};
        let mut model_us = 0.0;
        for (step, request) in requests.iter().enumerate() {
            let sent = Instant::now();
            let response = model
                .complete(request, &sink)
                .await
                .with_context(|| format!("direct model request {step} of cycle {cycle}"))?;
            model_us += sent.elapsed().as_secs_f64() * 1e6;
            let calls = response.tool_uses().count();
            if calls != usize::from(step < k as usize) {
                bail!("direct model request {step} of cycle {cycle} asked for {calls} tool calls");
            }
        }

        // The same tool calls, directly.
        let mut calls_us = 0.0;
        for call in 0..k {
            let arguments = json!({ "text": ECHO_TEXT });
            let sent = Instant::now();
            let result = host
                .call_tool(&tool, arguments, CallOptions::default())
                .await
                .with_context(|| format!("direct call {call} of cycle {cycle}"))?;
            calls_us += sent.elapsed().as_secs_f64() * 1e6;
            if result.is_error || !echoed(&result.content) {
                bail!(
                    "direct call {call} of cycle {cycle} answered {}",
                    result.raw
                );
            }
        }

        if cycle >= plan.agent_warmup_turns {
            measurements.turns_us.push(turn_us);
            measurements.model_us.push(model_us);
            measurements.calls_us.push(calls_us);
        }
    }
    if fake.turns_left() != 0 && !measurements.capped {
        bail!("the scripted model has {} turns left", fake.turns_left());
    }
    Ok(measurements)
}

/// Every tool result in the agent's history is the echoed text.
fn check_tool_results(history: &[Message]) -> anyhow::Result<()> {
    for message in history {
        for block in &message.content {
            if let Block::ToolResult {
                content, is_error, ..
            } = block
                && (*is_error || content != ECHO_TEXT)
            {
                bail!("a tool result in the agent's history is {content:?} (error: {is_error})");
            }
        }
    }
    Ok(())
}

/// The listing table, ratios and target, as Markdown.
pub fn listing_report(listings: &[Listing]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| server | runs | switchboard tools median ms | p90 ms | Inspector CLI median ms | p90 ms | Inspector ÷ ours (median) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for listing in listings {
        let (median, p90, ratio) = match &listing.inspector {
            Ok(theirs) => (
                format!("{:.1}", theirs.quantile_ms(0.5)),
                format!("{:.1}", theirs.quantile_ms(0.9)),
                crate::report::ratio(theirs.quantile_ms(0.5), listing.ours.quantile_ms(0.5)),
            ),
            Err(reason) => (format!("skipped: {reason}"), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {}{} | {} | {:.1} | {:.1} | {median} | {p90} | {ratio} |",
            listing.server.label(),
            if listing.capped { "†" } else { "" },
            listing.ours.runs.len(),
            listing.ours.quantile_ms(0.5),
            listing.ours.quantile_ms(0.9),
        );
    }
    let _ = writeln!(out, "\n### Target (issue 10)\n");
    for listing in listings {
        let Ok(theirs) = &listing.inspector else {
            continue;
        };
        let factor = theirs.quantile_ms(0.5) / listing.ours.quantile_ms(0.5);
        let _ = writeln!(
            out,
            "- `switchboard tools` ≥ 10× faster than the Inspector CLI ({}): {factor:.1}×: **{}**",
            listing.server.label(),
            if factor >= 10.0 { "met" } else { "missed" }
        );
    }
    out
}

/// The agent table, as Markdown.
pub fn agent_report(m: &AgentMeasurements) -> String {
    use std::fmt::Write as _;
    let k = f64::from(m.tool_calls.max(1));
    let steps = k + 1.0;
    let per_step: Vec<f64> = m.turns_us.iter().map(|turn| turn / steps).collect();
    let model: Vec<f64> = m.model_us.iter().map(|model| model / steps).collect();
    let call: Vec<f64> = m.calls_us.iter().map(|calls| calls / k).collect();
    let overhead = m.overhead_per_call_us();
    let mut out = String::new();
    let _ = writeln!(out, "| measure (µs) | median | p90 |\n|---|---:|---:|");
    for (name, values) in [
        ("agent step (turn ÷ (K + 1))", &per_step),
        ("model round trip, direct (per request)", &model),
        ("Host::call_tool, direct (per call)", &call),
        ("the loop's own cost per tool call", &overhead),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} |",
            quantile(values, 0.5),
            quantile(values, 0.9)
        );
    }
    let _ = writeln!(
        out,
        "\n{} timed turns{} of K = {} echo calls and one answer each; the loop's cost per tool call \
         = (turn − the same {} model requests sent directly − {} direct `Host::call_tool` calls) ÷ {}, per turn.",
        m.turns_us.len(),
        if m.capped {
            " (†: the time cap stopped the turns early)"
        } else {
            ""
        },
        m.tool_calls,
        m.tool_calls + 1,
        m.tool_calls,
        m.tool_calls,
    );
    out
}
