//! Everything whose SQL differs between SQLite and PostgreSQL: the full-text index, searching
//! it, and locking a row to update it. The rest is one text for both (`queries.rs`).
//!
//! | | SQLite | PostgreSQL |
//! |---|---|---|
//! | index | FTS5 table `bookmarks_fts` (title, tags, url, notes), rowid = bookmark id, porter stemming | `bookmarks.search_document` `tsvector` with a GIN index, `'english'` configuration |
//! | kept in sync | a row deleted and inserted in the bookmark's write transaction | the column set in the bookmark's write transaction |
//! | query | every term quoted, implicitly ANDed: `"rust" "async"` | `plainto_tsquery('english', 'rust async')` |
//! | rank | `bm25` with column weights 10, 5, 2, 1 (lower is better) | `ts_rank` with weights A, B, C, D (higher is better) |
//! | lock | none: `BEGIN IMMEDIATE` already excludes other writers | `SELECT ... FOR UPDATE` |
//!
//! Both rank a match in the title above one in the tags, the URL's words, then the notes. The
//! terms come from `normalise::terms` (letters and digits only), so no user text reaches FTS5's
//! query syntax. One difference remains: PostgreSQL's `english` configuration ignores stop
//! words ("the", "and") in queries and documents, while SQLite requires them to match.

use sqlx::AnyConnection;
use switchboard_store::Backend;

use crate::{
    model::Bookmark,
    normalise,
    queries::{BookmarkRow, bookmark_row, columns},
};

/// The weights of the FTS5 columns (title, tags, url, notes) for `bm25`.
macro_rules! fts_weights {
    () => {
        "10.0, 5.0, 2.0, 1.0"
    };
}

/// What the full-text index holds for one bookmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub title: String,
    pub tags: String,
    pub url_words: String,
    pub notes: String,
}

impl Document {
    pub fn of(bookmark: &Bookmark) -> Document {
        Document {
            title: bookmark.title.clone().unwrap_or_default(),
            tags: bookmark.tags.join(" "),
            url_words: normalise::url_words(&bookmark.url),
            notes: bookmark.notes.clone().unwrap_or_default(),
        }
    }
}

/// Write the bookmark's document into the index (replacing any earlier one). Call it inside the
/// transaction that wrote the bookmark.
pub async fn index(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
    document: &Document,
) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            sqlx::query("DELETE FROM bookmarks_fts WHERE rowid = $1")
                .bind(id)
                .execute(&mut *connection)
                .await?;
            sqlx::query(
                "INSERT INTO bookmarks_fts (rowid, title, tags, url, notes) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(&document.title)
            .bind(&document.tags)
            .bind(&document.url_words)
            .bind(&document.notes)
            .execute(&mut *connection)
            .await?;
        }
        Backend::Postgres => {
            sqlx::query(
                "UPDATE bookmarks SET search_document = \
                 setweight(to_tsvector('english'::regconfig, CAST($2 AS TEXT)), 'A') || \
                 setweight(to_tsvector('english'::regconfig, CAST($3 AS TEXT)), 'B') || \
                 setweight(to_tsvector('english'::regconfig, CAST($4 AS TEXT)), 'C') || \
                 setweight(to_tsvector('english'::regconfig, CAST($5 AS TEXT)), 'D') \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&document.title)
            .bind(&document.tags)
            .bind(&document.url_words)
            .bind(&document.notes)
            .execute(&mut *connection)
            .await?;
        }
    }
    Ok(())
}

/// Remove a deleted bookmark's document. (On PostgreSQL it went with the row.)
pub async fn unindex(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        sqlx::query("DELETE FROM bookmarks_fts WHERE rowid = $1")
            .bind(id)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Up to `limit` bookmarks that contain every one of `terms` (from `normalise::terms`, not
/// empty), optionally only those with `tag`, best match first; ties newest first.
pub async fn search(
    connection: &mut AnyConnection,
    backend: Backend,
    terms: &[String],
    tag: Option<&str>,
    limit: i64,
) -> Result<Vec<BookmarkRow>, sqlx::Error> {
    let (statement, query) = match backend {
        Backend::Sqlite => (
            concat!(
                "SELECT b.id, b.url, b.title, b.notes, b.created_at, b.updated_at \
                 FROM (SELECT rowid AS hit, bm25(bookmarks_fts, ",
                fts_weights!(),
                ") AS score FROM bookmarks_fts WHERE bookmarks_fts MATCH $1) AS hits \
                 JOIN bookmarks b ON b.id = hits.hit \
                 WHERE ($2 IS NULL OR EXISTS (SELECT 1 FROM bookmark_tags t \
                     WHERE t.bookmark_id = b.id AND t.tag = $2)) \
                 ORDER BY hits.score, b.id DESC LIMIT $3"
            ),
            // Terms hold only letters and digits, so quoting each makes it a plain string.
            terms
                .iter()
                .map(|term| format!("\"{term}\""))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Backend::Postgres => (
            "SELECT b.id, b.url, b.title, b.notes, b.created_at, b.updated_at \
             FROM bookmarks b, plainto_tsquery('english'::regconfig, CAST($1 AS TEXT)) AS query \
             WHERE b.search_document @@ query \
               AND ($2 IS NULL OR EXISTS (SELECT 1 FROM bookmark_tags t \
                   WHERE t.bookmark_id = b.id AND t.tag = $2)) \
             ORDER BY ts_rank(b.search_document, query) DESC, b.id DESC LIMIT $3",
            terms.join(" "),
        ),
    };
    let rows = sqlx::query(statement)
        .bind(query)
        .bind(tag)
        .bind(limit)
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(bookmark_row).collect()
}

/// Read a bookmark and keep others from changing it until the transaction ends.
pub async fn get_for_update(
    connection: &mut AnyConnection,
    backend: Backend,
    id: i64,
) -> Result<Option<BookmarkRow>, sqlx::Error> {
    let statement = match backend {
        Backend::Sqlite => concat!("SELECT ", columns!(), " FROM bookmarks WHERE id = $1"),
        Backend::Postgres => concat!(
            "SELECT ",
            columns!(),
            " FROM bookmarks WHERE id = $1 FOR UPDATE"
        ),
    };
    let row = sqlx::query(statement)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(bookmark_row).transpose()
}
