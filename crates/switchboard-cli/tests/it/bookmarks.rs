//! `switchboard serve bookmarks`, with the real binary behind `switchboard --stdio`.

use serde_json::{Value, json};
use switchboard_store::testing::{ScratchSchema, postgres_url};

use crate::{Sandbox, stderr, stdout};

fn switchboard() -> String {
    assert_cmd::cargo::cargo_bin("switchboard")
        .display()
        .to_string()
}

/// `--stdio` text that serves the bookmarks at `db` (named "bookmarks" by the ad-hoc naming),
/// or at the default location when `db` is `None`.
fn serve_spec(db: Option<&str>) -> String {
    match db {
        Some(db) => format!("{} serve bookmarks --db '{db}'", switchboard()),
        None => format!("{} serve bookmarks", switchboard()),
    }
}

/// Run `switchboard --stdio SPEC ARGS...`; (exit code, stdout, stderr).
fn with_server(
    sandbox: &Sandbox,
    db: Option<&str>,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let output = sandbox
        .cmd()
        .env_remove("DATABASE_URL")
        .arg("--stdio")
        .arg(serve_spec(db))
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), stdout(&output), stderr(&output))
}

fn add(sandbox: &Sandbox, db: Option<&str>, url: &str) -> (Option<i32>, String, String) {
    with_server(
        sandbox,
        db,
        &[
            "call",
            "bookmarks/add_bookmark",
            "--arg",
            &format!("url={url}"),
            "--arg",
            "title=The Rust Book",
            "--arg",
            r#"tags=["Rust", "docs"]"#,
            "--arg",
            "notes=Read chapter 16 on concurrency.",
        ],
    )
}

fn add_then_search(sandbox: &Sandbox, db: &str) {
    let (code, out, err) = add(
        sandbox,
        Some(db),
        "HTTPS://Doc.Rust-Lang.org:443/book/#intro",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(
            "Added bookmark 1: #1 The Rust Book <https://doc.rust-lang.org/book/> [docs, rust]\nstructured content:\n"
        ),
        "{out}"
    );

    // The same page again: the existing bookmark, not a second one.
    let (code, out, err) = add(sandbox, Some(db), "https://doc.rust-lang.org/book/");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(
            "https://doc.rust-lang.org/book/ is already bookmarked as 1; nothing was added."
        ),
        "{out}"
    );

    let (code, out, err) = with_server(
        sandbox,
        Some(db),
        &[
            "call",
            "bookmarks/search_bookmarks",
            "--arg",
            "query=concurrency",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(
            "1 bookmark matches \"concurrency\" (best first):\n#1 The Rust Book <https://doc.rust-lang.org/book/> [docs, rust]\n"
        ),
        "{out}"
    );

    let (code, out, err) = with_server(
        sandbox,
        Some(db),
        &[
            "--json",
            "call",
            "bookmarks/search_bookmarks",
            "--arg",
            "query=rust book",
            "--arg",
            "tag=DOCS",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    let content = &result["structuredContent"];
    assert_eq!(content["terms"], json!(["rust", "book"]));
    assert_eq!(content["tag"], "docs");
    let bookmarks = content["bookmarks"].as_array().unwrap();
    assert_eq!(bookmarks.len(), 1, "{content}");
    assert_eq!(bookmarks[0]["id"], 1);
    assert_eq!(bookmarks[0]["url"], "https://doc.rust-lang.org/book/");
    assert_eq!(bookmarks[0]["tags"], json!(["docs", "rust"]));
}

#[test]
fn serve_bookmarks_adds_and_searches_on_sqlite() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("links/bookmarks.sqlite3");
    add_then_search(&sandbox, &db.display().to_string());
    assert!(db.exists());
}

#[test]
fn serve_bookmarks_adds_and_searches_on_postgres() {
    let Some(base) = postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = runtime.block_on(ScratchSchema::create(&base)).unwrap();
    let sandbox = Sandbox::new();
    add_then_search(&sandbox, schema.url());
    drop(schema);
}

#[test]
fn serve_bookmarks_reports_bad_urls_and_unknown_ids() {
    let sandbox = Sandbox::new();
    let db = sandbox
        .path()
        .join("bookmarks.sqlite3")
        .display()
        .to_string();
    let (code, _, err) = add(&sandbox, Some(&db), "ftp://example.com/file");
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(
            "\"ftp://example.com/file\" is a ftp: URL; only http:// and https:// URLs can be bookmarked"
        ),
        "{err}"
    );
    let (code, out, err) = with_server(
        &sandbox,
        Some(&db),
        &["call", "bookmarks/delete_bookmark", "--arg", "id=42"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        out,
        "No bookmark has id 42. Call search_bookmarks or list_by_tag to find the ids.\n"
    );
}

#[test]
fn the_default_database_is_bookmarks_sqlite3_in_the_data_directory() {
    let sandbox = Sandbox::new();
    let (code, out, err) = add(&sandbox, None, "https://example.com/");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("Added bookmark 1: "), "{out}");
    assert!(
        sandbox
            .path()
            .join("data/switchboard/bookmarks.sqlite3")
            .exists()
    );
    assert!(
        !sandbox
            .path()
            .join("data/switchboard/expenses.sqlite3")
            .exists()
    );
}
