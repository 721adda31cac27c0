//! Resources: every tag with its count, and one bookmark by id.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use switchboard_server::{HandlerError, Resource, ResourceContents, ResourceTemplate};

use crate::{Bookmarks, error::failed, queries};

const JSON: &str = "application/json";
pub(crate) const TAGS_URI: &str = "bookmarks://tags";
pub(crate) const BOOKMARK_TEMPLATE: &str = "bookmarks://bookmark/{id}";

fn json_contents<T: Serialize>(
    uri: String,
    value: &T,
) -> Result<Vec<ResourceContents>, HandlerError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| HandlerError::Internal(format!("cannot encode {uri}: {error}")))?;
    Ok(vec![ResourceContents::text(uri, JSON, text)])
}

fn not_found(uri: &str, message: String) -> HandlerError {
    HandlerError::NotFound {
        message,
        data: json!({ "uri": uri }),
    }
}

impl Bookmarks {
    async fn read_tags(&self) -> Result<Vec<ResourceContents>, HandlerError> {
        let tags = self.tag_counts().await?.tags;
        json_contents(TAGS_URI.to_owned(), &tags)
    }

    async fn read_bookmark(
        &self,
        uri: String,
        variables: HashMap<String, String>,
    ) -> Result<Vec<ResourceContents>, HandlerError> {
        let Some(id) = variables
            .get("id")
            .and_then(|id| id.parse::<i64>().ok())
            .filter(|id| *id > 0)
        else {
            return Err(not_found(
                &uri,
                format!(
                    "{uri} names no bookmark: ids are positive whole numbers (see search_bookmarks)"
                ),
            ));
        };
        let mut connection = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(failed("starting to read a bookmark"))?;
        match queries::get_bookmark(&mut connection, id)
            .await
            .map_err(failed("reading a bookmark"))?
        {
            Some(bookmark) => json_contents(uri, &bookmark),
            None => Err(not_found(&uri, format!("no bookmark has id {id}"))),
        }
    }
}

pub(crate) fn tags(bookmarks: &Bookmarks) -> Resource {
    let bookmarks = bookmarks.clone();
    Resource::new(TAGS_URI, "tags", JSON, move |_| {
        let bookmarks = bookmarks.clone();
        async move { bookmarks.read_tags().await }
    })
    .description(
        "Every tag in use with its number of bookmarks, most used first: [{\"tag\", \"count\"}].",
    )
}

pub(crate) fn bookmark(bookmarks: &Bookmarks) -> ResourceTemplate {
    let bookmarks = bookmarks.clone();
    ResourceTemplate::new(
        BOOKMARK_TEMPLATE,
        "bookmark",
        JSON,
        move |uri, variables, _| {
            let bookmarks = bookmarks.clone();
            async move { bookmarks.read_bookmark(uri, variables).await }
        },
    )
    .description(
        "One bookmark by id, as JSON (id, url, title, tags, notes, created_at, updated_at).",
    )
}
