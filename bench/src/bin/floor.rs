//! `bench-floor`: the floor of the benchmark. No MCP: each message is parsed just enough to
//! find its id, and a fixed reply carrying that id is written back. What a real server costs
//! above this is the price of being a server.
//!
//! ```text
//! bench-floor --stdio                   # newline-delimited JSON on stdin/stdout
//! bench-floor --http 127.0.0.1:PORT     # POST /mcp with a JSON body, any path accepted
//! bench-floor --relay 127.0.0.1:PORT --to 127.0.0.1:UPSTREAM
//! bench-floor --axum-relay 127.0.0.1:PORT --to 127.0.0.1:UPSTREAM
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
//!
//! `--axum-relay` is the same forwarder built the way an HTTP service in Rust usually is, and
//! the way our gateway is: hyper's HTTP/1 server with an axum router, each request's body read
//! whole, sent with hyper's HTTP/1 client on a keep-alive connection per client connection
//! (driven by a task of its own), and the whole answer sent back. It reads no JSON. What the
//! gateway costs above this is its own; what this costs above `--relay` is the price of the
//! HTTP stack.

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

/// The `--axum-relay` forwarder: one client connection's requests, sent on its own upstream
/// connection.
mod axum_relay {
    use std::{io, net::SocketAddr, sync::Arc};

    use axum::{
        Router,
        body::Body,
        extract::{Request, State},
        http::{HeaderName, HeaderValue, StatusCode, header},
        response::{IntoResponse as _, Response},
        routing::post,
    };
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full, Limited};
    use hyper::client::conn::http1::SendRequest;
    use hyper_util::{rt::TokioIo, service::TowerToHyperService};

    /// The request headers passed on, besides `Host`, which names the upstream.
    const REQUEST_HEADERS: [HeaderName; 4] = [
        header::CONTENT_TYPE,
        header::ACCEPT,
        HeaderName::from_static("mcp-session-id"),
        HeaderName::from_static("mcp-protocol-version"),
    ];
    /// The answer headers passed back.
    const ANSWER_HEADERS: [HeaderName; 2] = [
        header::CONTENT_TYPE,
        HeaderName::from_static("mcp-session-id"),
    ];

    struct Upstream {
        host: HeaderValue,
        sender: tokio::sync::Mutex<SendRequest<Full<Bytes>>>,
    }

    /// Serve one client connection, with a connection of its own to `upstream`.
    pub async fn serve(client: tokio::net::TcpStream, upstream: SocketAddr) -> io::Result<()> {
        client.set_nodelay(true)?;
        let server = tokio::net::TcpStream::connect(upstream).await?;
        server.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(server))
            .await
            .map_err(io::Error::other)?;
        tokio::task::spawn_local(connection);
        let host = HeaderValue::from_str(&upstream.to_string()).map_err(io::Error::other)?;
        let router = Router::new()
            .route("/{*path}", post(forward))
            .with_state(Arc::new(Upstream {
                host,
                sender: tokio::sync::Mutex::new(sender),
            }));
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(client), TowerToHyperService::new(router))
            .await
            .map_err(io::Error::other)
    }

    fn bad_gateway(error: impl std::fmt::Display) -> Response {
        (StatusCode::BAD_GATEWAY, format!("bench-floor: {error}\n")).into_response()
    }

    async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, super::MAX_REQUEST_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, error.to_string()).into_response();
            }
        };
        let mut forwarded = hyper::Request::post(parts.uri);
        if let Some(headers) = forwarded.headers_mut() {
            headers.insert(header::HOST, upstream.host.clone());
            for name in REQUEST_HEADERS {
                if let Some(value) = parts.headers.get(&name) {
                    headers.insert(name, value.clone());
                }
            }
        }
        let forwarded = match forwarded.body(Full::new(body)) {
            Ok(forwarded) => forwarded,
            Err(error) => return bad_gateway(error),
        };
        let answer = {
            let mut sender = upstream.sender.lock().await;
            if let Err(error) = sender.ready().await {
                return bad_gateway(error);
            }
            match sender.send_request(forwarded).await {
                Ok(answer) => answer,
                Err(error) => return bad_gateway(error),
            }
        };
        let (answer, body) = answer.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => return bad_gateway(error),
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = answer.status;
        for name in ANSWER_HEADERS {
            if let Some(value) = answer.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

fn parse_addr(text: &str) -> io::Result<SocketAddr> {
    text.parse()
        .map_err(|error| io::Error::other(format!("{text}: {error}")))
}

/// A relay's own address and its upstream's, which must be on loopback.
fn relay_addrs(addr: &str, upstream: &str) -> io::Result<(SocketAddr, SocketAddr)> {
    let upstream = parse_addr(upstream)?;
    if !upstream.ip().is_loopback() {
        return Err(io::Error::other(format!(
            "the benchmark relays on loopback only, not to {upstream}"
        )));
    }
    Ok((parse_addr(addr)?, upstream))
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
        ["--relay", addr, "--to", upstream] => {
            relay_addrs(addr, upstream).and_then(|(addr, upstream)| {
                accept_on(addr, move |client| relay_connection(client, upstream))
            })
        }
        ["--axum-relay", addr, "--to", upstream] => {
            relay_addrs(addr, upstream).and_then(|(addr, upstream)| {
                accept_on(addr, move |client| axum_relay::serve(client, upstream))
            })
        }
        _ => {
            eprintln!(
                "usage: bench-floor --stdio | --http 127.0.0.1:PORT | --relay 127.0.0.1:PORT --to 127.0.0.1:UPSTREAM | --axum-relay 127.0.0.1:PORT --to 127.0.0.1:UPSTREAM"
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
