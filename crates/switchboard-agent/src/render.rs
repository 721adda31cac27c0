//! Tool results as text: the whole of it for the model, one line of it for the terminal.

use std::fmt::Write as _;

use switchboard_client::model::{Content, ToolResult};

/// A short line for the terminal: the first line of the content, cut to `width` characters.
pub fn summary_line(content: &str, width: usize) -> String {
    let first = content
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no content)");
    let more_lines = content.trim().lines().nth(1).is_some();
    let mut line = truncate_chars(first, width);
    if more_lines && !line.ends_with('…') {
        line.push_str(" …");
    }
    line
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => {
            let mut cut = text[..end].trim_end().to_owned();
            cut.push('…');
            cut
        }
    }
}

/// A tool result as the text the model reads, at most `max_chars` characters.
///
/// Text content is kept as is. When there is no text, the structured content is sent as JSON.
/// Binary content (images, audio, blobs) is described, not inlined: the model cannot use
/// base64 through a text channel and it would eat the context.
pub fn tool_result_text(result: &ToolResult, max_chars: usize) -> String {
    let mut out = String::new();
    for item in &result.content {
        if !out.is_empty() {
            out.push('\n');
        }
        match item {
            Content::Text { text } => out.push_str(text),
            Content::Image { data, mime_type } => {
                let _ = write!(out, "[image {mime_type}, {} bytes]", base64_len(data));
            }
            Content::Audio { data, mime_type } => {
                let _ = write!(out, "[audio {mime_type}, {} bytes]", base64_len(data));
            }
            Content::ResourceLink { uri, name, .. } => {
                let _ = write!(out, "[resource link {uri}");
                if let Some(name) = name {
                    let _ = write!(out, " \"{name}\"");
                }
                out.push(']');
            }
            Content::Resource { resource } => match (&resource.text, &resource.blob) {
                (Some(text), _) => {
                    let _ = write!(out, "[resource {}]\n{text}", resource.uri);
                }
                (None, Some(blob)) => {
                    let _ = write!(
                        out,
                        "[resource {}, {} bytes of {}]",
                        resource.uri,
                        base64_len(blob),
                        resource.mime_type.as_deref().unwrap_or("binary data")
                    );
                }
                (None, None) => {
                    let _ = write!(out, "[resource {}]", resource.uri);
                }
            },
            Content::Unknown => out.push_str("[content of a type this client does not know]"),
        }
    }
    let has_text = result
        .content
        .iter()
        .any(|item| matches!(item, Content::Text { .. }));
    if !has_text && let Some(structured) = &result.structured_content {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&structured.to_string());
    }
    if out.is_empty() {
        out.push_str(if result.is_error {
            "The tool failed and gave no reason."
        } else {
            "The tool succeeded and returned no content."
        });
    }
    if out.chars().count() > max_chars {
        let total = out.chars().count();
        let mut cut = truncate_chars(&out, max_chars);
        let _ = write!(cut, "\n[cut: the result had {total} characters]");
        return cut;
    }
    out
}

/// The decoded size of base64 text, near enough for a description.
fn base64_len(data: &str) -> usize {
    let padding = data.bytes().rev().take_while(|b| *b == b'=').count();
    (data.len() / 4 * 3).saturating_sub(padding)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(raw: serde_json::Value) -> ToolResult {
        ToolResult::from_json(raw).expect("a valid result")
    }

    #[test]
    fn text_is_kept_and_binary_is_described() {
        let text = tool_result_text(
            &result(json!({"content": [
                {"type": "text", "text": "two lines\nhere"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            ]})),
            1000,
        );
        assert_eq!(text, "two lines\nhere\n[image image/png, 3 bytes]");
        assert_eq!(summary_line(&text, 80), "two lines …");
    }

    #[test]
    fn structured_content_stands_in_for_missing_text() {
        let text = tool_result_text(
            &result(json!({"content": [], "structuredContent": {"id": 7}})),
            1000,
        );
        assert_eq!(text, r#"{"id":7}"#);
    }

    #[test]
    fn long_results_are_cut_and_say_so() {
        let long = "é".repeat(50);
        let text = tool_result_text(
            &result(json!({"content": [{"type": "text", "text": long}]})),
            10,
        );
        assert_eq!(
            text,
            format!("{}…\n[cut: the result had 50 characters]", "é".repeat(10))
        );
    }

    #[test]
    fn empty_results_say_what_happened() {
        let failed = tool_result_text(&result(json!({"content": [], "isError": true})), 100);
        assert_eq!(failed, "The tool failed and gave no reason.");
        assert_eq!(summary_line("", 20), "(no content)");
    }
}
