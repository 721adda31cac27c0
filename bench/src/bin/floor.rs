//! `bench-floor`: the floor of the benchmark. No MCP: each message is parsed just enough to
//! find its id, and a fixed reply carrying that id is written back. What a real server costs
//! above this is the price of being a server.
//!
//! ```text
//! bench-floor --stdio                   # newline-delimited JSON on stdin/stdout
//! bench-floor --http 127.0.0.1:PORT     # POST /mcp with a JSON body, any path accepted
//! ```
//!
//! Stdio reads with blocking calls on one thread and writes all the replies of one read with
//! one write. HTTP is raw tokio on one thread: keep-alive HTTP/1.1 with `Content-Length`
//! bodies, one write per reply, `TCP_NODELAY` on. In HTTP mode the server exits when its stdin
//! closes, so it cannot outlive the benchmark that started it.

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

/// Where the header block ends and how long the body is, once the headers are complete.
fn parse_head(buffer: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..end])
        .map_err(|_| io::Error::other("headers are not UTF-8"))?;
    let length = head
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| io::Error::other("bad content-length"))
        })
        .transpose()?
        .unwrap_or(0);
    Ok(Some((end + 4, length)))
}

async fn serve_connection(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    let mut body_out = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(1024);
    // One request per turn; ends when the client closes the connection.
    loop {
        let (head_len, body_len) = loop {
            if let Some(parsed) = parse_head(&buffer)? {
                break parsed;
            }
            if buffer.len() > MAX_REQUEST_BYTES {
                return Err(io::Error::other("headers too large"));
            }
            if stream.read_buf(&mut buffer).await? == 0 {
                return Ok(());
            }
        };
        if body_len > MAX_REQUEST_BYTES {
            return Err(io::Error::other("body too large"));
        }
        while buffer.len() < head_len + body_len {
            if stream.read_buf(&mut buffer).await? == 0 {
                return Ok(());
            }
        }
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
}

fn serve_http(addr: SocketAddr) -> io::Result<()> {
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
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        // Serves until the process is killed or its stdin closes.
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(error) = serve_connection(stream).await {
                    eprintln!("bench-floor: {error}");
                }
            });
        }
    })
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
        ["--http", addr] => match addr.parse() {
            Ok(addr) => serve_http(addr),
            Err(error) => Err(io::Error::other(format!("{addr}: {error}"))),
        },
        _ => {
            eprintln!("usage: bench-floor --stdio | --http 127.0.0.1:PORT");
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
