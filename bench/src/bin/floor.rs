//! `bench-floor`: the floor of the benchmark. No MCP: each message is parsed just enough to
//! find its id, and a fixed reply carrying that id is written back. What a real server costs
//! above this is the price of being a server.
//!
//! ```text
//! bench-floor --stdio                   # newline-delimited JSON on stdin/stdout
//! bench-floor --http 127.0.0.1:PORT     # POST /mcp with a JSON body, any path accepted
//! bench-floor --relay 127.0.0.1:PORT --to 127.0.0.1:UPSTREAM
//! ```
//!
//! Stdio reads with blocking calls on one thread and writes all the replies of one read with
//! one write. HTTP is raw tokio on one thread: keep-alive HTTP/1.1 with `Content-Length`
//! bodies, one write per reply, `TCP_NODELAY` on. In HTTP mode the server exits when its stdin
//! closes, so it cannot outlive the benchmark that started it.
//!
//! `--relay` is the floor of a forwarder, for the gateway workload: each client connection gets
//! its own keep-alive connection to the upstream, and each request's bytes go there unchanged
//! and the answer's bytes come back unchanged, framed by `Content-Length` or chunked encoding
//! and otherwise unread. Same runtime as `--http`: tokio on one thread, `TCP_NODELAY` on both
//! sides. What a real gateway costs above this is the price of doing anything with a call.

#![allow(clippy::print_stderr)]

use std::{
    io::{self, BufRead as _, Read as _, Write as _},
    net::SocketAddr,
    process::ExitCode,
};

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_bench::protocol::{ECHO_TEXT, METHOD_INITIALIZE, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The largest request (headers or body) the floor accepts.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a str>,
}

/// Append the reply to one message, if it needs one (notifications do not).
fn reply(message: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(message) else {
        out.extend_from_slice(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#,
        );
        return true;
    };
    let Some(id) = envelope.id else { return false };
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    if envelope.method == Some(METHOD_INITIALIZE) {
        let _ = write!(
            out,
            r#","result":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bench-floor","version":"0"}}}}}}"#
        );
    } else {
        let _ = write!(
            out,
            r#","result":{{"content":[{{"type":"text","text":"{ECHO_TEXT}"}}]}}}}"#
        );
    }
    true
}

fn serve_stdio() -> io::Result<()> {
    let mut input = io::BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut output = io::stdout().lock();
    let mut line = Vec::new();
    let mut out = Vec::with_capacity(64 * 1024);
    // Ends at EOF on stdin.
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let message = line.strip_suffix(b"\n").unwrap_or(&line);
        if !message.is_empty() && reply(message, &mut out) {
            out.push(b'\n');
        }
        // Flush once nothing more is buffered: one write for all the replies of one read.
        if input.buffer().is_empty() && !out.is_empty() {
            output.write_all(&out)?;
            output.flush()?;
            out.clear();
        }
    }
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
}

/// Where the header block ends and how its body is framed, once the headers are complete.
fn parse_framing(buffer: &[u8]) -> io::Result<Option<(usize, Body)>> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..end])
        .map_err(|_| io::Error::other("headers are not UTF-8"))?;
    let mut body = Body::Length(0);
    for (name, value) in head
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
    {
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| io::Error::other("bad content-length"))?;
            body = Body::Length(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            body = Body::Chunked;
        }
    }
    Ok(Some((end + 4, body)))
}

/// Where the header block ends and how long the body is (requests have `Content-Length`).
fn parse_head(buffer: &[u8]) -> io::Result<Option<(usize, usize)>> {
    match parse_framing(buffer)? {
        None => Ok(None),
        Some((head_len, Body::Length(length))) => Ok(Some((head_len, length))),
        Some((_, Body::Chunked)) => Err(io::Error::other("chunked requests are not served")),
    }
}

/// The length of the chunked body at the start of `body`, once it is all there.
fn chunked_len(body: &[u8]) -> io::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(line) = body[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&body[at..at + line])
            .ok()
            .and_then(|text| usize::from_str_radix(text.split(';').next()?.trim(), 16).ok())
            .ok_or_else(|| io::Error::other("bad chunk size"))?;
        at += line + 2;
        if size == 0 {
            // No trailers from the servers we relay: the last chunk ends with one more CRLF.
            return Ok((body.len() >= at + 2).then_some(at + 2));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

/// Read one whole message (head and body) into the front of `buffer`; its length, or `None`
/// when the peer closed the connection between messages.
async fn read_message(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    loop {
        if let Some((head_len, body)) = parse_framing(buffer)? {
            let total = match body {
                Body::Length(length) if length > MAX_REQUEST_BYTES => {
                    return Err(io::Error::other("body too large"));
                }
                Body::Length(length) => Some(head_len + length).filter(|n| buffer.len() >= *n),
                Body::Chunked => chunked_len(&buffer[head_len..])?.map(|n| head_len + n),
            };
            if let Some(total) = total {
                return Ok(Some(total));
            }
        }
        if buffer.len() > MAX_REQUEST_BYTES {
            return Err(io::Error::other("message too large"));
        }
        if stream.read_buf(buffer).await? == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::other("connection closed mid-message"))
            };
        }
    }
}

/// Relay one client connection to its own upstream connection, a message at a time.
async fn relay_connection(
    mut client: tokio::net::TcpStream,
    upstream: SocketAddr,
) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut server = tokio::net::TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let mut request = Vec::with_capacity(8192);
    let mut answer = Vec::with_capacity(8192);
    // One request and its answer per turn; ends when the client closes the connection.
    while let Some(length) = read_message(&mut client, &mut request).await? {
        server.write_all(&request[..length]).await?;
        request.drain(..length);
        let Some(length) = read_message(&mut server, &mut answer).await? else {
            return Err(io::Error::other("the upstream closed the connection"));
        };
        client.write_all(&answer[..length]).await?;
        answer.drain(..length);
    }
    Ok(())
}

async fn serve_connection(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    let mut body_out = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(1024);
    // One request per turn; ends when the client closes the connection.
    while read_message(&mut stream, &mut buffer).await?.is_some() {
        let Some((head_len, body_len)) = parse_head(&buffer)? else {
            return Err(io::Error::other("the request has no header block"));
        };
        body_out.clear();
        out.clear();
        if reply(&buffer[head_len..head_len + body_len], &mut body_out) {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: floor\r\ncontent-length: {}\r\n\r\n",
                body_out.len()
            );
            out.extend_from_slice(&body_out);
        } else {
            out.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
        }
        stream.write_all(&out).await?;
        buffer.drain(..head_len + body_len);
    }
    Ok(())
}

/// Accept connections on `addr` (loopback only) and run `serve` on each, on one thread, until
/// the process is killed or its stdin closes.
fn accept_on<F, Fut>(addr: SocketAddr, serve: F) -> io::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    if !addr.ip().is_loopback() {
        return Err(io::Error::other(format!(
            "the benchmark serves on loopback only, not {addr}"
        )));
    }
    std::thread::spawn(|| {
        let _ = io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let served = serve(stream);
            tokio::task::spawn_local(async move {
                if let Err(error) = served.await {
                    eprintln!("bench-floor: {error}");
                }
            });
        }
    })
}

fn parse_addr(text: &str) -> io::Result<SocketAddr> {
    text.parse()
        .map_err(|error| io::Error::other(format!("{text}: {error}")))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--stdio"] => serve_stdio(),
        ["--http", addr] => parse_addr(addr).and_then(|addr| accept_on(addr, serve_connection)),
        ["--relay", addr, "--to", upstream] => parse_addr(addr).and_then(|addr| {
            let upstream = parse_addr(upstream)?;
            if !upstream.ip().is_loopback() {
                return Err(io::Error::other(format!(
                    "the benchmark relays on loopback only, not to {upstream}"
                )));
            }
            accept_on(addr, move |client| relay_connection(client, upstream))
        }),
        _ => {
            eprintln!(
                "usage: bench-floor --stdio | --http 127.0.0.1:PORT | --relay 127.0.0.1:PORT --to 127.0.0.1:UPSTREAM"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-floor: {error}");
            ExitCode::FAILURE
        }
    }
}
