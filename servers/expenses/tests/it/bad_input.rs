//! Malformed calls, one test each, with the exact answer a client gets.

use serde_json::json;

use crate::{MODERN_META, sqlite, tool_error, violations};

fn expense_with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut arguments = json!({"amount": "12.50", "category": "food", "description": "lunch", "date": "2026-07-15"});
    arguments[field] = value;
    arguments
}

#[tokio::test]
async fn a_malformed_json_line_is_a_parse_error() {
    let db = sqlite().await;
    let answer = db
        .raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_expense","#)
        .await;
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    assert_eq!(answer["id"], serde_json::Value::Null);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("parse error: EOF while parsing"),
        "{answer}"
    );
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn wrong_types_list_every_violation() {
    let db = sqlite().await;
    let answer = db
        .call(
            "add_expense",
            json!({"amount": true, "category": 5, "description": ["lunch"], "date": 20260715}),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [
            (
                "/amount".to_owned(),
                "true is not of types \"number\", \"string\"".to_owned()
            ),
            (
                "/category".to_owned(),
                "5 is not of type \"string\"".to_owned()
            ),
            (
                "/description".to_owned(),
                "[\"lunch\"] is not of type \"string\"".to_owned()
            ),
            (
                "/date".to_owned(),
                "20260715 is not of types \"null\", \"string\"".to_owned()
            ),
        ]
    );
    let missing = db.call("add_expense", json!({"amount": "1"})).await;
    assert_eq!(
        violations(&missing),
        [
            (
                String::new(),
                "\"category\" is a required property".to_owned()
            ),
            (
                String::new(),
                "\"description\" is a required property".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn too_many_decimals_are_refused_not_rounded() {
    let db = sqlite().await;
    let answer = db
        .call("add_expense", expense_with("amount", json!("12.345")))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/amount".to_owned(),
            "\"12.345\" has 3 decimal places, but USD amounts have at most 2".to_owned()
        )]
    );
    let number = db
        .call("add_expense", expense_with("amount", json!(12.345)))
        .await;
    assert_eq!(
        violations(&number),
        [(
            "/amount".to_owned(),
            "12.345 has 3 decimal places, but USD amounts have at most 2".to_owned()
        )]
    );
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn negative_and_zero_amounts_are_refused() {
    let db = sqlite().await;
    let negative = db
        .call("add_expense", expense_with("amount", json!(-5)))
        .await;
    assert_eq!(
        violations(&negative),
        [(
            "/amount".to_owned(),
            "-5 is less than or equal to the minimum of 0".to_owned()
        )]
    );
    let negative_text = db
        .call("add_expense", expense_with("amount", json!("-5.00")))
        .await;
    assert_eq!(
        violations(&negative_text),
        [(
            "/amount".to_owned(),
            r#""-5.00" does not match "^[0-9]+(\.[0-9]+)?$""#.to_owned()
        )]
    );
    let zero = db
        .call("add_expense", expense_with("amount", json!("0.00")))
        .await;
    assert_eq!(
        violations(&zero),
        [(
            "/amount".to_owned(),
            "\"0.00\" must be greater than 0".to_owned()
        )]
    );
    let zero_number = db
        .call("add_expense", expense_with("amount", json!(0)))
        .await;
    assert_eq!(
        violations(&zero_number),
        [(
            "/amount".to_owned(),
            "0 is less than or equal to the minimum of 0".to_owned()
        )]
    );
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn bad_dates_are_refused() {
    let db = sqlite().await;
    let not_a_day = db
        .call("add_expense", expense_with("date", json!("2026-02-30")))
        .await;
    assert_eq!(
        violations(&not_a_day),
        [(
            "/date".to_owned(),
            "\"2026-02-30\" is not a day of the calendar".to_owned()
        )]
    );
    let words = db
        .call("add_expense", expense_with("date", json!("yesterday")))
        .await;
    assert_eq!(
        violations(&words),
        [(
            "/date".to_owned(),
            "\"yesterday\" does not match \"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"".to_owned()
        )]
    );
    let list = db
        .call("list_expenses", json!({"start_date": "2026-13-01"}))
        .await;
    assert_eq!(
        violations(&list),
        [(
            "/start_date".to_owned(),
            "\"2026-13-01\" is not a day of the calendar".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_limit_over_1000_is_refused() {
    let db = sqlite().await;
    let answer = db.call("list_expenses", json!({"limit": 1001})).await;
    assert_eq!(
        violations(&answer),
        [(
            "/limit".to_owned(),
            "1001 is greater than the maximum of 1000".to_owned()
        )]
    );
    let zero = db.call("list_expenses", json!({"limit": 0})).await;
    assert_eq!(
        violations(&zero),
        [(
            "/limit".to_owned(),
            "0 is less than the minimum of 1".to_owned()
        )]
    );
}

#[tokio::test]
async fn unknown_fields_are_refused() {
    let db = sqlite().await;
    let answer = db
        .call("add_expense", expense_with("colour", json!("red")))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            String::new(),
            "Additional properties are not allowed ('colour' was unexpected)".to_owned()
        )]
    );
    let summary = db
        .call("get_summary", json!({"period": "month", "currency": "USD"}))
        .await;
    assert_eq!(
        violations(&summary),
        [(
            String::new(),
            "Additional properties are not allowed ('currency' was unexpected)".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_huge_description_is_refused() {
    let db = sqlite().await;
    let huge = "x".repeat(501);
    let answer = db
        .call("add_expense", expense_with("description", json!(huge)))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/description".to_owned(),
            format!("\"{huge}\" is longer than 500 characters")
        )]
    );
    let long_category = db
        .call(
            "add_expense",
            expense_with("category", json!("c".repeat(65))),
        )
        .await;
    assert_eq!(violations(&long_category)[0].0, "/category");
    // 500 characters (not bytes) fit.
    let fits = "é".repeat(500);
    let id = db.add(expense_with("description", json!(fits))).await;
    assert!(id > 0);
}

#[tokio::test]
async fn an_unknown_id_is_a_tool_error_not_a_protocol_error() {
    let db = sqlite().await;
    let answer = db
        .call("update_expense", json!({"id": 42, "category": "food"}))
        .await;
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(
        tool_error(&answer),
        "No expense has id 42. Call list_expenses to see the ids."
    );
}

#[tokio::test]
async fn an_unknown_tool_is_named() {
    let db = sqlite().await;
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"add_expenses","arguments":{{}},"_meta":{MODERN_META}}}}}"#
    );
    let answer = db.raw(&line).await;
    assert_eq!(answer["error"]["code"], -32602);
    assert_eq!(answer["error"]["message"], "unknown tool: add_expenses");
}
