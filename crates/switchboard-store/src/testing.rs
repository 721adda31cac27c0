//! Test support (feature `testing`): a scratch PostgreSQL schema per test, so tests that share
//! one database never see each other's tables.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, postgres::PgConnection};

/// The variable that names the PostgreSQL the tests may use.
pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// The test PostgreSQL URL, or `None` after printing why the test is skipped.
#[allow(clippy::print_stderr)]
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED: {POSTGRES_URL_VAR} is not set");
            None
        }
    }
}

/// A schema created for one test; its [`Self::url`] puts it first on the `search_path`, so
/// everything the test creates lands in it. Dropped (with its tables) when this value is.
#[derive(Debug)]
pub struct ScratchSchema {
    base_url: String,
    name: String,
    url: String,
}

impl ScratchSchema {
    /// Create a fresh schema in the database at `base_url`.
    pub async fn create(base_url: &str) -> Result<ScratchSchema, sqlx::Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "sb_test_{}_{}_{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = PgConnection::connect(base_url).await?;
        connection
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await?;
        connection.close().await?;
        let mut url = url::Url::parse(base_url).map_err(sqlx::Error::config)?;
        url.query_pairs_mut()
            .append_pair("options", &format!("-csearch_path={name}"));
        Ok(ScratchSchema {
            base_url: base_url.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    /// A URL whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchSchema {
    /// Drop the schema on a thread of its own, since `Drop` cannot wait on the test's runtime.
    fn drop(&mut self) {
        let base_url = self.base_url.clone();
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let work = async {
                    let mut connection = PgConnection::connect(&base_url).await?;
                    connection.execute(sqlx::AssertSqlSafe(statement)).await?;
                    connection.close().await
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), work).await;
            });
        });
        let _ = cleanup.join();
    }
}
