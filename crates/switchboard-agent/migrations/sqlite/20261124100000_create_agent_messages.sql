-- One row per conversation message; `content` is the message's blocks as JSON
-- (text, tool_use, tool_result). Rows of a session are read back in `id` order.
CREATE TABLE agent_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL CHECK (length(session) BETWEEN 1 AND 128),
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX agent_messages_by_session ON agent_messages (session, id);
