//! JSON-RPC on the wire: a borrowed envelope for incoming messages, direct encoding for
//! outgoing ones.
//!
//! Decoding happens in two phases. Phase one reads only the envelope, borrowing `method` and
//! keeping `id` and `params` as raw JSON slices of the input, so no `Value` tree, untagged
//! enum or owned string is built for the common case. Phase two, in the dispatcher, parses
//! `params` straight into the type the method needs. The request id is echoed back as the exact
//! bytes it arrived as. Errors are only built on the failure path.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// JSON-RPC error codes used on the wire (see the error table in `shared/design.md`).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Transient server trouble; `data` carries `retryable` and `retry_after_ms`.
    pub const SERVER_ERROR: i64 = -32000;
    /// The caller lacks the scope a tool needs (gateway).
    pub const INSUFFICIENT_SCOPE: i64 = -32001;
    /// 2026-07-28: an `Mcp-*` header disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability the client did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the requested protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// Phase one of decoding: the envelope of any JSON-RPC message.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(default, borrow)]
    pub jsonrpc: Option<&'a str>,
    /// Kept raw even when it is `null`, which `Option` alone would turn into "absent".
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub method: Option<&'a str>,
    #[serde(default, borrow)]
    pub params: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

/// Deserialises a field that is present, even as `null`, to `Some` (serde's `Option` alone would
/// read `null` as absent).
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// What kind of message an envelope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    /// A response to a request we sent (result or error).
    Response,
}

impl Envelope<'_> {
    /// Check the envelope is JSON-RPC 2.0 and say what it is.
    pub fn kind(&self) -> Result<Kind, &'static str> {
        if self.jsonrpc != Some("2.0") {
            return Err("the message must have \"jsonrpc\": \"2.0\"");
        }
        match (
            self.method,
            self.id,
            self.result.is_some() || self.error.is_some(),
        ) {
            (Some(_), Some(id), false) if is_valid_id(id) => Ok(Kind::Request),
            (Some(_), Some(_), false) => Err("a request id must be a string or an integer"),
            (Some(_), None, false) => Ok(Kind::Notification),
            (None, Some(_), true) => Ok(Kind::Response),
            _ => Err("the message is neither a request, a notification nor a response"),
        }
    }
}

/// Ids are strings or integers; null and other JSON are refused.
fn is_valid_id(id: &RawValue) -> bool {
    let text = id.get();
    text.starts_with('"')
        || text
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
            && !text.is_empty()
}

/// Append `{"jsonrpc":"2.0","id":ID,"result":RESULT}\n` to `out`. Returns false (after writing
/// an internal error instead) if the result could not be encoded.
pub fn write_result<T: Serialize + ?Sized>(out: &mut Vec<u8>, id: &RawValue, result: &T) -> bool {
    let start = out.len();
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"result\":");
    if serde_json::to_writer(&mut *out, result).is_err() {
        // Our own result types always serialise; if one ever does not, answer with an
        // internal error rather than half a message.
        out.truncate(start);
        write_error(
            out,
            Some(id),
            &ErrorObject::internal("the result could not be encoded"),
        );
        return false;
    }
    out.extend_from_slice(b"}\n");
    true
}

/// Append a result whose JSON is already encoded (cached lists).
pub fn write_raw_result(out: &mut Vec<u8>, id: &RawValue, result_json: &[u8]) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result_json);
    out.extend_from_slice(b"}\n");
}

/// Append an error response. Without an id (unreadable request), `id` is null.
pub fn write_error(out: &mut Vec<u8>, id: Option<&RawValue>, error: &ErrorObject) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.map_or("null", RawValue::get).as_bytes());
    out.extend_from_slice(b",\"error\":");
    // ErrorObject holds only strings, integers and JSON values: it always serialises.
    let _ = serde_json::to_writer(&mut *out, error);
    out.extend_from_slice(b"}\n");
}

/// Append a request `{"jsonrpc":"2.0","id":"ID","method":METHOD,"params":PARAMS}\n` (a request
/// this server sends to the client; its ids are strings).
pub fn write_request<T: Serialize + ?Sized>(out: &mut Vec<u8>, id: &str, method: &str, params: &T) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    let _ = serde_json::to_writer(&mut *out, id);
    out.extend_from_slice(b",\"method\":");
    let _ = serde_json::to_writer(&mut *out, method);
    out.extend_from_slice(b",\"params\":");
    if serde_json::to_writer(&mut *out, params).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"}\n");
}

/// Append a notification `{"jsonrpc":"2.0","method":METHOD,"params":PARAMS}\n`.
pub fn write_notification<T: Serialize + ?Sized>(out: &mut Vec<u8>, method: &str, params: &T) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":");
    let _ = serde_json::to_writer(&mut *out, method);
    out.extend_from_slice(b",\"params\":");
    if serde_json::to_writer(&mut *out, params).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"}\n");
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            code::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )
        .with_data(serde_json::json!({ "method": method }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(text: &str) -> Envelope<'_> {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn kinds_are_told_apart() {
        assert_eq!(
            envelope(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).kind(),
            Ok(Kind::Request)
        );
        assert_eq!(
            envelope(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#).kind(),
            Ok(Kind::Request)
        );
        assert_eq!(
            envelope(r#"{"jsonrpc":"2.0","method":"x"}"#).kind(),
            Ok(Kind::Notification)
        );
        assert_eq!(
            envelope(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).kind(),
            Ok(Kind::Response)
        );
        assert!(envelope(r#"{"id":1,"method":"ping"}"#).kind().is_err());
        assert!(
            envelope(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#)
                .kind()
                .is_err()
        );
        assert!(
            envelope(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#)
                .kind()
                .is_err()
        );
        assert!(
            envelope(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#)
                .kind()
                .is_err()
        );
    }

    #[test]
    fn the_id_is_echoed_byte_for_byte() {
        let env = envelope(r#"{"jsonrpc":"2.0","id":"req-\u00e9","method":"ping"}"#);
        let mut out = Vec::new();
        write_result(
            &mut out,
            env.id.unwrap_or_else(|| panic!()),
            &serde_json::json!({}),
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"jsonrpc\":\"2.0\",\"id\":\"req-\\u00e9\",\"result\":{}}\n"
        );
    }

    #[test]
    fn errors_without_an_id_use_null() {
        let mut out = Vec::new();
        write_error(
            &mut out,
            None,
            &ErrorObject::new(code::PARSE_ERROR, "parse error"),
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"parse error\"}}\n"
        );
    }
}
