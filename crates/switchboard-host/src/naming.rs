//! Qualified tool names: how tools of many servers share one flat namespace.
//!
//! A model sees every tool of every server at once, and both Anthropic and OpenAI require tool
//! names matching `^[A-Za-z0-9_-]{1,64}$`. The qualified name is `{server}__{tool}`, with every
//! other character replaced by `_`. When that is longer than 64 characters, or two tools would
//! get the same name, the name is shortened and ends in `_` plus 8 hex digits of a SHA-256 of
//! the exact server and tool names, so it stays unique and deterministic across runs. Names are
//! reversed through the [`ToolIndex`] built from the tool lists, never by parsing.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use switchboard_config::ServerName;

/// The longest name the LLM providers accept.
pub const MAX_QUALIFIED_LEN: usize = 64;
/// Between the server and the tool part of a qualified name.
pub const SEPARATOR: &str = "__";
const HASH_HEX_DIGITS: usize = 8;

fn sanitize(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn hashed(server: &ServerName, tool: &str, readable: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(server.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(tool.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest
        .iter()
        .take(HASH_HEX_DIGITS / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = MAX_QUALIFIED_LEN - HASH_HEX_DIGITS - 1;
    let prefix: String = readable.chars().take(keep).collect();
    format!("{prefix}_{hex}")
}

/// The readable qualified name, before collision handling.
pub fn qualify(server: &ServerName, tool: &str) -> String {
    let readable = format!("{}{SEPARATOR}{}", sanitize(server.as_str()), sanitize(tool));
    if readable.len() > MAX_QUALIFIED_LEN {
        hashed(server, tool, &readable)
    } else {
        readable
    }
}

/// A map between qualified names and `(server, tool)` pairs, unique in both directions.
#[derive(Debug, Default, Clone)]
pub struct ToolIndex {
    by_qualified: HashMap<String, (ServerName, String)>,
    by_pair: HashMap<(ServerName, String), String>,
}

impl ToolIndex {
    /// Build the index for tools in a stable order (servers in config order, tools in list
    /// order), so a collision always gives the hash to the same tool.
    pub fn build<'a>(pairs: impl IntoIterator<Item = (&'a ServerName, &'a str)>) -> Self {
        let mut index = ToolIndex::default();
        for (server, tool) in pairs {
            let key = (server.clone(), tool.to_owned());
            if index.by_pair.contains_key(&key) {
                continue;
            }
            let mut name = qualify(server, tool);
            if index.by_qualified.contains_key(&name) {
                name = hashed(server, tool, &name);
            }
            index.by_qualified.insert(name.clone(), key.clone());
            index.by_pair.insert(key, name);
        }
        index
    }

    pub fn qualified(&self, server: &ServerName, tool: &str) -> Option<&str> {
        self.by_pair
            .get(&(server.clone(), tool.to_owned()))
            .map(String::as_str)
    }

    pub fn resolve(&self, qualified: &str) -> Option<(&ServerName, &str)> {
        self.by_qualified
            .get(qualified)
            .map(|(server, tool)| (server, tool.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ServerName {
        ServerName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn valid(q: &str) -> bool {
        !q.is_empty()
            && q.len() <= MAX_QUALIFIED_LEN
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn plain_names_are_readable() {
        assert_eq!(
            qualify(&name("time"), "get_current_time"),
            "time__get_current_time"
        );
    }

    #[test]
    fn invalid_characters_become_underscores() {
        let q = qualify(&name("my server"), "files.read/all");
        assert_eq!(q, "my_server__files_read_all");
        assert!(valid(&q));
    }

    #[test]
    fn long_names_are_shortened_with_a_stable_hash() {
        let server = name("a-really-long-server-name-for-testing");
        let tool = "an_even_longer_tool_name_that_does_not_fit_in_sixty_four";
        let q = qualify(&server, tool);
        assert_eq!(q.len(), MAX_QUALIFIED_LEN);
        assert!(valid(&q));
        assert_eq!(q, qualify(&server, tool), "deterministic");
    }

    #[test]
    fn colliding_names_stay_unique_and_reversible() {
        let a = name("a.b");
        let b = name("a_b");
        let index = ToolIndex::build([(&a, "t"), (&b, "t")]);
        let qa = index.qualified(&a, "t").map(str::to_owned);
        let qb = index.qualified(&b, "t").map(str::to_owned);
        assert_eq!(qa.as_deref(), Some("a_b__t"));
        let qb = qb.unwrap_or_default();
        assert_ne!(qa.as_deref(), Some(qb.as_str()));
        assert!(valid(&qb));
        assert_eq!(index.resolve(&qb), Some((&b, "t")));
        assert_eq!(index.resolve("a_b__t"), Some((&a, "t")));
    }
}
