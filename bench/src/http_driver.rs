//! The Streamable HTTP driver: POSTs to `/mcp` over keep-alive HTTP/1.1 connections.
//!
//! The driver speaks hyper's connection-level client, so each connection is one TCP stream
//! that we own: the sequential phase uses one, and "32 in flight" is 32 connections with one
//! request outstanding on each. Every connection sets `TCP_NODELAY` on our side, so a peer's
//! latency reflects only what the peer does with its own socket.
//!
//! After `initialize` every request carries the `Mcp-Session-Id` the server issued (if any)
//! and `MCP-Protocol-Version`. Answers may come as `application/json` or as a
//! `text/event-stream` (the SDKs' default); both are read to the end and searched for the
//! answer to our id.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, task::JoinSet};

use crate::{
    phase::{Budget, Completed, duration_us},
    protocol::{self, Call, Incoming},
};

/// The MCP endpoint path every peer serves.
pub const MCP_PATH: &str = "/mcp";
const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// The largest answer body the driver reads.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How often a starting server's port is tried.
const CONNECT_POLL: Duration = Duration::from_millis(1);
/// The latency histograms' range: 1 µs to 60 s at 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 60_000_000;

/// Where the server is and the session it gave us.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    authority: HeaderValue,
    session: Option<HeaderValue>,
    answer_timeout: Duration,
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One HTTP answer, read to the end.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    session: Option<HeaderValue>,
    event_stream: bool,
    body: Bytes,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        let driver = tokio::spawn(async move {
            // Ends when the connection closes or this handle is aborted.
            let _ = connection.await;
        });
        Ok(Connection {
            addr,
            sender,
            driver,
        })
    }

    /// Open a new connection if the server closed this one while it was idle, as servers
    /// with a keep-alive timeout do (uvicorn and Node close idle connections after 5 s).
    /// Nothing was sent on a closed connection, so reopening it changes no answer.
    async fn reopen_if_closed(&mut self) -> anyhow::Result<()> {
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            *self = Connection::open(self.addr)
                .await
                .context("could not reopen a connection the server closed")?;
            self.sender.ready().await.context("the connection closed")?;
        }
        Ok(())
    }

    /// Connect to a server that is still starting: retry until `timeout`, giving up early if
    /// `still_running` says the server has exited.
    pub async fn open_when_listening(
        addr: SocketAddr,
        timeout: Duration,
        mut still_running: impl FnMut() -> bool,
    ) -> anyhow::Result<Connection> {
        let deadline = Instant::now() + timeout;
        loop {
            match Connection::open(addr).await {
                Ok(connection) => return Ok(connection),
                Err(error) if Instant::now() >= deadline => {
                    return Err(anyhow!(error)
                        .context(format!("nothing listened on {addr} within {timeout:?}")));
                }
                Err(_) if !still_running() => bail!("the server exited before listening on {addr}"),
                Err(_) => tokio::time::sleep(CONNECT_POLL).await,
            }
        }
    }

    async fn post(
        &mut self,
        target: &Target,
        body: Vec<u8>,
        in_session: bool,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::post(MCP_PATH)
            .header(header::HOST, target.authority.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, ACCEPT_BOTH);
        if in_session {
            request = request.header(PROTOCOL_VERSION_HEADER, protocol::PROTOCOL_VERSION);
            if let Some(session) = &target.session {
                request = request.header(SESSION_HEADER, session.clone());
            }
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let exchange = async {
            self.reopen_if_closed().await?;
            let response = self
                .sender
                .send_request(request)
                .await
                .context("the request failed")?;
            let status = response.status();
            let session = response.headers().get(SESSION_HEADER).cloned();
            let event_stream = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("text/event-stream"));
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|error| anyhow!("could not read the answer body: {error}"))?
                .to_bytes();
            anyhow::Ok(Reply {
                status,
                session,
                event_stream,
                body,
            })
        };
        tokio::time::timeout(target.answer_timeout, exchange)
            .await
            .map_err(|_| anyhow!("no complete answer within {:?}", target.answer_timeout))?
    }

    async fn call(
        &mut self,
        target: &Target,
        id: u64,
        body: Vec<u8>,
        check: protocol::Check,
    ) -> anyhow::Result<()> {
        let reply = self.post(target, body, true).await?;
        if reply.status != StatusCode::OK {
            bail!(
                "HTTP {} for id {id}: {}",
                reply.status,
                protocol::excerpt(&reply.body)
            );
        }
        find_answer(&reply, id, check)
    }
}

/// Search `reply` for the answer to `id` and check it.
fn find_answer(reply: &Reply, id: u64, check: protocol::Check) -> anyhow::Result<()> {
    let check_message = |message: &[u8]| -> anyhow::Result<bool> {
        match protocol::parse(message)? {
            Incoming::Answer { id: got, outcome } if got == id => check(outcome).map(|()| true),
            Incoming::Answer { id: got, .. } => {
                bail!("an answer to id {got} while waiting for {id}")
            }
            Incoming::Other => Ok(false),
        }
    };
    if !reply.event_stream {
        return if check_message(&reply.body)? {
            Ok(())
        } else {
            bail!(
                "the JSON body is not the answer to id {id}: {}",
                protocol::excerpt(&reply.body)
            )
        };
    }
    for data in sse_data(&reply.body) {
        if !data.is_empty() && check_message(&data)? {
            return Ok(());
        }
    }
    bail!(
        "the event stream has no answer to id {id}: {}",
        protocol::excerpt(&reply.body)
    )
}

/// The `data` of each event of a complete event stream (several `data:` lines joined by
/// newlines, as the SSE specification says).
fn sse_data(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for raw_line in stream.split(|byte| *byte == b'\n') {
        let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(buffer) => {
                    buffer.push(b'\n');
                    buffer.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    events.extend(data);
    events
}

impl Target {
    /// `initialize` on `connection`; the cold-start clock stops when this returns.
    pub async fn initialize(
        addr: SocketAddr,
        connection: &mut Connection,
        startup_timeout: Duration,
        answer_timeout: Duration,
    ) -> anyhow::Result<Target> {
        let authority = HeaderValue::from_str(&addr.to_string())?;
        let mut target = Target {
            addr,
            authority,
            session: None,
            answer_timeout: startup_timeout,
        };
        let mut body = Vec::new();
        protocol::write_initialize(&mut body, 0);
        let reply = connection
            .post(&target, body, false)
            .await
            .context("initialize")?;
        if reply.status != StatusCode::OK {
            bail!(
                "HTTP {} for initialize: {}",
                reply.status,
                protocol::excerpt(&reply.body)
            );
        }
        find_answer(&reply, 0, protocol::check_initialize_answer)?;
        target.session = reply.session;
        target.answer_timeout = answer_timeout;
        Ok(target)
    }

    /// `notifications/initialized`, which opens the session for calls.
    pub async fn confirm_initialized(&self, connection: &mut Connection) -> anyhow::Result<()> {
        let mut body = Vec::new();
        protocol::write_initialized(&mut body);
        let reply = connection
            .post(self, body, true)
            .await
            .context("notifications/initialized")?;
        if !reply.status.is_success() {
            bail!(
                "HTTP {} for notifications/initialized: {}",
                reply.status,
                protocol::excerpt(&reply.body)
            );
        }
        Ok(())
    }

    /// `calls` calls one after another on `connection`, timed into `histogram` (µs).
    /// Ids start at `first_id`.
    pub async fn sequential(
        &self,
        call: Call,
        connection: &mut Connection,
        first_id: u64,
        calls: u64,
        time_cap: Duration,
        mut histogram: Option<&mut Histogram<u64>>,
    ) -> anyhow::Result<Completed> {
        let started = Instant::now();
        let budget = Budget::calls(calls, time_cap);
        let mut done = 0;
        while budget.more(done, started) {
            let id = first_id + done;
            let mut body = Vec::with_capacity(256);
            (call.write)(&mut body, id);
            let sent = Instant::now();
            connection
                .call(self, id, body, call.check)
                .await
                .with_context(|| format!("sequential {} call {done}", call.tool))?;
            if let Some(histogram) = histogram.as_deref_mut() {
                histogram.saturating_record(duration_us(sent.elapsed()));
            }
            done += 1;
        }
        Ok(budget.completed(done, started.elapsed()))
    }

    /// Calls over `connections`, one outstanding per connection, for as long as `budget`
    /// allows. Ids start at `first_id`; the connections and the number of ids used are given
    /// back for the next phase.
    pub async fn concurrent(
        self: &Arc<Self>,
        call: Call,
        connections: Vec<Connection>,
        first_id: u64,
        budget: Budget,
    ) -> anyhow::Result<(Completed, Vec<Connection>, u64)> {
        let (completed, connections, used, _) = self
            .run_concurrent(call, connections, first_id, budget, false)
            .await?;
        Ok((completed, connections, used))
    }

    /// [`Target::concurrent`], with every call's latency (write to answer, µs) recorded.
    pub async fn concurrent_timed(
        self: &Arc<Self>,
        call: Call,
        connections: Vec<Connection>,
        first_id: u64,
        budget: Budget,
    ) -> anyhow::Result<(Completed, Vec<Connection>, u64, Histogram<u64>)> {
        let (completed, connections, used, histogram) = self
            .run_concurrent(call, connections, first_id, budget, true)
            .await?;
        let histogram = histogram.context("latencies were recorded")?;
        Ok((completed, connections, used, histogram))
    }

    async fn run_concurrent(
        self: &Arc<Self>,
        call: Call,
        connections: Vec<Connection>,
        first_id: u64,
        budget: Budget,
        record: bool,
    ) -> anyhow::Result<(Completed, Vec<Connection>, u64, Option<Histogram<u64>>)> {
        let started = Instant::now();
        let claimed = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for mut connection in connections {
            let target = Arc::clone(self);
            let claimed = Arc::clone(&claimed);
            let mut histogram = if record {
                Some(Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_US, 3)?)
            } else {
                None
            };
            tasks.spawn(async move {
                let mut done = 0u64;
                // Each turn claims one call; claiming stops within the budget's cap.
                loop {
                    let index = claimed.fetch_add(1, Ordering::Relaxed);
                    if !budget.more(index, started) {
                        break;
                    }
                    let id = first_id + index;
                    let mut body = Vec::with_capacity(256);
                    (call.write)(&mut body, id);
                    let sent = Instant::now();
                    connection
                        .call(&target, id, body, call.check)
                        .await
                        .with_context(|| format!("{} call id {id}", call.tool))?;
                    if let Some(histogram) = histogram.as_mut() {
                        histogram.saturating_record(duration_us(sent.elapsed()));
                    }
                    done += 1;
                }
                anyhow::Ok((done, connection, histogram))
            });
        }
        let mut done = 0;
        let mut connections = Vec::new();
        let mut merged: Option<Histogram<u64>> = None;
        while let Some(joined) = tasks.join_next().await {
            let (count, connection, histogram) =
                joined.map_err(|error| anyhow!("a driver task failed: {error}"))??;
            done += count;
            connections.push(connection);
            if let Some(histogram) = histogram {
                match merged.as_mut() {
                    Some(merged) => merged.add(&histogram)?,
                    None => merged = Some(histogram),
                }
            }
        }
        let completed = budget.completed(done, started.elapsed());
        Ok((
            completed,
            connections,
            claimed.load(Ordering::Relaxed),
            merged,
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_is_joined_and_priming_events_are_empty() {
        let stream = b"id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {\"a\":\ndata: 1}\r\n\r\ndata: last";
        let events = sse_data(stream);
        assert_eq!(
            events,
            vec![b"".to_vec(), b"{\"a\":\n1}".to_vec(), b"last".to_vec()]
        );
    }

    #[test]
    fn the_answer_is_found_in_an_event_stream() {
        let answer = format!(
            r#"{{"jsonrpc":"2.0","id":5,"result":{{"content":[{{"type":"text","text":"{}"}}]}}}}"#,
            protocol::ECHO_TEXT
        );
        let body = format!(
            "id: p\nretry: 3000\ndata: \n\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}}\n\nevent: message\ndata: {answer}\n\n"
        );
        let reply = Reply {
            status: StatusCode::OK,
            session: None,
            event_stream: true,
            body: Bytes::from(body),
        };
        find_answer(&reply, 5, protocol::check_echo_answer).expect("the answer is in the stream");
        assert!(find_answer(&reply, 6, protocol::check_echo_answer).is_err());
    }
}
