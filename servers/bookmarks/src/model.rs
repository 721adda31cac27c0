//! The tools' arguments and results, as typed structs. Their `schemars` schemas are the tools'
//! `inputSchema` and `outputSchema`; the server kit checks arguments against them before a
//! handler runs, so the bounds here are the bounds a client sees.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest notes, in characters.
pub const MAX_NOTES_CHARS: usize = 4000;
/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// Most bookmarks one answer holds.
pub const MAX_LIMIT: u32 = 1000;
/// How many bookmarks `search_bookmarks` returns when no limit is given.
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;
/// How many bookmarks `list_by_tag` returns when no limit is given.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// Most tags `list_tags` and `bookmarks://tags` show (the most used).
pub const MAX_LISTED_TAGS: usize = 1000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBookmarkArgs {
    /// The page: an absolute http:// or https:// URL. It is normalised (lower-case scheme and
    /// host, no default port, no #fragment), so the same page is never bookmarked twice.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// A title for the page.
    #[serde(default)]
    #[schemars(length(max = 300))]
    pub title: Option<String>,
    /// Tags, e.g. ["rust", "async"]; stored trimmed and lower case.
    #[serde(default)]
    #[schemars(length(max = 32), inner(length(min = 1, max = 64)))]
    pub tags: Vec<String>,
    /// Free-text notes about the page.
    #[serde(default)]
    #[schemars(length(max = 4000))]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBookmarksArgs {
    /// Words to look for in titles, tags, URLs and notes; every word must match (English
    /// stemming, so "testing" finds "tests"). Punctuation is ignored.
    #[schemars(length(min = 1, max = 500))]
    pub query: String,
    /// Only bookmarks with this tag.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub tag: Option<String>,
    /// How many bookmarks to return, best match first: 1 to 1000 (default 20).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListByTagArgs {
    /// The tag (any case; tags are stored lower case).
    #[schemars(length(min = 1, max = 64))]
    pub tag: String,
    /// How many bookmarks to return, newest first: 1 to 1000 (default 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTagsArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBookmarkArgs {
    /// The bookmark to change (from add_bookmark, search_bookmarks or list_by_tag).
    #[schemars(range(min = 1))]
    pub id: i64,
    /// A new URL (http:// or https://, normalised like add_bookmark's).
    #[serde(default)]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// A new title; "" removes it.
    #[serde(default)]
    #[schemars(length(max = 300))]
    pub title: Option<String>,
    /// The new tags, replacing all the old ones; [] removes every tag.
    #[serde(default)]
    #[schemars(length(max = 32), inner(length(min = 1, max = 64)))]
    pub tags: Option<Vec<String>>,
    /// New notes; "" removes them.
    #[serde(default)]
    #[schemars(length(max = 4000))]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBookmarkArgs {
    /// The bookmark to delete.
    #[schemars(range(min = 1))]
    pub id: i64,
}

/// One bookmark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Bookmark {
    pub id: i64,
    /// The normalised URL.
    pub url: String,
    pub title: Option<String>,
    /// Lower case, sorted.
    pub tags: Vec<String>,
    pub notes: Option<String>,
    /// When it was added, RFC 3339 in UTC (e.g. "2026-07-15T08:30:00Z").
    pub created_at: String,
    /// When it last changed, RFC 3339 in UTC.
    pub updated_at: String,
}

impl Bookmark {
    /// One line for models: `#42 The Rust Book <https://doc.rust-lang.org/book/> [rust]`.
    pub fn line(&self) -> String {
        let mut line = format!("#{}", self.id);
        if let Some(title) = &self.title {
            line.push(' ');
            line.push_str(title);
        }
        line.push_str(&format!(" <{}>", self.url));
        if !self.tags.is_empty() {
            line.push_str(&format!(" [{}]", self.tags.join(", ")));
        }
        line
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AddOutput {
    /// False when the URL was already bookmarked: `bookmark` is then the existing one,
    /// unchanged.
    pub created: bool,
    pub bookmark: Bookmark,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BookmarkOutput {
    pub bookmark: Bookmark,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOutput {
    pub deleted: Bookmark,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// The query as given.
    pub query: String,
    /// The words searched for (all must match).
    pub terms: Vec<String>,
    /// The tag the results were limited to, normalised.
    pub tag: Option<String>,
    /// Best match first: a match in the title counts most, then tags, the URL, the notes.
    pub bookmarks: Vec<Bookmark>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TaggedOutput {
    /// The tag, normalised.
    pub tag: String,
    /// How many bookmarks have the tag (may exceed the number returned).
    pub total: i64,
    /// Newest first.
    pub bookmarks: Vec<Bookmark>,
}

/// A tag and how many bookmarks have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TagCount {
    pub tag: String,
    pub count: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TagsOutput {
    /// Most used first, then by name.
    pub tags: Vec<TagCount>,
    /// True when there are more than 1000 tags and only the most used are listed.
    pub truncated: bool,
}
