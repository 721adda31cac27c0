//! The server's errors, and how a storage failure reaches a client.

use switchboard_server::HandlerError;
use switchboard_store::StoreError;

/// How long a client should wait before retrying on a busy database.
pub const RETRY_AFTER_MS: u64 = 250;

/// Why the bookmark database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookmarksError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A storage failure as a handler error: busy is retryable, the rest is internal.
pub(crate) fn to_handler(error: StoreError) -> HandlerError {
    if error.is_transient() {
        tracing::warn!(%error, "the bookmark database is busy");
        return HandlerError::Transient {
            message: "the bookmark database is busy; try again shortly".to_owned(),
            retry_after_ms: Some(RETRY_AFTER_MS),
        };
    }
    tracing::error!(%error, "the bookmark database failed");
    HandlerError::Internal(format!("the bookmark database failed: {error}"))
}

/// `map_err` for a statement run by a handler.
pub(crate) fn failed(action: &'static str) -> impl FnOnce(sqlx::Error) -> HandlerError {
    move |source| to_handler(StoreError::database(action, source))
}
