//! The expenses workload (issue 4): `add_expense` and `list_expenses` against one expense
//! tracker on a fresh SQLite file, with the same steps for every server and transport.
//!
//! 1. Start the server on an empty database in a new temporary directory.
//! 2. Warm up `add_expense` (sequential calls, then as many at `in_flight`), then add rows at
//!    `in_flight` until the table holds `prefill_rows`.
//! 3. Warm up `list_expenses`, then time it: sequential calls, one by one, then calls at
//!    `in_flight`. Every call asks for the newest page of 50 over the prefilled table.
//! 4. Time `add_expense` the same way (the table grows as it runs).
//!
//! Every answer is checked (see [`crate::protocol`]); a warm-up or the prefill that the time
//! cap cuts short fails the run, since the timed phases would then not see the same table.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::{
    children::ServerProcess,
    peers::{Launch, Transport},
    phase::{Budget, Completed},
    procfs::{CpuSnapshot, ProcessTree},
    protocol::{self, Call},
    settings::ExpensesPlan,
    workload::{self, Session},
};

/// One tool's figures on one server and transport.
#[derive(Debug, Clone)]
pub struct ToolFigures {
    pub sequential: Completed,
    /// Sequential calls per second (one in flight).
    pub sequential_per_second: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub concurrent: Completed,
    /// Calls per second at `in_flight`.
    pub concurrent_per_second: f64,
    /// The server's CPU per call at `in_flight`.
    pub cpu_us_per_call: f64,
    /// CPU used by other processes while the tool was timed, in cores on average.
    pub background_cores: f64,
}

/// What one expense tracker did on one transport.
#[derive(Debug, Clone)]
pub struct ExpensesMeasurements {
    pub add: ToolFigures,
    pub list: ToolFigures,
    /// Rows in the table while `list_expenses` was timed.
    pub rows_listed: u64,
}

impl ExpensesMeasurements {
    /// Each tool's name and figures, in the order of the tables.
    pub fn tools(&self) -> [(&'static str, &ToolFigures); 2] {
        [
            (protocol::ADD_EXPENSE_TOOL, &self.add),
            (protocol::LIST_EXPENSES_TOOL, &self.list),
        ]
    }
}

/// A fresh directory for one server's database, removed when dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    dir: PathBuf,
}

impl ScratchDatabase {
    /// `<tmp>/switchboard-bench-<pid>-<name>`, emptied if a previous run left it behind.
    pub fn create(name: &str) -> anyhow::Result<ScratchDatabase> {
        let dir =
            std::env::temp_dir().join(format!("switchboard-bench-{}-{name}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("could not empty {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(ScratchDatabase { dir })
    }

    /// The directory itself, for other scratch files (a config, a `HOME`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The SQLite file the server creates.
    pub fn path(&self) -> PathBuf {
        self.dir.join("expenses.sqlite3")
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Best effort: a leftover directory in /tmp is harmless and named after our pid.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run the expenses workload against one server, started by `launch` on its own database.
pub async fn measure(
    transport: Transport,
    launch: &dyn Fn(u16) -> anyhow::Result<Launch>,
    plan: &ExpensesPlan,
) -> anyhow::Result<ExpensesMeasurements> {
    let (mut process, mut session, _) = workload::start(transport, launch, &plan.opening).await?;
    let result = run_phases(&process, &mut session, plan).await;
    let result = result.map_err(|error| process.explain(error));
    drop(session);
    process.stop().await;
    result
}

async fn run_phases(
    process: &ServerProcess,
    session: &mut Session,
    plan: &ExpensesPlan,
) -> anyhow::Result<ExpensesMeasurements> {
    let tree = ProcessTree::of(process.pid()).context("could not read /proc")?;

    let warm_rows = warm_up(session, protocol::ADD_EXPENSE, plan).await?;
    let missing = plan.prefill_rows.saturating_sub(warm_rows);
    if missing > 0 {
        let filled = session
            .concurrent(
                protocol::ADD_EXPENSE,
                Budget::calls(missing, plan.phase_cap),
                plan.in_flight(),
            )
            .await
            .context("filling the table")?;
        require_all(filled, missing, "filling the table")?;
    }
    let rows_listed = warm_rows + missing;

    warm_up(session, protocol::LIST_EXPENSES, plan).await?;
    let list = timed(session, &tree, protocol::LIST_EXPENSES, plan).await?;
    let add = timed(session, &tree, protocol::ADD_EXPENSE, plan).await?;
    Ok(ExpensesMeasurements {
        add,
        list,
        rows_listed,
    })
}

fn require_all(completed: Completed, wanted: u64, what: &str) -> anyhow::Result<()> {
    if completed.calls < wanted {
        bail!(
            "{what}: only {} of {wanted} calls within {:.1} s",
            completed.calls,
            completed.elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// `warmup_calls` sequential calls, then as many at `in_flight`; returns the calls made.
async fn warm_up(session: &mut Session, call: Call, plan: &ExpensesPlan) -> anyhow::Result<u64> {
    let what = format!("warming up {}", call.tool);
    let sequential = session
        .sequential(call, plan.warmup_calls, plan.phase_cap, None)
        .await
        .with_context(|| what.clone())?;
    require_all(sequential, plan.warmup_calls, &what)?;
    let concurrent = session
        .concurrent(
            call,
            Budget::calls(plan.warmup_calls, plan.phase_cap),
            plan.in_flight(),
        )
        .await
        .with_context(|| what.clone())?;
    require_all(concurrent, plan.warmup_calls, &what)?;
    Ok(sequential.calls + concurrent.calls)
}

/// Time `call`: sequential calls one by one, then calls at `in_flight` with the server's CPU.
async fn timed(
    session: &mut Session,
    tree: &ProcessTree,
    call: Call,
    plan: &ExpensesPlan,
) -> anyhow::Result<ToolFigures> {
    let measured_from = CpuSnapshot::take(tree);
    let (sequential, histogram) = session
        .timed_sequential(call, plan.sequential_calls, plan.phase_cap)
        .await
        .with_context(|| format!("timing {} one at a time", call.tool))?;
    let concurrent_from = CpuSnapshot::take(tree);
    let concurrent = session
        .concurrent(call, plan.concurrent_budget(), plan.in_flight())
        .await
        .with_context(|| format!("timing {} at {} in flight", call.tool, plan.in_flight()))?;
    let measured_to = CpuSnapshot::take(tree);
    let per_second = |calls: u64, seconds: f64| -> f64 { calls as f64 / seconds.max(1e-9) };
    Ok(ToolFigures {
        sequential,
        sequential_per_second: per_second(sequential.calls, sequential.elapsed.as_secs_f64()),
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        concurrent,
        concurrent_per_second: per_second(concurrent.calls, concurrent.elapsed.as_secs_f64()),
        cpu_us_per_call: measured_to.server_seconds_since(&concurrent_from) * 1e6
            / concurrent.calls.max(1) as f64,
        background_cores: measured_to.background_cores_since(&measured_from),
    })
}
