//! Elicitation forms in the terminal: one question per property of the requested schema,
//! typed by it (the flat object schemas of the MCP spec: string, number, integer, boolean,
//! enums and multi-select arrays).

use serde_json::{Map, Number, Value};
use switchboard_client::callbacks::{ElicitationRequest, ElicitationResponse};

use crate::{
    output,
    terminal::{Confirmation, Line, Terminal},
};

/// Tries per field before the form is given up (cancelled).
const ATTEMPTS: usize = 3;

/// The choices of an enum property: `enum`, or `oneOf`/`anyOf` entries with `const`.
fn choices(property: &Value) -> Option<Vec<Value>> {
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        return Some(values.clone());
    }
    let entries = property
        .get("oneOf")
        .or_else(|| property.get("anyOf"))
        .and_then(Value::as_array)?;
    Some(
        entries
            .iter()
            .filter_map(|entry| entry.get("const").cloned())
            .collect(),
    )
}

/// How a choice is shown and typed: a string as itself, anything else as JSON.
fn label(choice: &Value) -> String {
    choice
        .as_str()
        .map_or_else(|| choice.to_string(), str::to_owned)
}

fn pick(choices: &[Value], answer: &str) -> Result<Value, String> {
    if let Ok(index) = answer.parse::<usize>()
        && (1..=choices.len()).contains(&index)
    {
        return Ok(choices[index - 1].clone());
    }
    choices
        .iter()
        .find(|choice| label(choice) == answer)
        .cloned()
        .ok_or_else(|| {
            format!(
                "choose one of {} (or its number)",
                choices.iter().map(label).collect::<Vec<_>>().join(", ")
            )
        })
}

fn number(property: &Value, answer: &str, integer: bool) -> Result<Value, String> {
    let value: f64 = answer
        .parse()
        .map_err(|_| format!("\"{answer}\" is not a number"))?;
    if !value.is_finite() {
        return Err(format!("\"{answer}\" is not a finite number"));
    }
    if let Some(min) = property.get("minimum").and_then(Value::as_f64)
        && value < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = property.get("maximum").and_then(Value::as_f64)
        && value > max
    {
        return Err(format!("must be at most {max}"));
    }
    if integer {
        let whole: i64 = answer
            .parse()
            .map_err(|_| format!("\"{answer}\" is not a whole number"))?;
        return Ok(Value::from(whole));
    }
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| format!("\"{answer}\" is not a number"))
}

/// The value typed for one property; `Ok(None)` for an empty answer.
pub fn parse_field(property: &Value, answer: &str) -> Result<Option<Value>, String> {
    let answer = answer.trim();
    if answer.is_empty() {
        return Ok(None);
    }
    let kind = property
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    if let Some(choices) = choices(property)
        && kind != "array"
    {
        return pick(&choices, answer).map(Some);
    }
    let value = match kind {
        "boolean" => match answer.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" => Value::Bool(true),
            "n" | "no" | "false" => Value::Bool(false),
            _ => return Err("answer yes or no".to_owned()),
        },
        "number" => number(property, answer, false)?,
        "integer" => number(property, answer, true)?,
        "array" => {
            let items = property.get("items").cloned().unwrap_or(Value::Null);
            let allowed = choices(&items);
            let mut values = Vec::new();
            for part in answer.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                values.push(match &allowed {
                    Some(allowed) => pick(allowed, part)?,
                    None => Value::String(part.to_owned()),
                });
            }
            Value::Array(values)
        }
        _ => {
            let length = answer.chars().count() as u64;
            if let Some(min) = property.get("minLength").and_then(Value::as_u64)
                && length < min
            {
                return Err(format!("must have at least {min} characters"));
            }
            if let Some(max) = property.get("maxLength").and_then(Value::as_u64)
                && length > max
            {
                return Err(format!("must have at most {max} characters"));
            }
            Value::String(answer.to_owned())
        }
    };
    Ok(Some(value))
}

/// The question shown for one property.
fn question(name: &str, property: &Value, required: bool) -> String {
    let title = property
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let mut question = title.to_owned();
    if let Some(description) = property.get("description").and_then(Value::as_str) {
        question.push_str(&format!(" ({description})"));
    }
    if let Some(choices) = choices(property).or_else(|| property.get("items").and_then(choices)) {
        let listed: Vec<String> = choices
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}={}", i + 1, label(c)))
            .collect();
        question.push_str(&format!(" [{}]", listed.join(" ")));
    }
    if let Some(default) = property.get("default") {
        question.push_str(&format!(" (default {default})"));
    } else if !required {
        question.push_str(" (optional)");
    }
    question.push_str(": ");
    question
}

/// Ask the user to fill in an elicitation form.
pub async fn fill(terminal: &Terminal, request: &ElicitationRequest) -> ElicitationResponse {
    output::notice(&format!("A server asks: {}", request.message));
    match terminal.confirm("Answer it?").await {
        Confirmation::Yes => {}
        Confirmation::No(_) | Confirmation::NoAnswer => return ElicitationResponse::decline(),
        Confirmation::Interrupted => return ElicitationResponse::cancel(),
    }
    let schema = request.requested_schema.clone().unwrap_or(Value::Null);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut content = Map::new();
    for (name, property) in properties {
        let is_required = required.contains(&name.as_str());
        let mut answered = false;
        for _ in 0..ATTEMPTS {
            let line = terminal
                .read_line(&question(name, property, is_required), false)
                .await;
            let text = match line {
                Line::Text(text) => text,
                Line::Interrupted | Line::Eof => return ElicitationResponse::cancel(),
            };
            match parse_field(property, &text) {
                Ok(Some(value)) => {
                    content.insert(name.clone(), value);
                    answered = true;
                    break;
                }
                Ok(None) => {
                    if let Some(default) = property.get("default") {
                        content.insert(name.clone(), default.clone());
                        answered = true;
                        break;
                    }
                    if !is_required {
                        answered = true;
                        break;
                    }
                    output::notice(&format!("{name} is required"));
                }
                Err(problem) => output::notice(&format!("{name}: {problem}")),
            }
        }
        if !answered {
            output::notice("Too many invalid answers; the form is cancelled.");
            return ElicitationResponse::cancel();
        }
    }
    ElicitationResponse::accept(content)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_typed_by_the_schema() {
        assert_eq!(
            parse_field(&json!({"type": "string"}), " hi "),
            Ok(Some(json!("hi")))
        );
        assert_eq!(
            parse_field(&json!({"type": "integer"}), "42"),
            Ok(Some(json!(42)))
        );
        assert!(parse_field(&json!({"type": "integer"}), "4.5").is_err());
        assert_eq!(
            parse_field(&json!({"type": "number"}), "4.5"),
            Ok(Some(json!(4.5)))
        );
        assert_eq!(
            parse_field(&json!({"type": "boolean"}), "Yes"),
            Ok(Some(json!(true)))
        );
        assert_eq!(parse_field(&json!({"type": "string"}), ""), Ok(None));
    }

    #[test]
    fn bounds_and_choices_are_enforced() {
        let age = json!({"type": "integer", "minimum": 0, "maximum": 150});
        assert_eq!(
            parse_field(&age, "200"),
            Err("must be at most 150".to_owned())
        );
        let colour = json!({"type": "string", "enum": ["red", "green"]});
        assert_eq!(parse_field(&colour, "2"), Ok(Some(json!("green"))));
        assert_eq!(parse_field(&colour, "red"), Ok(Some(json!("red"))));
        assert!(
            parse_field(&colour, "blue")
                .expect_err("not a choice")
                .contains("red, green")
        );
        let titled =
            json!({"type": "string", "oneOf": [{"const": "a", "title": "A"}, {"const": "b"}]});
        assert_eq!(parse_field(&titled, "b"), Ok(Some(json!("b"))));
        let many = json!({"type": "array", "items": {"type": "string", "enum": ["x", "y", "z"]}});
        assert_eq!(parse_field(&many, "x, 3"), Ok(Some(json!(["x", "z"]))));
        let name = json!({"type": "string", "maxLength": 3});
        assert!(parse_field(&name, "abcd").is_err());
    }

    #[test]
    fn questions_say_what_is_expected() {
        let q = question(
            "colour",
            &json!({"type": "string", "title": "Colour", "enum": ["red", "green"], "default": "red"}),
            true,
        );
        assert_eq!(q, "Colour [1=red 2=green] (default \"red\"): ");
        assert_eq!(
            question("n", &json!({"type": "integer"}), false),
            "n (optional): "
        );
    }
}
