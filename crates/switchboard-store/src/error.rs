//! What can go wrong opening or using a store.

use std::path::PathBuf;

use sqlx::migrate::MigrateError;

/// Why a store could not be opened, or a statement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{location:?} is not a database location: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("cannot create the directory {} for the database: {source}", path.display())]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database at {location}: {source}")]
    Connect {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database at {location} was created by a newer Switchboard (migration {version} is unknown to this version); upgrade Switchboard or use another --db"
    )]
    NewerDatabase { location: String, version: i64 },
    #[error(
        "the database at {location} records migration {version} with different contents than this version's; it was written by another build of Switchboard, so use that build or another --db"
    )]
    ChangedMigration { location: String, version: i64 },
    #[error("cannot migrate the database at {location}: {source}")]
    Migrate {
        location: String,
        #[source]
        source: MigrateError,
    },
    #[error("the database failed while {action}: {source}")]
    Database {
        /// What was being done, as a gerund phrase ("adding an expense").
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl StoreError {
    /// A failed statement, with what it was for.
    pub fn database(action: &'static str, source: sqlx::Error) -> Self {
        StoreError::Database { action, source }
    }

    /// Whether trying again later may succeed (a busy or locked database, a pool timeout, a
    /// serialization failure).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database { source, .. } | StoreError::Connect { source, .. } => {
                is_transient(source)
            }
            _ => false,
        }
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
/// serialization_failure, deadlock_detected, lock_not_available, cannot_connect_now.
const POSTGRES_TRANSIENT: [&str; 4] = ["40001", "40P01", "55P03", "57P03"];

/// Whether a sqlx error is temporary trouble: SQLite `BUSY`/`LOCKED` (any extended code),
/// PostgreSQL serialization failures, deadlocks and lock timeouts, a pool with no free
/// connection, or a dropped connection.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(database) => {
            if database
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some()
            {
                // The primary result code is the low byte of the extended one.
                database
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
            } else if database
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                database
                    .code()
                    .is_some_and(|code| POSTGRES_TRANSIENT.contains(&&*code))
            } else {
                false
            }
        }
        _ => false,
    }
}
