//! The JSON-RPC messages of the workloads, and the checks on their answers.
//!
//! Every peer gets the same bytes: a legacy `initialize` (protocol 2025-06-18), then
//! `notifications/initialized`, then tool calls with increasing integer ids. Each kind of call
//! is a [`Call`]: how to write it and how to check its answer.
//!
//! - [`ECHO`]: `tools/call echo {"text": ECHO_TEXT}`. An answer counts only if its first
//!   content item is the text we sent.
//! - [`ADD_EXPENSE`] and [`LIST_EXPENSES`]: the expense tracker's tools. An answer counts only
//!   if its `structuredContent` holds the expense we added, or a full page of
//!   [`LIST_LIMIT`] expenses newest first.

use std::io::Write as _;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The protocol revision every peer is driven with (the legacy `initialize` handshake).
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// The text every `echo` call sends. It is fixed so the floor can answer with fixed bytes.
pub const ECHO_TEXT: &str = "hello, switchboard";
/// The tool every echo peer serves.
pub const TOOL_NAME: &str = "echo";
/// The expense tracker's tools.
pub const ADD_EXPENSE_TOOL: &str = "add_expense";
pub const LIST_EXPENSES_TOOL: &str = "list_expenses";
/// The amount of every added expense, and the same in minor units of [`EXPENSE_CURRENCY`].
pub const EXPENSE_AMOUNT: &str = "12.50";
pub const EXPENSE_AMOUNT_MINOR: i64 = 1250;
/// The currency the servers default to (the calls name none).
pub const EXPENSE_CURRENCY: &str = "USD";
/// Categories the added expenses cycle through.
pub const EXPENSE_CATEGORIES: [&str; 4] = ["food", "rent", "travel", "office"];
/// The page size every `list_expenses` call asks for; the table always holds more rows.
pub const LIST_LIMIT: usize = 50;

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

/// Append one `tools/call add_expense` request (no trailing newline). The date and category
/// follow from the id, so the table holds many days and categories.
pub fn write_add_expense_call(out: &mut Vec<u8>, id: u64) {
    let month = 1 + id % 12;
    let day = 1 + (id / 12) % 28;
    let category = EXPENSE_CATEGORIES[(id % EXPENSE_CATEGORIES.len() as u64) as usize];
    let _ = write!(
        out,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{METHOD_TOOLS_CALL}","params":{{"name":"{ADD_EXPENSE_TOOL}","arguments":{{"amount":"{EXPENSE_AMOUNT}","category":"{category}","description":"benchmark expense {id}","date":"2026-{month:02}-{day:02}"}}}}}}"#,
    );
}

/// Append one `tools/call list_expenses` request for the newest page (no trailing newline).
pub fn write_list_expenses_call(out: &mut Vec<u8>, id: u64) {
    let _ = write!(
        out,
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{METHOD_TOOLS_CALL}","params":{{"name":"{LIST_EXPENSES_TOOL}","arguments":{{"limit":{LIST_LIMIT}}}}}}}"#,
    );
}

/// The answer check of a [`Call`].
pub type Check = fn(Result<&RawValue, &RawValue>) -> anyhow::Result<()>;

/// One kind of tool call: how to write it for an id, and how to check its answer.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The tool's name, for error text.
    pub tool: &'static str,
    pub write: fn(&mut Vec<u8>, u64),
    pub check: Check,
}

pub const ECHO: Call = Call {
    tool: TOOL_NAME,
    write: write_echo_call,
    check: check_echo_answer,
};
pub const ADD_EXPENSE: Call = Call {
    tool: ADD_EXPENSE_TOOL,
    write: write_add_expense_call,
    check: check_add_expense_answer,
};
pub const LIST_EXPENSES: Call = Call {
    tool: LIST_EXPENSES_TOOL,
    write: write_list_expenses_call,
    check: check_list_expenses_answer,
};

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
struct StructuredResult<T> {
    #[serde(rename = "structuredContent")]
    structured: Option<T>,
    #[serde(rename = "isError", default)]
    is_error: bool,
}

/// The fields of an expense the checks look at.
#[derive(Deserialize)]
struct ExpenseFields<'a> {
    id: i64,
    #[serde(borrow)]
    date: std::borrow::Cow<'a, str>,
    amount_minor: i64,
    #[serde(borrow)]
    currency: std::borrow::Cow<'a, str>,
}

impl ExpenseFields<'_> {
    fn check(&self) -> anyhow::Result<()> {
        if self.id < 1
            || self.amount_minor != EXPENSE_AMOUNT_MINOR
            || self.currency != EXPENSE_CURRENCY
            || self.date.len() != 10
        {
            bail!(
                "expense {} is {} {} on {:?}, not one the benchmark added ({EXPENSE_CURRENCY} {EXPENSE_AMOUNT_MINOR} minor units)",
                self.id,
                self.currency,
                self.amount_minor,
                self.date
            );
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct AddedExpense<'a> {
    #[serde(borrow)]
    expense: ExpenseFields<'a>,
}

#[derive(Deserialize)]
struct ExpensePage<'a> {
    #[serde(borrow)]
    expenses: Vec<ExpenseFields<'a>>,
}

/// A successful `tools/call` result with structured content, parsed as `T`.
fn structured<'a, T: Deserialize<'a>>(
    tool: &str,
    outcome: Result<&'a RawValue, &'a RawValue>,
) -> anyhow::Result<T> {
    let result = outcome.map_err(|error| anyhow!("the {tool} call failed: {}", error.get()))?;
    let parsed: StructuredResult<T> = serde_json::from_str(result.get()).with_context(|| {
        format!(
            "not the structured result of {tool}: {}",
            excerpt(result.get().as_bytes())
        )
    })?;
    if parsed.is_error {
        bail!(
            "the {tool} call returned isError: {}",
            excerpt(result.get().as_bytes())
        );
    }
    parsed.structured.with_context(|| {
        format!(
            "the {tool} result has no structuredContent: {}",
            excerpt(result.get().as_bytes())
        )
    })
}

/// Check the answer to `add_expense`: the new expense, with an id and the amount we sent.
pub fn check_add_expense_answer(outcome: Result<&RawValue, &RawValue>) -> anyhow::Result<()> {
    let added: AddedExpense<'_> = structured(ADD_EXPENSE_TOOL, outcome)?;
    added.expense.check()
}

/// Check the answer to `list_expenses`: a full page of expenses we added, newest first (by
/// date, then id).
pub fn check_list_expenses_answer(outcome: Result<&RawValue, &RawValue>) -> anyhow::Result<()> {
    let page: ExpensePage<'_> = structured(LIST_EXPENSES_TOOL, outcome)?;
    if page.expenses.len() != LIST_LIMIT {
        bail!(
            "list_expenses returned {} expenses instead of a full page of {LIST_LIMIT}",
            page.expenses.len()
        );
    }
    for expense in &page.expenses {
        expense.check()?;
    }
    let newest_first = page
        .expenses
        .windows(2)
        .all(|pair| (&pair[0].date, pair[0].id) > (&pair[1].date, pair[1].id));
    if !newest_first {
        bail!("list_expenses did not return the newest expenses first");
    }
    Ok(())
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
    fn expense_calls_are_valid_json_with_real_dates() {
        let mut out = Vec::new();
        for id in [0, 11, 12, 335, 336, 10_000] {
            out.clear();
            write_add_expense_call(&mut out, id);
            let value: serde_json::Value = serde_json::from_slice(&out).expect("the call is JSON");
            assert_eq!(value["id"], id);
            assert_eq!(value["params"]["name"], ADD_EXPENSE_TOOL);
            let arguments = &value["params"]["arguments"];
            assert_eq!(arguments["amount"], EXPENSE_AMOUNT);
            let date = arguments["date"].as_str().expect("a date");
            let (month, day) = (&date[5..7], &date[8..10]);
            assert!(
                ("01"..="12").contains(&month) && ("01"..="28").contains(&day),
                "{date}"
            );
        }
        out.clear();
        write_list_expenses_call(&mut out, 4);
        let value: serde_json::Value = serde_json::from_slice(&out).expect("the call is JSON");
        assert_eq!(value["params"]["name"], LIST_EXPENSES_TOOL);
        assert_eq!(value["params"]["arguments"]["limit"], LIST_LIMIT);
    }

    fn expense(id: i64, date: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id, "date": date, "amount": EXPENSE_AMOUNT, "amount_minor": EXPENSE_AMOUNT_MINOR,
            "currency": EXPENSE_CURRENCY, "category": "food", "description": "lunch"
        })
    }

    fn call_result(structured: serde_json::Value, is_error: bool) -> String {
        serde_json::json!({
            "jsonrpc": "2.0", "id": 9,
            "result": {"content": [{"type": "text", "text": "…"}], "isError": is_error, "structuredContent": structured}
        })
        .to_string()
    }

    #[test]
    fn an_add_expense_answer_must_hold_the_added_expense() {
        let good = call_result(
            serde_json::json!({"expense": expense(7, "2026-03-04")}),
            false,
        );
        check_add_expense_answer(answer(&good).1).expect("the expense we added passes");

        let tool_error = call_result(
            serde_json::json!({"expense": expense(7, "2026-03-04")}),
            true,
        );
        assert!(check_add_expense_answer(answer(&tool_error).1).is_err());
        let mut other_amount = expense(7, "2026-03-04");
        other_amount["amount_minor"] = 1251.into();
        let other_amount = call_result(serde_json::json!({"expense": other_amount}), false);
        assert!(check_add_expense_answer(answer(&other_amount).1).is_err());
        let text_only =
            r#"{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"added"}]}}"#;
        assert!(check_add_expense_answer(answer(text_only).1).is_err());
    }

    #[test]
    fn a_list_expenses_answer_must_be_a_full_page_newest_first() {
        // Newest first: by date, then id, both descending.
        let page: Vec<serde_json::Value> = (0..LIST_LIMIT as i64)
            .map(|n| expense(1000 - n, if n < 10 { "2026-12-01" } else { "2026-11-30" }))
            .collect();
        let good = call_result(
            serde_json::json!({"expenses": page, "next_cursor": "x"}),
            false,
        );
        check_list_expenses_answer(answer(&good).1).expect("a full page in order passes");

        let short = call_result(
            serde_json::json!({"expenses": page[1..], "next_cursor": null}),
            false,
        );
        assert!(check_list_expenses_answer(answer(&short).1).is_err());
        let mut swapped = page.clone();
        swapped.swap(3, 4);
        let swapped = call_result(
            serde_json::json!({"expenses": swapped, "next_cursor": "x"}),
            false,
        );
        assert!(check_list_expenses_answer(answer(&swapped).1).is_err());
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
