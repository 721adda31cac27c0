//! Qualified tool names: how tools of many servers share one flat namespace.
//!
//! A model sees every tool of every server at once, and both Anthropic and OpenAI require tool
//! names matching `^[A-Za-z0-9_-]{1,64}$`. A tool's qualified name depends only on its server
//! and tool names, never on which other servers are connected, so it is the same in every
//! listing and every run:
//!
//! - **Readable**, `{server}__{tool}`, when that is unambiguous: both names use only
//!   `[A-Za-z0-9_-]`, the server name has no `__` and does not end in `_` (so the first `__` is
//!   the separator), and the result fits in 64 characters.
//! - **Hashed** otherwise: the readable form with other characters replaced by `_`, cut to fit,
//!   then `_h` and 8 hex digits of a SHA-256 of the exact server and tool names. A readable name
//!   that happens to end that way is hashed too, so the two forms never meet.
//!
//! Names are reversed through a [`ToolIndex`] built from the tool lists, never by guessing.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use switchboard_config::ServerName;

/// The longest name the LLM providers accept.
pub const MAX_QUALIFIED_LEN: usize = 64;
/// Between the server and the tool part of a qualified name.
pub const SEPARATOR: &str = "__";
const HASH_HEX_DIGITS: usize = 8;
/// Put before the hash, so a hashed name is recognisable: `_h` + 8 hex digits.
const HASH_MARK: &str = "_h";

fn is_portable(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn sanitize(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// True when `name` ends like a hashed name (`_h` + 8 lowercase hex digits).
pub(crate) fn looks_hashed(name: &str) -> bool {
    let Some(cut) = name.len().checked_sub(HASH_MARK.len() + HASH_HEX_DIGITS) else {
        return false;
    };
    let (_, tail) = name.split_at(cut);
    tail.starts_with(HASH_MARK)
        && tail[HASH_MARK.len()..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

fn hashed(server: &ServerName, tool: &str) -> String {
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
    let readable = format!("{}{SEPARATOR}{}", sanitize(server.as_str()), sanitize(tool));
    let keep = MAX_QUALIFIED_LEN - HASH_MARK.len() - HASH_HEX_DIGITS;
    let prefix: String = readable.chars().take(keep).collect();
    format!("{prefix}{HASH_MARK}{hex}")
}

/// The qualified name of `tool` on `server`.
///
/// Two different `(server, tool)` pairs never get the same readable name, because the first
/// `__` splits a readable name unambiguously. A readable name that happens to end like a hashed
/// name is hashed itself, so readable and hashed names cannot meet; two hashed names meet only
/// if 32 bits of SHA-256 do.
pub fn qualify(server: &ServerName, tool: &str) -> String {
    let server_name = server.as_str();
    let readable = format!("{server_name}{SEPARATOR}{tool}");
    let unambiguous = is_portable(server_name)
        && is_portable(tool)
        && !server_name.contains(SEPARATOR)
        && !server_name.ends_with('_')
        && readable.len() <= MAX_QUALIFIED_LEN
        && !looks_hashed(&readable);
    if unambiguous {
        readable
    } else {
        hashed(server, tool)
    }
}

/// Split a readable qualified name into its server and tool parts (the first `__`).
pub fn split_readable(qualified: &str) -> Option<(&str, &str)> {
    qualified.split_once(SEPARATOR)
}

/// A map from qualified names back to `(server, tool)` pairs.
#[derive(Debug, Default, Clone)]
pub struct ToolIndex {
    by_qualified: HashMap<String, (ServerName, String)>,
}

impl ToolIndex {
    pub fn build<'a>(pairs: impl IntoIterator<Item = (&'a ServerName, &'a str)>) -> Self {
        let mut index = ToolIndex::default();
        for (server, tool) in pairs {
            index
                .by_qualified
                .insert(qualify(server, tool), (server.clone(), tool.to_owned()));
        }
        index
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
        !q.is_empty() && q.len() <= MAX_QUALIFIED_LEN && is_portable(q)
    }

    #[test]
    fn plain_names_are_readable() {
        assert_eq!(
            qualify(&name("time"), "get_current_time"),
            "time__get_current_time"
        );
        assert_eq!(qualify(&name("a"), "_b"), "a___b");
    }

    #[test]
    fn invalid_characters_give_a_hashed_name() {
        let q = qualify(&name("my server"), "files.read/all");
        assert!(q.starts_with("my_server__files_read_all_h"), "{q}");
        assert!(valid(&q));
        assert!(looks_hashed(&q));
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
    fn names_that_would_read_alike_are_kept_apart() {
        // "a.b" sanitises to "a_b"; "a__b"/"c" and "a"/"b__c" would both read "a__b__c".
        let pairs = [
            (name("a.b"), "t"),
            (name("a_b"), "t"),
            (name("a__b"), "c"),
            (name("a"), "b__c"),
            (name("x_"), "y"),
            (name("x"), "_y"),
        ];
        let names: Vec<String> = pairs.iter().map(|(s, t)| qualify(s, t)).collect();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|q| valid(q)), "{names:?}");
        assert_eq!(names[1], "a_b__t");
        assert_eq!(names[3], "a__b__c");
    }

    #[test]
    fn a_tool_named_like_a_hash_is_hashed_too() {
        let q = qualify(&name("s"), "tool_h0123abcd");
        assert_ne!(q, "s__tool_h0123abcd");
        assert!(looks_hashed(&q));
    }

    #[test]
    fn the_index_reverses_names() {
        let a = name("a.b");
        let b = name("a_b");
        let index = ToolIndex::build([(&a, "t"), (&b, "t")]);
        assert_eq!(index.resolve("a_b__t"), Some((&b, "t")));
        assert_eq!(index.resolve(&qualify(&a, "t")), Some((&a, "t")));
        assert_eq!(
            split_readable("time__get_current_time"),
            Some(("time", "get_current_time"))
        );
    }
}
