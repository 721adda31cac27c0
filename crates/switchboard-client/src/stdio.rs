//! The stdio transport: a child process speaking newline-delimited JSON-RPC.
//!
//! We do not use rmcp's `TokioChildProcess` because it silently skips lines that are not
//! JSON-RPC, which turns a server that prints a banner (or garbage) to stdout into an unexplained
//! hang. This transport records such lines, keeps the tail of the child's stderr and its exit
//! status, and puts all of that into the error the user sees.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use process_wrap::tokio::{ChildWrapper, CommandWrap, ProcessGroup};
use rmcp::{
    service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{ChildStdin, ChildStdout},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::{model::Direction, tap::WireTap};

/// Longest line we accept from a stdio server. A longer line is reported and skipped.
pub const MAX_STDIO_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Outgoing messages queued for the writer task before `send` waits.
const OUTGOING_QUEUE: usize = 64;
/// Lines of the child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 12;
/// Longest stderr or garbage line kept for error messages, in characters.
const DIAGNOSTIC_LINE_CHARS: usize = 300;
/// How long to wait for the exit status of a child whose stdout closed.
const EXIT_STATUS_WAIT: Duration = Duration::from_millis(500);
/// How long a child may take to exit after its stdin is closed, before it is killed.
const GRACEFUL_EXIT_WAIT: Duration = Duration::from_secs(2);

/// What we observed about a child process, for error messages.
#[derive(Debug, Default)]
pub(crate) struct ChildDiagnostics {
    state: Mutex<DiagnosticsState>,
}

#[derive(Debug, Default)]
struct DiagnosticsState {
    stderr_tail: VecDeque<String>,
    garbage_lines: u64,
    first_garbage: Option<String>,
    exit_status: Option<ExitStatus>,
}

fn clip(line: &str) -> String {
    let line = line.trim_end();
    match line.char_indices().nth(DIAGNOSTIC_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

impl ChildDiagnostics {
    fn lock(&self) -> std::sync::MutexGuard<'_, DiagnosticsState> {
        // A poisoned lock only means another thread panicked while recording a diagnostic;
        // the data is still the best we have.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_stderr(&self, line: &str) {
        let mut state = self.lock();
        if state.stderr_tail.len() == STDERR_TAIL_LINES {
            state.stderr_tail.pop_front();
        }
        state.stderr_tail.push_back(clip(line));
    }

    fn record_garbage(&self, line: &str) {
        let mut state = self.lock();
        state.garbage_lines += 1;
        if state.first_garbage.is_none() {
            state.first_garbage = Some(clip(line));
        }
    }

    fn record_exit(&self, status: ExitStatus) {
        self.lock().exit_status = Some(status);
    }

    /// A summary such as `; it exited with exit status: 1; last stderr: "boom"`, or "".
    pub(crate) fn summary(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        if let Some(status) = state.exit_status {
            out.push_str(&format!("; the process exited ({status})"));
        }
        if state.garbage_lines > 0 {
            let first = state.first_garbage.as_deref().unwrap_or_default();
            out.push_str(&format!(
                "; it wrote {} line{} to stdout that {} not JSON-RPC (stdout is reserved for the protocol), the first: {first:?}",
                state.garbage_lines,
                if state.garbage_lines == 1 { "" } else { "s" },
                if state.garbage_lines == 1 { "is" } else { "are" },
            ));
        }
        if !state.stderr_tail.is_empty() {
            let tail: Vec<&str> = state.stderr_tail.iter().map(String::as_str).collect();
            out.push_str(&format!("; last stderr: {}", tail.join(" | ")));
        }
        out
    }
}

/// Where a stdio server's stderr goes, besides the diagnostics tail.
#[derive(Debug, Clone, Default)]
pub struct StderrTarget {
    /// Append each line to this file (a per-server log).
    pub log_file: Option<PathBuf>,
    /// Show each line to the wire tap (used by `--verbose`).
    pub tap: Option<Arc<dyn WireTap>>,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct StdioCommand<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: Vec<(String, String)>,
    pub cwd: Option<&'a Path>,
}

pub(crate) struct ChildTransport {
    server: Arc<str>,
    child: Box<dyn ChildWrapper>,
    lines: FramedRead<ChildStdout, LinesCodec>,
    outgoing: Option<mpsc::Sender<String>>,
    writer: JoinHandle<()>,
    stderr_reader: Option<JoinHandle<()>>,
    diagnostics: Arc<ChildDiagnostics>,
    tap: Option<Arc<dyn WireTap>>,
}

impl ChildTransport {
    pub(crate) fn spawn(
        server: Arc<str>,
        command: StdioCommand<'_>,
        stderr: StderrTarget,
        tap: Option<Arc<dyn WireTap>>,
    ) -> std::io::Result<(Self, Arc<ChildDiagnostics>)> {
        let mut cmd = tokio::process::Command::new(command.program);
        cmd.args(command.args)
            .envs(command.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = command.cwd {
            cmd.current_dir(cwd);
        }
        // A process group lets us stop the whole tree: `npx` and `uvx` start the real server
        // as a grandchild, which killing the direct child alone would leave running.
        let mut wrapped = CommandWrap::from(cmd);
        wrapped.wrap(ProcessGroup::leader());
        let mut child = wrapped.spawn()?;

        let missing = || std::io::Error::other("child stdio pipe was not created");
        let stdin = child.stdin().take().ok_or_else(missing)?;
        let stdout = child.stdout().take().ok_or_else(missing)?;
        let child_stderr = child.stderr().take().ok_or_else(missing)?;

        let diagnostics = Arc::new(ChildDiagnostics::default());
        let stderr_reader = tokio::spawn(pump_stderr(
            server.clone(),
            child_stderr,
            stderr,
            diagnostics.clone(),
        ));
        let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
        let writer = tokio::spawn(write_lines(stdin, queue));

        Ok((
            ChildTransport {
                server,
                child,
                lines: FramedRead::new(
                    stdout,
                    LinesCodec::new_with_max_length(MAX_STDIO_LINE_BYTES),
                ),
                outgoing: Some(outgoing),
                writer,
                stderr_reader: Some(stderr_reader),
                diagnostics: diagnostics.clone(),
                tap,
            },
            diagnostics,
        ))
    }

    async fn note_exit(&mut self) {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => tokio::time::timeout(EXIT_STATUS_WAIT, self.child.wait())
                .await
                .ok()
                .and_then(Result::ok),
        };
        if let Some(status) = status {
            self.diagnostics.record_exit(status);
        }
        // Let the stderr pump drain what the child wrote before dying, so the error message
        // can quote it.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(EXIT_STATUS_WAIT, reader).await;
        }
    }
}

/// Writes queued lines to the child's stdin, batching whatever is already queued into one
/// write so that pipelined requests do not cost one syscall each.
async fn write_lines(stdin: ChildStdin, mut queue: mpsc::Receiver<String>) {
    let mut stdin = tokio::io::BufWriter::new(stdin);
    while let Some(line) = queue.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() {
            return;
        }
        while let Ok(more) = queue.try_recv() {
            if stdin.write_all(more.as_bytes()).await.is_err() {
                return;
            }
        }
        if stdin.flush().await.is_err() {
            return;
        }
    }
    // The queue closed: we are shutting down. Closing stdin tells the server to exit.
    let _ = stdin.shutdown().await;
}

async fn pump_stderr(
    server: Arc<str>,
    stderr: tokio::process::ChildStderr,
    target: StderrTarget,
    diagnostics: Arc<ChildDiagnostics>,
) {
    let mut log = match &target.log_file {
        Some(path) => open_log(path).await,
        None => None,
    };
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        diagnostics.record_stderr(&line);
        if let Some(tap) = &target.tap {
            tap.stderr(&server, &line);
        }
        if let Some(file) = log.as_mut() {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
    }
    if let Some(file) = log.as_mut() {
        let _ = file.flush().await;
    }
}

async fn open_log(path: &Path) -> Option<tokio::fs::File> {
    if let Some(dir) = path.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
    {
        Ok(file) => Some(file),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot open the server log file");
            None
        }
    }
}

impl Transport<RoleClient> for ChildTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let line = serde_json::to_string(&item);
        if let (Ok(json), Some(tap)) = (&line, &self.tap) {
            tap.message(&self.server, Direction::Outgoing, json);
        }
        let outgoing = self.outgoing.clone();
        async move {
            let mut line = line.map_err(std::io::Error::other)?;
            line.push('\n');
            let outgoing = outgoing.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotConnected, "transport closed")
            })?;
            outgoing.send(line).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "server stdin is closed")
            })
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.lines.next().await {
                Some(Ok(line)) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&line) {
                        Ok(message) => {
                            if let Some(tap) = &self.tap {
                                tap.message(&self.server, Direction::Incoming, &line);
                            }
                            return Some(message);
                        }
                        Err(error) => {
                            tracing::debug!(server = %self.server, %error, "skipping a stdout line that is not JSON-RPC");
                            self.diagnostics.record_garbage(&line);
                            if let Some(tap) = &self.tap {
                                tap.garbage(&self.server, &line);
                            }
                        }
                    }
                }
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    let note = format!("<a line longer than {MAX_STDIO_LINE_BYTES} bytes>");
                    self.diagnostics.record_garbage(&note);
                    if let Some(tap) = &self.tap {
                        tap.garbage(&self.server, &note);
                    }
                }
                Some(Err(LinesCodecError::Io(error))) => {
                    tracing::debug!(server = %self.server, %error, "reading server stdout failed");
                    self.note_exit().await;
                    return None;
                }
                None => {
                    self.note_exit().await;
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Closing the queue makes the writer close stdin, the polite way to ask a stdio
        // server to exit; a server that ignores it is killed.
        self.outgoing.take();
        let exited = tokio::time::timeout(GRACEFUL_EXIT_WAIT, self.child.wait())
            .await
            .is_ok();
        if !exited {
            self.child.start_kill()?;
        }
        Ok(())
    }
}

impl Drop for ChildTransport {
    fn drop(&mut self) {
        // Never leave a server running behind us, whatever path dropped the connection.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.start_kill();
        }
        self.writer.abort();
        if let Some(reader) = self.stderr_reader.take() {
            reader.abort();
        }
    }
}
