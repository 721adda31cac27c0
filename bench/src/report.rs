//! The results as Markdown: the table, ours against each peer, and the targets.

use std::fmt::Write as _;

use crate::{
    peers::{Peer, Transport},
    workload::Measurements,
};

/// What happened to one server on one transport.
#[derive(Debug, Clone)]
pub enum Outcome {
    Measured(Box<Measurements>),
    /// Not installed or not built; the reason says which.
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub transport: Transport,
    pub peer: Peer,
    pub outcome: Outcome,
}

fn measured(rows: &[Row], transport: Transport, peer: Peer) -> Option<&Measurements> {
    rows.iter().find_map(|row| match &row.outcome {
        Outcome::Measured(m) if row.transport == transport && row.peer == peer => Some(&**m),
        _ => None,
    })
}

/// `12345.6` as `12,346`.
fn thousands(value: f64) -> String {
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
                let seq_mark = if m.sequential.capped { CAPPED } else { "" };
                let con_mark = if m.concurrent.capped { CAPPED } else { "" };
                if m.sequential.capped || m.concurrent.capped {
                    notes.push(format!(
                        "{CAPPED} {}/{}: the time cap stopped a phase: {} sequential calls in {:.1} s, {} calls at 32 in flight in {:.1} s.",
                        row.transport,
                        row.peer.label(),
                        m.sequential.calls,
                        m.sequential.elapsed.as_secs_f64(),
                        m.concurrent.calls,
                        m.concurrent.elapsed.as_secs_f64(),
                    ));
                }
                let busy_mark = if m.background_cores >= BUSY_CORES {
                    notes.push(format!(
                        "{BUSY} {}/{}: other processes used {:.2} cores on average while it was measured.",
                        row.transport,
                        row.peer.label(),
                        m.background_cores
                    ));
                    BUSY
                } else {
                    ""
                };
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
            Outcome::Skipped(reason) => {
                let _ = writeln!(out, "| {name} | skipped | | | | | | | |");
                notes.push(format!("{}/{}: {reason}", row.peer.label(), row.transport));
            }
            Outcome::Failed(error) => {
                let _ = writeln!(out, "| {name} | FAILED | | | | | | | |");
                notes.push(format!(
                    "{}/{} failed: {error}",
                    row.peer.label(),
                    row.transport
                ));
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
fn ratio(ours: f64, theirs: f64) -> String {
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

    #[test]
    fn ratios_need_both_sides() {
        assert_eq!(ratio(1.0, 4.0), "0.25×");
        assert_eq!(ratio(1.0, 0.0), "–");
        assert_eq!(ratio(1.3, 600.8), "0.0022×");
        assert_eq!(ratio(406.0, 100.0), "4.06×");
        assert_eq!(ratio(27_387.0, 100.0), "274×");
    }
}
