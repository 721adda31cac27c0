//! What the tools and resources do, on SQLite and PostgreSQL alike.

use serde_json::{Value, json};

use crate::{Db, ids, on_both_backends, tool_error, violations};

on_both_backends! {
    add_returns_the_normalised_bookmark,
    a_duplicate_url_answers_with_the_existing_bookmark,
    search_finds_words_in_every_field,
    search_ranks_a_title_match_above_a_notes_only_match,
    search_follows_updates_and_deletes,
    list_by_tag_and_list_tags_count_tags,
    update_changes_only_the_given_fields,
    update_refuses_a_url_another_bookmark_has,
    delete_removes_the_bookmark_and_its_tags,
    unknown_ids_are_tool_errors,
    resources_show_tags_and_bookmarks,
}

fn is_utc_timestamp(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    let bytes = text.as_bytes();
    text.len() == 20
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && text.ends_with('Z')
        && text.starts_with("20")
}

async fn add_returns_the_normalised_bookmark(db: &Db) {
    let answer = db
        .call(
            "add_bookmark",
            json!({"url": "  HTTPS://Doc.Rust-Lang.org:443/book/ch01-00-getting-started.html?Lang=EN#install  ",
                   "title": "  The Rust Book: Getting Started ", "tags": ["Rust", " books ", "rust"],
                   "notes": "Install rustup first."}),
        )
        .await;
    let result = &answer["result"];
    assert_eq!(result["resultType"], "complete");
    let content = &result["structuredContent"];
    let bookmark = &content["bookmark"];
    let id = bookmark["id"].as_i64().unwrap();
    assert_eq!(content["created"], true);
    assert_eq!(
        bookmark,
        &json!({
            "id": id,
            "url": "https://doc.rust-lang.org/book/ch01-00-getting-started.html?Lang=EN",
            "title": "The Rust Book: Getting Started",
            "tags": ["books", "rust"],
            "notes": "Install rustup first.",
            "created_at": bookmark["created_at"],
            "updated_at": bookmark["created_at"],
        })
    );
    assert!(is_utc_timestamp(&bookmark["created_at"]), "{bookmark}");
    assert_eq!(
        result["content"][0]["text"],
        format!(
            "Added bookmark {id}: #{id} The Rust Book: Getting Started <https://doc.rust-lang.org/book/ch01-00-getting-started.html?Lang=EN> [books, rust]"
        )
    );

    // Only a URL: no title, tags or notes.
    let bare = db
        .ok("add_bookmark", json!({"url": "http://example.com"}))
        .await;
    assert_eq!(bare["bookmark"]["url"], "http://example.com/");
    assert_eq!(bare["bookmark"]["title"], Value::Null);
    assert_eq!(bare["bookmark"]["notes"], Value::Null);
    assert_eq!(bare["bookmark"]["tags"], json!([]));
    assert_eq!(db.count().await, 2);
}

async fn a_duplicate_url_answers_with_the_existing_bookmark(db: &Db) {
    let first = db
        .ok(
            "add_bookmark",
            json!({"url": "http://example.com/a", "title": "A", "tags": ["one"]}),
        )
        .await;
    let id = first["bookmark"]["id"].as_i64().unwrap();
    assert_eq!(first["created"], true);

    // The same page, written differently: upper-case scheme and host, the default port, a
    // fragment. Nothing about the existing bookmark changes.
    for spelling in [
        "http://example.com/a",
        "HTTP://Example.com:80/a#frag",
        "http://EXAMPLE.COM/a#",
    ] {
        let answer = db
            .call(
                "add_bookmark",
                json!({"url": spelling, "title": "Other", "tags": ["two"]}),
            )
            .await;
        let content = &answer["result"]["structuredContent"];
        assert_eq!(content["created"], false, "{spelling}: {answer}");
        assert_eq!(content["bookmark"], first["bookmark"], "{spelling}");
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!(
                "http://example.com/a is already bookmarked as {id}; nothing was added. Use update_bookmark with id {id} to change it.\n#{id} A <http://example.com/a> [one]"
            )
        );
    }
    assert_eq!(db.count().await, 1);

    // Pages that differ are different bookmarks: scheme, path case, trailing slash, query.
    for other in [
        "https://example.com/a",
        "http://example.com/A",
        "http://example.com/a/",
        "http://example.com/a?x=1",
    ] {
        let content = db.ok("add_bookmark", json!({"url": other})).await;
        assert_eq!(content["created"], true, "{other}");
        assert_ne!(content["bookmark"]["id"], id);
    }
    assert_eq!(db.count().await, 5);
}

async fn search_finds_words_in_every_field(db: &Db) {
    let title = db
        .add(json!({"url": "https://example.org/1", "title": "Writing integration tests"}))
        .await;
    let tagged = db
        .add(json!({"url": "https://example.org/2", "title": "Nothing here", "tags": ["tokio"]}))
        .await;
    let in_url = db
        .add(json!({"url": "https://serde.rs/attributes.html", "title": "Other"}))
        .await;
    let in_notes = db
        .add(json!({"url": "https://example.org/4", "notes": "Explains the borrow checker."}))
        .await;

    assert_eq!(db.search(json!({"query": "integration"})).await, [title]);
    // Stemming: "testing" finds "tests".
    assert_eq!(db.search(json!({"query": "testing"})).await, [title]);
    assert_eq!(db.search(json!({"query": "TOKIO"})).await, [tagged]);
    assert_eq!(db.search(json!({"query": "serde"})).await, [in_url]);
    assert_eq!(db.search(json!({"query": "attributes"})).await, [in_url]);
    assert_eq!(db.search(json!({"query": "borrow"})).await, [in_notes]);
    // Every word must match; punctuation is only a separator.
    assert_eq!(
        db.search(json!({"query": "borrow-checker!"})).await,
        [in_notes]
    );
    assert!(
        db.search(json!({"query": "borrow integration"}))
            .await
            .is_empty()
    );
    // FTS5 syntax in the query is just words.
    assert!(
        db.search(json!({"query": "\"tests OR NEAR(x*"}))
            .await
            .is_empty()
    );

    let answer = db
        .call("search_bookmarks", json!({"query": "Integration!"}))
        .await;
    let content = &answer["result"]["structuredContent"];
    assert_eq!(content["query"], "Integration!");
    assert_eq!(content["terms"], json!(["integration"]));
    assert_eq!(content["tag"], Value::Null);
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!(
            "1 bookmark matches \"Integration!\" (best first):\n#{title} Writing integration tests <https://example.org/1>"
        )
    );
    let none = db
        .call("search_bookmarks", json!({"query": "kubernetes helm"}))
        .await;
    assert_eq!(
        none["result"]["content"][0]["text"],
        "No bookmarks contain all of: kubernetes, helm. Try fewer or other words."
    );
    assert_eq!(none["result"]["structuredContent"]["bookmarks"], json!([]));

    // A tag narrows the search; the limit caps it.
    for n in 0..5 {
        db.add(json!({"url": format!("https://example.net/{n}"), "title": "async guide", "tags": if n % 2 == 0 { json!(["even"]) } else { json!([]) }}))
            .await;
    }
    assert_eq!(db.search(json!({"query": "async"})).await.len(), 5);
    assert_eq!(
        db.search(json!({"query": "async", "tag": " EVEN "}))
            .await
            .len(),
        3
    );
    assert_eq!(
        db.search(json!({"query": "async", "limit": 2})).await.len(),
        2
    );
}

async fn search_ranks_a_title_match_above_a_notes_only_match(db: &Db) {
    // The notes-only match is added first and mentions the word more often, so neither the id
    // order nor term frequency alone puts the title match first.
    let notes_only = db
        .add(json!({"url": "https://example.com/cooking", "title": "Weeknight recipes",
                    "notes": "Has a section on rust removal from cast iron pans; rust is bad for pans."}))
        .await;
    let title = db
        .add(json!({"url": "https://example.com/lang", "title": "Rust language tour"}))
        .await;
    let tag_only = db
        .add(json!({"url": "https://example.com/misc", "title": "Miscellany", "tags": ["rust"]}))
        .await;
    assert_eq!(
        db.search(json!({"query": "rust"})).await,
        [title, tag_only, notes_only]
    );
}

async fn search_follows_updates_and_deletes(db: &Db) {
    let id = db
        .add(json!({"url": "https://example.com/x", "title": "Postgres indexing", "tags": ["db"]}))
        .await;
    assert_eq!(db.search(json!({"query": "indexing"})).await, [id]);

    db.ok(
        "update_bookmark",
        json!({"id": id, "title": "Query planning", "tags": ["planner"]}),
    )
    .await;
    assert!(db.search(json!({"query": "indexing"})).await.is_empty());
    assert!(db.search(json!({"query": "postgres db"})).await.is_empty());
    assert_eq!(db.search(json!({"query": "planning"})).await, [id]);
    assert_eq!(db.search(json!({"query": "planner"})).await, [id]);

    // A change of notes alone keeps the title and tags searchable.
    db.ok("update_bookmark", json!({"id": id, "notes": "vacuum"}))
        .await;
    assert_eq!(
        db.search(json!({"query": "vacuum planner query"})).await,
        [id]
    );
    // A new URL replaces the old URL's words.
    db.ok(
        "update_bookmark",
        json!({"id": id, "url": "https://wiki.example.org/Explain"}),
    )
    .await;
    assert_eq!(db.search(json!({"query": "wiki explain"})).await, [id]);

    db.ok("delete_bookmark", json!({"id": id})).await;
    assert!(db.search(json!({"query": "planning"})).await.is_empty());
    // A new bookmark does not inherit the deleted one's index entry.
    let next = db
        .add(json!({"url": "https://example.com/y", "title": "Unrelated"}))
        .await;
    assert!(db.search(json!({"query": "vacuum"})).await.is_empty());
    assert_eq!(db.search(json!({"query": "unrelated"})).await, [next]);
}

async fn list_by_tag_and_list_tags_count_tags(db: &Db) {
    let mut rust = Vec::new();
    for n in 0..3 {
        rust.push(
            db.add(
                json!({"url": format!("https://example.com/rust/{n}"), "tags": ["Rust", "lang"]}),
            )
            .await,
        );
    }
    db.add(json!({"url": "https://example.com/go", "tags": ["go", "lang"]}))
        .await;
    db.add(json!({"url": "https://example.com/none"})).await;

    let listed = db.ok("list_by_tag", json!({"tag": " RUST "})).await;
    assert_eq!(listed["tag"], "rust");
    assert_eq!(listed["total"], 3);
    let newest_first: Vec<i64> = rust.iter().rev().copied().collect();
    assert_eq!(ids(&listed["bookmarks"]), newest_first);
    assert_eq!(listed["bookmarks"][0]["tags"], json!(["lang", "rust"]));

    let answer = db
        .call("list_by_tag", json!({"tag": "rust", "limit": 2}))
        .await;
    assert_eq!(
        ids(&answer["result"]["structuredContent"]["bookmarks"]).len(),
        2
    );
    assert_eq!(answer["result"]["structuredContent"]["total"], 3);
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("2 of 3 bookmarks tagged \"rust\" (newest first):\n#"),
        "{answer}"
    );

    let nothing = db.call("list_by_tag", json!({"tag": "python"})).await;
    assert_eq!(
        nothing["result"]["content"][0]["text"],
        "No bookmarks are tagged \"python\". Call list_tags to see the tags in use."
    );
    assert_eq!(
        nothing["result"]["structuredContent"],
        json!({"tag": "python", "total": 0, "bookmarks": []})
    );

    let answer = db.call("list_tags", json!({})).await;
    assert_eq!(
        answer["result"]["structuredContent"],
        json!({"tags": [{"tag": "lang", "count": 4}, {"tag": "rust", "count": 3}, {"tag": "go", "count": 1}],
               "truncated": false})
    );
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "3 tags (most used first):\n- lang (4)\n- rust (3)\n- go (1)"
    );
}

async fn update_changes_only_the_given_fields(db: &Db) {
    let original = db
        .ok(
            "add_bookmark",
            json!({"url": "https://example.com/a", "title": "A", "tags": ["x", "y"], "notes": "n"}),
        )
        .await["bookmark"]
        .clone();
    let id = original["id"].as_i64().unwrap();

    let answer = db
        .call(
            "update_bookmark",
            json!({"id": id, "title": "  New title ", "tags": ["Z"]}),
        )
        .await;
    let updated = &answer["result"]["structuredContent"]["bookmark"];
    assert_eq!(updated["title"], "New title");
    assert_eq!(updated["tags"], json!(["z"]));
    assert_eq!(updated["url"], original["url"]);
    assert_eq!(updated["notes"], "n");
    assert_eq!(updated["created_at"], original["created_at"]);
    assert!(is_utc_timestamp(&updated["updated_at"]));
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!("Updated bookmark {id}: #{id} New title <https://example.com/a> [z]")
    );

    // A new URL is normalised; "" removes a title or notes; [] removes every tag.
    let cleared = db
        .ok(
            "update_bookmark",
            json!({"id": id, "url": "HTTPS://EXAMPLE.com:443/b#top", "title": "", "notes": " ", "tags": []}),
        )
        .await;
    assert_eq!(
        cleared["bookmark"],
        json!({"id": id, "url": "https://example.com/b", "title": null, "tags": [], "notes": null,
               "created_at": original["created_at"], "updated_at": cleared["bookmark"]["updated_at"]})
    );
    assert_eq!(
        db.ok("list_tags", json!({})).await,
        json!({"tags": [], "truncated": false})
    );
    // The same URL again is no conflict.
    db.ok(
        "update_bookmark",
        json!({"id": id, "url": "https://example.com/b"}),
    )
    .await;

    let answer = db.call("update_bookmark", json!({"id": id})).await;
    assert_eq!(
        violations(&answer),
        [(
            String::new(),
            "give at least one field to change: url, title, tags or notes".to_owned()
        )]
    );
}

async fn update_refuses_a_url_another_bookmark_has(db: &Db) {
    let a = db.add(json!({"url": "https://example.com/a"})).await;
    let b = db.add(json!({"url": "https://example.com/b"})).await;
    let answer = db
        .call(
            "update_bookmark",
            json!({"id": b, "url": "https://EXAMPLE.com/a#x", "title": "B"}),
        )
        .await;
    assert_eq!(
        tool_error(&answer),
        format!(
            "Bookmark {a} already has the URL https://example.com/a, and a URL is bookmarked only once. Delete one of the two bookmarks, or give another URL."
        )
    );
    // Nothing changed.
    let read = db.read(&format!("bookmarks://bookmark/{b}")).await;
    let bookmark: Value =
        serde_json::from_str(read["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(bookmark["url"], "https://example.com/b");
    assert_eq!(bookmark["title"], Value::Null);
}

async fn delete_removes_the_bookmark_and_its_tags(db: &Db) {
    let id = db
        .add(json!({"url": "https://example.com/a", "title": "A", "tags": ["gone", "kept"]}))
        .await;
    db.add(json!({"url": "https://example.com/b", "tags": ["kept"]}))
        .await;
    let answer = db.call("delete_bookmark", json!({"id": id})).await;
    let deleted = &answer["result"]["structuredContent"]["deleted"];
    assert_eq!(deleted["url"], "https://example.com/a");
    assert_eq!(deleted["tags"], json!(["gone", "kept"]));
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!("Deleted bookmark {id}: #{id} A <https://example.com/a> [gone, kept]")
    );
    assert_eq!(db.count().await, 1);
    assert_eq!(
        db.ok("list_tags", json!({})).await["tags"],
        json!([{"tag": "kept", "count": 1}])
    );
    let again = db.call("delete_bookmark", json!({"id": id})).await;
    assert_eq!(
        tool_error(&again),
        format!("No bookmark has id {id}. Call search_bookmarks or list_by_tag to find the ids.")
    );
    // The URL can be bookmarked again, as a new bookmark.
    let again = db
        .ok("add_bookmark", json!({"url": "https://example.com/a"}))
        .await;
    assert_eq!(again["created"], true);
    assert_ne!(again["bookmark"]["id"], id);
}

async fn unknown_ids_are_tool_errors(db: &Db) {
    for (tool, arguments) in [
        ("update_bookmark", json!({"id": 42, "title": "x"})),
        ("delete_bookmark", json!({"id": 42})),
    ] {
        let answer = db.call(tool, arguments).await;
        assert_eq!(
            tool_error(&answer),
            "No bookmark has id 42. Call search_bookmarks or list_by_tag to find the ids.",
            "{tool}"
        );
        assert!(answer["result"].get("structuredContent").is_none());
    }
}

async fn resources_show_tags_and_bookmarks(db: &Db) {
    let id = db
        .add(json!({"url": "https://example.com/a", "title": "A", "tags": ["b", "a"]}))
        .await;
    db.add(json!({"url": "https://example.com/b", "tags": ["a"]}))
        .await;

    let text = |answer: &Value| -> Value {
        assert_eq!(
            answer["result"]["contents"][0]["mimeType"], "application/json",
            "{answer}"
        );
        serde_json::from_str(answer["result"]["contents"][0]["text"].as_str().unwrap()).unwrap()
    };
    let tags = db.read("bookmarks://tags").await;
    assert_eq!(
        text(&tags),
        json!([{"tag": "a", "count": 2}, {"tag": "b", "count": 1}])
    );
    let uri = format!("bookmarks://bookmark/{id}");
    let bookmark = db.read(&uri).await;
    assert_eq!(bookmark["result"]["contents"][0]["uri"], uri);
    let bookmark = text(&bookmark);
    assert_eq!(bookmark["url"], "https://example.com/a");
    assert_eq!(bookmark["tags"], json!(["a", "b"]));

    let missing = db.read("bookmarks://bookmark/999").await;
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    assert_eq!(missing["error"]["message"], "no bookmark has id 999");
    assert_eq!(
        missing["error"]["data"],
        json!({"uri": "bookmarks://bookmark/999"})
    );
    for bad in ["abc", "0", "-1"] {
        let uri = format!("bookmarks://bookmark/{bad}");
        let answer = db.read(&uri).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert_eq!(answer["error"]["data"], json!({"uri": uri}));
    }
}
