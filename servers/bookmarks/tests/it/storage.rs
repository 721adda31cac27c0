//! Declarations, concurrency and migrations.

use serde_json::{Value, json};
use switchboard_bookmarks::{BookmarksError, MIGRATIONS_TABLE};
use switchboard_server::Session;
use switchboard_store::{Location, sqlx};

use crate::{Db, MODERN_META, call_line, exchange, on_both_backends, sqlite};

on_both_backends! {
    eight_tasks_adding_25_bookmarks_each_all_succeed,
    concurrent_adds_of_one_url_make_one_bookmark,
    a_database_from_a_newer_version_is_refused,
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
            "add_bookmark",
            "search_bookmarks",
            "list_by_tag",
            "list_tags",
            "update_bookmark",
            "delete_bookmark"
        ]
    );
    let read = json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false});
    let expectations = [
        (
            "add_bookmark",
            "bookmarks:write",
            json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}),
        ),
        ("search_bookmarks", "bookmarks:read", read.clone()),
        ("list_by_tag", "bookmarks:read", read.clone()),
        ("list_tags", "bookmarks:read", read),
        (
            "update_bookmark",
            "bookmarks:write",
            json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false}),
        ),
        (
            "delete_bookmark",
            "bookmarks:admin",
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
    let add = &tool("add_bookmark")["inputSchema"];
    assert_eq!(add["required"], json!(["url"]));
    assert_eq!(add["properties"]["url"]["maxLength"], 2048);
    assert_eq!(add["properties"]["title"]["maxLength"], 300);
    assert_eq!(add["properties"]["notes"]["maxLength"], 4000);
    assert_eq!(add["properties"]["tags"]["maxItems"], 32);
    assert_eq!(add["properties"]["tags"]["items"]["maxLength"], 64);
    let update = &tool("update_bookmark")["inputSchema"];
    assert_eq!(update["properties"]["tags"]["maxItems"], 32);
    assert_eq!(update["properties"]["tags"]["items"]["maxLength"], 64);
    let search = &tool("search_bookmarks")["inputSchema"];
    assert_eq!(search["required"], json!(["query"]));
    assert_eq!(search["properties"]["limit"]["maximum"], 1000);
    assert_eq!(search["properties"]["query"]["minLength"], 1);
    assert_eq!(
        tool("add_bookmark")["outputSchema"]["required"],
        json!(["created", "bookmark"])
    );

    // The structured content of every tool matches its declared output schema.
    let id = db
        .add(json!({"url": "https://example.com/", "title": "Example", "tags": ["a"]}))
        .await;
    let calls = [
        ("add_bookmark", json!({"url": "https://example.com/"})),
        ("search_bookmarks", json!({"query": "example"})),
        ("list_by_tag", json!({"tag": "a"})),
        ("list_tags", json!({})),
        ("update_bookmark", json!({"id": id, "notes": "n"})),
        ("delete_bookmark", json!({"id": id})),
    ];
    for (name, arguments) in calls {
        let schema = tool(name)["outputSchema"].clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let content = db.ok(name, arguments).await;
        assert!(
            validator.is_valid(&content),
            "{name}: {content} does not fit {schema}"
        );
    }

    let resources = db
        .raw(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{{"_meta":{MODERN_META}}}}}"#
        ))
        .await;
    assert_eq!(
        resources["result"]["resources"][0]["uri"],
        "bookmarks://tags"
    );
    let templates = db
        .raw(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"resources/templates/list","params":{{"_meta":{MODERN_META}}}}}"#
        ))
        .await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "bookmarks://bookmark/{id}"
    );
}

async fn eight_tasks_adding_25_bookmarks_each_all_succeed(db: &Db) {
    const TASKS: usize = 8;
    const EACH: usize = 25;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let server = db.server.clone();
        tasks.spawn(async move {
            // A session of its own per task.
            let mut session = Session::new(None);
            let mut failures = Vec::new();
            for n in 0..EACH {
                let arguments = json!({
                    "url": format!("https://example.com/{task}/{n}"),
                    "title": format!("page {n} of writer {task}"),
                    "tags": [format!("writer{task}"), "load"],
                });
                let answer = exchange(
                    &server,
                    &mut session,
                    &call_line(n, "add_bookmark", &arguments),
                )
                .await;
                if answer["result"]["isError"] == true
                    || answer.get("error").is_some()
                    || answer["result"]["structuredContent"]["created"] != true
                {
                    failures.push(answer);
                }
            }
            failures
        });
    }
    let failures = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut failures = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            failures.extend(joined.unwrap());
        }
        failures
    })
    .await
    .expect("200 writes finish within 2 minutes");
    assert!(failures.is_empty(), "failed writes: {failures:?}");
    assert_eq!(db.count().await, (TASKS * EACH) as i64);
    let tags = db.ok("list_tags", json!({})).await;
    assert_eq!(tags["tags"][0], json!({"tag": "load", "count": 200}));
    assert_eq!(tags["tags"].as_array().unwrap().len(), TASKS + 1);
    // The index got every one of them.
    let found = db
        .ok(
            "search_bookmarks",
            json!({"query": "page writer", "limit": 1000}),
        )
        .await;
    assert_eq!(found["bookmarks"].as_array().unwrap().len(), TASKS * EACH);
}

async fn concurrent_adds_of_one_url_make_one_bookmark(db: &Db) {
    const TASKS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let server = db.server.clone();
        tasks.spawn(async move {
            let arguments = json!({"url": format!("HTTPS://Example.com:443/same#{task}")});
            exchange(
                &server,
                &mut Session::new(None),
                &call_line(task, "add_bookmark", &arguments),
            )
            .await
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        answers.push(joined.unwrap());
    }
    let created = answers
        .iter()
        .filter(|a| a["result"]["structuredContent"]["created"] == true)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    let ids: Vec<&Value> = answers
        .iter()
        .map(|a| &a["result"]["structuredContent"]["bookmark"]["id"])
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0] && id.is_i64()), "{ids:?}");
    assert_eq!(db.count().await, 1);
}

async fn a_database_from_a_newer_version_is_refused(db: &Db) {
    db.add(json!({"url": "https://example.com/"})).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {MIGRATIONS_TABLE} (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, $3, $4, $5)"
    )))
    .bind(20_270_101_000_000_i64)
    .bind("from the future")
    .bind(true)
    .bind(vec![0_u8; 48])
    .bind(0_i64)
    .execute(db.bookmarks.store().pool())
    .await
    .unwrap();
    db.bookmarks.close().await;

    let error = switchboard_bookmarks::open(&db.location).await.unwrap_err();
    assert!(matches!(error, BookmarksError::Store(_)), "{error:?}");
    let shown = Location::parse(&db.location).unwrap().to_string();
    assert_eq!(
        error.to_string(),
        format!(
            "the database at {shown} was created by a newer Switchboard (migration 20270101000000 is unknown to this version); upgrade Switchboard or use another --db"
        )
    );
}

#[tokio::test]
async fn data_and_the_search_index_survive_reopening() {
    let db = sqlite().await;
    let id = db
        .add(json!({"url": "https://example.com/kept", "title": "Kept across restarts"}))
        .await;
    db.bookmarks.close().await;
    let reopened = switchboard_bookmarks::open(&db.location).await.unwrap();
    let server = switchboard_bookmarks::server(reopened.clone());
    let answer = exchange(
        &server,
        &mut Session::new(None),
        &call_line(1, "search_bookmarks", &json!({"query": "restarts"})),
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["bookmarks"][0]["id"],
        id
    );
    let applied: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {MIGRATIONS_TABLE}"
    )))
    .fetch_one(reopened.store().pool())
    .await
    .unwrap();
    assert_eq!(applied, 1);
    // The SQLite that sqlx bundles has FTS5, and the index is an FTS5 table.
    let fts5: i64 = sqlx::query_scalar("SELECT sqlite_compileoption_used('ENABLE_FTS5')")
        .fetch_one(reopened.store().pool())
        .await
        .unwrap();
    assert_eq!(fts5, 1);
    let sql: String =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'bookmarks_fts'")
            .fetch_one(reopened.store().pool())
            .await
            .unwrap();
    assert!(sql.contains("USING fts5("), "{sql}");
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(reopened.store().pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    reopened.close().await;
}

#[tokio::test]
async fn the_postgres_search_index_is_a_gin_over_a_tsvector() {
    let Some(db) = crate::postgres().await else {
        return;
    };
    let definition: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'bookmarks_search' \
         AND schemaname = current_schema()",
    )
    .fetch_one(db.bookmarks.store().pool())
    .await
    .unwrap();
    assert!(
        definition.contains("USING gin (search_document)"),
        "{definition}"
    );
    let column_type: String = sqlx::query_scalar(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name = 'bookmarks' AND column_name = 'search_document'",
    )
    .fetch_one(db.bookmarks.store().pool())
    .await
    .unwrap();
    assert_eq!(column_type, "tsvector");
    db.bookmarks.close().await;
}

#[tokio::test]
async fn the_database_location_must_be_usable() {
    let error = switchboard_bookmarks::open("mysql://root@localhost/bookmarks")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "\"mysql://root@localhost/bookmarks\" is not a database location: mysql:// databases are not supported; use a postgres:// URL or a SQLite file path"
    );
}
