//! The host's local error type.

use switchboard_client::ClientError;
use switchboard_config::ServerName;

use crate::validate::Violation;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("no server named \"{name}\"{}", suggest(suggestions))]
    UnknownServer {
        name: String,
        suggestions: Vec<String>,
    },

    #[error("server \"{server}\" is not available: {reason}")]
    ServerUnavailable { server: ServerName, reason: String },

    #[error("no tool named \"{name}\"{}", suggest(suggestions))]
    UnknownTool {
        name: String,
        suggestions: Vec<String>,
    },

    #[error("tool \"{name}\" exists on several servers ({}); write it as SERVER/TOOL", candidates.join(", "))]
    AmbiguousTool {
        name: String,
        candidates: Vec<String>,
    },

    #[error("prompt \"{name}\" exists on several servers ({}); write it as SERVER/PROMPT", candidates.join(", "))]
    AmbiguousPrompt {
        name: String,
        candidates: Vec<String>,
    },

    #[error("the resource \"{uri}\" is listed by several servers ({}); name one with --server", servers.join(", "))]
    AmbiguousResource { uri: String, servers: Vec<String> },

    #[error("no prompt named \"{name}\"{}", suggest(suggestions))]
    UnknownPrompt {
        name: String,
        suggestions: Vec<String>,
    },

    #[error("no connected server lists the resource \"{uri}\"; name the server with --server")]
    UnknownResource { uri: String },

    #[error("the arguments for {server}/{tool} do not match its input schema: {}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidArguments {
        server: ServerName,
        tool: String,
        violations: Vec<Violation>,
    },

    #[error("the arguments must be a JSON object, not {found}")]
    ArgumentsNotAnObject { found: &'static str },

    #[error(transparent)]
    Client(#[from] ClientError),
}

fn suggest(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean \"{one}\"?"),
        many => format!(
            "; did you mean one of: {}?",
            many.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// How similar (Jaro-Winkler, 0 to 1) a name must be to be suggested.
const MIN_SIMILARITY: f64 = 0.8;

/// Up to three known names closest to `input`, best first.
pub(crate) fn closest<'a>(input: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let input_lower = input.to_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .map(|candidate| {
            let lower = candidate.to_lowercase();
            let mut score = strsim::jaro_winkler(&input_lower, &lower);
            // "time" should find "time/get_current_time": containment is a strong hint.
            if lower.contains(&input_lower) || input_lower.contains(&lower) {
                score = score.max(0.9);
            }
            (score, candidate)
        })
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, s)| s.to_owned())
        .collect()
}
