//! `bench-rmcp-echo`: the rmcp baseline, an echo server wired the way rmcp servers usually
//! are: `#[tool_router]` + `#[tool_handler]`, `transport::stdio()`, tokio's multi-thread
//! runtime, and over HTTP a `StreamableHttpService` nested in axum with default settings.
//!
//! ```text
//! bench-rmcp-echo --stdio
//! bench-rmcp-echo --http 127.0.0.1:PORT [--nodelay]
//! ```
//!
//! `--nodelay` sets `TCP_NODELAY` on accepted connections (the "rmcp+nodelay" row); without
//! it the server is exactly "rmcp default". In HTTP mode the server exits when its stdin
//! closes, so it cannot outlive the benchmark that started it.

#![allow(clippy::print_stderr)]

use std::{io::Read as _, net::SocketAddr, process::ExitCode, sync::Arc};

use axum::serve::ListenerExt as _;
use rmcp::{
    ServerHandler, ServiceExt as _,
    handler::server::wrapper::Parameters,
    schemars, tool, tool_handler, tool_router,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService, stdio,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct Echo;

#[tool_router]
impl Echo {
    #[tool(description = "Send the text back unchanged.")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler]
impl ServerHandler for Echo {}

enum Mode {
    Stdio,
    Http { addr: SocketAddr, nodelay: bool },
}

fn parse_args() -> Result<Mode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--stdio"] => Ok(Mode::Stdio),
        ["--http", addr] => Ok(Mode::Http {
            addr: addr.parse().map_err(|e| format!("{addr}: {e}"))?,
            nodelay: false,
        }),
        ["--http", addr, "--nodelay"] => Ok(Mode::Http {
            addr: addr.parse().map_err(|e| format!("{addr}: {e}"))?,
            nodelay: true,
        }),
        _ => Err("usage: bench-rmcp-echo --stdio | --http 127.0.0.1:PORT [--nodelay]".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(mode) => mode,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let outcome = match mode {
        Mode::Stdio => serve_stdio().await,
        Mode::Http { addr, nodelay } => serve_http(addr, nodelay).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-rmcp-echo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_stdio() -> anyhow::Result<()> {
    let service = Echo.serve(stdio()).await?;
    service.waiting().await?;
    Ok(())
}

async fn serve_http(addr: SocketAddr, nodelay: bool) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        anyhow::bail!("the benchmark serves on loopback only, not {addr}");
    }
    // Not on the request path: a thread that ends the process when the benchmark goes away.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    if nodelay {
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                eprintln!("bench-rmcp-echo: TCP_NODELAY: {error}");
            }
        });
        axum::serve(listener, router).await?;
    } else {
        axum::serve(listener, router).await?;
    }
    Ok(())
}
