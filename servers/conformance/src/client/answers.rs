//! The fixture's answers to what a server asks of it: a headless stand-in for a person and a
//! model, deterministic so that the suite's checks can predict them.

use serde_json::{Map, Value};
use switchboard_client::callbacks::{
    CallbackFuture, Callbacks, ClientCallbacks, ElicitationRequest, ElicitationResponse, Root,
    SamplingRequest, SamplingResponse,
};

/// Accepts every form with its defaults (SEP-1034) and a plausible value for each field that
/// has none, answers sampling with a fixed text, and lists one root.
#[derive(Debug, Clone, Default)]
pub struct FixtureAnswers;

/// The model name reported in sampling answers.
pub const MODEL: &str = "switchboard-conformance";

impl ClientCallbacks for FixtureAnswers {
    fn supported(&self) -> Callbacks {
        Callbacks {
            elicitation: true,
            sampling: true,
            roots: true,
        }
    }

    fn elicit(&self, request: ElicitationRequest) -> CallbackFuture<'_, ElicitationResponse> {
        Box::pin(async move { Ok(ElicitationResponse::accept(fill_form(&request))) })
    }

    fn sample(&self, request: SamplingRequest) -> CallbackFuture<'_, SamplingResponse> {
        Box::pin(async move {
            let asked = request
                .messages
                .last()
                .and_then(|message| message.content.get("text"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Ok(SamplingResponse::text(
                MODEL,
                format!("This is a response from the conformance client to: {asked}"),
            ))
        })
    }

    fn roots(&self) -> CallbackFuture<'_, Vec<Root>> {
        Box::pin(async {
            Ok(vec![Root {
                uri: "file:///conformance".to_owned(),
                name: Some("conformance".to_owned()),
            }])
        })
    }
}

/// The form's defaults, plus a value of the right type for every property without one.
fn fill_form(request: &ElicitationRequest) -> Map<String, Value> {
    let mut content = request.defaults();
    let properties = request
        .requested_schema
        .as_ref()
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object);
    for (name, property) in properties.into_iter().flatten() {
        if !content.contains_key(name)
            && let Some(value) = placeholder(property)
        {
            content.insert(name.clone(), value);
        }
    }
    content
}

/// A value of the type `property` declares: its first `enum` or `oneOf` option, or a plausible
/// value for its `type` and `format`.
pub(super) fn placeholder(property: &Value) -> Option<Value> {
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return Some(first.clone());
    }
    if let Some(first) = property
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|options| options.first())
        .and_then(|option| option.get("const"))
    {
        return Some(first.clone());
    }
    match property.get("type").and_then(Value::as_str)? {
        "boolean" => Some(Value::Bool(true)),
        "integer" | "number" => Some(property.get("minimum").cloned().unwrap_or(Value::from(1))),
        "string" => Some(Value::String(
            match property.get("format").and_then(Value::as_str) {
                Some("email") => "conformance@example.com",
                Some("uri") => "https://example.com/",
                Some("date") => "2026-01-01",
                Some("date-time") => "2026-01-01T00:00:00Z",
                _ => "conformance",
            }
            .to_owned(),
        )),
        "array" => Some(Value::Array(Vec::new())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_win_and_other_fields_get_a_value_of_their_type() {
        let request = ElicitationRequest::from_json(json!({
            "message": "m",
            "requestedSchema": {"type": "object", "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "confirmed": {"type": "boolean"},
                "email": {"type": "string", "format": "email"},
                "status": {"type": "string", "enum": ["active", "inactive"]}
            }}
        }))
        .expect("valid request");
        assert_eq!(
            Value::Object(fill_form(&request)),
            json!({"name": "John Doe", "confirmed": true, "email": "conformance@example.com", "status": "active"})
        );
    }
}
