-- URLs are stored normalised (see `normalise.rs`), so one URL is one row. Times are RFC 3339
-- text in UTC. The same columns exist on PostgreSQL.
CREATE TABLE bookmarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE CHECK (length(url) BETWEEN 1 AND 2048),
    title TEXT CHECK (title IS NULL OR length(title) BETWEEN 1 AND 300),
    notes TEXT CHECK (notes IS NULL OR length(notes) BETWEEN 1 AND 4000),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Tags are lower case and trimmed; a bookmark has each at most once.
CREATE TABLE bookmark_tags (
    bookmark_id INTEGER NOT NULL REFERENCES bookmarks (id) ON DELETE CASCADE,
    tag TEXT NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    PRIMARY KEY (bookmark_id, tag)
);

CREATE INDEX bookmark_tags_by_tag ON bookmark_tags (tag, bookmark_id);

-- The full-text index: one row per bookmark, rowid = bookmarks.id, written in the same
-- transaction as the bookmark (see `dialect.rs`). `url` holds the URL's words, not the URL.
-- Porter stemming matches PostgreSQL's 'english' configuration; diacritics are kept, as there.
CREATE VIRTUAL TABLE bookmarks_fts USING fts5(
    title,
    tags,
    url,
    notes,
    tokenize = 'porter unicode61 remove_diacritics 0'
);
