//! The JSON-RPC error object this crate's in-band answers are made of.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON-RPC error object (`{"code", "message", "data"}`), ready to be put into a response
/// with the request's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl WireError {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
