//! The results as Markdown: the table, ours against each peer, and the targets; and for
//! the expenses workload, its table and ours against the Python SDK.

use std::fmt::Write as _;

use crate::{
    expenses::ExpensesMeasurements,
    peers::{Peer, Transport},
    phase::Completed,
    protocol,
    workload::Measurements,
};

/// What happened to one server on one transport.
#[derive(Debug, Clone)]
pub enum Outcome<M = Measurements> {
    Measured(Box<M>),
    /// Not installed or not built; the reason says which.
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Row<M = Measurements> {
    pub transport: Transport,
    pub peer: Peer,
    pub outcome: Outcome<M>,
}

fn measured<M>(rows: &[Row<M>], transport: Transport, peer: Peer) -> Option<&M> {
    rows.iter().find_map(|row| match &row.outcome {
        Outcome::Measured(m) if row.transport == transport && row.peer == peer => Some(&**m),
        _ => None,
    })
}

/// `12345.6` as `12,346`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

/// Marks a value from a phase the time cap cut short.
const CAPPED: &str = "†";
/// Marks a server measured while other processes were busy.
const BUSY: &str = "‡";
/// Other processes' CPU, in cores, from which a row is marked as measured on a busy machine.
const BUSY_CORES: f64 = 0.1;

/// The marks of one measured row: † on values from a phase the time cap cut short, ‡ on a
/// server measured while other processes were busy.
struct Marks {
    sequential: &'static str,
    concurrent: &'static str,
    busy: &'static str,
}

impl Marks {
    /// The marks of the row `label`, adding a note under the table for each.
    fn of(
        label: &str,
        sequential: &Completed,
        concurrent: &Completed,
        in_flight: u64,
        background_cores: f64,
        notes: &mut Vec<String>,
    ) -> Marks {
        if sequential.capped || concurrent.capped {
            notes.push(format!(
                "{CAPPED} {label}: the time cap stopped a phase: {} sequential calls in {:.1} s, {} calls at {in_flight} in flight in {:.1} s.",
                sequential.calls,
                sequential.elapsed.as_secs_f64(),
                concurrent.calls,
                concurrent.elapsed.as_secs_f64(),
            ));
        }
        let busy = background_cores >= BUSY_CORES;
        if busy {
            notes.push(format!(
                "{BUSY} {label}: other processes used {background_cores:.2} cores on average while it was measured."
            ));
        }
        let mark = |on: bool, mark: &'static str| if on { mark } else { "" };
        Marks {
            sequential: mark(sequential.capped, CAPPED),
            concurrent: mark(concurrent.capped, CAPPED),
            busy: mark(busy, BUSY),
        }
    }
}

/// The main table, one row per server and transport.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| transport | server | p50 µs | p99 µs | calls/s @32 | CPU µs/call | cold start ms | idle RSS MiB | loaded RSS MiB | driver µs/call |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut notes = Vec::new();
    for row in rows {
        let name = format!("{} | {}", row.transport, row.peer.label());
        match &row.outcome {
            Outcome::Measured(m) => {
                let Marks {
                    sequential: seq_mark,
                    concurrent: con_mark,
                    busy: busy_mark,
                } = Marks::of(
                    &format!("{}/{}", row.transport, row.peer.label()),
                    &m.sequential,
                    &m.concurrent,
                    crate::settings::IN_FLIGHT,
                    m.background_cores,
                    &mut notes,
                );
                let _ = writeln!(
                    out,
                    "| {name}{busy_mark} | {}{seq_mark} | {}{seq_mark} | {}{con_mark} | {:.1} | {} | {} | {} | {:.1} |",
                    m.p50_us,
                    m.p99_us,
                    thousands(m.calls_per_second),
                    m.cpu_us_per_call,
                    millis(m.cold_start_ms),
                    mib(m.idle_rss_kib),
                    mib(m.loaded_rss_kib),
                    m.driver_us_per_call,
                );
            }
            Outcome::Skipped(_) => {
                let _ = writeln!(out, "| {name} | skipped | | | | | | | |");
                notes.extend(outcome_note(row));
            }
            Outcome::Failed(_) => {
                let _ = writeln!(out, "| {name} | FAILED | | | | | | | |");
                notes.extend(outcome_note(row));
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "{note}  ");
        }
    }
    out
}

/// `ours / theirs` to two significant digits (at least two decimals), e.g. `0.0031×`, `0.12×`,
/// `4.06×`, `274×`.
pub(crate) fn ratio(ours: f64, theirs: f64) -> String {
    if !(theirs > 0.0 && ours.is_finite()) {
        return "–".into();
    }
    let value = ours / theirs;
    if value == 0.0 {
        return "0×".into();
    }
    let decimals = (1.0 - value.log10().floor()).clamp(2.0, 6.0) as usize;
    if value >= 100.0 {
        format!("{value:.0}×")
    } else {
        format!("{value:.decimals$}×")
    }
}

/// Ours divided by each peer. Below 1× is better except for calls/s.
pub fn ratios(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| transport | ours ÷ | p50 | p99 | calls/s @32 | CPU/call | cold start | idle RSS | loaded RSS |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut sentences = Vec::new();
    for transport in [Transport::Stdio, Transport::Http] {
        let Some(ours) = measured(rows, transport, Peer::Ours) else {
            continue;
        };
        let mut cpu = Vec::new();
        for row in rows
            .iter()
            .filter(|row| row.transport == transport && row.peer != Peer::Ours)
        {
            let Some(theirs) = measured(rows, transport, row.peer) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {transport} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.peer.label(),
                ratio(ours.p50_us as f64, theirs.p50_us as f64),
                ratio(ours.p99_us as f64, theirs.p99_us as f64),
                ratio(ours.calls_per_second, theirs.calls_per_second),
                ratio(ours.cpu_us_per_call, theirs.cpu_us_per_call),
                ratio(ours.cold_start_ms, theirs.cold_start_ms),
                ratio(ours.idle_rss_kib as f64, theirs.idle_rss_kib as f64),
                ratio(ours.loaded_rss_kib as f64, theirs.loaded_rss_kib as f64),
            );
            cpu.push(format!(
                "{} {}",
                ratio(ours.cpu_us_per_call, theirs.cpu_us_per_call),
                row.peer.label()
            ));
        }
        if !cpu.is_empty() {
            sentences.push(format!("{transport}: ours CPU/call is {}.", cpu.join(", ")));
        }
    }
    if sentences.is_empty() {
        out.push_str("(ours was not measured, so there is nothing to compare)\n");
    }
    out.push('\n');
    for sentence in sentences {
        let _ = writeln!(out, "{sentence}  ");
    }
    out
}

/// One target of issue 10 and how the run compares.
struct Target {
    text: &'static str,
    /// The measured value and whether it meets the target, when both sides were measured.
    verdict: Option<(String, bool)>,
}

/// The targets, each met, missed or not measured in this run.
pub fn targets(rows: &[Row]) -> String {
    use Transport::{Http, Stdio};
    let ours = |t| measured(rows, t, Peer::Ours);
    let floor = |t| measured(rows, t, Peer::Floor);
    let against =
        |ours: Option<&Measurements>,
         other: Option<&Measurements>,
         f: fn(&Measurements, &Measurements) -> (String, bool)| { Some(f(ours?, other?)) };
    let list = [
        Target {
            text: "stdio: server CPU ≤ 10 µs/call",
            verdict: ours(Stdio).map(|m| {
                (
                    format!("{:.1} µs", m.cpu_us_per_call),
                    m.cpu_us_per_call <= 10.0,
                )
            }),
        },
        Target {
            text: "stdio: ≥ 100,000 calls/s at 32 in flight",
            verdict: ours(Stdio).map(|m| {
                (
                    thousands(m.calls_per_second),
                    m.calls_per_second >= 100_000.0,
                )
            }),
        },
        Target {
            text: "stdio: sequential p50 ≤ 2× floor",
            verdict: against(ours(Stdio), floor(Stdio), |o, f| {
                let r = o.p50_us as f64 / f.p50_us.max(1) as f64;
                (
                    format!("{} µs vs {} µs = {r:.2}×", o.p50_us, f.p50_us),
                    r <= 2.0,
                )
            }),
        },
        Target {
            text: "http: p50 ≤ 1.6× floor",
            verdict: against(ours(Http), floor(Http), |o, f| {
                let r = o.p50_us as f64 / f.p50_us.max(1) as f64;
                (
                    format!("{} µs vs {} µs = {r:.2}×", o.p50_us, f.p50_us),
                    r <= 1.6,
                )
            }),
        },
        Target {
            text: "http: server CPU ≤ 30 µs/call",
            verdict: ours(Http).map(|m| {
                (
                    format!("{:.1} µs", m.cpu_us_per_call),
                    m.cpu_us_per_call <= 30.0,
                )
            }),
        },
        Target {
            text: "http: throughput ≥ 2× rmcp+nodelay",
            verdict: against(
                ours(Http),
                measured(rows, Http, Peer::RmcpNodelay),
                |o, r| {
                    let x = o.calls_per_second / r.calls_per_second.max(1e-9);
                    (
                        format!(
                            "{} vs {} calls/s = {x:.2}×",
                            thousands(o.calls_per_second),
                            thousands(r.calls_per_second)
                        ),
                        x >= 2.0,
                    )
                },
            ),
        },
        Target {
            text: "cold start ≤ 3 ms (stdio)",
            verdict: ours(Stdio).map(|m| {
                (
                    format!("{} ms", millis(m.cold_start_ms)),
                    m.cold_start_ms <= 3.0,
                )
            }),
        },
        Target {
            text: "idle RSS ≤ 6 MiB (stdio)",
            verdict: ours(Stdio).map(|m| {
                (
                    format!("{} MiB", mib(m.idle_rss_kib)),
                    m.idle_rss_kib <= 6 * 1024,
                )
            }),
        },
        Target {
            text: "idle RSS ≤ 6 MiB (stdio, the lean `switchboard-echo` binary)",
            verdict: measured(rows, Stdio, Peer::OursLean).map(|m| {
                (
                    format!("{} MiB", mib(m.idle_rss_kib)),
                    m.idle_rss_kib <= 6 * 1024,
                )
            }),
        },
    ];
    let mut out = String::new();
    for target in list {
        let verdict = match target.verdict {
            Some((value, true)) => format!("{value}: **met**"),
            Some((value, false)) => format!("{value}: **missed**"),
            None => "not measured in this run".into(),
        };
        let _ = writeln!(out, "- {}: {verdict}", target.text);
    }
    out
}

/// Skipped and failed rows as notes under a table.
fn outcome_note<M>(row: &Row<M>) -> Option<String> {
    match &row.outcome {
        Outcome::Measured(_) => None,
        Outcome::Skipped(reason) => {
            Some(format!("{}/{}: {reason}", row.peer.label(), row.transport))
        }
        Outcome::Failed(error) => Some(format!(
            "{}/{} failed: {error}",
            row.peer.label(),
            row.transport
        )),
    }
}

/// The expenses table: one row per transport, tool and server.
pub fn expenses_table(rows: &[Row<ExpensesMeasurements>], in_flight: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| transport | tool | server | calls/s sequential | p50 µs | p99 µs | calls/s @{in_flight} | CPU µs/call @{in_flight} |"
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|\n");
    let mut notes: Vec<String> = rows.iter().filter_map(outcome_note).collect();
    for transport in [Transport::Stdio, Transport::Http] {
        for (index, tool) in [protocol::ADD_EXPENSE_TOOL, protocol::LIST_EXPENSES_TOOL]
            .into_iter()
            .enumerate()
        {
            for row in rows.iter().filter(|row| row.transport == transport) {
                let name = format!("{transport} | {tool} | {}", row.peer.label());
                let m = match &row.outcome {
                    Outcome::Measured(m) => m.tools()[index].1,
                    Outcome::Skipped(_) => {
                        let _ = writeln!(out, "| {name} | skipped | | | | |");
                        continue;
                    }
                    Outcome::Failed(_) => {
                        let _ = writeln!(out, "| {name} | FAILED | | | | |");
                        continue;
                    }
                };
                let Marks {
                    sequential: seq_mark,
                    concurrent: con_mark,
                    busy: busy_mark,
                } = Marks::of(
                    &format!("{transport}/{tool}/{}", row.peer.label()),
                    &m.sequential,
                    &m.concurrent,
                    in_flight,
                    m.background_cores,
                    &mut notes,
                );
                let _ = writeln!(
                    out,
                    "| {name}{busy_mark} | {}{seq_mark} | {}{seq_mark} | {}{seq_mark} | {}{con_mark} | {:.1} |",
                    thousands(m.sequential_per_second),
                    m.p50_us,
                    m.p99_us,
                    thousands(m.concurrent_per_second),
                    m.cpu_us_per_call,
                );
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "{note}  ");
        }
    }
    out
}

/// Ours divided by the Python SDK, per transport and tool. Above 1× is better for calls/s,
/// below 1× for latency and CPU.
pub fn expenses_ratios(rows: &[Row<ExpensesMeasurements>], in_flight: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| transport | tool | calls/s sequential | calls/s @{in_flight} | p50 | p99 | CPU/call @{in_flight} |"
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    let mut compared = false;
    for transport in [Transport::Stdio, Transport::Http] {
        let (Some(ours), Some(python)) = (
            measured(rows, transport, Peer::Ours),
            measured(rows, transport, Peer::Python),
        ) else {
            continue;
        };
        for ((tool, o), (_, p)) in ours.tools().into_iter().zip(python.tools()) {
            compared = true;
            let _ = writeln!(
                out,
                "| {transport} | {tool} | {} | {} | {} | {} | {} |",
                ratio(o.sequential_per_second, p.sequential_per_second),
                ratio(o.concurrent_per_second, p.concurrent_per_second),
                ratio(o.p50_us as f64, p.p50_us as f64),
                ratio(o.p99_us as f64, p.p99_us as f64),
                ratio(o.cpu_us_per_call, p.cpu_us_per_call),
            );
        }
    }
    if !compared {
        out.push_str("(ours and python were not both measured, so there is nothing to compare)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(123_456_789.2), "123,456,789");
    }

    fn figures(calls_per_second: f64, cpu_us_per_call: f64) -> crate::expenses::ToolFigures {
        let completed = Completed {
            calls: 10,
            elapsed: std::time::Duration::from_secs(1),
            capped: false,
        };
        crate::expenses::ToolFigures {
            sequential: completed,
            sequential_per_second: calls_per_second,
            p50_us: 100,
            p99_us: 200,
            concurrent: completed,
            concurrent_per_second: calls_per_second,
            cpu_us_per_call,
            background_cores: 0.0,
        }
    }

    fn expenses_row(
        transport: Transport,
        peer: Peer,
        calls_per_second: f64,
    ) -> Row<ExpensesMeasurements> {
        Row {
            transport,
            peer,
            outcome: Outcome::Measured(Box::new(ExpensesMeasurements {
                add: figures(calls_per_second, 400.0),
                list: figures(calls_per_second / 2.0, 800.0),
                rows_listed: 1000,
            })),
        }
    }

    #[test]
    fn the_expenses_ratio_is_ours_over_python_per_transport_and_tool() {
        let rows = vec![
            expenses_row(Transport::Stdio, Peer::Ours, 4000.0),
            expenses_row(Transport::Stdio, Peer::Python, 1000.0),
            Row {
                transport: Transport::Http,
                peer: Peer::Python,
                outcome: Outcome::Skipped("no venv".into()),
            },
        ];
        let table = expenses_table(&rows, 8);
        assert!(
            table.contains("| stdio | add_expense | ours | 4,000 | 100 | 200 | 4,000 | 400.0 |"),
            "{table}"
        );
        assert!(
            table.contains("| http | list_expenses | python | skipped |"),
            "{table}"
        );
        assert!(table.contains("python/http: no venv"), "{table}");
        let ratios = expenses_ratios(&rows, 8);
        assert!(
            ratios.contains("| stdio | add_expense | 4.00× | 4.00× | 1.00× | 1.00× | 1.00× |"),
            "{ratios}"
        );
        assert!(
            !ratios.contains("| http |"),
            "http had no python row: {ratios}"
        );
    }

    #[test]
    fn ratios_need_both_sides() {
        assert_eq!(ratio(1.0, 4.0), "0.25×");
        assert_eq!(ratio(1.0, 0.0), "–");
        assert_eq!(ratio(1.3, 600.8), "0.0022×");
        assert_eq!(ratio(406.0, 100.0), "4.06×");
        assert_eq!(ratio(27_387.0, 100.0), "274×");
    }
}
