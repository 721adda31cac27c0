//! The server kit, tested at its two boundaries: raw JSON-RPC into `Server::handle` (exact
//! bytes out), and our own client talking to it over an in-memory stdio stream.

#![allow(clippy::unwrap_used, clippy::large_futures)]

mod catalogue;
mod client;
mod dispatch;
mod http;
mod input;
mod stdio;
mod subscriptions;
mod tasks;

use std::{collections::HashMap, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_server::{
    HandlerError, Prompt, PromptOutput, Resource, ResourceContents, ResourceTemplate, Server,
    Session, Tool, ToolOutput,
};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Echo {
    /// The text to send back.
    #[schemars(length(max = 16))]
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Slow {
    pub ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Empty {}

/// A server with one of everything, and tools that exercise each outcome.
pub fn test_server() -> Server {
    Server::builder("kit-test", "9.9.9")
        .instructions("For tests.")
        .tool(
            Tool::builder("echo", "Echo.")
                .read_only()
                .handler(|a: Echo, _| async move { Ok(ToolOutput::text(a.text)) }),
        )
        .tool(Tool::builder("slow", "Sleep, reporting progress.").handler(
            |a: Slow, cx| async move {
                for step in 1..=4u32 {
                    if cx.is_cancelled() {
                        return Ok(ToolOutput::error("cancelled"));
                    }
                    tokio::time::sleep(Duration::from_millis(a.ms / 4)).await;
                    cx.progress(f64::from(step), Some(4.0), Some("working"))
                        .await;
                }
                Ok(ToolOutput::text("slept"))
            },
        ))
        .tool(
            Tool::builder("fail", "A domain failure.").handler(|_: Empty, _| async move {
                Ok(ToolOutput::error(
                    "no expense with id 7; list_expenses shows the ids",
                ))
            }),
        )
        .tool(
            Tool::builder("busy", "Transient trouble.").handler(|_: Empty, _| async move {
                Err::<ToolOutput, _>(HandlerError::Transient {
                    message: "the database is busy".into(),
                    retry_after_ms: Some(250),
                })
            }),
        )
        .resource(Resource::new(
            "kit://hello",
            "hello",
            "text/plain",
            |_| async move {
                Ok(vec![ResourceContents::text(
                    "kit://hello",
                    "text/plain",
                    "hello",
                )])
            },
        ))
        .resource_template(ResourceTemplate::new(
            "kit://item/{id}",
            "item",
            "application/json",
            |uri, vars: HashMap<String, String>, _| async move {
                Ok(vec![ResourceContents::text(
                    uri,
                    "application/json",
                    json!({"id": vars["id"]}).to_string(),
                )])
            },
        ))
        .prompt(
            Prompt::builder("greet", "Greet someone.")
                .argument("name", "Who", true)
                .handler(|args, _| async move {
                    Ok(PromptOutput::user_text(format!(
                        "Greet {} warmly.",
                        args["name"]
                    )))
                }),
        )
        .build()
        .unwrap()
}

pub const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// Feed lines to `handle` and return what was written, one JSON value per line.
pub fn exchange(server: &Server, session: &mut Session, lines: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for line in lines {
        assert!(
            server.handle(session, line.as_bytes(), &mut out).is_none(),
            "{line} did not finish inline"
        );
    }
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn legacy_session(server: &Server) -> Session {
    let mut session = Session::new(None);
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    exchange(server, &mut session, &[init]);
    session
}
