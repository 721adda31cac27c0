//! The stdio driver: newline-delimited JSON-RPC over a server's stdin and stdout.
//!
//! Requests are written in batches and answers are matched by id, so with N in flight the
//! driver keeps N requests outstanding and tops the window up after each read. Sequential calls
//! are timed one by one from the write to the matching answer.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use hdrhistogram::Histogram;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    process::{ChildStdin, ChildStdout},
};

use crate::{
    phase::{Budget, Completed, duration_us},
    protocol::{self, Call, Incoming},
};

/// Read buffer for a server's stdout.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// A line longer than this is a broken server, not an echo answer.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Most messages that are not answers (logs, progress) tolerated before one answer.
const MAX_OTHER_MESSAGES_PER_ANSWER: u32 = 1000;

/// A legacy session with one server over its stdio.
#[derive(Debug)]
pub struct StdioSession {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: Vec<u8>,
    out: Vec<u8>,
    /// How long one answer may take before the server is declared stuck.
    answer_timeout: Duration,
}

impl StdioSession {
    pub fn new(stdin: ChildStdin, stdout: ChildStdout, answer_timeout: Duration) -> StdioSession {
        StdioSession {
            stdin,
            stdout: BufReader::with_capacity(READ_BUFFER_BYTES, stdout),
            next_id: 0,
            line: Vec::with_capacity(1024),
            out: Vec::with_capacity(64 * 1024),
            answer_timeout,
        }
    }

    async fn flush_out(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            self.stdin
                .write_all(&self.out)
                .await
                .context("could not write to the server's stdin")?;
            self.out.clear();
        }
        Ok(())
    }

    /// Read the next line into `self.line` (without its newline).
    async fn read_line(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.line.clear();
        let read = tokio::time::timeout(timeout, self.stdout.read_until(b'\n', &mut self.line))
            .await
            .map_err(|_| anyhow!("no answer from the server within {timeout:?}"))?
            .context("could not read the server's stdout")?;
        if read == 0 {
            bail!("the server closed its stdout");
        }
        if self.line.len() > MAX_LINE_BYTES {
            bail!("the server wrote a line of {} bytes", self.line.len());
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        Ok(())
    }

    /// Read until the answer to `id`, skipping notifications, and check it with `check`.
    async fn answer_to(
        &mut self,
        id: u64,
        timeout: Duration,
        check: protocol::Check,
    ) -> anyhow::Result<()> {
        for _ in 0..MAX_OTHER_MESSAGES_PER_ANSWER {
            self.read_line(timeout).await?;
            match protocol::parse(&self.line)? {
                Incoming::Answer { id: got, outcome } if got == id => return check(outcome),
                Incoming::Answer { id: got, .. } => {
                    bail!("an answer to id {got} while waiting for {id}")
                }
                Incoming::Other => continue,
            }
        }
        bail!("{MAX_OTHER_MESSAGES_PER_ANSWER} messages without the answer to id {id}")
    }

    /// `initialize`: returns when its result has arrived (the cold-start clock stops there).
    pub async fn initialize(&mut self, startup_timeout: Duration) -> anyhow::Result<()> {
        let id = self.take_id();
        protocol::write_initialize(&mut self.out, id);
        self.out.push(b'\n');
        self.flush_out().await?;
        self.answer_to(id, startup_timeout, protocol::check_initialize_answer)
            .await
    }

    /// `notifications/initialized`, which opens the session for calls.
    pub async fn confirm_initialized(&mut self) -> anyhow::Result<()> {
        protocol::write_initialized(&mut self.out);
        self.out.push(b'\n');
        self.flush_out().await
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// `calls` calls one after another, each timed into `histogram` (µs) when given.
    pub async fn sequential(
        &mut self,
        call: Call,
        calls: u64,
        time_cap: Duration,
        mut histogram: Option<&mut Histogram<u64>>,
    ) -> anyhow::Result<Completed> {
        let started = Instant::now();
        let budget = Budget::calls(calls, time_cap);
        let mut done = 0;
        while budget.more(done, started) {
            let id = self.take_id();
            let sent = Instant::now();
            (call.write)(&mut self.out, id);
            self.out.push(b'\n');
            self.flush_out().await?;
            self.answer_to(id, self.answer_timeout, call.check)
                .await
                .with_context(|| format!("sequential {} call {done}", call.tool))?;
            if let Some(histogram) = histogram.as_deref_mut() {
                histogram.saturating_record(duration_us(sent.elapsed()));
            }
            done += 1;
        }
        Ok(budget.completed(done, started.elapsed()))
    }

    /// Calls with `in_flight` outstanding at all times (until the last ones), for as long as
    /// `budget` allows.
    pub async fn pipelined(
        &mut self,
        call: Call,
        budget: Budget,
        in_flight: u64,
    ) -> anyhow::Result<Completed> {
        let started = Instant::now();
        let mut outstanding: HashSet<u64> =
            HashSet::with_capacity(usize::try_from(in_flight).unwrap_or(64));
        let mut sending = true;
        let mut sent = 0u64;
        let mut done = 0u64;
        // Each turn writes at least one request or reads at least one line, sending stops
        // within the budget's cap, and reads are bounded by the answer timeout.
        loop {
            while sending && (outstanding.len() as u64) < in_flight {
                if !budget.more(sent, started) {
                    sending = false;
                    break;
                }
                let id = self.take_id();
                (call.write)(&mut self.out, id);
                self.out.push(b'\n');
                outstanding.insert(id);
                sent += 1;
            }
            self.flush_out().await?;
            if outstanding.is_empty() {
                break;
            }
            // One blocking read, then every complete line already buffered.
            let mut first = true;
            while first || self.stdout.buffer().contains(&b'\n') {
                first = false;
                self.read_line(self.answer_timeout).await?;
                match protocol::parse(&self.line)? {
                    Incoming::Answer { id, outcome } => {
                        if !outstanding.remove(&id) {
                            bail!("an answer to id {id}, which is not outstanding");
                        }
                        (call.check)(outcome)
                            .with_context(|| format!("{} call id {id}", call.tool))?;
                        done += 1;
                    }
                    Incoming::Other => {}
                }
            }
        }
        Ok(budget.completed(done, started.elapsed()))
    }
}
