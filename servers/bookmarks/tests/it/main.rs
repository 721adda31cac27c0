//! The bookmark server at its boundary: JSON-RPC lines into `Server::handle`, answers out.
//!
//! The behaviour suite (`behaviour.rs`) runs on SQLite always and on PostgreSQL when
//! `SWITCHBOARD_TEST_POSTGRES_URL` is set, each PostgreSQL test in a scratch schema of its own.
//! `bad_input.rs` pins the answers to malformed calls, one test each; `storage.rs` covers the
//! declarations, concurrency and migrations.

#![allow(clippy::unwrap_used, clippy::large_futures, clippy::print_stderr)]

mod bad_input;
mod behaviour;
mod storage;

use serde_json::{Value, json};
use switchboard_bookmarks::Bookmarks;
use switchboard_server::{Server, Session};
use switchboard_store::testing::{ScratchSchema, postgres_url};

/// The `_meta` of a 2026-07-28 request, which needs no session.
pub const MODERN_META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A server over a fresh database.
#[derive(Debug)]
pub struct Db {
    pub bookmarks: Bookmarks,
    pub server: Server,
    /// What `open` was given: a SQLite path or a PostgreSQL URL.
    pub location: String,
    _dir: Option<tempfile::TempDir>,
    /// Dropped last: the schema goes after the pool.
    _schema: Option<ScratchSchema>,
}

pub async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let location = dir
        .path()
        .join("data/bookmarks.sqlite3")
        .display()
        .to_string();
    let bookmarks = switchboard_bookmarks::open(&location).await.unwrap();
    Db {
        server: switchboard_bookmarks::server(bookmarks.clone()),
        bookmarks,
        location,
        _dir: Some(dir),
        _schema: None,
    }
}

/// A database in a scratch PostgreSQL schema, or `None` (with SKIPPED printed).
pub async fn postgres() -> Option<Db> {
    let base = postgres_url()?;
    let schema = ScratchSchema::create(&base).await.unwrap();
    let location = schema.url().to_owned();
    let bookmarks = switchboard_bookmarks::open(&location).await.unwrap();
    Some(Db {
        server: switchboard_bookmarks::server(bookmarks.clone()),
        bookmarks,
        location,
        _dir: None,
        _schema: Some(schema),
    })
}

/// Run each `async fn name(&Db)` as two tests, `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::sqlite().await;
                super::$name(&db).await;
                db.bookmarks.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::postgres().await else {
                    return;
                };
                super::$name(&db).await;
                db.bookmarks.close().await;
            }
        }
    )+};
}

/// Send one line and wait for its answer.
pub async fn exchange(server: &Server, session: &mut Session, line: &str) -> Value {
    let mut out = Vec::new();
    if let Some(pending) = server.handle(session, line.as_bytes(), &mut out) {
        let bytes = tokio::time::timeout(std::time::Duration::from_secs(30), pending)
            .await
            .expect("the handler answers within 30 s")
            .expect("the request was not cancelled");
        out.extend_from_slice(&bytes);
    }
    let text = String::from_utf8(out).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A `tools/call` line in the 2026-07-28 era.
pub fn call_line(id: impl std::fmt::Display, tool: &str, arguments: &Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":{},"arguments":{arguments},"_meta":{MODERN_META}}}}}"#,
        json!(tool)
    )
}

impl Db {
    /// Send a raw line (modern era, so no session is needed).
    pub async fn raw(&self, line: &str) -> Value {
        exchange(&self.server, &mut Session::new(None), line).await
    }

    /// Call a tool; the whole JSON-RPC answer.
    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.raw(&call_line(1, tool, &arguments)).await
    }

    /// Call a tool that must succeed; its structured content.
    pub async fn ok(&self, tool: &str, arguments: Value) -> Value {
        let answer = self.call(tool, arguments).await;
        let result = &answer["result"];
        assert!(
            result.is_object() && result["isError"] != true,
            "{tool} failed: {answer}"
        );
        result["structuredContent"].clone()
    }

    /// Add a bookmark; its id.
    pub async fn add(&self, arguments: Value) -> i64 {
        self.ok("add_bookmark", arguments).await["bookmark"]["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn read(&self, uri: &str) -> Value {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{{"uri":{},"_meta":{MODERN_META}}}}}"#,
            json!(uri)
        );
        self.raw(&line).await
    }

    /// The ids of a search, in order.
    pub async fn search(&self, arguments: Value) -> Vec<i64> {
        ids(&self.ok("search_bookmarks", arguments).await["bookmarks"])
    }

    pub async fn count(&self) -> i64 {
        switchboard_store::sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM bookmarks")
            .fetch_one(self.bookmarks.store().pool())
            .await
            .unwrap()
    }
}

/// The `id`s of a JSON array of bookmarks.
pub fn ids(bookmarks: &Value) -> Vec<i64> {
    bookmarks
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {bookmarks}"))
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect()
}

/// The `-32602` violations of an answer, as (pointer, message) pairs.
pub fn violations(answer: &Value) -> Vec<(String, String)> {
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    answer["error"]["data"]["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no violations in {answer}"))
        .iter()
        .map(|v| {
            (
                v["pointer"].as_str().unwrap().to_owned(),
                v["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The text of a tool result that reported an error.
pub fn tool_error(answer: &Value) -> String {
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}
