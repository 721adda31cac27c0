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
    peers::{self, ALL_PEERS, App, EXPENSES_PEERS, Locations, Peer, Transport},
    protocol,
    report::{self, Outcome, Row},
    settings::{self, ExpensesPlan, Mode, Plan},
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

    /// Which workloads, comma-separated: `echo` (issue 10) and `expenses` (add_expense and
    /// list_expenses on SQLite, ours and python only; issue 4).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "echo,expenses"
    )]
    workload: Vec<WorkloadArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    Echo,
    Expenses,
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
    let require_peers = mode == Mode::Smoke
        && std::env::var(settings::REQUIRE_PEERS_VAR).is_ok_and(|value| value == "1");
    let run_echo = args.workload.contains(&WorkloadArg::Echo);
    let run_expenses = args.workload.contains(&WorkloadArg::Expenses);

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

    let (echo_failed, echo_missing) = failed_and_missing(&rows, ours_http);
    let (expenses_failed, expenses_missing) = failed_and_missing(&expense_rows, ours_http);
    let failed = echo_failed + expenses_failed;
    let missing = echo_missing + expenses_missing;

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
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
        run(args).await
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
