//! Serving over stdio: newline-delimited JSON-RPC on stdin and stdout.
//!
//! The loop reads whatever stdin has, handles every complete line, and writes all the answers
//! with one write. Pipes and sockets are read and written without blocking, on the runtime's
//! reactor, instead of through tokio's blocking pool (which costs a thread hand-off per read
//! and per write: see `shared/notes/rmcp-per-call-cost.md`). Stdout belongs to the protocol;
//! nothing else may write to it.

use std::{
    io,
    os::{fd::AsFd, unix::fs::FileTypeExt},
    pin::Pin,
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    task::JoinSet,
};

use crate::{
    announce::{next_change, next_update, write_updates},
    context::OUTBOUND_QUEUE,
    server::{MAX_MESSAGE_BYTES, Server, Session},
    wire::{self, ErrorObject, code},
};

/// How long handlers still running at end of input get to finish and be answered.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;

type Reader = Pin<Box<dyn AsyncRead + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// Stdin as a non-blocking reader when it is a pipe or a socket, else tokio's stdin.
fn stdin_reader() -> io::Result<Reader> {
    let fd = io::stdin().as_fd().try_clone_to_owned()?;
    let kind = std::fs::File::from(fd.try_clone()?).metadata()?.file_type();
    if kind.is_fifo() {
        return Ok(Box::pin(tokio::net::unix::pipe::Receiver::from_owned_fd(
            fd,
        )?));
    }
    if kind.is_socket() {
        let socket = std::os::unix::net::UnixStream::from(fd);
        socket.set_nonblocking(true)?;
        return Ok(Box::pin(tokio::net::UnixStream::from_std(socket)?));
    }
    Ok(Box::pin(tokio::io::stdin()))
}

/// Stdout as a non-blocking writer when it is a pipe or a socket, else tokio's stdout.
fn stdout_writer() -> io::Result<Writer> {
    let fd = io::stdout().as_fd().try_clone_to_owned()?;
    let kind = std::fs::File::from(fd.try_clone()?).metadata()?.file_type();
    if kind.is_fifo() {
        return Ok(Box::pin(tokio::net::unix::pipe::Sender::from_owned_fd(fd)?));
    }
    if kind.is_socket() {
        let socket = std::os::unix::net::UnixStream::from(fd);
        socket.set_nonblocking(true)?;
        return Ok(Box::pin(tokio::net::UnixStream::from_std(socket)?));
    }
    Ok(Box::pin(tokio::io::stdout()))
}

/// Serve `server` on this process's stdin and stdout until stdin closes.
pub async fn serve_stdio(server: Server) -> io::Result<()> {
    serve(server, stdin_reader()?, stdout_writer()?).await
}

/// Serve `server` on any byte stream pair (tests use an in-memory duplex).
pub async fn serve<R, W>(server: Server, reader: R, writer: W) -> io::Result<()>
where
    R: AsyncRead + Send,
    W: AsyncWrite + Send,
{
    serve_session(server, reader, writer, None).await
}

/// [`serve`] one session whose every request comes from `caller` (a front that bridges a
/// connection, such as a WebSocket, to newline-delimited JSON knows who is on it).
pub async fn serve_session<R, W>(
    server: Server,
    reader: R,
    writer: W,
    caller: Option<std::sync::Arc<crate::context::Caller>>,
) -> io::Result<()>
where
    R: AsyncRead + Send,
    W: AsyncWrite + Send,
{
    let mut reader = Box::pin(reader);
    let mut writer = Box::pin(writer);
    let (outbound, mut later) = mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
    let mut session = Session::new(Some(outbound.clone()));
    session.set_caller(caller);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Bytes of an oversized line still to be skipped, up to its newline.
    let mut discarding = false;
    // A server with a catalogue announces list changes; a static one never has any.
    let mut changes = server.list_changes();
    // A server that takes subscriptions announces updates of the resources subscribed to.
    let mut updates = server.resource_updates();

    loop {
        tokio::select! {
            biased;
            Some(bytes) = later.recv() => {
                out.extend_from_slice(&bytes);
                while let Ok(more) = later.try_recv() {
                    out.extend_from_slice(&more);
                }
            }
            read = reader.read_buf(&mut input) => {
                if read? == 0 {
                    break;
                }
                let mut start = 0;
                while let Some(offset) = input[start..].iter().position(|&b| b == b'\n') {
                    let end = start + offset;
                    let line = trim(&input[start..end]);
                    if discarding {
                        discarding = false;
                    } else if !line.is_empty()
                        && let Some(pending) = handle_in_order(&server, &mut session, line, &mut out, &mut later)
                    {
                        let outbound = outbound.clone();
                        tasks.spawn(async move {
                            if let Some(bytes) = pending.await {
                                let _ = outbound.send(bytes).await;
                            }
                        });
                    }
                    start = end + 1;
                }
                input.drain(..start);
                if input.len() > MAX_MESSAGE_BYTES {
                    if !discarding {
                        wire::write_error(&mut out, None, &ErrorObject::new(code::INVALID_REQUEST, format!("a message is larger than {MAX_MESSAGE_BYTES} bytes; it was skipped")));
                    }
                    discarding = true;
                    input.clear();
                }
                if input.capacity() - input.len() < READ_CHUNK / 4 {
                    input.reserve(READ_CHUNK);
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            changed = next_change(&mut changes), if changes.is_some() => {
                // A legacy session hears list changes unasked; a 2026-07-28 client only on
                // the subscriptions/listen stream it opened (which the dispatcher serves).
                if session.legacy_version().is_some() {
                    for kind in changed {
                        wire::write_notification(&mut out, kind.notification(), &serde_json::json!({}));
                    }
                }
            }
            updated = next_update(&mut updates), if updates.is_some() => {
                write_updates(&session, updated, &mut out);
            }
        }
        if !out.is_empty() {
            writer.write_all(&out).await?;
            writer.flush().await?;
            out.clear();
        }
    }

    // End of input: give running handlers a bounded time to finish and be answered. Those
    // waiting for the client's answers to their own requests will get none: they fail now.
    session.end_client_requests();
    drop(outbound);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    drop(session);
    while let Ok(bytes) = later.try_recv() {
        out.extend_from_slice(&bytes);
    }
    if !out.is_empty() {
        writer.write_all(&out).await?;
    }
    writer.flush().await
}

/// Handle one line. A handler that finished inline may have queued notifications (progress,
/// logs) while running; they are put before its answer, where they belong.
fn handle_in_order(
    server: &Server,
    session: &mut Session,
    line: &[u8],
    out: &mut Vec<u8>,
    later: &mut mpsc::Receiver<Vec<u8>>,
) -> Option<crate::server::Pending> {
    let mark = out.len();
    let pending = server.handle(session, line, out);
    let mut queued = Vec::new();
    while let Ok(note) = later.try_recv() {
        queued.extend_from_slice(&note);
    }
    if !queued.is_empty() {
        out.splice(mark..mark, queued);
    }
    pending
}

fn trim(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
