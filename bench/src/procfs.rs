//! Server CPU time and memory, read from `/proc`.
//!
//! A server is measured as a process tree: the process we started and all its descendants
//! (a launcher may start the real server as a child). CPU time is `utime + stime` from
//! `/proc/<pid>/stat` of every process in the tree, plus the root's `cutime + cstime` (children
//! that exited and were waited for). Kernel accounting folds the time of exited threads into
//! the process, so threads that come and go (tokio's blocking pool) are not lost. Memory is
//! the sum of `VmRSS` from `/proc/<pid>/status`.

use std::{collections::HashMap, fs, io, time::Instant};

/// Clock ticks per second, the unit of the CPU fields in `/proc/<pid>/stat`.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// CPU time used so far by this process (the driver), all threads, in clock ticks.
pub fn own_cpu_ticks() -> u64 {
    read_stat(std::process::id()).map_or(0, |stat| stat.own_ticks)
}

/// Busy CPU time of the whole machine so far, in clock ticks: every state of the first line
/// of `/proc/stat` but idle and iowait. Steal (time the hypervisor gave to someone else)
/// counts as busy: it is time the benchmark did not get.
pub fn machine_busy_ticks() -> u64 {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| parse_machine_busy(&text))
        .unwrap_or(0)
}

fn parse_machine_busy(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = fields.try_into().ok()?;
    Some(user + nice + system + irq + softirq + steal)
}

/// The processes of one server: the root first, then its descendants.
#[derive(Debug, Clone)]
pub struct ProcessTree {
    pids: Vec<u32>,
}

/// The fields of `/proc/<pid>/stat` the benchmark reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    parent: u32,
    own_ticks: u64,
    waited_children_ticks: u64,
}

/// Parse `/proc/<pid>/stat`. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    // After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    let fields: Vec<&str> = after_name.split_ascii_whitespace().take(15).collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    Some(Stat {
        parent: u32::try_from(field(4)?).ok()?,
        own_ticks: field(14)? + field(15)?,
        // cutime and cstime are signed in the kernel's format; they are never negative here.
        waited_children_ticks: field(16)? + field(17)?,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

impl ProcessTree {
    /// The tree under `root` as it is now (one scan of `/proc`). Our peers start no processes
    /// while they serve, so one scan after the handshake holds for the whole run.
    pub fn of(root: u32) -> io::Result<ProcessTree> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for entry in fs::read_dir("/proc")? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(stat) = read_stat(pid) {
                children.entry(stat.parent).or_default().push(pid);
            }
        }
        let mut pids = vec![root];
        let mut next = 0;
        // The tree is finite and each pid has one parent, so this visits each pid once.
        while next < pids.len() {
            if let Some(kids) = children.get(&pids[next]) {
                pids.extend(kids.iter().copied().filter(|kid| *kid != root));
            }
            next += 1;
        }
        Ok(ProcessTree { pids })
    }

    /// CPU time used so far by the tree, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let mut total = 0;
        for (index, pid) in self.pids.iter().enumerate() {
            if let Some(stat) = read_stat(*pid) {
                total += stat.own_ticks;
                if index == 0 {
                    total += stat.waited_children_ticks;
                }
            }
        }
        total
    }

    /// Resident memory of the tree now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| parse_rss_kib(&status))
            .sum()
    }

    pub fn pids(&self) -> &[u32] {
        &self.pids
    }
}

/// CPU time of the machine, a server and the driver at one moment, to tell over an interval
/// how much the server used and how busy other processes kept the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    at: Instant,
    machine_busy: u64,
    server: u64,
    driver: u64,
}

impl CpuSnapshot {
    pub fn take(server: &ProcessTree) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            machine_busy: machine_busy_ticks(),
            server: server.cpu_ticks(),
            driver: own_cpu_ticks(),
        }
    }

    /// The server's CPU seconds between `earlier` and this snapshot.
    pub fn server_seconds_since(&self, earlier: &CpuSnapshot) -> f64 {
        self.server.saturating_sub(earlier.server) as f64 / ticks_per_second() as f64
    }

    /// The driver's (this process's) CPU seconds between `earlier` and this snapshot.
    pub fn driver_seconds_since(&self, earlier: &CpuSnapshot) -> f64 {
        self.driver.saturating_sub(earlier.driver) as f64 / ticks_per_second() as f64
    }

    /// Cores used on average by everything but the server and the driver since `earlier`.
    pub fn background_cores_since(&self, earlier: &CpuSnapshot) -> f64 {
        let background = self
            .machine_busy
            .saturating_sub(earlier.machine_busy)
            .saturating_sub(self.server.saturating_sub(earlier.server))
            .saturating_sub(self.driver.saturating_sub(earlier.driver));
        let elapsed = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        background as f64 / ticks_per_second() as f64 / elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        // A name with spaces and a parenthesis must not shift the fields.
        let text = "4242 (we ird) name) S 17 4242 4242 0 -1 4194560 500 0 0 0 123 45 6 7 20 0 3 0 100 1000 200";
        let stat = parse_stat(text).expect("parses");
        assert_eq!(stat.parent, 17);
        assert_eq!(stat.own_ticks, 123 + 45);
        assert_eq!(stat.waited_children_ticks, 6 + 7);
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let text = "cpu  100 2 30 5000 70 4 5 6 0 0\ncpu0 50 1 15 2500 35 2 2 3 0 0\n";
        assert_eq!(parse_machine_busy(text), Some(100 + 2 + 30 + 4 + 5 + 6));
    }

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(parse_rss_kib(status), Some(5120));
    }

    #[test]
    fn our_own_process_is_measurable() {
        let tree = ProcessTree::of(std::process::id()).expect("/proc is readable");
        assert_eq!(tree.pids()[0], std::process::id());
        assert!(tree.rss_kib() > 0, "a running process has resident memory");
        assert!(ticks_per_second() > 0);
    }
}
