//! Malformed calls, one test each, with the exact answer a client gets. Nothing is stored.

use serde_json::{Value, json};

use crate::{MODERN_META, sqlite, tool_error, violations};

fn bookmark_with(field: &str, value: Value) -> Value {
    let mut arguments =
        json!({"url": "https://example.com/", "title": "Example", "tags": ["a"], "notes": "n"});
    arguments[field] = value;
    arguments
}

#[tokio::test]
async fn a_non_http_url_is_refused() {
    let db = sqlite().await;
    for (url, scheme) in [
        ("ftp://example.com/file.txt", "ftp"),
        ("file:///etc/passwd", "file"),
        ("javascript:alert(1)", "javascript"),
        ("mailto:me@example.com", "mailto"),
    ] {
        let answer = db
            .call("add_bookmark", bookmark_with("url", json!(url)))
            .await;
        assert_eq!(
            violations(&answer),
            [(
                "/url".to_owned(),
                format!(
                    "{url:?} is a {scheme}: URL; only http:// and https:// URLs can be bookmarked"
                )
            )],
            "{url}"
        );
    }
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn a_malformed_url_is_refused() {
    let db = sqlite().await;
    let relative = db
        .call(
            "add_bookmark",
            bookmark_with("url", json!("example.com/page")),
        )
        .await;
    assert_eq!(
        violations(&relative),
        [(
            "/url".to_owned(),
            "\"example.com/page\" is not a URL (relative URL without a base); give an absolute http:// or https:// URL, like \"https://example.com/page\"".to_owned()
        )]
    );
    let bad_host = db
        .call(
            "add_bookmark",
            bookmark_with("url", json!("http://exa mple.com/")),
        )
        .await;
    assert_eq!(
        violations(&bad_host),
        [(
            "/url".to_owned(),
            "\"http://exa mple.com/\" is not a URL (invalid international domain name); give an absolute http:// or https:// URL, like \"https://example.com/page\"".to_owned()
        )]
    );
    let bad_port = db
        .call(
            "update_bookmark",
            json!({"id": 1, "url": "https://example.com:99999/"}),
        )
        .await;
    assert_eq!(violations(&bad_port)[0].0, "/url");
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn a_url_with_a_password_is_refused_without_echoing_it() {
    let db = sqlite().await;
    let answer = db
        .call(
            "add_bookmark",
            bookmark_with("url", json!("https://me:hunter2@example.com/")),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/url".to_owned(),
            "the URL contains a user name or password; remove it, since bookmarks are stored and shown as plain text".to_owned()
        )]
    );
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn a_url_over_2048_characters_is_refused() {
    let db = sqlite().await;
    let long = format!("https://example.com/{}", "a".repeat(2029));
    assert_eq!(long.chars().count(), 2049);
    let answer = db
        .call("add_bookmark", bookmark_with("url", json!(long)))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/url".to_owned(),
            format!("\"{long}\" is longer than 2048 characters")
        )]
    );
    // Short enough as typed, too long once percent-encoded.
    let spaces = format!("https://example.com/{}x", " ".repeat(1000));
    let answer = db
        .call("add_bookmark", bookmark_with("url", json!(spaces)))
        .await;
    let found = violations(&answer);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "/url");
    assert!(
        found[0]
            .1
            .starts_with("is 3021 characters long once normalised (https://example.com/%20%20"),
        "{found:?}"
    );
    assert!(found[0].1.ends_with("...); at most 2048 fit"), "{found:?}");
    // 2048 fit.
    let fits = format!("https://example.com/{}", "a".repeat(2028));
    assert!(db.add(bookmark_with("url", json!(fits))).await > 0);
}

#[tokio::test]
async fn a_title_over_300_characters_is_refused() {
    let db = sqlite().await;
    let long = "t".repeat(301);
    let answer = db
        .call("add_bookmark", bookmark_with("title", json!(long)))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/title".to_owned(),
            format!("\"{long}\" is longer than 300 characters")
        )]
    );
    // 300 characters (not bytes) fit.
    assert!(db.add(bookmark_with("title", json!("é".repeat(300)))).await > 0);
}

#[tokio::test]
async fn notes_over_4000_characters_are_refused() {
    let db = sqlite().await;
    let long = "n".repeat(4001);
    let answer = db
        .call("add_bookmark", bookmark_with("notes", json!(long)))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/notes".to_owned(),
            format!("\"{long}\" is longer than 4000 characters")
        )]
    );
    let update = db
        .call("update_bookmark", json!({"id": 1, "notes": long}))
        .await;
    assert_eq!(violations(&update)[0].0, "/notes");
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn a_tag_over_64_characters_is_refused() {
    let db = sqlite().await;
    let long = "x".repeat(65);
    let answer = db
        .call("add_bookmark", bookmark_with("tags", json!(["ok", long])))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/tags/1".to_owned(),
            format!("\"{long}\" is longer than 64 characters")
        )]
    );
    let search = db
        .call("search_bookmarks", json!({"query": "x", "tag": long}))
        .await;
    assert_eq!(violations(&search)[0].0, "/tag");
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn more_than_32_tags_are_refused() {
    let db = sqlite().await;
    let tags: Vec<String> = (0..33).map(|n| format!("t{n}")).collect();
    let answer = db
        .call("add_bookmark", bookmark_with("tags", json!(tags)))
        .await;
    let found = violations(&answer);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "/tags");
    assert!(found[0].1.ends_with("has more than 32 items"), "{found:?}");
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn a_blank_tag_is_refused() {
    let db = sqlite().await;
    let answer = db
        .call("add_bookmark", bookmark_with("tags", json!(["ok", "   "])))
        .await;
    assert_eq!(
        violations(&answer),
        [("/tags/1".to_owned(), "must not be blank".to_owned())]
    );
    let empty = db
        .call("add_bookmark", bookmark_with("tags", json!([""])))
        .await;
    assert_eq!(
        violations(&empty),
        [(
            "/tags/0".to_owned(),
            "\"\" is shorter than 1 character".to_owned()
        )]
    );
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn a_limit_over_1000_is_refused() {
    let db = sqlite().await;
    let answer = db
        .call("search_bookmarks", json!({"query": "rust", "limit": 1001}))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            "/limit".to_owned(),
            "1001 is greater than the maximum of 1000".to_owned()
        )]
    );
    let zero = db
        .call("list_by_tag", json!({"tag": "rust", "limit": 0}))
        .await;
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
        .call("add_bookmark", bookmark_with("colour", json!("red")))
        .await;
    assert_eq!(
        violations(&answer),
        [(
            String::new(),
            "Additional properties are not allowed ('colour' was unexpected)".to_owned()
        )]
    );
    // A tool without arguments refuses any (jsonschema words this one differently).
    let tags = db.call("list_tags", json!({"tag": "rust"})).await;
    assert_eq!(
        violations(&tags),
        [(
            String::new(),
            "False schema does not allow \"rust\"".to_owned()
        )]
    );
    let search = db
        .call("search_bookmarks", json!({"query": "rust", "sort": "date"}))
        .await;
    assert_eq!(
        violations(&search),
        [(
            String::new(),
            "Additional properties are not allowed ('sort' was unexpected)".to_owned()
        )]
    );
    assert_eq!(db.count().await, 0);
}

#[tokio::test]
async fn an_unknown_id_is_a_tool_error_not_a_protocol_error() {
    let db = sqlite().await;
    let answer = db
        .call("update_bookmark", json!({"id": 42, "title": "x"}))
        .await;
    assert_eq!(
        tool_error(&answer),
        "No bookmark has id 42. Call search_bookmarks or list_by_tag to find the ids."
    );
    let zero = db.call("delete_bookmark", json!({"id": 0})).await;
    assert_eq!(
        violations(&zero),
        [(
            "/id".to_owned(),
            "0 is less than the minimum of 1".to_owned()
        )]
    );
}

#[tokio::test]
async fn an_empty_query_is_refused() {
    let db = sqlite().await;
    let answer = db.call("search_bookmarks", json!({"query": ""})).await;
    assert_eq!(
        violations(&answer),
        [(
            "/query".to_owned(),
            "\"\" is shorter than 1 character".to_owned()
        )]
    );
    let missing = db.call("search_bookmarks", json!({})).await;
    assert_eq!(
        violations(&missing),
        [(String::new(), "\"query\" is a required property".to_owned())]
    );
}

#[tokio::test]
async fn a_query_without_words_is_refused() {
    let db = sqlite().await;
    for query in ["   ", "?!*\"", "--"] {
        let answer = db.call("search_bookmarks", json!({"query": query})).await;
        assert_eq!(
            violations(&answer),
            [(
                "/query".to_owned(),
                "has no words to search for; give one or more words, like \"rust async\""
                    .to_owned()
            )],
            "{query:?}"
        );
    }
}

#[tokio::test]
async fn wrong_types_list_every_violation() {
    let db = sqlite().await;
    let answer = db
        .call(
            "add_bookmark",
            json!({"url": 5, "title": ["x"], "tags": "rust"}),
        )
        .await;
    assert_eq!(
        violations(&answer),
        [
            ("/url".to_owned(), "5 is not of type \"string\"".to_owned()),
            (
                "/title".to_owned(),
                "[\"x\"] is not of types \"null\", \"string\"".to_owned()
            ),
            (
                "/tags".to_owned(),
                "\"rust\" is not of type \"array\"".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn an_unknown_tool_is_named() {
    let db = sqlite().await;
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"add_bookmarks","arguments":{{}},"_meta":{MODERN_META}}}}}"#
    );
    let answer = db.raw(&line).await;
    assert_eq!(answer["error"]["code"], -32602);
    assert_eq!(answer["error"]["message"], "unknown tool: add_bookmarks");
}
