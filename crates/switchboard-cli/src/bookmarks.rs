//! Opening the bookmark database for `switchboard serve bookmarks`.

use std::path::PathBuf;

use switchboard_bookmarks::{Bookmarks, BookmarksError};
use switchboard_store::StoreError;

use crate::run::Failure;

/// Where the bookmarks live when neither --db nor $DATABASE_URL says.
pub fn default_db() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "switchboard", "switchboard")
        .map(|dirs| dirs.data_local_dir().join("bookmarks.sqlite3"))
}

/// Map a bookmark-store failure to an exit code: a wrong --db is a usage error; a database
/// that cannot be reached is a connection error.
fn failure(error: BookmarksError) -> Failure {
    let message = error.to_string();
    match error {
        BookmarksError::Store(
            StoreError::InvalidLocation { .. }
            | StoreError::NewerDatabase { .. }
            | StoreError::ChangedMigration { .. },
        ) => Failure::usage(message),
        BookmarksError::Store(_) => Failure::connection(message),
        _ => Failure::internal(message),
    }
}

/// Open (creating and migrating) the bookmark database: `db`, else the default file.
pub async fn open(db: Option<&str>) -> Result<Bookmarks, Failure> {
    let db = match db {
        Some(db) => db.to_owned(),
        None => default_db()
            .ok_or_else(|| {
                Failure::usage(
                    "cannot find the user's data directory for the bookmark database; give --db PATH or a postgres:// URL"
                        .to_owned(),
                )
            })?
            .display()
            .to_string(),
    };
    switchboard_bookmarks::open(&db).await.map_err(failure)
}
