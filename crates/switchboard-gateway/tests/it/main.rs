//! The gateway end to end: a real gateway on loopback port 0 in front of real upstreams (our
//! `switchboard serve ...` and the rmcp-based fixture over stdio, the echo server over HTTP),
//! used by our own client in both eras and by raw HTTP for what clients should never send.
//!
//! The binaries must be built first: `cargo build -p switchboard-cli -p
//! test-support --bin sb-fixture-server` (a workspace build does it).

#![allow(clippy::unwrap_used, clippy::large_futures)]

mod aggregate;
mod bad_input;
mod completion;
mod interop;
mod operations;
mod security;
mod subscribe;
mod translate;

use std::{net::SocketAddr, time::Duration};

use switchboard_client::{ConnectOptions, Connection, EraPreference};
use switchboard_config::{ServerEntry, ServerName, Transport};
use switchboard_gateway::{Gateway, GatewayConfig};
use tokio::{sync::oneshot, task::JoinHandle};

/// A TOML string holding `path`.
pub fn toml_path(path: &std::path::Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

/// `[upstreams.fx]`: the fixture over stdio, with extra arguments.
pub fn fixture_upstream(name: &str, args: &[&str]) -> String {
    format!(
        "[upstreams.{name}]\ncommand = {}\nargs = {}\n",
        toml_path(&test_support::bin_path("sb-fixture-server")),
        serde_json::to_string(args).unwrap()
    )
}

/// `[upstreams.NAME]`: `switchboard serve ...` over stdio.
pub fn switchboard_upstream(name: &str, args: &[&str]) -> String {
    format!(
        "[upstreams.{name}]\ncommand = {}\nargs = {}\n",
        toml_path(&test_support::bin_path("switchboard")),
        serde_json::to_string(args).unwrap()
    )
}

/// An upstream served over Streamable HTTP by this process: the echo server.
#[derive(Debug)]
pub struct HttpUpstream {
    pub url: String,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn http_echo_upstream() -> HttpUpstream {
    http_upstream(switchboard_echo::server()).await
}

/// `server` served over Streamable HTTP by this process.
pub async fn http_upstream(server: switchboard_server::Server) -> HttpUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(switchboard_server::serve_listener(
        server,
        listener,
        switchboard_server::HttpConfig::default(),
    ));
    HttpUpstream {
        url: format!("http://127.0.0.1:{port}/mcp"),
        task,
    }
}

/// A gateway serving on loopback.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: std::sync::Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Ask the gateway to stop; returns the serving task to await.
    pub fn stop(&mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap()
    }

    pub async fn connect(&self, era: EraPreference) -> Connection {
        let entry = ServerEntry::new(
            ServerName::new("gw").unwrap(),
            Transport::StreamableHttp {
                url: self.url().parse().unwrap(),
                headers: Default::default(),
            },
        );
        let options = ConnectOptions {
            era,
            ..ConnectOptions::default()
        };
        Connection::connect(&entry, &options).await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub async fn start(config: &str) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = GatewayConfig::parse(config, None, &|_| None).unwrap();
    serve(std::sync::Arc::new(Gateway::connect(config).await.unwrap())).await
}

/// Serve a connected gateway on a loopback port.
pub async fn serve(gateway: std::sync::Arc<Gateway>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = gateway.clone();
    let task = tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        gateway,
        stop: Some(stop),
        task: Some(task),
    }
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The Redis of tests that need one (`SWITCHBOARD_TEST_REDIS_URL`); without it they say so and
/// skip.
#[allow(clippy::print_stderr)]
pub fn redis_url() -> Option<String> {
    match std::env::var("SWITCHBOARD_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED: SWITCHBOARD_TEST_REDIS_URL is not set");
            None
        }
    }
}

/// A raw JSON-RPC POST to the gateway with the usual headers: for a 2026-07-28 request also
/// `Mcp-Method` and `Mcp-Name`, which that revision carries beside the body.
pub fn post(running: &Running, body: impl Into<String>) -> reqwest::RequestBuilder {
    let body = body.into();
    let mut builder = reqwest::Client::new()
        .post(running.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in modern_headers(&body) {
        builder = builder.header(name, value);
    }
    builder.body(body)
}

/// The `Mcp-Method` and `Mcp-Name` headers of a 2026-07-28 request (none for anything else).
pub fn modern_headers(body: &str) -> Vec<(&'static str, String)> {
    let Ok(message) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let modern = message
        .pointer("/params/_meta")
        .and_then(|meta| meta.get("io.modelcontextprotocol/protocolVersion"))
        .is_some();
    let Some(method) = message["method"].as_str().filter(|_| modern) else {
        return Vec::new();
    };
    let mut headers = vec![("mcp-method", method.to_owned())];
    let name = match method {
        "resources/read" => message.pointer("/params/uri"),
        "tools/call" | "prompts/get" => message.pointer("/params/name"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => message.pointer("/params/taskId"),
        _ => None,
    };
    if let Some(name) = name.and_then(|n| n.as_str()) {
        headers.push(("mcp-name", name.to_owned()));
    }
    headers
}

pub const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// The JSON-RPC answer in a response: the JSON body, or the last message of an event stream.
pub async fn answer(response: reqwest::Response) -> serde_json::Value {
    let event_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !event_stream {
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
    text.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in the stream: {text}"))
}
