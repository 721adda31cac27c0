//! Building tool arguments from `key=value` pairs, typed by the tool's `inputSchema`.
//!
//! `--arg amount=12.50` must become the number 12.5 when the schema says `number`, but stay
//! the string "12.50" when it says `string`. Types the schema does not give are guessed from the
//! text: JSON if it parses as JSON, a string otherwise.

use serde_json::{Map, Value};

/// Why a `key=value` pair could not become an argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    #[error("argument {pair:?} must look like key=value")]
    MissingEquals { pair: String },
    #[error("argument \"{key}\" must be {expected}, but {value:?} is not")]
    WrongType {
        key: String,
        expected: &'static str,
        value: String,
    },
    #[error("argument \"{key}\" is given twice")]
    Duplicate { key: String },
}

fn declared_types(schema: &Value, key: &str) -> Vec<String> {
    let Some(property) = schema.get("properties").and_then(|p| p.get(key)) else {
        return Vec::new();
    };
    match property.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn convert(key: &str, text: &str, types: &[String]) -> Result<Value, ArgError> {
    let wrong = |expected: &'static str| ArgError::WrongType {
        key: key.to_owned(),
        expected,
        value: text.to_owned(),
    };
    if types.is_empty() {
        return Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())));
    }
    // With several declared types, the first that accepts the text wins; strings last, since
    // they accept anything.
    let mut ordered: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| *t != "string")
        .collect();
    if types.iter().any(|t| t == "string") {
        ordered.push("string");
    }
    let mut last_error = None;
    for ty in ordered {
        let attempt = match ty {
            "string" => Ok(Value::String(text.to_owned())),
            "integer" => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| wrong("an integer")),
            "number" => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| wrong("a number")),
            "boolean" => match text.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(wrong("true or false")),
            },
            "null" => match text.trim() {
                "null" => Ok(Value::Null),
                _ => Err(wrong("null")),
            },
            "array" => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Array(_)) => Ok(v),
                _ => Err(wrong("a JSON array")),
            },
            "object" => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(wrong("a JSON object")),
            },
            _ => Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))),
        };
        match attempt {
            Ok(value) => return Ok(value),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| wrong("a value of the declared type")))
}

/// Turn `key=value` pairs into an arguments object, typed by `schema` (an `inputSchema` or a
/// prompt's argument list converted to one).
pub fn arguments_from_pairs(
    schema: &Value,
    pairs: &[String],
) -> Result<Map<String, Value>, ArgError> {
    let mut out = Map::new();
    for pair in pairs {
        let Some((key, text)) = pair.split_once('=') else {
            return Err(ArgError::MissingEquals { pair: pair.clone() });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ArgError::MissingEquals { pair: pair.clone() });
        }
        if out.contains_key(key) {
            return Err(ArgError::Duplicate {
                key: key.to_owned(),
            });
        }
        let value = convert(key, text, &declared_types(schema, key))?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "amount": {"type": "number"},
            "count": {"type": "integer"},
            "code": {"type": "string"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array"},
            "maybe": {"type": ["integer", "string"]}
        }})
    }

    fn pairs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn values_follow_the_schema_types() {
        let args = arguments_from_pairs(
            &schema(),
            &pairs(&[
                "amount=12.50",
                "count=3",
                "code=007",
                "flag=true",
                "tags=[\"a\"]",
                "maybe=x",
            ]),
        );
        assert_eq!(
            Value::Object(args.unwrap_or_default()),
            json!({"amount": 12.5, "count": 3, "code": "007", "flag": true, "tags": ["a"], "maybe": "x"})
        );
    }

    #[test]
    fn undeclared_keys_are_json_or_strings() {
        let args =
            arguments_from_pairs(&json!({}), &pairs(&["n=5", "s=hello world", "o={\"a\":1}"]));
        assert_eq!(
            Value::Object(args.unwrap_or_default()),
            json!({"n": 5, "s": "hello world", "o": {"a": 1}})
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named() {
        let error = arguments_from_pairs(&schema(), &pairs(&["count=three"]));
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("argument \"count\" must be an integer, but \"three\" is not".to_owned())
        );
    }

    #[test]
    fn malformed_pairs_are_rejected() {
        assert!(matches!(
            arguments_from_pairs(&schema(), &pairs(&["novalue"])),
            Err(ArgError::MissingEquals { .. })
        ));
        assert!(matches!(
            arguments_from_pairs(&schema(), &pairs(&["a=1", "a=2"])),
            Err(ArgError::Duplicate { .. })
        ));
    }
}
