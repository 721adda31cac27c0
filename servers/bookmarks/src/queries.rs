//! The SQL that is one text for both back ends (`$N` placeholders, `INTEGER`/`TEXT` columns;
//! see `switchboard_store` for why that works). What differs, the full-text index and row
//! locks, is in `dialect.rs`.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::model::{Bookmark, TagCount};

/// The columns of a bookmark row, in the order [`bookmark_row`] reads them.
macro_rules! columns {
    () => {
        "id, url, title, notes, created_at, updated_at"
    };
}
pub(crate) use columns;

/// Most ids in one `IN (...)` list when reading tags.
const TAGS_BATCH: usize = 500;

/// A bookmark as stored, without its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookmarkRow {
    pub id: i64,
    pub url: String,
    pub title: Option<String>,
    pub notes: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl BookmarkRow {
    pub fn with_tags(self, tags: Vec<String>) -> Bookmark {
        Bookmark {
            id: self.id,
            url: self.url,
            title: self.title,
            tags,
            notes: self.notes,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub fn bookmark_row(row: &AnyRow) -> Result<BookmarkRow, sqlx::Error> {
    Ok(BookmarkRow {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        title: row.try_get("title")?,
        notes: row.try_get("notes")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A bookmark's own fields, already normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub url: String,
    pub title: Option<String>,
    pub notes: Option<String>,
}

/// Insert a bookmark unless its URL is taken; `None` when it is. (`ON CONFLICT DO NOTHING`
/// rather than a check first, so two concurrent adds of one URL on PostgreSQL make one row.)
pub async fn insert_if_new(
    connection: &mut AnyConnection,
    fields: &Fields,
    now: &str,
) -> Result<Option<BookmarkRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "INSERT INTO bookmarks (url, title, notes, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (url) DO NOTHING RETURNING ",
        columns!()
    ))
    .bind(&fields.url)
    .bind(fields.title.as_deref())
    .bind(fields.notes.as_deref())
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(bookmark_row).transpose()
}

pub async fn get(
    connection: &mut AnyConnection,
    id: i64,
) -> Result<Option<BookmarkRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM bookmarks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(bookmark_row).transpose()
}

pub async fn find_by_url(
    connection: &mut AnyConnection,
    url: &str,
) -> Result<Option<BookmarkRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM bookmarks WHERE url = $1"
    ))
    .bind(url)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(bookmark_row).transpose()
}

pub async fn update(
    connection: &mut AnyConnection,
    id: i64,
    fields: &Fields,
    now: &str,
) -> Result<Option<BookmarkRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE bookmarks SET url = $2, title = $3, notes = $4, updated_at = $5 \
         WHERE id = $1 RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(&fields.url)
    .bind(fields.title.as_deref())
    .bind(fields.notes.as_deref())
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(bookmark_row).transpose()
}

/// Delete a bookmark (its tags go with it, by the foreign key).
pub async fn delete(
    connection: &mut AnyConnection,
    id: i64,
) -> Result<Option<BookmarkRow>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "DELETE FROM bookmarks WHERE id = $1 RETURNING ",
        columns!()
    ))
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(bookmark_row).transpose()
}

/// Make `tags` (normalised, at most `MAX_TAGS`) the bookmark's tags.
pub async fn replace_tags(
    connection: &mut AnyConnection,
    id: i64,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM bookmark_tags WHERE bookmark_id = $1")
        .bind(id)
        .execute(&mut *connection)
        .await?;
    for tag in tags {
        sqlx::query("INSERT INTO bookmark_tags (bookmark_id, tag) VALUES ($1, $2)")
            .bind(id)
            .bind(tag)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The tags of each of `ids`, sorted.
pub async fn tags_of(
    connection: &mut AnyConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, sqlx::Error> {
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for batch in ids.chunks(TAGS_BATCH) {
        // Only placeholders are formatted into the text; the ids are bound.
        let placeholders: Vec<String> = (1..=batch.len()).map(|n| format!("${n}")).collect();
        let statement = format!(
            "SELECT bookmark_id, tag FROM bookmark_tags WHERE bookmark_id IN ({}) \
             ORDER BY bookmark_id, tag",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for id in batch {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&mut *connection).await?;
        for row in &rows {
            let id: i64 = row.try_get("bookmark_id")?;
            tags.entry(id).or_default().push(row.try_get("tag")?);
        }
    }
    Ok(tags)
}

/// Rows with their tags, in the same order.
pub async fn with_tags(
    connection: &mut AnyConnection,
    rows: Vec<BookmarkRow>,
) -> Result<Vec<Bookmark>, sqlx::Error> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut tags = tags_of(connection, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let own = tags.remove(&row.id).unwrap_or_default();
            row.with_tags(own)
        })
        .collect())
}

/// One bookmark with its tags.
pub async fn get_bookmark(
    connection: &mut AnyConnection,
    id: i64,
) -> Result<Option<Bookmark>, sqlx::Error> {
    match get(connection, id).await? {
        Some(row) => Ok(with_tags(connection, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

/// Up to `limit` bookmarks with `tag`, newest first.
pub async fn tagged(
    connection: &mut AnyConnection,
    tag: &str,
    limit: i64,
) -> Result<Vec<BookmarkRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.id, b.url, b.title, b.notes, b.created_at, b.updated_at \
         FROM bookmark_tags t JOIN bookmarks b ON b.id = t.bookmark_id \
         WHERE t.tag = $1 ORDER BY b.id DESC LIMIT $2",
    )
    .bind(tag)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(bookmark_row).collect()
}

pub async fn count_tagged(connection: &mut AnyConnection, tag: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bookmark_tags WHERE tag = $1")
        .bind(tag)
        .fetch_one(&mut *connection)
        .await
}

/// Up to `limit` tags with their counts, most used first, then by name.
pub async fn tag_counts(
    connection: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<TagCount>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT tag, COUNT(*) AS n FROM bookmark_tags GROUP BY tag ORDER BY n DESC, tag LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TagCount {
                tag: row.try_get("tag")?,
                count: row.try_get("n")?,
            })
        })
        .collect()
}
