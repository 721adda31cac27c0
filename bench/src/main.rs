//! `switchboard-bench`: run the benchmarks of issues 10 and 4 and print the results as Markdown.
//!
//! ```text
//! cargo run --release -p switchboard-bench -- [--quick | --smoke] [--only stdio|http]
//!                                             [--peers ours,rmcp,ts,python,floor]
//!                                             [--workload echo,expenses] [--no-build]
//! ```
//!
//! It first builds `switchboard` and the two helper servers in its own profile (so a release
//! benchmark measures release servers), then runs every selected server on each transport,
//! one at a time: the echo workload against every peer, then the expenses workload against
//! ours and the Python SDK. Results go to stdout; progress and errors to stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use switchboard_bench::{
    children, environment,
    expenses::{self, ExpensesMeasurements, ScratchDatabase},
    gateway, host_side,
    peers::{self, ALL_PEERS, App, EXPENSES_PEERS, Locations, Peer, Transport},
    protocol,
    report::{self, Outcome, Row},
    settings::{self, ExpensesPlan, GatewayPlan, HostPlan, Mode, Plan},
    workload::{self, Measurements},
};

/// Benchmark our echo server against rmcp, the TypeScript and Python SDKs and a raw floor,
/// over stdio and Streamable HTTP.
#[derive(Debug, Parser)]
#[command(name = "switchboard-bench")]
struct Args {
    /// A shorter run with the same phases.
    #[arg(long)]
    quick: bool,

    /// A tiny run that only checks that every call gets a correct answer (for CI).
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,

    /// Only one transport.
    #[arg(long, value_enum)]
    only: Option<TransportArg>,

    /// Which servers, comma-separated. `rmcp` covers both rmcp rows.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ours,rmcp,ts,python,floor"
    )]
    peers: Vec<PeerArg>,

    /// Use the binaries next to this one as they are; do not run cargo build first.
    #[arg(long)]
    no_build: bool,

    /// Which workloads, comma-separated: `echo` (issue 10), `expenses` (add_expense and
    /// list_expenses on SQLite, ours and python only; issue 4), `tools` (`switchboard tools`
    /// against the MCP Inspector CLI), `agent` (the agent loop's cost per tool call) and
    /// `gateway` (gateway overhead and memory per idle session). `--peers` and `--only` apply
    /// to echo and expenses.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "echo,expenses,tools,agent,gateway"
    )]
    workload: Vec<WorkloadArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    Echo,
    Expenses,
    Tools,
    Agent,
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportArg {
    Stdio,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PeerArg {
    Ours,
    Rmcp,
    Ts,
    Python,
    Floor,
}

impl PeerArg {
    fn selector(self) -> &'static str {
        match self {
            PeerArg::Ours => "ours",
            PeerArg::Rmcp => "rmcp",
            PeerArg::Ts => "ts",
            PeerArg::Python => "python",
            PeerArg::Floor => "floor",
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Build the server binaries into the directory this binary runs from, in the same profile.
/// The CLI and the bench binaries are built by separate invocations so that `switchboard` is
/// built with exactly the features it has on its own. A failed CLI build is returned as the
/// reason ours cannot run (the other servers still do); a failed bench build is an error.
fn build_binaries(repo_root: &Path, bin_dir: &Path) -> anyhow::Result<Option<String>> {
    let profile_dir = bin_dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("the binary's directory has no name")?;
    let profile = if profile_dir == "debug" {
        "dev"
    } else {
        profile_dir
    };
    let target_dir = bin_dir
        .parent()
        .context("the binary is not in a cargo target directory")?;
    let cargo = std::env::var_os(settings::CARGO_VAR).unwrap_or_else(|| "cargo".into());
    let build = |packages: &[&str]| -> anyhow::Result<bool> {
        eprintln!(
            "switchboard-bench: cargo build --profile {profile} {}",
            packages.join(" ")
        );
        let status = Command::new(&cargo)
            .arg("build")
            .arg("--profile")
            .arg(profile)
            .arg("--manifest-path")
            .arg(repo_root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            // The `cargo run` that started us has already brought Cargo.lock up to date.
            .arg("--locked")
            .args(packages)
            .status()
            .context("could not run cargo")?;
        Ok(status.success())
    };
    if !build(&["-p", "switchboard-bench", "--bins"])? {
        bail!("cargo build -p switchboard-bench failed");
    }
    // The lean echo binary is a row of its own; when it does not build, that row is skipped.
    if !build(&["-p", "switchboard-echo", "--bins"])? {
        eprintln!(
            "switchboard-bench: `cargo build -p switchboard-echo` failed; ours-lean is skipped"
        );
    }
    let ours = if build(&["-p", "switchboard-cli"])? {
        None
    } else {
        Some(format!(
            "`cargo build --profile {profile} -p switchboard-cli` failed (see above)"
        ))
    };
    Ok(ours)
}

/// How this run was started, for the header: the `cargo run` line when cargo started us.
fn invocation(bin_dir: &Path) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(settings::CARGO_VAR).is_none() {
        let program = std::env::args()
            .next()
            .unwrap_or_else(|| "switchboard-bench".into());
        return std::iter::once(program)
            .chain(args)
            .collect::<Vec<_>>()
            .join(" ");
    }
    let profile = match bin_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => String::new(),
        Some("release") => " --release".into(),
        Some(other) => format!(" --profile {other}"),
    };
    let args = if args.is_empty() {
        String::new()
    } else {
        format!(" -- {}", args.join(" "))
    };
    format!("cargo run{profile} -p switchboard-bench{args}")
}

/// Kill every server and exit on Ctrl-C or SIGTERM (errors and panics are covered by the
/// servers' own guards as they unwind).
fn stop_servers_on_signal() {
    tokio::spawn(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match &mut terminate {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
        children::kill_all();
        eprintln!("switchboard-bench: interrupted; every server was stopped");
        std::process::exit(130);
    });
}

/// Run `measure` for every peer on every transport, or record why it cannot run there.
/// `available` checks a peer once (with a dummy port and database).
async fn run_rows<M>(
    workload_name: &str,
    transports: &[Transport],
    peers: &[Peer],
    ours_build_failure: Option<&str>,
    available: impl Fn(Peer, Transport) -> Result<(), peers::Unavailable>,
    measure: impl AsyncFn(Peer, Transport) -> anyhow::Result<M>,
) -> Vec<Row<M>> {
    let mut rows = Vec::new();
    for &transport in transports {
        for &peer in peers.iter().filter(|peer| peer.runs_on(transport)) {
            let name = format!("{workload_name}/{transport}/{}", peer.label());
            let available = match (ours_build_failure, peer) {
                (Some(failure), Peer::Ours) => Err(peers::Unavailable(failure.to_owned())),
                _ => available(peer, transport),
            };
            let outcome = match available {
                Err(unavailable) if peer == Peer::Ours && ours_build_failure.is_some() => {
                    eprintln!("switchboard-bench: {name}: {}", unavailable.0);
                    Outcome::Failed(unavailable.0)
                }
                Err(unavailable) => {
                    if peer == Peer::Ours && transport == Transport::Http {
                        println!("{name}: not available");
                    }
                    eprintln!("switchboard-bench: {name}: skipped: {}", unavailable.0);
                    Outcome::Skipped(unavailable.0)
                }
                Ok(()) => {
                    eprintln!("switchboard-bench: {name}: running");
                    match measure(peer, transport).await {
                        Ok(measurements) => Outcome::Measured(Box::new(measurements)),
                        Err(error) => {
                            eprintln!("switchboard-bench: {name} failed: {error:#}");
                            Outcome::Failed(format!("{error:#}").replace('\n', " "))
                        }
                    }
                }
            };
            rows.push(Row {
                transport,
                peer,
                outcome,
            });
        }
    }
    rows
}

/// How many rows failed, and the skipped rows that count as missing peers (ours without
/// `--http` is expected until the flag lands; it is reported, never fatal).
fn failed_and_missing<M>(rows: &[Row<M>], ours_http: bool) -> (usize, usize) {
    let failed = rows
        .iter()
        .filter(|row| matches!(row.outcome, Outcome::Failed(_)))
        .count();
    let missing = rows
        .iter()
        .filter(|row| matches!(row.outcome, Outcome::Skipped(_)))
        .filter(|row| !(row.peer == Peer::Ours && row.transport == Transport::Http && !ours_http))
        // The lean echo binary is an extra row: a CI build that did not make it is no missing peer.
        .filter(|row| row.peer != Peer::OursLean)
        .count();
    (failed, missing)
}

/// One line per row of a smoke run; returns whether every measured row made all its calls.
fn print_smoke<M>(
    workload_name: &str,
    rows: &[Row<M>],
    describe: impl Fn(Transport, &M) -> (String, bool),
) -> bool {
    let mut complete = true;
    for row in rows {
        let status = match &row.outcome {
            Outcome::Measured(m) => {
                let (text, all_calls) = describe(row.transport, m);
                complete &= all_calls;
                format!("ok: {text}, every answer correct")
            }
            Outcome::Skipped(reason) => format!("skipped: {reason}"),
            Outcome::Failed(error) => format!("FAILED: {error}"),
        };
        println!(
            "{workload_name}/{}/{}: {status}",
            row.transport,
            row.peer.label()
        );
    }
    complete
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mode = if args.smoke {
        Mode::Smoke
    } else if args.quick {
        Mode::Quick
    } else {
        Mode::Full
    };
    let plan = Plan::for_mode(mode);
    let expenses_plan = ExpensesPlan::for_mode(mode);
    let host_plan = HostPlan::for_mode(mode);
    let gateway_plan = GatewayPlan::for_mode(mode);
    let require_peers = mode == Mode::Smoke
        && std::env::var(settings::REQUIRE_PEERS_VAR).is_ok_and(|value| value == "1");
    let run_echo = args.workload.contains(&WorkloadArg::Echo);
    let run_expenses = args.workload.contains(&WorkloadArg::Expenses);
    let run_tools = args.workload.contains(&WorkloadArg::Tools);
    let run_agent = args.workload.contains(&WorkloadArg::Agent);
    let run_gateway = args.workload.contains(&WorkloadArg::Gateway);

    let repo_root = repo_root();
    let exe = std::env::current_exe().context("where is this binary?")?;
    let bin_dir = exe
        .parent()
        .context("the binary has no directory")?
        .to_path_buf();
    let ours_build_failure = if args.no_build {
        None
    } else {
        build_binaries(&repo_root, &bin_dir)?
    };
    let peers_dir = std::env::var_os(settings::PEERS_DIR_VAR)
        .map_or_else(|| repo_root.join(".peers"), PathBuf::from);
    let places = Locations {
        bin_dir,
        repo_root,
        peers_dir,
    };
    let ours_http = peers::ours_has_http(&places.switchboard()).await;

    let transports: Vec<Transport> = match args.only {
        Some(TransportArg::Stdio) => vec![Transport::Stdio],
        Some(TransportArg::Http) => vec![Transport::Http],
        None => vec![Transport::Stdio, Transport::Http],
    };
    let selected = |peer: &Peer| {
        args.peers
            .iter()
            .any(|arg| arg.selector() == peer.selector())
    };
    let echo_peers: Vec<Peer> = ALL_PEERS.into_iter().filter(selected).collect();
    let expenses_peers: Vec<Peer> = EXPENSES_PEERS.into_iter().filter(selected).collect();

    let load_before = environment::load_average();
    let mut rows = Vec::new();
    if run_echo {
        rows = run_rows(
            "echo",
            &transports,
            &echo_peers,
            ours_build_failure.as_deref(),
            |peer, transport| {
                peers::launch(peer, App::Echo, transport, &places, ours_http, 0).map(drop)
            },
            async |peer, transport| {
                let launch = |port: u16| {
                    peers::launch(peer, App::Echo, transport, &places, ours_http, port)
                        .map_err(|unavailable| anyhow::anyhow!(unavailable.0))
                };
                workload::measure(transport, &launch, &plan).await
            },
        )
        .await;
    }
    let mut expense_rows = Vec::new();
    if run_expenses {
        expense_rows = run_rows(
            "expenses",
            &transports,
            &expenses_peers,
            ours_build_failure.as_deref(),
            |peer, transport| {
                let db = Path::new("expenses.sqlite3");
                peers::launch(peer, App::Expenses { db }, transport, &places, ours_http, 0)
                    .map(drop)
            },
            async |peer, transport| {
                let scratch = ScratchDatabase::create(&format!("{transport}-{}", peer.label()))?;
                let db = scratch.path();
                let launch = |port: u16| {
                    peers::launch(
                        peer,
                        App::Expenses { db: &db },
                        transport,
                        &places,
                        ours_http,
                        port,
                    )
                    .map_err(|unavailable| anyhow::anyhow!(unavailable.0))
                };
                expenses::measure(transport, &launch, &expenses_plan).await
            },
        )
        .await;
    }

    let listings = if run_tools {
        Some(
            single(
                "tools",
                ours_build_failure.as_deref(),
                Box::pin(host_side::measure_listing(&places, &host_plan)),
            )
            .await,
        )
    } else {
        None
    };
    let agent = if run_agent {
        Some(
            single(
                "agent",
                ours_build_failure.as_deref(),
                Box::pin(host_side::measure_agent(&places, &host_plan)),
            )
            .await,
        )
    } else {
        None
    };
    let gateway_figures = if run_gateway {
        let outcome = match gateway::available(&places).await {
            Err(reason) => {
                eprintln!("switchboard-bench: gateway: skipped: {reason}");
                Outcome::Skipped(reason)
            }
            Ok(()) => {
                single(
                    "gateway",
                    ours_build_failure.as_deref(),
                    Box::pin(gateway::measure(&places, &gateway_plan)),
                )
                .await
            }
        };
        Some(outcome)
    } else {
        None
    };
    let inspector_missing = listings.as_ref().is_some_and(|outcome| match outcome {
        Outcome::Measured(listings) => listings.iter().any(|listing| listing.inspector.is_err()),
        _ => false,
    });
    let host_failed = [
        listings.as_ref().map(outcome_failed),
        agent.as_ref().map(outcome_failed),
        gateway_figures.as_ref().map(outcome_failed),
    ]
    .into_iter()
    .flatten()
    .filter(|failed| *failed)
    .count();
    let host_missing = usize::from(inspector_missing)
        + usize::from(matches!(gateway_figures, Some(Outcome::Skipped(_))));

    let (echo_failed, echo_missing) = failed_and_missing(&rows, ours_http);
    let (expenses_failed, expenses_missing) = failed_and_missing(&expense_rows, ours_http);
    let failed = echo_failed + expenses_failed + host_failed;
    let missing = echo_missing + expenses_missing + host_missing;

    if mode == Mode::Smoke {
        let echo_complete = print_smoke("echo", &rows, |transport, m: &Measurements| {
            (
                format!(
                    "{} sequential calls and {} at {} in flight",
                    m.sequential.calls, m.concurrent.calls, plan.in_flight
                ),
                m.sequential.calls >= plan.sequential_calls
                    && m.concurrent.calls >= plan.concurrent_calls(transport),
            )
        });
        let expenses_complete =
            print_smoke("expenses", &expense_rows, |_, m: &ExpensesMeasurements| {
                let tools: Vec<String> = m
                    .tools()
                    .iter()
                    .map(|(name, figures)| {
                        format!(
                            "{name} {} sequential + {} at {} in flight",
                            figures.sequential.calls,
                            figures.concurrent.calls,
                            expenses_plan.in_flight()
                        )
                    })
                    .collect();
                let all_calls = m.tools().iter().all(|(_, figures)| {
                    figures.sequential.calls >= expenses_plan.sequential_calls
                        && figures.concurrent.calls >= expenses_plan.concurrent_calls
                });
                (
                    format!("{} over {} rows", tools.join(", "), m.rows_listed),
                    all_calls,
                )
            });
        print_host_smoke(listings.as_ref(), agent.as_ref(), gateway_figures.as_ref());
        if failed > 0 || !echo_complete || !expenses_complete {
            eprintln!("switchboard-bench: smoke run failed");
            return Ok(ExitCode::FAILURE);
        }
        if require_peers && missing > 0 {
            eprintln!(
                "switchboard-bench: {missing} peer(s) missing and {}=1",
                settings::REQUIRE_PEERS_VAR
            );
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    }

    println!("## Environment\n");
    for (what, description) in environment::describe(&places).await {
        println!("- {what}: {description}");
    }
    println!(
        "- load average (1, 5, 15 min): {load_before} before the run, {} after",
        environment::load_average()
    );
    println!("- command: {}", invocation(&places.bin_dir));
    if run_echo {
        println!(
            "- echo workload: echo(\"{}\"), protocol 2025-06-18; cold start = median of {} starts; \
             warm-up {} sequential + {} at {} in flight; {} sequential calls; then at {} in flight \
             at least {} (stdio) / {} (http) calls and at least {} s; every phase capped at {} s",
            protocol::ECHO_TEXT,
            plan.cold_starts,
            plan.warmup_sequential,
            plan.warmup_concurrent,
            plan.in_flight,
            plan.sequential_calls,
            plan.in_flight,
            plan.stdio_concurrent_calls,
            plan.http_concurrent_calls,
            plan.concurrent_min_duration.as_secs(),
            plan.phase_cap.as_secs(),
        );
    }
    if run_expenses {
        println!(
            "- expenses workload: a fresh SQLite file per server; add_expense(\"{}\", category, description, date) \
             warm-up {} sequential + {} at {in_flight} in flight, then rows added at {in_flight} in flight up to {}; \
             list_expenses(limit {}) then add_expense, each: warm-up as above, {} sequential calls, then at {in_flight} \
             in flight at least {} calls and at least {} s; every phase capped at {} s",
            protocol::EXPENSE_AMOUNT,
            expenses_plan.warmup_calls,
            expenses_plan.warmup_calls,
            expenses_plan.prefill_rows,
            protocol::LIST_LIMIT,
            expenses_plan.sequential_calls,
            expenses_plan.concurrent_calls,
            expenses_plan.concurrent_min_duration.as_secs(),
            expenses_plan.phase_cap.as_secs(),
            in_flight = expenses_plan.in_flight(),
        );
    }
    if run_tools {
        println!(
            "- tools workload: `switchboard tools --stdio \"switchboard serve echo|expenses\"` against \
             `node <inspector>/clients/launcher/build/index.js --cli switchboard serve echo|expenses --method tools/list`, \
             wall time from spawn to exit; {} untimed + {} timed runs of each, alternating; scratch HOME",
            host_plan.listing_warmups, host_plan.listing_runs,
        );
    }
    if run_agent {
        println!(
            "- agent workload: switchboard_agent::Agent in-process, a Host on `switchboard serve echo` (stdio), \
             the test-support fake LLM (Anthropic Messages format, streamed) calling echo {} times per turn then answering; \
             {} untimed + {} timed turns, each followed by the same {} model requests sent directly and {} direct Host::call_tool calls",
            host_plan.agent_tool_calls,
            host_plan.agent_warmup_turns,
            host_plan.agent_turns,
            host_plan.agent_tool_calls + 1,
            host_plan.agent_tool_calls,
        );
    }
    if run_gateway {
        println!(
            "- gateway workload: upstream `switchboard serve echo --http`; `switchboard gateway --config <generated gateway.toml> --listen` \
             with that one upstream by URL (prefix = false); echo calls as in the echo workload (warm-up {} + {} at {in_flight}, \
             {} sequential, then at {in_flight} in flight at least {} calls and {} s), direct and through the gateway taking turns; \
             idle legacy sessions (initialize + initialized) opened up to {} and {} on a fresh gateway and a fresh `serve echo --http`, \
             VmRSS of the server process after each",
            gateway_plan.calls.warmup_sequential,
            gateway_plan.calls.warmup_concurrent,
            gateway_plan.calls.sequential_calls,
            gateway_plan.calls.http_concurrent_calls,
            gateway_plan.calls.concurrent_min_duration.as_secs(),
            gateway_plan.session_counts[0],
            gateway_plan.session_counts[1],
            in_flight = gateway_plan.calls.in_flight,
        );
    }
    if run_echo {
        println!("\n## Results\n");
        print!("{}", report::table(&rows));
        println!(
            "\n## Ours relative to each peer (ours ÷ peer; below 1× is better, except calls/s)\n"
        );
        print!("{}", report::ratios(&rows));
        println!("\n## Targets (issue 10)\n");
        print!("{}", report::targets(&rows));
    }
    if run_expenses {
        println!("\n## Expenses: add_expense and list_expenses (issue 4)\n");
        print!(
            "{}",
            report::expenses_table(&expense_rows, expenses_plan.in_flight())
        );
        println!(
            "\n## Expenses: ours ÷ python (above 1× is better for calls/s, below 1× for latency and CPU)\n"
        );
        print!(
            "{}",
            report::expenses_ratios(&expense_rows, expenses_plan.in_flight())
        );
    }
    if let Some(outcome) = &listings {
        println!(
            "\n## switchboard tools against the MCP Inspector CLI (wall time, spawn to exit)\n"
        );
        match outcome {
            Outcome::Measured(listings) => print!("{}", host_side::listing_report(listings)),
            other => println!("{}", outcome_text(other)),
        }
    }
    if let Some(outcome) = &agent {
        println!("\n## The agent loop's own cost per tool call (scripted model)\n");
        match outcome {
            Outcome::Measured(agent) => print!("{}", host_side::agent_report(agent)),
            other => println!("{}", outcome_text(other)),
        }
    }
    if let Some(outcome) = &gateway_figures {
        println!("\n## Gateway: overhead against calling the upstream directly (HTTP)\n");
        match outcome {
            Outcome::Measured(figures) => print!("{}", gateway::report(figures, &gateway_plan)),
            other => println!("{}", outcome_text(other)),
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Run one host-side workload, as an outcome: a failure is reported and kept, not fatal.
async fn single<M>(
    name: &str,
    ours_build_failure: Option<&str>,
    measure: impl Future<Output = anyhow::Result<M>>,
) -> Outcome<M> {
    if let Some(failure) = ours_build_failure {
        eprintln!("switchboard-bench: {name}: {failure}");
        return Outcome::Failed(failure.to_owned());
    }
    eprintln!("switchboard-bench: {name}: running");
    match measure.await {
        Ok(measured) => Outcome::Measured(Box::new(measured)),
        Err(error) => {
            eprintln!("switchboard-bench: {name} failed: {error:#}");
            Outcome::Failed(format!("{error:#}").replace('\n', " "))
        }
    }
}

fn outcome_failed<M>(outcome: &Outcome<M>) -> bool {
    matches!(outcome, Outcome::Failed(_))
}

fn outcome_text<M>(outcome: &Outcome<M>) -> String {
    match outcome {
        Outcome::Measured(_) => "measured".into(),
        Outcome::Skipped(reason) => format!("skipped: {reason}"),
        Outcome::Failed(error) => format!("FAILED: {error}"),
    }
}

/// One line per host-side workload of a smoke run.
fn print_host_smoke(
    listings: Option<&Outcome<Vec<host_side::Listing>>>,
    agent: Option<&Outcome<host_side::AgentMeasurements>>,
    gateway_figures: Option<&Outcome<gateway::GatewayMeasurements>>,
) {
    if let Some(outcome) = listings {
        match outcome {
            Outcome::Measured(listings) => {
                for listing in listings.iter() {
                    let inspector = match &listing.inspector {
                        Ok(runs) => {
                            format!("the Inspector CLI listed it {} time(s)", runs.runs.len())
                        }
                        Err(reason) => format!("Inspector skipped: {reason}"),
                    };
                    println!(
                        "tools/{}: ok: switchboard tools listed it {} time(s), {inspector}",
                        listing.server.label(),
                        listing.ours.runs.len()
                    );
                }
            }
            other => println!("tools: {}", outcome_text(other)),
        }
    }
    if let Some(outcome) = agent {
        match outcome {
            Outcome::Measured(agent) => println!(
                "agent: ok: {} turn(s) of {} echo calls, replayed against the model and the host directly",
                agent.turns_us.len(),
                agent.tool_calls
            ),
            other => println!("agent: {}", outcome_text(other)),
        }
    }
    if let Some(outcome) = gateway_figures {
        match outcome {
            Outcome::Measured(figures) => {
                let sessions: Vec<String> = figures
                    .sessions
                    .iter()
                    .map(|memory| {
                        format!(
                            "{} held {} idle sessions",
                            memory.server,
                            memory.readings.last().map_or(0, |(open, _)| *open)
                        )
                    })
                    .collect();
                println!(
                    "gateway: ok: {} + {} calls direct, {} + {} through the byte relay, {} + {} through the axum relay and {} + {} through the gateway, every answer correct; {}",
                    figures.direct.sequential.completed.calls,
                    figures.direct.concurrent.completed.calls,
                    figures.relay.sequential.completed.calls,
                    figures.relay.concurrent.completed.calls,
                    figures.axum_relay.sequential.completed.calls,
                    figures.axum_relay.concurrent.completed.calls,
                    figures.gateway.sequential.completed.calls,
                    figures.gateway.concurrent.completed.calls,
                    sessions.join(", ")
                );
            }
            other => println!("gateway: {}", outcome_text(other)),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One thread: the driver takes at most one core from the servers it measures.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard-bench: could not start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        stop_servers_on_signal();
        Box::pin(run(args)).await
    });
    children::kill_all();
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("switchboard-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
