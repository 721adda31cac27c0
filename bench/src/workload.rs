//! One echo server's run: cold starts, idle memory, warm-up, the sequential phase and the
//! concurrent phase, with the same steps for every server and transport. The session and start
//! code here also serves the expenses workload ([`crate::expenses`]).

use std::{
    mem,
    net::{SocketAddr, TcpListener},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::{
    children::ServerProcess,
    http_driver::{Connection, Target},
    peers::{Launch, Transport},
    phase::{Budget, Completed},
    procfs::{CpuSnapshot, ProcessTree},
    protocol::{self, Call},
    settings::{Opening, Plan},
    stdio_driver::StdioSession,
};

/// How often the process tree's RSS is sampled during the concurrent phase.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The histogram's range: 1 µs to 60 s at 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 60_000_000;

/// What one server did on one transport.
#[derive(Debug, Clone)]
pub struct Measurements {
    pub sequential: Completed,
    pub p50_us: u64,
    pub p99_us: u64,
    pub concurrent: Completed,
    pub calls_per_second: f64,
    pub cpu_us_per_call: f64,
    /// The driver's own CPU per call in the same phase (it shares the machine with the server).
    pub driver_us_per_call: f64,
    /// CPU used by other processes during the measured phases, in cores on average.
    pub background_cores: f64,
    /// The median of the cold starts, in ms.
    pub cold_start_ms: f64,
    pub idle_rss_kib: u64,
    pub loaded_rss_kib: u64,
}

/// A session with a started server, on either transport.
pub(crate) enum Session {
    Stdio(StdioSession),
    Http {
        target: Arc<Target>,
        /// `in_flight` connections; the first one carries the sequential calls.
        connections: Vec<Connection>,
        next_id: u64,
        /// Held open: our HTTP servers exit when their stdin closes, so they cannot outlive us.
        _stdin: tokio::process::ChildStdin,
    },
}

impl Session {
    pub(crate) async fn sequential(
        &mut self,
        call: Call,
        calls: u64,
        cap: Duration,
        histogram: Option<&mut Histogram<u64>>,
    ) -> anyhow::Result<Completed> {
        match self {
            Session::Stdio(session) => session.sequential(call, calls, cap, histogram).await,
            Session::Http {
                target,
                connections,
                next_id,
                ..
            } => {
                let connection = connections.first_mut().context("no connection")?;
                let completed = target
                    .sequential(call, connection, *next_id, calls, cap, histogram)
                    .await?;
                *next_id += completed.calls;
                Ok(completed)
            }
        }
    }

    /// `calls` sequential calls, each timed: what the phase did, and the latencies (µs).
    pub(crate) async fn timed_sequential(
        &mut self,
        call: Call,
        calls: u64,
        cap: Duration,
    ) -> anyhow::Result<(Completed, Histogram<u64>)> {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_US, 3)?;
        let completed = self
            .sequential(call, calls, cap, Some(&mut histogram))
            .await?;
        Ok((completed, histogram))
    }

    /// Calls with `in_flight` outstanding (over HTTP: one on each of the session's
    /// connections, which `start` opened `in_flight` of).
    pub(crate) async fn concurrent(
        &mut self,
        call: Call,
        budget: Budget,
        in_flight: u64,
    ) -> anyhow::Result<Completed> {
        match self {
            Session::Stdio(session) => session.pipelined(call, budget, in_flight).await,
            Session::Http {
                target,
                connections,
                next_id,
                ..
            } => {
                let (completed, back, used_ids) = target
                    .concurrent(call, mem::take(connections), *next_id, budget)
                    .await?;
                *connections = back;
                *next_id += used_ids;
                Ok(completed)
            }
        }
    }
}

impl Session {
    /// Over HTTP: calls with one outstanding on each of the session's connections, each
    /// timed from its write to its answer (µs).
    pub(crate) async fn timed_concurrent_http(
        &mut self,
        call: Call,
        budget: Budget,
    ) -> anyhow::Result<(Completed, Histogram<u64>)> {
        let Session::Http {
            target,
            connections,
            next_id,
            ..
        } = self
        else {
            anyhow::bail!("latencies at many in flight are measured over HTTP only");
        };
        let (completed, back, used_ids, histogram) = target
            .concurrent_timed(call, mem::take(connections), *next_id, budget)
            .await?;
        *connections = back;
        *next_id += used_ids;
        Ok((completed, histogram))
    }
}

/// A free loopback port: bind port 0, read the port, let it go for the server to bind.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("could not find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Start a server and finish the handshake; the duration is spawn to initialize result.
pub(crate) async fn start(
    transport: Transport,
    launch: &dyn Fn(u16) -> anyhow::Result<Launch>,
    opening: &Opening,
) -> anyhow::Result<(ServerProcess, Session, Duration)> {
    let port = match transport {
        Transport::Stdio => 0,
        Transport::Http => free_port()?,
    };
    let launch = launch(port)?;
    let started = Instant::now();
    let (mut process, pipes) = ServerProcess::spawn(
        &launch.program,
        &launch.args,
        &launch.envs,
        transport == Transport::Stdio,
    )?;
    let handshake = async {
        match transport {
            Transport::Stdio => {
                let stdout = pipes.stdout.context("stdout is piped")?;
                let mut session = StdioSession::new(pipes.stdin, stdout, opening.answer_timeout);
                session.initialize(opening.startup_timeout).await?;
                let cold = started.elapsed();
                session.confirm_initialized().await?;
                anyhow::Ok((Session::Stdio(session), cold))
            }
            Transport::Http => {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let still_running = || process.exit_status().is_none();
                let mut first =
                    Connection::open_when_listening(addr, opening.startup_timeout, still_running)
                        .await?;
                let target = Target::initialize(
                    addr,
                    &mut first,
                    opening.startup_timeout,
                    opening.answer_timeout,
                )
                .await?;
                let cold = started.elapsed();
                target.confirm_initialized(&mut first).await?;
                let mut connections = vec![first];
                for _ in 1..opening.in_flight {
                    connections.push(
                        Connection::open(addr)
                            .await
                            .context("could not open another connection")?,
                    );
                }
                let session = Session::Http {
                    target: Arc::new(target),
                    connections,
                    next_id: 1,
                    _stdin: pipes.stdin,
                };
                Ok((session, cold))
            }
        }
    };
    match handshake.await {
        Ok((session, cold)) => Ok((process, session, cold)),
        Err(error) => Err(process.explain(error.context("the handshake failed"))),
    }
}

/// Run the whole workload against one server.
pub async fn measure(
    transport: Transport,
    launch: &dyn Fn(u16) -> anyhow::Result<Launch>,
    plan: &Plan,
) -> anyhow::Result<Measurements> {
    let mut cold_starts = Vec::new();
    let mut kept = None;
    for sample in 0..plan.cold_starts.max(1) {
        let (process, session, cold) = start(transport, launch, &plan.opening()).await?;
        cold_starts.push(cold);
        if sample + 1 < plan.cold_starts.max(1) {
            drop(session);
            process.stop().await;
        } else {
            kept = Some((process, session));
        }
    }
    let (mut process, mut session) = kept.context("at least one start")?;
    let result = run_phases(&process, &mut session, transport, plan).await;
    let result = result.map_err(|error| process.explain(error));
    drop(session);
    process.stop().await;
    let mut measurements = result?;
    cold_starts.sort();
    measurements.cold_start_ms = cold_starts[cold_starts.len() / 2].as_secs_f64() * 1e3;
    Ok(measurements)
}

async fn run_phases(
    process: &ServerProcess,
    session: &mut Session,
    transport: Transport,
    plan: &Plan,
) -> anyhow::Result<Measurements> {
    tokio::time::sleep(plan.idle_settle).await;
    let tree = ProcessTree::of(process.pid()).context("could not read /proc")?;
    let idle_rss_kib = tree.rss_kib();

    let call = protocol::ECHO;
    session
        .sequential(call, plan.warmup_sequential, plan.phase_cap, None)
        .await
        .context("warm-up")?;
    if plan.warmup_concurrent > 0 {
        session
            .concurrent(
                call,
                Budget::calls(plan.warmup_concurrent, plan.phase_cap),
                plan.in_flight,
            )
            .await
            .context("concurrent warm-up")?;
    }

    // Other processes' CPU over both measured phases: the machine's busy time less the
    // server's and the driver's.
    let measured_from = CpuSnapshot::take(&tree);
    let (sequential, histogram) = session
        .timed_sequential(call, plan.sequential_calls, plan.phase_cap)
        .await
        .context("the sequential phase")?;

    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let tree = tree.clone();
        let peak_rss = Arc::clone(&peak_rss);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RSS_SAMPLE_EVERY);
            // Aborted when the phase ends.
            loop {
                ticks.tick().await;
                peak_rss.fetch_max(tree.rss_kib(), Ordering::Relaxed);
            }
        })
    };
    let concurrent_from = CpuSnapshot::take(&tree);
    let concurrent = session
        .concurrent(call, plan.concurrent_budget(transport), plan.in_flight)
        .await;
    let measured_to = CpuSnapshot::take(&tree);
    peak_rss.fetch_max(tree.rss_kib(), Ordering::Relaxed);
    sampler.abort();
    let concurrent = concurrent.context("the concurrent phase")?;

    let cpu_seconds = measured_to.server_seconds_since(&concurrent_from);
    let driver_seconds = measured_to.driver_seconds_since(&concurrent_from);
    let background_cores = measured_to.background_cores_since(&measured_from);
    let calls = concurrent.calls.max(1) as f64;
    Ok(Measurements {
        sequential,
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        concurrent,
        calls_per_second: concurrent.calls as f64 / concurrent.elapsed.as_secs_f64().max(1e-9),
        cpu_us_per_call: cpu_seconds * 1e6 / calls,
        driver_us_per_call: driver_seconds * 1e6 / calls,
        background_cores,
        cold_start_ms: 0.0,
        idle_rss_kib,
        loaded_rss_kib: peak_rss.load(Ordering::Relaxed),
    })
}
