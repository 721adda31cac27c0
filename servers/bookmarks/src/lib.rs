//! The bookmark manager MCP server.
//!
//! Tools: `add_bookmark`, `search_bookmarks`, `list_by_tag`, `list_tags`, `update_bookmark`,
//! `delete_bookmark`. Resources: `bookmarks://tags` and `bookmarks://bookmark/{id}`.
//!
//! A URL is bookmarked once: URLs are normalised before they are stored (lower-case scheme and
//! host, no default port, no fragment; path and query kept; the rule is in [`normalise`]), and
//! adding a URL that is already there answers with the existing bookmark and `created: false`.
//! Tags are trimmed and lower case.
//!
//! Search is full text over titles, tags, the URL's words and notes, ranked so a match in the
//! title counts most: FTS5 on SQLite, a `tsvector` with a GIN index on PostgreSQL. The index is
//! written in the same transaction as the bookmark. Only that part of the SQL differs between
//! the back ends, and it lives in one module (`dialect`).
//!
//! Storage is SQLite (a file) or PostgreSQL (a `postgres://` URL), through
//! [`switchboard_store`]: migrations run when the server opens the database (recorded in
//! [`MIGRATIONS_TABLE`]), every write is one transaction, and a database from a newer version is
//! refused.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_server::Session;
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("bookmarks.sqlite3");
//! let bookmarks = switchboard_bookmarks::open(&db.display().to_string()).await?;
//! let server = switchboard_bookmarks::server(bookmarks.clone());
//! assert_eq!(server.name(), "switchboard-bookmarks");
//!
//! // A 2026-07-28 call, which needs no session.
//! let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_bookmark","arguments":{"url":"HTTPS://Doc.Rust-Lang.org:443/book/#intro","title":"The Book","tags":["Rust"]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
//! let mut out = Vec::new();
//! if let Some(pending) = server.handle(&mut Session::new(None), call, &mut out)
//!     && let Some(answer) = pending.await
//! {
//!     out.extend(answer);
//! }
//! let answer: serde_json::Value = serde_json::from_slice(&out)?;
//! let bookmark = &answer["result"]["structuredContent"]["bookmark"];
//! assert_eq!(bookmark["url"], "https://doc.rust-lang.org/book/");
//! assert_eq!(bookmark["tags"], serde_json::json!(["rust"]));
//! bookmarks.close().await;
//! # Ok(()) }
//! ```

mod dialect;
mod error;
pub mod model;
pub mod normalise;
mod queries;
mod resources;
mod tools;

use switchboard_server::{Server, Tool};
use switchboard_store::{Location, Migrations, Store};

pub use error::BookmarksError;

use crate::model::{
    AddBookmarkArgs, AddOutput, BookmarkOutput, DeleteBookmarkArgs, DeleteOutput, ListByTagArgs,
    ListTagsArgs, SearchBookmarksArgs, SearchOutput, TaggedOutput, TagsOutput, UpdateBookmarkArgs,
};

/// The `_meta` key that names the scope a tool needs (shared by every server of the kit).
pub use switchboard_server::SCOPE_META_KEY;
/// Searching and listing bookmarks and tags.
pub const SCOPE_READ: &str = "bookmarks:read";
/// Adding and changing bookmarks.
pub const SCOPE_WRITE: &str = "bookmarks:write";
/// Deleting bookmarks.
pub const SCOPE_ADMIN: &str = "bookmarks:admin";
/// The table that records this server's applied migrations.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations_bookmarks";

/// The bookmark database. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Bookmarks {
    store: Store,
}

fn migrations() -> Migrations {
    Migrations {
        table: MIGRATIONS_TABLE,
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// Open the database named by `db` (a SQLite path, or a `postgres://` URL), creating and
/// migrating it as needed.
pub async fn open(db: &str) -> Result<Bookmarks, BookmarksError> {
    let location = Location::parse(db)?;
    let store = Store::open(&location, migrations()).await?;
    tracing::debug!(location = store.location(), "opened the bookmark database");
    Ok(Bookmarks { store })
}

impl Bookmarks {
    /// The storage underneath (tests and tools use it to inspect the database).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Close the connection pool.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Build the MCP server over `bookmarks`.
pub fn server(bookmarks: Bookmarks) -> Server {
    let add = bookmarks.clone();
    let search = bookmarks.clone();
    let by_tag = bookmarks.clone();
    let tags = bookmarks.clone();
    let update = bookmarks.clone();
    let delete = bookmarks.clone();
    Server::builder("switchboard-bookmarks", env!("CARGO_PKG_VERSION"))
        .instructions(
            "A bookmark manager. Save pages with add_bookmark (a URL is saved once; adding it again returns the existing bookmark), \
             find them with search_bookmarks (full text over titles, tags, URLs and notes) or list_by_tag, and see the tags with list_tags.",
        )
        .tool(
            Tool::builder(
                "add_bookmark",
                "Bookmark an http:// or https:// URL, with an optional title, tags and notes. The URL is normalised (lower-case scheme and host, no default port, no #fragment). If the URL is already bookmarked, nothing is added and the existing bookmark is returned with created: false.",
            )
            .title("Add a bookmark")
            .additive()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_WRITE)
            .output::<AddOutput>()
            .handler(move |args: AddBookmarkArgs, _| {
                let bookmarks = add.clone();
                async move { bookmarks.add_bookmark(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "search_bookmarks",
                "Full-text search of bookmarks: every word of the query must appear in the title, tags, URL or notes. Best matches first (title matches rank highest); optionally only one tag. Returns up to limit (default 20, at most 1000).",
            )
            .title("Search bookmarks")
            .read_only()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_READ)
            .output::<SearchOutput>()
            .handler(move |args: SearchBookmarksArgs, _| {
                let bookmarks = search.clone();
                async move { bookmarks.search_bookmarks(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "list_by_tag",
                "List the bookmarks with a tag, newest first, up to limit (default 100, at most 1000), with how many have it in all.",
            )
            .title("List bookmarks by tag")
            .read_only()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_READ)
            .output::<TaggedOutput>()
            .handler(move |args: ListByTagArgs, _| {
                let bookmarks = by_tag.clone();
                async move { bookmarks.list_by_tag(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "list_tags",
                "List every tag in use with its number of bookmarks, most used first.",
            )
            .title("List tags")
            .read_only()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_READ)
            .output::<TagsOutput>()
            .handler(move |_: ListTagsArgs, _| {
                let bookmarks = tags.clone();
                async move { bookmarks.list_tags().await }
            }),
        )
        .tool(
            Tool::builder(
                "update_bookmark",
                "Change a bookmark by id: a new URL, title, tags (replacing all the old ones) or notes; fields not given keep their values, and \"\" removes a title or notes. Returns the updated bookmark.",
            )
            .title("Update a bookmark")
            .destructive()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_WRITE)
            .output::<BookmarkOutput>()
            .handler(move |args: UpdateBookmarkArgs, _| {
                let bookmarks = update.clone();
                async move { bookmarks.update_bookmark(args).await }
            }),
        )
        .tool(
            Tool::builder(
                "delete_bookmark",
                "Delete a bookmark by id, for good. Returns what was deleted.",
            )
            .title("Delete a bookmark")
            .destructive()
            .idempotent()
            .open_world(false)
            .scope(SCOPE_ADMIN)
            .output::<DeleteOutput>()
            .handler(move |args: DeleteBookmarkArgs, _| {
                let bookmarks = delete.clone();
                async move { bookmarks.delete_bookmark(args).await }
            }),
        )
        .resource(resources::tags(&bookmarks))
        .resource_template(resources::bookmark(&bookmarks))
        .build()
        .unwrap_or_else(|error| {
            unreachable!("the bookmark server's declarations are valid: {error}")
        })
}
