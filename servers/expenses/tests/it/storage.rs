//! Declarations, concurrency, migrations, import and export.

use serde_json::{Value, json};
use switchboard_expenses::{ExpensesError, Format, MIGRATIONS_TABLE};
use switchboard_server::Session;
use switchboard_store::{Location, sqlx};

use crate::{Db, MODERN_META, exchange, on_both_backends, sqlite};

on_both_backends! {
    eight_concurrent_writers_all_succeed,
    a_database_from_a_newer_version_is_refused,
    json_export_and_import_round_trip,
    csv_export_and_import_round_trip,
    an_import_with_a_bad_row_imports_nothing,
    imports_keep_ids_and_refuse_taken_ones,
}

#[tokio::test]
async fn tools_declare_schemas_annotations_and_scopes() {
    let db = sqlite().await;
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{MODERN_META}}}}}"#
    );
    let answer = db.raw(&line).await;
    let tools = answer["result"]["tools"].as_array().unwrap();
    let tool = |name: &str| -> &Value { tools.iter().find(|t| t["name"] == name).unwrap() };
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "add_expense",
            "list_expenses",
            "get_summary",
            "update_expense",
            "delete_expense"
        ]
    );
    let expectations = [
        (
            "add_expense",
            "expenses:write",
            json!({"readOnlyHint": false, "destructiveHint": false, "openWorldHint": false}),
        ),
        (
            "list_expenses",
            "expenses:read",
            json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}),
        ),
        (
            "get_summary",
            "expenses:read",
            json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false}),
        ),
        (
            "update_expense",
            "expenses:write",
            json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false}),
        ),
        (
            "delete_expense",
            "expenses:admin",
            json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false}),
        ),
    ];
    for (name, scope, annotations) in expectations {
        let tool = tool(name);
        assert_eq!(tool["_meta"]["dev.switchboard/scope"], scope, "{name}");
        assert_eq!(tool["annotations"], annotations, "{name}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
        assert_eq!(tool["inputSchema"]["additionalProperties"], false, "{name}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{name}");
    }
    let add = &tool("add_expense")["inputSchema"];
    assert_eq!(
        add["required"],
        json!(["amount", "category", "description"])
    );
    assert_eq!(add["properties"]["category"]["maxLength"], 64);
    assert_eq!(add["properties"]["description"]["maxLength"], 500);
    assert_eq!(
        add["properties"]["amount"]["type"],
        json!(["string", "number"])
    );
    let list = &tool("list_expenses")["inputSchema"];
    assert_eq!(list["properties"]["limit"]["maximum"], 1000);
    assert_eq!(
        tool("get_summary")["outputSchema"]["required"],
        json!(["group_by", "count", "totals", "groups"])
    );

    // The structured content of a call matches the declared output schema.
    let add_schema = tool("add_expense")["outputSchema"].clone();
    let validator = jsonschema_validator(&add_schema);
    let content = db
        .ok(
            "add_expense",
            json!({"amount": "1", "category": "c", "description": "d"}),
        )
        .await;
    assert!(validator(&content), "{content} does not fit {add_schema}");
    let summary_schema = tool("get_summary")["outputSchema"].clone();
    let summary = db.ok("get_summary", json!({"period": "year"})).await;
    assert!(jsonschema_validator(&summary_schema)(&summary), "{summary}");
    let list_schema = tool("list_expenses")["outputSchema"].clone();
    let page = db.ok("list_expenses", json!({})).await;
    assert!(jsonschema_validator(&list_schema)(&page), "{page}");

    let templates = db
        .raw(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"resources/templates/list","params":{{"_meta":{MODERN_META}}}}}"#
        ))
        .await;
    let uris: Vec<&str> = templates["result"]["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        ["expenses://expense/{id}", "expenses://summary/{month}"]
    );
}

/// Whether `value` fits `schema`, checked with the validator the kit uses.
fn jsonschema_validator(schema: &Value) -> impl Fn(&Value) -> bool {
    let validator = jsonschema::validator_for(schema).unwrap();
    move |value: &Value| validator.is_valid(value)
}

async fn eight_concurrent_writers_all_succeed(db: &Db) {
    const WRITERS: usize = 8;
    const EACH: usize = 50;
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let server = db.server.clone();
        tasks.spawn(async move {
            let mut session = Session::new(None);
            let mut failures = Vec::new();
            for n in 0..EACH {
                let line = format!(
                    r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"add_expense","arguments":{{"amount":"{}.{n:02}","category":"w{writer}","description":"write {n}"}},"_meta":{MODERN_META}}}}}"#,
                    writer + 1
                );
                let answer = exchange(&server, &mut session, &line).await;
                if answer["result"]["isError"] == true || answer.get("error").is_some() {
                    failures.push(answer);
                }
            }
            failures
        });
    }
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            failures.extend(joined.unwrap());
        }
        failures
    })
    .await
    .expect("400 writes finish within 2 minutes");
    assert!(outcome.is_empty(), "failed writes: {outcome:?}");
    assert_eq!(db.count().await, (WRITERS * EACH) as i64);
    let ids: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT id) FROM expenses")
        .fetch_one(db.expenses.store().pool())
        .await
        .unwrap();
    assert_eq!(ids, 400);
}

async fn a_database_from_a_newer_version_is_refused(db: &Db) {
    db.add(json!({"amount": "1", "category": "c", "description": "d"}))
        .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {MIGRATIONS_TABLE} (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, $3, $4, $5)"
    )))
    .bind(20_270_101_000_000_i64)
    .bind("from the future")
    .bind(true)
    .bind(vec![0_u8; 48])
    .bind(0_i64)
    .execute(db.expenses.store().pool())
    .await
    .unwrap();
    db.expenses.close().await;

    let error = switchboard_expenses::open(&db.location).await.unwrap_err();
    assert!(matches!(error, ExpensesError::Store(_)), "{error:?}");
    let shown = Location::parse(&db.location).unwrap().to_string();
    assert_eq!(
        error.to_string(),
        format!(
            "the database at {shown} was created by a newer Switchboard (migration 20270101000000 is unknown to this version); upgrade Switchboard or use another --db"
        )
    );
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let db = sqlite().await;
    let id = db
        .add(
            json!({"amount": "2.50", "category": "c", "description": "kept", "date": "2026-02-02"}),
        )
        .await;
    db.expenses.close().await;
    let reopened = switchboard_expenses::open(&db.location).await.unwrap();
    let server = switchboard_expenses::server(reopened.clone());
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"list_expenses","arguments":{{}},"_meta":{MODERN_META}}}}}"#
    );
    let answer = exchange(&server, &mut Session::new(None), &line).await;
    assert_eq!(
        answer["result"]["structuredContent"]["expenses"][0]["id"],
        id
    );
    let applied: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {MIGRATIONS_TABLE}"
    )))
    .fetch_one(reopened.store().pool())
    .await
    .unwrap();
    assert_eq!(applied, 1);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(reopened.store().pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    for (pragma, expected) in [
        ("PRAGMA busy_timeout", 5000),
        ("PRAGMA foreign_keys", 1),
        ("PRAGMA synchronous", 1),
    ] {
        let value: i64 = sqlx::query_scalar(pragma)
            .fetch_one(reopened.store().pool())
            .await
            .unwrap();
        assert_eq!(value, expected, "{pragma}");
    }
    reopened.close().await;
}

/// The tutorial server's file, plus one row in another currency.
const TUTORIAL_JSON: &str = r#"[
  {"id": 1, "amount": 12.5, "category": "food", "description": "lunch", "date": "2026-07-15"},
  {"id": 2, "amount": 40, "category": "travel", "description": "train", "date": "2026-07-16"},
  {"id": 5, "amount": "3.10", "category": "food", "description": "coffee, \"to go\"", "date": "2026-07-17T08:30:00Z", "currency": "EUR"},
  {"id": 7, "amount": 1500, "category": "gifts", "description": "omiyage", "date": "2026-07-18", "currency": "JPY", "created_at": "ignored"}
]"#;

const EXPORTED_JSON: &str = r#"[
  {
    "id": 1,
    "amount": 12.50,
    "category": "food",
    "description": "lunch",
    "date": "2026-07-15",
    "currency": "USD"
  },
  {
    "id": 2,
    "amount": 40.00,
    "category": "travel",
    "description": "train",
    "date": "2026-07-16",
    "currency": "USD"
  },
  {
    "id": 5,
    "amount": 3.10,
    "category": "food",
    "description": "coffee, \"to go\"",
    "date": "2026-07-17",
    "currency": "EUR"
  },
  {
    "id": 7,
    "amount": 1500,
    "category": "gifts",
    "description": "omiyage",
    "date": "2026-07-18",
    "currency": "JPY"
  }
]
"#;

const EXPORTED_CSV: &str = "id,date,amount,currency,category,description
1,2026-07-15,12.50,USD,food,lunch
2,2026-07-16,40.00,USD,travel,train
5,2026-07-17,3.10,EUR,food,\"coffee, \"\"to go\"\"\"
7,2026-07-18,1500,JPY,gifts,omiyage
";

async fn json_export_and_import_round_trip(db: &Db) {
    let report = db
        .expenses
        .import(Format::Json, TUTORIAL_JSON)
        .await
        .unwrap();
    assert_eq!(
        (report.imported, report.kept_ids, report.new_ids),
        (4, 4, 0)
    );
    let exported = db.expenses.export(Format::Json).await.unwrap();
    assert_eq!(exported, EXPORTED_JSON);

    // New expenses get ids after the imported ones.
    let next = db
        .add(json!({"amount": "1", "category": "c", "description": "after import"}))
        .await;
    assert_eq!(next, 8);
    db.ok("delete_expense", json!({"id": next})).await;

    // Our own export imports into another database unchanged.
    let other = crate::sqlite().await;
    other
        .expenses
        .import(Format::Json, &exported)
        .await
        .unwrap();
    assert_eq!(
        other.expenses.export(Format::Json).await.unwrap(),
        EXPORTED_JSON
    );
    other.expenses.close().await;
}

async fn csv_export_and_import_round_trip(db: &Db) {
    db.expenses
        .import(Format::Json, TUTORIAL_JSON)
        .await
        .unwrap();
    let csv = db.expenses.export(Format::Csv).await.unwrap();
    assert_eq!(csv, EXPORTED_CSV);

    let other = crate::sqlite().await;
    let report = other.expenses.import(Format::Csv, &csv).await.unwrap();
    assert_eq!(report.imported, 4);
    assert_eq!(
        other.expenses.export(Format::Csv).await.unwrap(),
        EXPORTED_CSV
    );
    assert_eq!(
        other.expenses.export(Format::Json).await.unwrap(),
        EXPORTED_JSON
    );
    other.expenses.close().await;

    // Columns in any order, without ids or currencies.
    let report = db
        .expenses
        .import(
            Format::Csv,
            "category,amount,date,description\nbooks,9.99,2026-08-01,a novel\n",
        )
        .await
        .unwrap();
    assert_eq!((report.imported, report.new_ids), (1, 1));
    let books = db.ok("list_expenses", json!({"category": "books"})).await;
    assert_eq!(books["expenses"][0]["id"], 8);
    assert_eq!(books["expenses"][0]["currency"], "USD");
}

async fn an_import_with_a_bad_row_imports_nothing(db: &Db) {
    let bad_amount = r#"[
      {"amount": 1, "category": "a", "description": "", "date": "2026-01-01"},
      {"amount": 2, "category": "b", "description": "", "date": "2026-01-02"},
      {"amount": 3.333, "category": "c", "description": "", "date": "2026-01-03"}
    ]"#;
    let error = db
        .expenses
        .import(Format::Json, bad_amount)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 3, field amount: 3.333 has 3 decimal places, but USD amounts have at most 2"
    );
    let cases = [
        (
            Format::Json,
            r#"[{"amount": 1, "category": "a", "date": "2026-02-30"}]"#,
            "row 1, field date: \"2026-02-30\" is not a day of the calendar",
        ),
        (
            Format::Json,
            r#"[{"amount": 1, "category": "a", "date": "2026-02-01"}, 7]"#,
            "row 2: is not a JSON object: 7",
        ),
        (
            Format::Json,
            r#"[{"amount": true, "category": "a", "date": "2026-02-01"}]"#,
            "row 1, field amount: must be a number or a string, not true",
        ),
        (
            Format::Json,
            r#"[{"amount": 1, "category": "a", "date": "2026-02-01", "currency": "ZZZ"}]"#,
            "row 1, field currency: \"ZZZ\" is not an ISO 4217 currency code; use a code like USD, EUR or JPY",
        ),
        (
            Format::Json,
            r#"[{"amount": -4, "category": "a", "date": "2026-02-01"}]"#,
            "row 1, field amount: -4 must be greater than 0",
        ),
        (
            Format::Json,
            r#"{"not": "expenses"}"#,
            "the JSON input cannot be imported: missing field `expenses` at line 1 column 19",
        ),
        (
            Format::Json,
            r#"[{"amount": 1,"#,
            "the JSON input cannot be imported: EOF while parsing an object at line 1 column 14",
        ),
        (
            Format::Csv,
            "id,date,amount,currency,category,description\n1,2026-01-01,1,USD,a,x\n2,2026-01-02,abc,USD,b,y\n",
            "row 2 (line 3), field amount: abc is not a decimal amount like \"12.50\"",
        ),
        (
            Format::Csv,
            "id,date,amount,currency,category,description\n1,2026-01-01,1,USD,a\n",
            "row 1 (line 2): CSV error: record 1 (line: 2, byte: 45): found record with 5 fields, but the previous record has 6 fields",
        ),
        (
            Format::Csv,
            "when,amount,category\n2026-01-01,1,a\n",
            "the CSV input cannot be imported: unknown column \"when\"; the header is id,date,amount,currency,category,description",
        ),
        (
            Format::Csv,
            "id,date,amount,currency,category,description\n,2026-01-01,1,USD,,x\n",
            "row 1 (line 2), field category: is missing or blank",
        ),
    ];
    for (format, input, message) in cases {
        let error = db.expenses.import(format, input).await.unwrap_err();
        assert_eq!(error.to_string(), message, "{input}");
    }
    assert_eq!(db.count().await, 0);
}

async fn imports_keep_ids_and_refuse_taken_ones(db: &Db) {
    db.expenses
        .import(Format::Json, TUTORIAL_JSON)
        .await
        .unwrap();
    // Importing the same file again would duplicate every expense: refused, nothing added.
    let error = db
        .expenses
        .import(Format::Json, TUTORIAL_JSON)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 1, field id: expense 1 already exists in the database; remove the ids from the file to import its rows as new expenses"
    );
    let repeated = r#"[
      {"id": 10, "amount": 1, "category": "a", "date": "2026-01-01"},
      {"id": 10, "amount": 2, "category": "b", "date": "2026-01-02"}
    ]"#;
    let error = db
        .expenses
        .import(Format::Json, repeated)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 2, field id: id 10 is already used by row 1"
    );
    // A conflict late in the file rolls back the rows before it.
    let late_conflict = r#"[
      {"id": 20, "amount": 1, "category": "a", "date": "2026-01-01"},
      {"amount": 1, "category": "a", "date": "2026-01-01"},
      {"id": 2, "amount": 2, "category": "b", "date": "2026-01-02"}
    ]"#;
    let error = db
        .expenses
        .import(Format::Json, late_conflict)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("row 3, field id: expense 2 already exists")
    );
    assert_eq!(db.count().await, 4);
    let read = db.read("expenses://expense/20").await;
    assert_eq!(read["error"]["code"], -32602);
}

#[tokio::test]
async fn the_database_location_must_be_usable() {
    let error = switchboard_expenses::open("mysql://root@localhost/expenses")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "\"mysql://root@localhost/expenses\" is not a database location: mysql:// databases are not supported; use a postgres:// URL or a SQLite file path"
    );
    // A directory where the file should be.
    let dir = tempfile::tempdir().unwrap();
    let error = switchboard_expenses::open(&dir.path().display().to_string())
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with(&format!(
            "cannot open the database at {}",
            dir.path().display()
        )),
        "{error}"
    );
}
