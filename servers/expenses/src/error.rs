//! The server's errors, and how a storage failure reaches a client.

use switchboard_server::HandlerError;
use switchboard_store::StoreError;

/// How long a client should wait before retrying on a busy database.
pub const RETRY_AFTER_MS: u64 = 250;

/// Why opening, importing or exporting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpensesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// One record of an import is wrong. `row` counts records from 1; `line` is the CSV line;
    /// `field` is absent when the whole record is wrong.
    #[error(
        "row {row}{}{}: {message}",
        line.map(|l| format!(" (line {l})")).unwrap_or_default(),
        field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default()
    )]
    InvalidRow {
        row: usize,
        line: Option<u64>,
        field: Option<String>,
        message: String,
    },
    /// The import as a whole is unreadable (not JSON, no CSV header, too many rows).
    #[error("the {format} input cannot be imported: {message}")]
    InvalidInput {
        format: &'static str,
        message: String,
    },
    #[error("cannot write the {format} export: {message}")]
    Export {
        format: &'static str,
        message: String,
    },
    #[error("there are more than {limit} expenses to export")]
    TooManyToExport { limit: usize },
}

impl ExpensesError {
    pub(crate) fn database(action: &'static str) -> impl FnOnce(sqlx::Error) -> ExpensesError {
        move |source| ExpensesError::Store(StoreError::database(action, source))
    }
}

/// A storage failure as a handler error: busy is retryable, the rest is internal.
pub(crate) fn to_handler(error: StoreError) -> HandlerError {
    if error.is_transient() {
        tracing::warn!(%error, "the expense database is busy");
        return HandlerError::Transient {
            message: "the expense database is busy; try again shortly".to_owned(),
            retry_after_ms: Some(RETRY_AFTER_MS),
        };
    }
    tracing::error!(%error, "the expense database failed");
    HandlerError::Internal(format!("the expense database failed: {error}"))
}

/// `map_err` for a statement run by a handler.
pub(crate) fn failed(action: &'static str) -> impl FnOnce(sqlx::Error) -> HandlerError {
    move |source| to_handler(StoreError::database(action, source))
}
