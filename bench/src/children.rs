//! Server processes that never outlive the benchmark.
//!
//! Each server runs in its own process group, so killing the group also kills anything it
//! started. A [`ServerProcess`] kills its group when it is stopped or dropped (which covers
//! errors and panics, as they unwind), and every live group is listed in a registry that the
//! Ctrl-C / SIGTERM handler empties with [`kill_all`] before the benchmark exits.

use std::{
    collections::VecDeque,
    ffi::OsStr,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context as _;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::{
    io::AsyncReadExt as _,
    process::{Child, ChildStdin, ChildStdout, Command},
};

/// How much of a server's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;
/// How long to wait for a killed server to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(2);

/// Process groups of the servers alive now.
static LIVE_GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live_groups() -> MutexGuard<'static, Vec<u32>> {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn kill_group(group: u32) {
    if let Some(pid) = i32::try_from(group).ok().and_then(Pid::from_raw) {
        // ESRCH (already gone) is the expected outcome after a clean stop.
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

/// Kill every server still running. For the signal handler; safe to call more than once.
pub fn kill_all() {
    let groups: Vec<u32> = live_groups().drain(..).collect();
    for group in groups {
        kill_group(group);
    }
}

/// The last bytes a server wrote to stderr.
#[derive(Debug, Default)]
struct Tail(VecDeque<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend(bytes);
        let excess = self.0.len().saturating_sub(STDERR_TAIL_BYTES);
        self.0.drain(..excess);
    }
}

/// A running server. Its process group is killed when this is stopped or dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pid: u32,
    stderr: Arc<Mutex<Tail>>,
    killed: bool,
}

/// The pipes of a freshly started server.
#[derive(Debug)]
pub struct Pipes {
    pub stdin: ChildStdin,
    pub stdout: Option<ChildStdout>,
}

impl ServerProcess {
    /// Start `program` in a new process group with piped stdin and stderr. Stdout is piped
    /// when `stdout_is_protocol` (stdio servers) and discarded otherwise; HTTP servers keep a
    /// stdin pipe too, so those that watch it exit if we die without running any cleanup.
    pub fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        stdout_is_protocol: bool,
    ) -> anyhow::Result<(ServerProcess, Pipes)> {
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(envs.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))))
            .stdin(Stdio::piped())
            .stdout(if stdout_is_protocol {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {}", program.display()))?;
        let pid = child.id().context("the server exited at once")?;
        live_groups().push(pid);
        let stderr = Arc::new(Mutex::new(Tail::default()));
        if let Some(mut pipe) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                // Ends at EOF, which comes when the server exits.
                while let Ok(read @ 1..) = pipe.read(&mut buffer).await {
                    tail.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(&buffer[..read]);
                }
            });
        }
        let pipes = Pipes {
            stdin: child.stdin.take().context("stdin is piped")?,
            stdout: child.stdout.take(),
        };
        Ok((
            ServerProcess {
                child,
                pid,
                stderr,
                killed: false,
            },
            pipes,
        ))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The end of what the server wrote to stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let bytes: Vec<u8> = tail.0.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    /// Whether the server has exited, and how.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Describe an error of this server, with its exit status and stderr.
    pub fn explain(&mut self, error: anyhow::Error) -> anyhow::Error {
        let status = self.exit_status();
        let tail = self.stderr_tail();
        let mut error = error;
        if let Some(status) = status {
            error = error.context(format!("the server exited ({status})"));
        }
        if !tail.is_empty() {
            error = error.context(format!("server stderr ends with:\n{tail}"));
        }
        error
    }

    /// Kill the server's group and wait (bounded) until it is reaped, so the next server does
    /// not start while this one is still exiting.
    pub async fn stop(mut self) {
        self.kill();
        let _ = tokio::time::timeout(REAP_TIMEOUT, self.child.wait()).await;
    }

    fn kill(&mut self) {
        if !self.killed {
            self.killed = true;
            kill_group(self.pid);
            live_groups().retain(|group| *group != self.pid);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a short-lived command printed, and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Run `command` to its end in its own process group (registered like a server's, so Ctrl-C
/// kills it and anything it started), with stdin closed and stdout and stderr captured. The
/// group is killed if it has not exited within `timeout`, or when this future is dropped.
pub async fn run_to_end(mut command: Command, timeout: Duration) -> anyhow::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().context("could not start the command")?;
    let pid = child.id().context("the command exited at once")?;
    live_groups().push(pid);
    /// Kills the group when the run ends, however it ends (a launcher's children included).
    struct GroupGuard(u32);
    impl Drop for GroupGuard {
        fn drop(&mut self) {
            kill_group(self.0);
            live_groups().retain(|group| *group != self.0);
        }
    }
    let _guard = GroupGuard(pid);
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("the command did not finish within {timeout:?}"))?
        .context("could not wait for the command")?;
    Ok(Finished {
        status: output.status,
        stdout: output.stdout,
        stderr: output.stderr,
    })
}
