//! Conversation history: trimming it to fit a model's context, and keeping it per `--session`
//! in the SQLite store (or PostgreSQL, given a URL).

use sqlx::Row;
use switchboard_llm::{Block, Message, Role};
use switchboard_store::{Location, Migrations, Store, StoreError};

/// The table that records this store's migrations.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations_agent";

/// The longest session name accepted (the column's CHECK agrees).
pub const MAX_SESSION_NAME: usize = 128;

/// A rough token count for a message: four characters a token, plus a little per block for
/// the wire format around it. Good enough to decide what to trim; never used for billing.
pub fn estimate_tokens(message: &Message) -> usize {
    message
        .content
        .iter()
        .map(|block| {
            let chars = match block {
                Block::Text { text } => text.len(),
                Block::ToolUse { name, input, .. } => name.len() + input.to_string().len(),
                Block::ToolResult { content, .. } => content.len(),
            };
            chars / 4 + 8
        })
        .sum()
}

/// Whether a conversation may start at this message: a user message that answers no tool
/// call. Starting anywhere else would leave a tool result without its call, which both
/// providers reject.
fn starts_exchange(message: &Message) -> bool {
    message.role == Role::User
        && !message
            .content
            .iter()
            .any(|block| matches!(block, Block::ToolResult { .. }))
}

/// The longest suffix of `messages` that fits in `budget` tokens and starts at a user message
/// that answers no tool call. The last such exchange is always kept, even when it alone is
/// over the budget: without it the model would not know what it is answering.
pub fn fit(messages: &[Message], budget: usize) -> &[Message] {
    let starts: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, message)| starts_exchange(message))
        .map(|(index, _)| index)
        .collect();
    let Some(&last) = starts.last() else {
        return messages;
    };
    let mut suffix_tokens: Vec<usize> = vec![0; messages.len() + 1];
    for index in (0..messages.len()).rev() {
        suffix_tokens[index] = suffix_tokens[index + 1] + estimate_tokens(&messages[index]);
    }
    let start = starts
        .iter()
        .copied()
        .find(|&start| suffix_tokens[start] <= budget)
        .unwrap_or(last);
    &messages[start..]
}

/// Append `message` to `history`, merging it into the last message when both are from the
/// user (a tool result followed by the user's next question, say): the providers want the
/// roles to alternate.
pub fn push(history: &mut Vec<Message>, message: Message) {
    match history.last_mut() {
        Some(last) if last.role == Role::User && message.role == Role::User => {
            last.content.extend(message.content);
        }
        _ => history.push(message),
    }
}

/// Why a session could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a session name must have 1 to {MAX_SESSION_NAME} bytes, not {0}")]
    BadName(usize),
    #[error("session \"{session}\" holds a message this version cannot read: {reason}")]
    Unreadable { session: String, reason: String },
}

/// Saved conversations, one per session name.
#[derive(Debug, Clone)]
pub struct SessionStore {
    store: Store,
}

/// A saved session's name and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub name: String,
    pub messages: i64,
    pub updated_at: String,
}

fn migrations() -> Migrations {
    Migrations {
        table: MIGRATIONS_TABLE,
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

fn check_name(session: &str) -> Result<(), HistoryError> {
    if session.is_empty() || session.len() > MAX_SESSION_NAME {
        return Err(HistoryError::BadName(session.len()));
    }
    Ok(())
}

impl SessionStore {
    /// Open (creating and migrating) the store at `location`.
    pub async fn open(location: &Location) -> Result<SessionStore, HistoryError> {
        Ok(SessionStore {
            store: Store::open(location, migrations()).await?,
        })
    }

    /// The messages of `session`, oldest first; empty for a new session.
    pub async fn load(&self, session: &str) -> Result<Vec<Message>, HistoryError> {
        check_name(session)?;
        let rows =
            sqlx::query("SELECT role, content FROM agent_messages WHERE session = $1 ORDER BY id")
                .bind(session)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| StoreError::database("loading the session", e))?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows {
            let role: String = row
                .try_get("role")
                .map_err(|e| StoreError::database("loading the session", e))?;
            let content: String = row
                .try_get("content")
                .map_err(|e| StoreError::database("loading the session", e))?;
            let role = match role.as_str() {
                "user" => Role::User,
                _ => Role::Assistant,
            };
            let content: Vec<Block> =
                serde_json::from_str(&content).map_err(|e| HistoryError::Unreadable {
                    session: session.to_owned(),
                    reason: e.to_string(),
                })?;
            push(&mut messages, Message { role, content });
        }
        Ok(messages)
    }

    /// Add `messages` to the end of `session`, all or nothing.
    pub async fn append(&self, session: &str, messages: &[Message]) -> Result<(), HistoryError> {
        check_name(session)?;
        if messages.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(|e| StoreError::database("saving the session", e))?;
        for message in messages {
            let role = match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let content =
                serde_json::to_string(&message.content).map_err(|e| HistoryError::Unreadable {
                    session: session.to_owned(),
                    reason: e.to_string(),
                })?;
            sqlx::query(
                "INSERT INTO agent_messages (session, role, content, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(session)
            .bind(role)
            .bind(content)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::database("saving the session", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::database("saving the session", e))?;
        Ok(())
    }

    /// Forget `session`. Returns how many messages it had.
    pub async fn clear(&self, session: &str) -> Result<u64, HistoryError> {
        check_name(session)?;
        let mut tx = self
            .store
            .begin_write()
            .await
            .map_err(|e| StoreError::database("clearing the session", e))?;
        let done = sqlx::query("DELETE FROM agent_messages WHERE session = $1")
            .bind(session)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::database("clearing the session", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::database("clearing the session", e))?;
        Ok(done.rows_affected())
    }

    /// Every saved session, most recently used first.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, HistoryError> {
        let rows = sqlx::query(
            "SELECT session, CAST(COUNT(*) AS BIGINT) AS messages, MAX(created_at) AS updated_at \
             FROM agent_messages GROUP BY session ORDER BY MAX(created_at) DESC, session",
        )
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| StoreError::database("listing sessions", e))?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    name: row.try_get("session")?,
                    messages: row.try_get("messages")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| StoreError::database("listing sessions", e).into())
    }

    pub async fn close(&self) {
        self.store.close().await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool_round(id: &str) -> [Message; 2] {
        [
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolUse {
                    id: id.into(),
                    name: "s__t".into(),
                    input: json!({}),
                }],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: id.into(),
                    content: "x".repeat(400),
                    is_error: false,
                }],
            },
        ]
    }

    fn conversation() -> Vec<Message> {
        let mut messages = vec![Message::user("first question")];
        messages.extend(tool_round("a"));
        messages.push(Message {
            role: Role::Assistant,
            content: vec![Block::text("first answer")],
        });
        messages.push(Message::user("second question"));
        messages.extend(tool_round("b"));
        messages
    }

    #[test]
    fn fit_keeps_everything_that_fits() {
        let messages = conversation();
        assert_eq!(fit(&messages, 100_000).len(), messages.len());
    }

    #[test]
    fn fit_drops_whole_exchanges_and_never_orphans_a_tool_result() {
        let messages = conversation();
        let kept = fit(&messages, 150);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[0].text(), "second question");
    }

    #[test]
    fn fit_keeps_the_last_exchange_even_over_budget() {
        let messages = conversation();
        let kept = fit(&messages, 1);
        assert_eq!(kept[0].text(), "second question");
    }

    #[test]
    fn push_merges_consecutive_user_messages() {
        let mut history = tool_round("a").to_vec();
        push(&mut history, Message::user("next"));
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].content.len(), 2);
    }

    async fn round_trip(location: &Location) {
        let store = SessionStore::open(location).await.expect("open");
        assert!(store.load("work").await.expect("load").is_empty());
        let messages = conversation();
        store.append("work", &messages[..3]).await.expect("append");
        store.append("work", &messages[3..]).await.expect("append");
        store.append("other", &messages[..1]).await.expect("append");
        assert_eq!(store.load("work").await.expect("load"), messages);
        let sessions = store.sessions().await.expect("sessions");
        assert_eq!(sessions.len(), 2);
        assert_eq!(store.clear("work").await.expect("clear"), 7);
        assert!(store.load("work").await.expect("load").is_empty());
        let error = store
            .load(&"x".repeat(200))
            .await
            .expect_err("too long a name");
        assert!(error.to_string().contains("1 to 128 bytes"), "{error}");
        store.close().await;
    }

    #[tokio::test]
    async fn sessions_round_trip_in_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location =
            Location::parse(&dir.path().join("agent.sqlite3").display().to_string()).expect("path");
        round_trip(&location).await;
        // Reopening finds the data and does not migrate again.
        let store = SessionStore::open(&location).await.expect("reopen");
        assert_eq!(store.load("other").await.expect("load").len(), 1);
    }

    #[tokio::test]
    async fn sessions_round_trip_in_postgres() {
        let Some(url) = switchboard_store::testing::postgres_url() else {
            return;
        };
        let schema = switchboard_store::testing::ScratchSchema::create(&url)
            .await
            .expect("schema");
        round_trip(&Location::parse(schema.url()).expect("url")).await;
    }
}
