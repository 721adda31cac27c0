//! The JSON-RPC messages of the workload, and the checks on their answers.
//!
//! Every peer gets the same bytes: a legacy `initialize` (protocol 2025-06-18), then
//! `notifications/initialized`, then `tools/call echo {"text": ECHO_TEXT}` with increasing
//! integer ids. An answer counts only if its id is one we are waiting for and its first
//! content item is the text we sent.

use std::io::Write as _;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The protocol revision every peer is driven with (the legacy `initialize` handshake).
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// The text every `echo` call sends. It is fixed so the floor can answer with fixed bytes.
pub const ECHO_TEXT: &str = "hello, switchboard";
/// The tool every peer serves.
pub const TOOL_NAME: &str = "echo";

pub const METHOD_INITIALIZE: &str = "initialize";
pub const METHOD_INITIALIZED: &str = "notifications/initialized";
pub const METHOD_TOOLS_CALL: &str = "tools/call";

/// Append an `initialize` request (no trailing newline).
pub fn write_initialize(out: &mut Vec<u8>, id: u64) {
    let _ = write!(
        out,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{METHOD_INITIALIZE}","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"switchboard-bench","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION"),
    );
}

/// Append the `notifications/initialized` notification (no trailing newline).
pub fn write_initialized(out: &mut Vec<u8>) {
    let _ = write!(
        out,
        r#"{{"jsonrpc":"2.0","method":"{METHOD_INITIALIZED}"}}"#
    );
}

/// Append one `tools/call echo` request (no trailing newline).
pub fn write_echo_call(out: &mut Vec<u8>, id: u64) {
    let _ = write!(
        out,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{METHOD_TOOLS_CALL}","params":{{"name":"{TOOL_NAME}","arguments":{{"text":"{ECHO_TEXT}"}}}}}}"#,
    );
}

/// One message from a server, as far as the driver cares.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A response to one of our requests: its id, and its `result` or `error`.
    Answer {
        id: u64,
        outcome: Result<&'a RawValue, &'a RawValue>,
    },
    /// A notification or a request from the server; the workload never needs to answer one.
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Parse one JSON-RPC message.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Incoming<'_>> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes)
        .with_context(|| format!("not a JSON-RPC message: {}", excerpt(bytes)))?;
    if envelope.method.is_some() {
        return Ok(Incoming::Other);
    }
    let id = envelope
        .id
        .ok_or_else(|| anyhow!("a response without an id: {}", excerpt(bytes)))?;
    let id: u64 = id.get().parse().map_err(|_| {
        anyhow!(
            "a response with an id we never sent ({}): {}",
            id.get(),
            excerpt(bytes)
        )
    })?;
    let outcome = match (envelope.result, envelope.error) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) => Err(error),
        _ => bail!(
            "a response needs exactly one of result and error: {}",
            excerpt(bytes)
        ),
    };
    Ok(Incoming::Answer { id, outcome })
}

#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(borrow)]
    content: Vec<ContentItem<'a>>,
    #[serde(rename = "isError", default)]
    is_error: bool,
}

#[derive(Deserialize)]
struct ContentItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// Check the answer to an `echo` call: a successful result whose first content is our text.
pub fn check_echo_answer(outcome: Result<&RawValue, &RawValue>) -> anyhow::Result<()> {
    let result = outcome.map_err(|error| anyhow!("the echo call failed: {}", error.get()))?;
    let parsed: CallResult<'_> = serde_json::from_str(result.get()).with_context(|| {
        format!(
            "not a tools/call result: {}",
            excerpt(result.get().as_bytes())
        )
    })?;
    if parsed.is_error {
        bail!("the echo call returned isError: {}", result.get());
    }
    match parsed.content.first() {
        Some(item) if item.kind == "text" && item.text.as_deref() == Some(ECHO_TEXT) => Ok(()),
        _ => bail!(
            "the echo call did not send the text back: {}",
            excerpt(result.get().as_bytes())
        ),
    }
}

#[derive(Deserialize)]
struct InitializeResult<'a> {
    #[serde(rename = "protocolVersion", borrow)]
    protocol_version: std::borrow::Cow<'a, str>,
}

/// Check the answer to `initialize`: the server must accept the revision we asked for.
pub fn check_initialize_answer(outcome: Result<&RawValue, &RawValue>) -> anyhow::Result<()> {
    let result = outcome.map_err(|error| anyhow!("initialize failed: {}", error.get()))?;
    let parsed: InitializeResult<'_> = serde_json::from_str(result.get()).with_context(|| {
        format!(
            "not an initialize result: {}",
            excerpt(result.get().as_bytes())
        )
    })?;
    if parsed.protocol_version != PROTOCOL_VERSION {
        bail!(
            "the server negotiated protocol {} instead of {PROTOCOL_VERSION}",
            parsed.protocol_version
        );
    }
    Ok(())
}

/// The start of a message, for error text.
pub fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).into_owned();
    if bytes.len() > MAX {
        format!("{text}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(line: &str) -> (u64, Result<&RawValue, &RawValue>) {
        match parse(line.as_bytes()) {
            Ok(Incoming::Answer { id, outcome }) => (id, outcome),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn requests_are_valid_json() {
        let mut out = Vec::new();
        write_initialize(&mut out, 1);
        let value: serde_json::Value = serde_json::from_slice(&out).expect("initialize is JSON");
        assert_eq!(value["params"]["protocolVersion"], PROTOCOL_VERSION);
        out.clear();
        write_echo_call(&mut out, 7);
        let value: serde_json::Value = serde_json::from_slice(&out).expect("the call is JSON");
        assert_eq!(value["id"], 7);
        assert_eq!(value["params"]["arguments"]["text"], ECHO_TEXT);
    }

    #[test]
    fn an_echo_answer_must_carry_the_text() {
        let good = format!(
            r#"{{"jsonrpc":"2.0","id":3,"result":{{"content":[{{"type":"text","text":"{ECHO_TEXT}"}}],"structuredContent":{{"result":"{ECHO_TEXT}"}}}}}}"#
        );
        let (id, outcome) = answer(&good);
        assert_eq!(id, 3);
        check_echo_answer(outcome).expect("a correct answer passes");

        let wrong =
            r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"nope"}]}}"#;
        assert!(check_echo_answer(answer(wrong).1).is_err());
        let tool_error = format!(
            r#"{{"jsonrpc":"2.0","id":3,"result":{{"isError":true,"content":[{{"type":"text","text":"{ECHO_TEXT}"}}]}}}}"#
        );
        assert!(check_echo_answer(answer(&tool_error).1).is_err());
        let rpc_error = r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}"#;
        assert!(check_echo_answer(answer(rpc_error).1).is_err());
    }

    #[test]
    fn notifications_are_not_answers() {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#;
        assert!(matches!(parse(note.as_bytes()), Ok(Incoming::Other)));
    }

    #[test]
    fn initialize_must_keep_our_revision() {
        let ok = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"x","version":"1"}}}"#;
        check_initialize_answer(answer(ok).1).expect("the same revision passes");
        let other = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2024-11-05","capabilities":{}}}"#;
        assert!(check_initialize_answer(answer(other).1).is_err());
    }
}
