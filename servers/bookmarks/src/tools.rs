//! What each tool does: normalise what the schema cannot (URLs, tags, search words), run one
//! transaction for a write, and answer with structured content and a short text for models.

use serde::Serialize;
use switchboard_server::{HandlerError, ToolOutput};

use crate::{
    Bookmarks,
    dialect::{self, Document},
    error::failed,
    model::{
        AddBookmarkArgs, AddOutput, Bookmark, BookmarkOutput, DEFAULT_LIST_LIMIT,
        DEFAULT_SEARCH_LIMIT, DeleteBookmarkArgs, DeleteOutput, ListByTagArgs, MAX_LISTED_TAGS,
        SearchBookmarksArgs, SearchOutput, TaggedOutput, TagsOutput, UpdateBookmarkArgs,
    },
    normalise,
    queries::{self, Fields},
};

/// The answer for an id that does not exist.
pub(crate) fn no_such_bookmark(id: i64) -> ToolOutput {
    ToolOutput::error(format!(
        "No bookmark has id {id}. Call search_bookmarks or list_by_tag to find the ids."
    ))
}

fn structured<T: Serialize>(value: &T, text: String) -> Result<ToolOutput, HandlerError> {
    let value = serde_json::to_value(value)
        .map_err(|error| HandlerError::Internal(format!("cannot encode the result: {error}")))?;
    Ok(ToolOutput::structured(value, text))
}

/// Now, as stored: RFC 3339 in UTC, to the second.
fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn url_arg(text: &str) -> Result<String, HandlerError> {
    normalise::url(text).map_err(|message| HandlerError::invalid("/url", message))
}

fn tags_arg(tags: &[String]) -> Result<Vec<String>, HandlerError> {
    normalise::tags(tags)
        .map_err(|(index, message)| HandlerError::invalid(format!("/tags/{index}"), message))
}

fn tag_arg(tag: &str) -> Result<String, HandlerError> {
    normalise::tag(tag).map_err(|message| HandlerError::invalid("/tag", message))
}

/// Trimmed text, or `None` when blank (a blank title or notes is no title or notes).
fn optional_text(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn lines(text: &mut String, bookmarks: &[Bookmark]) {
    for bookmark in bookmarks {
        text.push('\n');
        text.push_str(&bookmark.line());
    }
}

impl Bookmarks {
    pub(crate) async fn add_bookmark(
        &self,
        args: AddBookmarkArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let fields = Fields {
            url: url_arg(&args.url)?,
            title: optional_text(args.title.as_deref()),
            notes: optional_text(args.notes.as_deref()),
        };
        let tags = tags_arg(&args.tags)?;
        let backend = self.store.backend();
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(failed("starting to add a bookmark"))?;
        let inserted = queries::insert_if_new(&mut tx, &fields, &now())
            .await
            .map_err(failed("adding a bookmark"))?;
        let Some(row) = inserted else {
            // The URL is bookmarked already: answer with that bookmark, unchanged.
            let existing = queries::find_by_url(&mut tx, &fields.url)
                .await
                .map_err(failed("reading the bookmark of a URL"))?;
            let Some(existing) = existing else {
                return Err(HandlerError::Transient {
                    message: "the bookmark of this URL was deleted while adding it; try again"
                        .to_owned(),
                    retry_after_ms: None,
                });
            };
            let bookmark = queries::with_tags(&mut tx, vec![existing])
                .await
                .map_err(failed("reading a bookmark's tags"))?
                .pop()
                .ok_or_else(|| HandlerError::Internal("a read bookmark went missing".to_owned()))?;
            tx.rollback()
                .await
                .map_err(failed("ending a read of a bookmark"))?;
            let text = format!(
                "{} is already bookmarked as {}; nothing was added. Use update_bookmark with id {} to change it.\n{}",
                bookmark.url,
                bookmark.id,
                bookmark.id,
                bookmark.line()
            );
            return structured(
                &AddOutput {
                    created: false,
                    bookmark,
                },
                text,
            );
        };
        queries::replace_tags(&mut tx, row.id, &tags)
            .await
            .map_err(failed("tagging a bookmark"))?;
        let bookmark = row.with_tags(tags);
        dialect::index(&mut tx, backend, bookmark.id, &Document::of(&bookmark))
            .await
            .map_err(failed("indexing a bookmark"))?;
        tx.commit().await.map_err(failed("adding a bookmark"))?;
        let text = format!("Added bookmark {}: {}", bookmark.id, bookmark.line());
        structured(
            &AddOutput {
                created: true,
                bookmark,
            },
            text,
        )
    }

    pub(crate) async fn search_bookmarks(
        &self,
        args: SearchBookmarksArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let terms = normalise::terms(&args.query);
        if terms.is_empty() {
            return Err(HandlerError::invalid(
                "/query",
                "has no words to search for; give one or more words, like \"rust async\"",
            ));
        }
        let tag = args.tag.as_deref().map(tag_arg).transpose()?;
        let limit = args.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        let mut connection = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(failed("starting a search"))?;
        let rows = dialect::search(
            &mut connection,
            self.store.backend(),
            &terms,
            tag.as_deref(),
            i64::from(limit),
        )
        .await
        .map_err(failed("searching bookmarks"))?;
        let bookmarks = queries::with_tags(&mut connection, rows)
            .await
            .map_err(failed("reading the tags of bookmarks"))?;
        let within = tag
            .as_ref()
            .map(|tag| format!(" tagged {tag:?}"))
            .unwrap_or_default();
        let text = if bookmarks.is_empty() {
            format!(
                "No bookmarks{within} contain all of: {}. Try fewer or other words.",
                terms.join(", ")
            )
        } else {
            let (noun, verb) = if bookmarks.len() == 1 {
                ("bookmark", "matches")
            } else {
                ("bookmarks", "match")
            };
            let mut text = format!(
                "{} {noun}{within} {verb} {:?} (best first):",
                bookmarks.len(),
                args.query
            );
            lines(&mut text, &bookmarks);
            text
        };
        structured(
            &SearchOutput {
                query: args.query,
                terms,
                tag,
                bookmarks,
            },
            text,
        )
    }

    pub(crate) async fn list_by_tag(
        &self,
        args: ListByTagArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let tag = tag_arg(&args.tag)?;
        let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        let mut connection = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(failed("starting to list bookmarks"))?;
        let total = queries::count_tagged(&mut connection, &tag)
            .await
            .map_err(failed("counting the bookmarks of a tag"))?;
        let rows = queries::tagged(&mut connection, &tag, i64::from(limit))
            .await
            .map_err(failed("listing the bookmarks of a tag"))?;
        let bookmarks = queries::with_tags(&mut connection, rows)
            .await
            .map_err(failed("reading the tags of bookmarks"))?;
        let text = if bookmarks.is_empty() {
            format!("No bookmarks are tagged {tag:?}. Call list_tags to see the tags in use.")
        } else {
            let mut text = format!(
                "{} of {total} bookmark{} tagged {tag:?} (newest first):",
                bookmarks.len(),
                if total == 1 { "" } else { "s" }
            );
            lines(&mut text, &bookmarks);
            text
        };
        structured(
            &TaggedOutput {
                tag,
                total,
                bookmarks,
            },
            text,
        )
    }

    pub(crate) async fn list_tags(&self) -> Result<ToolOutput, HandlerError> {
        let output = self.tag_counts().await?;
        let text = if output.tags.is_empty() {
            "No tags yet. Tags are given with add_bookmark or update_bookmark.".to_owned()
        } else {
            let mut text = format!(
                "{} tag{} (most used first{}):",
                output.tags.len(),
                plural(output.tags.len()),
                if output.truncated {
                    "; only the most used are shown"
                } else {
                    ""
                }
            );
            for tag in &output.tags {
                text.push_str(&format!("\n- {} ({})", tag.tag, tag.count));
            }
            text
        };
        structured(&output, text)
    }

    /// Up to [`MAX_LISTED_TAGS`] tags with their counts (for `list_tags` and `bookmarks://tags`).
    pub(crate) async fn tag_counts(&self) -> Result<TagsOutput, HandlerError> {
        let mut connection = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(failed("starting to list tags"))?;
        // One more than shown tells whether some were left out.
        let mut tags = queries::tag_counts(&mut connection, MAX_LISTED_TAGS as i64 + 1)
            .await
            .map_err(failed("listing tags"))?;
        let truncated = tags.len() > MAX_LISTED_TAGS;
        tags.truncate(MAX_LISTED_TAGS);
        Ok(TagsOutput { tags, truncated })
    }

    pub(crate) async fn update_bookmark(
        &self,
        args: UpdateBookmarkArgs,
    ) -> Result<ToolOutput, HandlerError> {
        if args.url.is_none() && args.title.is_none() && args.tags.is_none() && args.notes.is_none()
        {
            return Err(HandlerError::invalid(
                "",
                "give at least one field to change: url, title, tags or notes",
            ));
        }
        let new_url = args.url.as_deref().map(url_arg).transpose()?;
        let new_tags = args.tags.as_deref().map(tags_arg).transpose()?;

        let backend = self.store.backend();
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(failed("starting to update a bookmark"))?;
        let Some(current) = dialect::get_for_update(&mut tx, backend, args.id)
            .await
            .map_err(failed("reading a bookmark to update"))?
        else {
            return Ok(no_such_bookmark(args.id));
        };
        if let Some(url) = &new_url
            && *url != current.url
            && let Some(other) = queries::find_by_url(&mut tx, url)
                .await
                .map_err(failed("looking up a URL"))?
        {
            return Ok(ToolOutput::error(format!(
                "Bookmark {} already has the URL {url}, and a URL is bookmarked only once. Delete one of the two bookmarks, or give another URL.",
                other.id
            )));
        }
        let fields = Fields {
            url: new_url.unwrap_or(current.url),
            title: match &args.title {
                Some(title) => optional_text(Some(title)),
                None => current.title,
            },
            notes: match &args.notes {
                Some(notes) => optional_text(Some(notes)),
                None => current.notes,
            },
        };
        let Some(row) = queries::update(&mut tx, args.id, &fields, &now())
            .await
            .map_err(failed("updating a bookmark"))?
        else {
            return Ok(no_such_bookmark(args.id));
        };
        let tags = match new_tags {
            Some(tags) => {
                queries::replace_tags(&mut tx, args.id, &tags)
                    .await
                    .map_err(failed("tagging a bookmark"))?;
                tags
            }
            None => queries::tags_of(&mut tx, &[args.id])
                .await
                .map_err(failed("reading a bookmark's tags"))?
                .remove(&args.id)
                .unwrap_or_default(),
        };
        let bookmark = row.with_tags(tags);
        dialect::index(&mut tx, backend, bookmark.id, &Document::of(&bookmark))
            .await
            .map_err(failed("indexing a bookmark"))?;
        tx.commit().await.map_err(failed("updating a bookmark"))?;
        let text = format!("Updated bookmark {}: {}", bookmark.id, bookmark.line());
        structured(&BookmarkOutput { bookmark }, text)
    }

    pub(crate) async fn delete_bookmark(
        &self,
        args: DeleteBookmarkArgs,
    ) -> Result<ToolOutput, HandlerError> {
        let backend = self.store.backend();
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(failed("starting to delete a bookmark"))?;
        if dialect::get_for_update(&mut tx, backend, args.id)
            .await
            .map_err(failed("reading a bookmark to delete"))?
            .is_none()
        {
            return Ok(no_such_bookmark(args.id));
        }
        // The tags go with the row (ON DELETE CASCADE), so read them first for the answer.
        let tags = queries::tags_of(&mut tx, &[args.id])
            .await
            .map_err(failed("reading a bookmark's tags"))?
            .remove(&args.id)
            .unwrap_or_default();
        let Some(row) = queries::delete(&mut tx, args.id)
            .await
            .map_err(failed("deleting a bookmark"))?
        else {
            return Ok(no_such_bookmark(args.id));
        };
        dialect::unindex(&mut tx, backend, args.id)
            .await
            .map_err(failed("removing a bookmark from the search index"))?;
        tx.commit().await.map_err(failed("deleting a bookmark"))?;
        let deleted = row.with_tags(tags);
        let text = format!("Deleted bookmark {}: {}", deleted.id, deleted.line());
        structured(&DeleteOutput { deleted }, text)
    }
}
