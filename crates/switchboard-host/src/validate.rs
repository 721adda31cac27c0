//! Checking arguments against a tool's `inputSchema` before they are sent.

use serde::Serialize;
use serde_json::Value;

/// One way the arguments break the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer to the offending value ("" for the whole object).
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// A compiled schema. A server whose schema itself is invalid gets no client-side validation
/// (the server will judge), rather than making its tool uncallable.
#[derive(Debug)]
pub struct ArgumentValidator {
    validator: Option<jsonschema::Validator>,
}

impl ArgumentValidator {
    pub fn new(schema: &Value) -> Self {
        let validator = match jsonschema::validator_for(schema) {
            Ok(validator) => Some(validator),
            Err(error) => {
                tracing::warn!(%error, "the tool's inputSchema is not a valid JSON Schema; arguments are sent unchecked");
                None
            }
        };
        ArgumentValidator { validator }
    }

    pub fn violations(&self, arguments: &Value) -> Vec<Violation> {
        let Some(validator) = &self.validator else {
            return Vec::new();
        };
        validator
            .iter_errors(arguments)
            .map(|error| Violation {
                pointer: error.instance_path().to_string(),
                message: error.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_violation_names_its_field() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": false
        });
        let found = ArgumentValidator::new(&schema).violations(&json!({"a": "x", "c": 1}));
        let pointers: Vec<&str> = found.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/a"), "{found:?}");
        assert!(
            found
                .iter()
                .any(|v| v.message.contains("\"b\" is a required property")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v.message.contains("'c'") || v.message.contains("\"c\"")),
            "{found:?}"
        );
    }

    #[test]
    fn valid_arguments_pass() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        assert!(
            ArgumentValidator::new(&schema)
                .violations(&json!({"a": 1}))
                .is_empty()
        );
    }

    #[test]
    fn an_invalid_schema_disables_checking_instead_of_failing() {
        let schema = json!({"type": "no-such-type"});
        assert!(
            ArgumentValidator::new(&schema)
                .violations(&json!({"a": 1}))
                .is_empty()
        );
    }
}
