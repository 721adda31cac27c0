//! What the tools, resources and prompt do, on SQLite and PostgreSQL alike.

use serde_json::{Value, json};

use crate::{Db, on_both_backends, tool_error, violations};

on_both_backends! {
    add_list_and_summarise,
    amounts_are_exact_in_every_currency,
    list_pages_with_a_stable_cursor,
    list_filters_by_category_and_dates,
    summary_groups_by_day_and_month,
    mixed_currencies_are_summarised_per_currency,
    update_changes_only_the_given_fields,
    update_keeps_the_amount_when_the_currency_changes,
    delete_removes_the_expense,
    unknown_ids_are_tool_errors,
    resources_show_categories_expenses_and_months,
    monthly_review_embeds_the_summary,
}

fn lunch() -> Value {
    json!({"amount": "12.50", "category": "food", "description": "lunch", "date": "2026-07-15"})
}

async fn add_list_and_summarise(db: &Db) {
    let answer = db.call("add_expense", lunch()).await;
    let result = &answer["result"];
    let expense = &result["structuredContent"]["expense"];
    assert_eq!(
        expense,
        &json!({"id": expense["id"], "date": "2026-07-15", "amount": "12.50", "amount_minor": 1250,
                "currency": "USD", "category": "food", "description": "lunch"})
    );
    assert_eq!(
        result["content"][0]["text"],
        format!(
            "Added expense {}: USD 12.50 for food (lunch) on 2026-07-15.",
            expense["id"]
        )
    );
    db.add(
        json!({"amount": 40, "category": "travel", "description": "train", "date": "2026-07-16"}),
    )
    .await;
    db.add(json!({"amount": "7.25", "category": "food", "description": "coffee beans", "date": "2026-07-20"}))
        .await;

    let list = db.ok("list_expenses", json!({})).await;
    let dates: Vec<&str> = list["expenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-07-20", "2026-07-16", "2026-07-15"]);
    assert_eq!(list["next_cursor"], Value::Null);

    let answer = db
        .call(
            "get_summary",
            json!({"start_date": "2026-07-01", "end_date": "2026-07-31"}),
        )
        .await;
    let summary = &answer["result"]["structuredContent"];
    assert_eq!(
        summary,
        &json!({
            "start_date": "2026-07-01", "end_date": "2026-07-31", "group_by": "category", "count": 3,
            "totals": [{"currency": "USD", "total": "59.75", "total_minor": 5975, "count": 3}],
            "groups": [
                {"key": "travel", "currency": "USD", "total": "40.00", "total_minor": 4000, "count": 1},
                {"key": "food", "currency": "USD", "total": "19.75", "total_minor": 1975, "count": 2}
            ]
        })
    );
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "3 expenses from 2026-07-01 to 2026-07-31. Total: USD 59.75 (3 expenses).\nBy category:\n- travel: USD 40.00 (1)\n- food: USD 19.75 (2)"
    );
    assert_eq!(answer["result"]["resultType"], "complete");

    // Without a date, an expense is today's, and `period: month` finds it.
    db.add(json!({"amount": "1", "category": "misc", "description": "today"}))
        .await;
    let month = db.ok("get_summary", json!({"period": "month"})).await;
    assert_eq!(month["count"], 1, "{month}");
    assert_eq!(month["groups"][0]["key"], "misc");
    let week = db.ok("get_summary", json!({"period": "week"})).await;
    assert_eq!(week["count"], 1, "{week}");
    let default = db.ok("get_summary", json!({})).await;
    assert_eq!(default["start_date"], month["start_date"]);
}

async fn amounts_are_exact_in_every_currency(db: &Db) {
    let cases = [
        (json!(12.5), "USD", "12.50", 1250),
        (json!(0.1), "USD", "0.10", 10),
        (json!("19.99"), "usd", "19.99", 1999),
        (json!(1500), "JPY", "1500", 1500),
        (json!("1.234"), "BHD", "1.234", 1234),
        (json!(1e3), "EUR", "1000.00", 100_000),
    ];
    for (amount, currency, text, minor) in cases {
        let expense = db
            .ok(
                "add_expense",
                json!({"amount": amount, "currency": currency, "category": "c", "description": "d", "date": "2026-01-01"}),
            )
            .await["expense"]
            .clone();
        assert_eq!(expense["amount"], text, "{amount} {currency}");
        assert_eq!(expense["amount_minor"], minor, "{amount} {currency}");
        assert_eq!(expense["currency"], currency.to_ascii_uppercase());
    }
    // A whole-number currency refuses decimals; a currency without a minor unit is refused.
    let answer = db
        .call(
            "add_expense",
            json!({"amount": "1500.5", "currency": "JPY", "category": "c", "description": "d"}),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/amount".to_owned(),
            "\"1500.5\" has 1 decimal place, but JPY amounts are whole numbers".to_owned()
        )]
    );
    let answer = db
        .call(
            "add_expense",
            json!({"amount": "1", "currency": "XAU", "category": "c", "description": "d"}),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/currency".to_owned(),
            "XAU (Gold (one troy ounce)) has no minor unit, so its amounts cannot be recorded; use a national currency".to_owned()
        )]
    );
}

async fn list_pages_with_a_stable_cursor(db: &Db) {
    // Several expenses share a day, so the id breaks ties.
    let days = [
        "2026-03-01",
        "2026-03-02",
        "2026-03-02",
        "2026-03-02",
        "2026-03-05",
        "2026-03-05",
        "2026-03-07",
    ];
    let mut expected = Vec::new();
    for (n, day) in days.iter().enumerate() {
        let id = db
            .add(json!({"amount": format!("{}.00", n + 1), "category": "c", "description": format!("#{n}"), "date": day}))
            .await;
        expected.push((day.to_string(), id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<i64> = expected.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    for _ in 0..10 {
        let mut arguments = json!({"limit": 3});
        if !cursor.is_null() {
            arguments["cursor"] = cursor.clone();
        }
        let page = db.ok("list_expenses", arguments).await;
        pages += 1;
        seen.extend(
            page["expenses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    // The cursor is a position: an expense added before it does not shift later pages.
    let first = db.ok("list_expenses", json!({"limit": 2})).await;
    db.add(json!({"amount": "1", "category": "c", "description": "new", "date": "2026-03-08"}))
        .await;
    let second = db
        .ok(
            "list_expenses",
            json!({"limit": 2, "cursor": first["next_cursor"]}),
        )
        .await;
    let ids: Vec<i64> = second["expenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, expected[2..4]);

    let answer = db
        .call("list_expenses", json!({"cursor": "not-a-cursor"}))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/cursor".to_owned(),
            "is not a cursor from list_expenses; call list_expenses without a cursor to start again"
                .to_owned()
        )]
    );
}

async fn list_filters_by_category_and_dates(db: &Db) {
    for (category, date) in [
        ("food", "2026-05-01"),
        ("food", "2026-05-10"),
        ("rent", "2026-05-10"),
        ("food", "2026-06-01"),
    ] {
        db.add(json!({"amount": "10", "category": category, "description": "x", "date": date}))
            .await;
    }
    let food_in_may = db
        .ok(
            "list_expenses",
            json!({"category": "food", "start_date": "2026-05-01", "end_date": "2026-05-31"}),
        )
        .await;
    let dates: Vec<&str> = food_in_may["expenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-05-10", "2026-05-01"]);
    let none = db
        .call("list_expenses", json!({"category": "nothing"}))
        .await;
    assert_eq!(none["result"]["content"][0]["text"], "No expenses match.");
    assert_eq!(
        none["result"]["structuredContent"],
        json!({"expenses": [], "next_cursor": null})
    );
}

async fn summary_groups_by_day_and_month(db: &Db) {
    for (amount, date) in [
        ("1", "2026-01-31"),
        ("2", "2026-02-01"),
        ("3", "2026-02-01"),
    ] {
        db.add(json!({"amount": amount, "category": "c", "description": "x", "date": date}))
            .await;
    }
    let by_day = db
        .ok(
            "get_summary",
            json!({"start_date": "2026-01-01", "end_date": "2026-12-31", "group_by": "day"}),
        )
        .await;
    assert_eq!(
        by_day["groups"],
        json!([
            {"key": "2026-01-31", "currency": "USD", "total": "1.00", "total_minor": 100, "count": 1},
            {"key": "2026-02-01", "currency": "USD", "total": "5.00", "total_minor": 500, "count": 2}
        ])
    );
    let by_month = db
        .ok(
            "get_summary",
            json!({"start_date": "2026-02-01", "group_by": "month"}),
        )
        .await;
    assert_eq!(by_month["end_date"], Value::Null);
    assert_eq!(
        by_month["groups"],
        json!([{"key": "2026-02", "currency": "USD", "total": "5.00", "total_minor": 500, "count": 2}])
    );
    let answer = db
        .call(
            "get_summary",
            json!({"period": "year", "start_date": "2026-01-01"}),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/period".to_owned(),
            "give either period or start_date/end_date, not both".to_owned()
        )]
    );
    let answer = db
        .call(
            "get_summary",
            json!({"start_date": "2026-02-01", "end_date": "2026-01-01"}),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/end_date".to_owned(),
            "2026-01-01 is before start_date 2026-02-01".to_owned()
        )]
    );
    let empty = db
        .call(
            "get_summary",
            json!({"start_date": "2030-01-01", "end_date": "2030-01-31"}),
        )
        .await;
    assert_eq!(
        empty["result"]["content"][0]["text"],
        "No expenses from 2030-01-01 to 2030-01-31."
    );
}

async fn mixed_currencies_are_summarised_per_currency(db: &Db) {
    for (amount, currency, category) in [
        ("10.00", "USD", "food"),
        ("5.50", "USD", "food"),
        ("20.00", "EUR", "food"),
        ("3000", "JPY", "travel"),
    ] {
        db.add(json!({"amount": amount, "currency": currency, "category": category, "description": "x", "date": "2026-08-03"}))
            .await;
    }
    let answer = db
        .call(
            "get_summary",
            json!({"start_date": "2026-08-01", "end_date": "2026-08-31"}),
        )
        .await;
    let summary = &answer["result"]["structuredContent"];
    assert_eq!(
        summary["totals"],
        json!([
            {"currency": "EUR", "total": "20.00", "total_minor": 2000, "count": 1},
            {"currency": "JPY", "total": "3000", "total_minor": 3000, "count": 1},
            {"currency": "USD", "total": "15.50", "total_minor": 1550, "count": 2}
        ])
    );
    assert_eq!(
        summary["groups"],
        json!([
            {"key": "food", "currency": "EUR", "total": "20.00", "total_minor": 2000, "count": 1},
            {"key": "travel", "currency": "JPY", "total": "3000", "total_minor": 3000, "count": 1},
            {"key": "food", "currency": "USD", "total": "15.50", "total_minor": 1550, "count": 2}
        ])
    );
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "4 expenses from 2026-08-01 to 2026-08-31. Totals per currency (amounts in different currencies are not added together): EUR 20.00 (1 expense); JPY 3000 (1 expense); USD 15.50 (2 expenses).\nBy category:\n- food: EUR 20.00 (1)\n- travel: JPY 3000 (1)\n- food: USD 15.50 (2)"
    );
}

async fn update_changes_only_the_given_fields(db: &Db) {
    let id = db.add(lunch()).await;
    let answer = db
        .call(
            "update_expense",
            json!({"id": id, "amount": 14, "description": "long lunch"}),
        )
        .await;
    assert_eq!(
        answer["result"]["structuredContent"]["expense"],
        json!({"id": id, "date": "2026-07-15", "amount": "14.00", "amount_minor": 1400,
               "currency": "USD", "category": "food", "description": "long lunch"})
    );
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!("Updated expense {id}: #{id} 2026-07-15 USD 14.00 food: long lunch")
    );
    let updated = db
        .ok(
            "update_expense",
            json!({"id": id, "category": "work", "date": "2026-07-14"}),
        )
        .await;
    assert_eq!(updated["expense"]["category"], "work");
    assert_eq!(updated["expense"]["date"], "2026-07-14");
    assert_eq!(updated["expense"]["amount"], "14.00");

    let answer = db.call("update_expense", json!({"id": id})).await;
    assert_eq!(
        violations(&answer),
        [(
            String::new(),
            "give at least one field to change: amount, category, description, date or currency"
                .to_owned()
        )]
    );
    // An amount is checked against the expense's own currency.
    let yen = db
        .add(json!({"amount": 500, "currency": "JPY", "category": "c", "description": "d"}))
        .await;
    let answer = db
        .call("update_expense", json!({"id": yen, "amount": "500.5"}))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/amount".to_owned(),
            "\"500.5\" has 1 decimal place, but JPY amounts are whole numbers".to_owned()
        )]
    );
}

async fn update_keeps_the_amount_when_the_currency_changes(db: &Db) {
    let whole = db
        .add(json!({"amount": "12.00", "category": "c", "description": "d", "date": "2026-01-01"}))
        .await;
    let converted = db
        .ok("update_expense", json!({"id": whole, "currency": "JPY"}))
        .await;
    assert_eq!(converted["expense"]["amount"], "12");
    assert_eq!(converted["expense"]["amount_minor"], 12);
    assert_eq!(converted["expense"]["currency"], "JPY");

    let cents = db.add(lunch()).await;
    let answer = db
        .call("update_expense", json!({"id": cents, "currency": "JPY"}))
        .await;
    assert_eq!(
        tool_error(&answer),
        format!(
            "Expense {cents} is USD 12.50, which cannot be written in JPY (JPY has 0 decimal places). Give the amount in JPY too."
        )
    );
    // Nothing changed.
    let still = db.read(&format!("expenses://expense/{cents}")).await;
    let expense: Value =
        serde_json::from_str(still["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(expense["currency"], "USD");
    let both = db
        .ok(
            "update_expense",
            json!({"id": cents, "currency": "JPY", "amount": 1900}),
        )
        .await;
    assert_eq!(both["expense"]["amount"], "1900");
}

async fn delete_removes_the_expense(db: &Db) {
    let id = db.add(lunch()).await;
    let answer = db.call("delete_expense", json!({"id": id})).await;
    assert_eq!(
        answer["result"]["structuredContent"]["deleted"]["description"],
        "lunch"
    );
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!("Deleted expense {id}: #{id} 2026-07-15 USD 12.50 food: lunch")
    );
    assert_eq!(db.count().await, 0);
    let again = db.call("delete_expense", json!({"id": id})).await;
    assert_eq!(
        tool_error(&again),
        format!("No expense has id {id}. Call list_expenses to see the ids.")
    );
}

async fn unknown_ids_are_tool_errors(db: &Db) {
    for (tool, arguments) in [
        ("update_expense", json!({"id": 42, "amount": "1"})),
        ("delete_expense", json!({"id": 42})),
    ] {
        let answer = db.call(tool, arguments).await;
        assert_eq!(
            tool_error(&answer),
            "No expense has id 42. Call list_expenses to see the ids.",
            "{tool}"
        );
        assert!(answer["result"].get("structuredContent").is_none());
    }
}

async fn resources_show_categories_expenses_and_months(db: &Db) {
    let id = db.add(lunch()).await;
    db.add(json!({"amount": "3", "category": "food", "description": "tea", "date": "2026-07-02"}))
        .await;
    db.add(
        json!({"amount": "30", "category": "books", "description": "novel", "date": "2026-06-30"}),
    )
    .await;

    let text = |answer: &Value| -> Value {
        assert_eq!(
            answer["result"]["contents"][0]["mimeType"],
            "application/json"
        );
        serde_json::from_str(answer["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
    };
    let categories = db.read("expenses://categories").await;
    assert_eq!(
        text(&categories),
        json!([{"category": "food", "count": 2}, {"category": "books", "count": 1}])
    );
    let expense = db.read(&format!("expenses://expense/{id}")).await;
    assert_eq!(text(&expense)["description"], "lunch");
    assert_eq!(
        expense["result"]["contents"][0]["uri"],
        format!("expenses://expense/{id}")
    );

    let missing = db.read("expenses://expense/999").await;
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    assert_eq!(missing["error"]["message"], "no expense has id 999");
    assert_eq!(
        missing["error"]["data"],
        json!({"uri": "expenses://expense/999"})
    );
    let nonsense = db.read("expenses://expense/abc").await;
    assert_eq!(nonsense["error"]["code"], -32602);
    assert_eq!(
        nonsense["error"]["data"],
        json!({"uri": "expenses://expense/abc"})
    );

    let july = db.read("expenses://summary/2026-07").await;
    let summary = text(&july);
    assert_eq!(summary["start_date"], "2026-07-01");
    assert_eq!(summary["end_date"], "2026-07-31");
    assert_eq!(
        summary["totals"],
        json!([{"currency": "USD", "total": "15.50", "total_minor": 1550, "count": 2}])
    );
    for bad in ["2026-13", "july", "2026-7"] {
        let uri = format!("expenses://summary/{bad}");
        let answer = db.read(&uri).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert_eq!(answer["error"]["data"], json!({"uri": uri}));
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("use YYYY-MM"),
            "{answer}"
        );
    }
}

async fn monthly_review_embeds_the_summary(db: &Db) {
    db.add(lunch()).await;
    let answer = db
        .prompt("monthly_review", json!({"month": "2026-07"}))
        .await;
    let result = &answer["result"];
    assert_eq!(result["description"], "Review of the expenses of 2026-07");
    assert_eq!(result["messages"][0]["role"], "user");
    let text = result["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Please review my spending for 2026-07."),
        "{text}"
    );
    assert!(
        text.contains(
            "1 expense from 2026-07-01 to 2026-07-31. Total: USD 12.50 (1 expense).\nBy category:\n- food: USD 12.50 (1)"
        ),
        "{text}"
    );
    let bad = db
        .prompt("monthly_review", json!({"month": "last month"}))
        .await;
    assert_eq!(
        violations(&bad),
        [(
            "/month".to_owned(),
            "\"last month\" is not a month; use YYYY-MM, like \"2026-07\"".to_owned()
        )]
    );
    let missing = db.prompt("monthly_review", json!({})).await;
    assert_eq!(missing["error"]["code"], -32602);
    assert_eq!(missing["error"]["data"], json!({"missing": ["month"]}));
}
