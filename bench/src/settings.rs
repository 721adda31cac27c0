//! The environment variables the benchmark reads, and how much work each mode does.

use std::time::Duration;

use crate::{peers::Transport, phase::Budget};

/// Where `scripts/install-peers.sh` put Node, the TypeScript SDK and the Python venv.
pub const PEERS_DIR_VAR: &str = "SWITCHBOARD_PEERS_DIR";
/// `1`: under `--smoke`, a peer that is not installed fails the run instead of being skipped.
pub const REQUIRE_PEERS_VAR: &str = "SWITCHBOARD_REQUIRE_PEERS";
/// The cargo that runs us (set by `cargo run`), used to build the server binaries.
pub const CARGO_VAR: &str = "CARGO";

/// How much to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The numbers for `docs/performance.md`.
    Full,
    /// A shorter run with the same phases, for a look while working.
    Quick,
    /// A tiny run that checks every answer and asserts no timings (for CI, also in debug).
    Smoke,
}

/// The size and the bounds of each phase of one server's run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Fresh starts timed from spawn to the initialize result; the last one is measured on.
    pub cold_starts: u32,
    /// Wait after the handshake before reading the idle RSS.
    pub idle_settle: Duration,
    /// Untimed calls before the sequential phase (JITs, caches, connection pools).
    pub warmup_sequential: u64,
    pub warmup_concurrent: u64,
    /// Timed sequential calls.
    pub sequential_calls: u64,
    /// The least number of calls at `in_flight` over stdio and over HTTP...
    pub stdio_concurrent_calls: u64,
    pub http_concurrent_calls: u64,
    /// ...and the least time they take: enough CPU ticks even for the fastest server.
    pub concurrent_min_duration: Duration,
    pub in_flight: u64,
    /// The most one phase may take; a phase cut short is marked in the table.
    pub phase_cap: Duration,
    /// The most a server may take from spawn to its initialize result.
    pub startup_timeout: Duration,
    /// The most one answer may take before the server is declared stuck.
    pub answer_timeout: Duration,
}

/// Calls in flight in the concurrent phase (issue 10).
pub const IN_FLIGHT: u64 = 32;

/// What starting a server and opening its session needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Opening {
    /// Connections opened over HTTP (one per call in flight).
    pub in_flight: u64,
    /// The most a server may take from spawn to its initialize result.
    pub startup_timeout: Duration,
    /// The most one answer may take before the server is declared stuck.
    pub answer_timeout: Duration,
}

impl Plan {
    pub fn for_mode(mode: Mode) -> Plan {
        let base = Plan {
            cold_starts: 5,
            idle_settle: Duration::from_millis(500),
            warmup_sequential: 2_000,
            warmup_concurrent: 5_000,
            sequential_calls: 5_000,
            stdio_concurrent_calls: 100_000,
            http_concurrent_calls: 30_000,
            concurrent_min_duration: Duration::from_secs(3),
            in_flight: IN_FLIGHT,
            phase_cap: Duration::from_secs(20),
            startup_timeout: Duration::from_secs(30),
            answer_timeout: Duration::from_secs(30),
        };
        match mode {
            Mode::Full => base,
            Mode::Quick => Plan {
                cold_starts: 3,
                idle_settle: Duration::from_millis(200),
                warmup_sequential: 300,
                warmup_concurrent: 1_000,
                sequential_calls: 1_000,
                stdio_concurrent_calls: 20_000,
                http_concurrent_calls: 5_000,
                concurrent_min_duration: Duration::from_secs(1),
                phase_cap: Duration::from_secs(8),
                ..base
            },
            Mode::Smoke => Plan {
                cold_starts: 1,
                idle_settle: Duration::ZERO,
                warmup_sequential: 5,
                warmup_concurrent: 0,
                sequential_calls: 50,
                stdio_concurrent_calls: 100,
                http_concurrent_calls: 100,
                concurrent_min_duration: Duration::ZERO,
                phase_cap: Duration::from_secs(20),
                ..base
            },
        }
    }

    pub fn opening(&self) -> Opening {
        Opening {
            in_flight: self.in_flight,
            startup_timeout: self.startup_timeout,
            answer_timeout: self.answer_timeout,
        }
    }

    pub fn concurrent_calls(&self, transport: Transport) -> u64 {
        match transport {
            Transport::Stdio => self.stdio_concurrent_calls,
            Transport::Http => self.http_concurrent_calls,
        }
    }

    /// How long the measured concurrent phase runs on `transport`.
    pub fn concurrent_budget(&self, transport: Transport) -> Budget {
        Budget {
            min_calls: self.concurrent_calls(transport),
            min_duration: self.concurrent_min_duration,
            cap: self.phase_cap,
        }
    }
}

/// Calls in flight in the expenses workload's concurrent phases. Lower than the echo
/// workload's: SQLite serialises writers, and 8 is a busy interactive host, not a load test.
pub const EXPENSES_IN_FLIGHT: u64 = 8;

/// The size and the bounds of the expenses workload on one server (issue 4): `add_expense` and
/// `list_expenses` on a fresh SQLite file.
#[derive(Debug, Clone, Copy)]
pub struct ExpensesPlan {
    /// Untimed calls of each tool (sequential, then as many at `in_flight`) before it is timed.
    pub warmup_calls: u64,
    /// Rows in the table when `list_expenses` is timed (the add warm-up counts towards them).
    pub prefill_rows: u64,
    /// Timed sequential calls of each tool.
    pub sequential_calls: u64,
    /// The least number of calls, and the least time, of each tool at `in_flight`.
    pub concurrent_calls: u64,
    pub concurrent_min_duration: Duration,
    /// The most one phase may take; a phase cut short is marked in the table.
    pub phase_cap: Duration,
    /// Calls in flight in the concurrent phases, and the start's timeouts.
    pub opening: Opening,
}

impl ExpensesPlan {
    pub fn for_mode(mode: Mode) -> ExpensesPlan {
        let base = ExpensesPlan {
            warmup_calls: 200,
            prefill_rows: 1_000,
            sequential_calls: 2_000,
            concurrent_calls: 4_000,
            concurrent_min_duration: Duration::from_secs(3),
            phase_cap: Duration::from_secs(20),
            opening: Opening {
                in_flight: EXPENSES_IN_FLIGHT,
                startup_timeout: Duration::from_secs(30),
                answer_timeout: Duration::from_secs(30),
            },
        };
        match mode {
            Mode::Full => base,
            Mode::Quick => ExpensesPlan {
                warmup_calls: 50,
                sequential_calls: 300,
                concurrent_calls: 600,
                concurrent_min_duration: Duration::from_secs(1),
                phase_cap: Duration::from_secs(8),
                ..base
            },
            Mode::Smoke => ExpensesPlan {
                warmup_calls: 3,
                // More than a page, so every list answer is a full page with a next cursor.
                prefill_rows: 60,
                sequential_calls: 10,
                concurrent_calls: 20,
                concurrent_min_duration: Duration::ZERO,
                ..base
            },
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.opening.in_flight
    }

    /// How long each measured concurrent phase runs.
    pub fn concurrent_budget(&self) -> Budget {
        Budget {
            min_calls: self.concurrent_calls,
            min_duration: self.concurrent_min_duration,
            cap: self.phase_cap,
        }
    }
}

/// The host-side workloads (issue 10): `switchboard tools` against the MCP Inspector CLI, and
/// the agent loop's own cost per tool call against a scripted model.
#[derive(Debug, Clone, Copy)]
pub struct HostPlan {
    /// Untimed runs of each lister first (page cache, Node's compile cache).
    pub listing_warmups: u32,
    /// Timed runs of each lister, alternating between them.
    pub listing_runs: u32,
    /// The most one listing may take before it counts as stuck.
    pub listing_timeout: Duration,
    /// Tool calls the scripted model makes in one agent turn, before it answers.
    pub agent_tool_calls: u32,
    /// Untimed agent turns first.
    pub agent_warmup_turns: u32,
    /// Timed agent turns (each followed by the same model round trips and direct tool calls).
    pub agent_turns: u32,
    /// The most a whole phase (all runs or turns) may take; a phase cut short is marked.
    pub phase_cap: Duration,
    /// The most a server may take to start and finish its handshake.
    pub startup_timeout: Duration,
}

impl HostPlan {
    pub fn for_mode(mode: Mode) -> HostPlan {
        let base = HostPlan {
            listing_warmups: 2,
            listing_runs: 20,
            listing_timeout: Duration::from_secs(30),
            agent_tool_calls: 10,
            agent_warmup_turns: 5,
            agent_turns: 100,
            phase_cap: Duration::from_secs(60),
            startup_timeout: Duration::from_secs(30),
        };
        match mode {
            Mode::Full => base,
            Mode::Quick => HostPlan {
                listing_warmups: 1,
                listing_runs: 7,
                agent_warmup_turns: 2,
                agent_turns: 20,
                phase_cap: Duration::from_secs(20),
                ..base
            },
            Mode::Smoke => HostPlan {
                listing_warmups: 0,
                listing_runs: 1,
                agent_tool_calls: 3,
                agent_warmup_turns: 0,
                agent_turns: 1,
                ..base
            },
        }
    }
}

/// The gateway workload (issues 8 and 10): the gateway against calling its upstream directly,
/// and memory per idle legacy session on the gateway and on our plain HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct GatewayPlan {
    /// The latency and throughput phases, as in the echo workload.
    pub calls: Plan,
    /// Idle legacy sessions held open when memory is read, in increasing order. The first
    /// reading is taken after one session (which warms the server up) and is the baseline.
    pub session_counts: [u64; 2],
    /// Wait after opening sessions before reading RSS.
    pub rss_settle: Duration,
    /// The most opening all sessions may take.
    pub sessions_cap: Duration,
}

impl GatewayPlan {
    pub fn for_mode(mode: Mode) -> GatewayPlan {
        let calls = Plan::for_mode(mode);
        let base = GatewayPlan {
            calls,
            session_counts: [1_000, 10_000],
            rss_settle: Duration::from_millis(300),
            sessions_cap: Duration::from_secs(60),
        };
        match mode {
            Mode::Full | Mode::Quick => base,
            Mode::Smoke => GatewayPlan {
                session_counts: [10, 50],
                rss_settle: Duration::ZERO,
                ..base
            },
        }
    }

    /// The most sessions the gateway is configured to hold: the largest count and some room.
    pub fn max_sessions(&self) -> u64 {
        self.session_counts[1] + 100
    }
}
