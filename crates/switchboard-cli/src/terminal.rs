//! Asking the user things: chat input, tool approvals, elicitation forms.
//!
//! On a terminal, lines are read with rustyline (editing, history, Ctrl-C as an answer rather
//! than a signal). Otherwise lines are read from stdin and prompts are written to stderr, so
//! scripts can pipe answers in and stdout keeps only the output.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use rustyline::{DefaultEditor, error::ReadlineError};

/// What reading a line gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D, or the end of piped input.
    Eof,
}

enum Input {
    Editor(Box<DefaultEditor>),
    Piped,
}

/// The user's terminal (or piped stdin), shared by the chat loop and the prompts that tool
/// calls and servers cause.
#[derive(Clone)]
pub struct Terminal {
    input: Arc<Mutex<Input>>,
    history_file: Option<PathBuf>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal")
            .field("interactive", &self.is_interactive())
            .finish()
    }
}

impl Terminal {
    /// A terminal on stdin. `history_file` keeps chat input across runs (interactive only).
    pub fn open(history_file: Option<PathBuf>) -> Terminal {
        let input = if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            match DefaultEditor::new() {
                Ok(mut editor) => {
                    if let Some(file) = &history_file {
                        let _ = editor.load_history(file);
                    }
                    Input::Editor(Box::new(editor))
                }
                Err(_) => Input::Piped,
            }
        } else {
            Input::Piped
        };
        Terminal {
            input: Arc::new(Mutex::new(input)),
            history_file,
        }
    }

    pub fn is_interactive(&self) -> bool {
        self.input
            .lock()
            .map(|input| matches!(*input, Input::Editor(_)))
            .unwrap_or(false)
    }

    /// Read one line after showing `prompt`. Runs on a blocking thread: the runtime keeps
    /// serving tool calls meanwhile.
    pub async fn read_line(&self, prompt: &str, remember: bool) -> Line {
        let input = self.input.clone();
        let prompt = prompt.to_owned();
        let history_file = self.history_file.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(mut input) = input.lock() else {
                return Line::Eof;
            };
            match &mut *input {
                Input::Editor(editor) => match editor.readline(&prompt) {
                    Ok(line) => {
                        if remember && !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                            if let Some(file) = &history_file {
                                if let Some(dir) = file.parent() {
                                    let _ = std::fs::create_dir_all(dir);
                                }
                                let _ = editor.save_history(file);
                            }
                        }
                        Line::Text(line)
                    }
                    Err(ReadlineError::Interrupted) => Line::Interrupted,
                    Err(_) => Line::Eof,
                },
                Input::Piped => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(prompt.as_bytes());
                    let _ = err.flush();
                    let mut line = String::new();
                    match std::io::stdin().lock().read_line(&mut line) {
                        Ok(0) | Err(_) => Line::Eof,
                        Ok(_) => {
                            let _ = writeln!(err);
                            Line::Text(line.trim_end_matches(['\n', '\r']).to_owned())
                        }
                    }
                }
            }
        })
        .await
        .unwrap_or(Line::Eof)
    }

    /// Ask a yes/no question; only "y" or "yes" (any case) is yes. Anything else typed after
    /// "n " is returned as the reason.
    pub async fn confirm(&self, question: &str) -> Confirmation {
        match self.read_line(&format!("{question} [y/N] "), false).await {
            Line::Text(answer) => parse_confirmation(&answer),
            Line::Interrupted => Confirmation::Interrupted,
            Line::Eof => Confirmation::NoAnswer,
        }
    }
}

/// An answer to a yes/no question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Yes,
    /// No, with what the user typed after the "no", if anything.
    No(Option<String>),
    Interrupted,
    /// Nobody answered (end of input).
    NoAnswer,
}

pub fn parse_confirmation(answer: &str) -> Confirmation {
    let answer = answer.trim();
    let lower = answer.to_ascii_lowercase();
    if lower == "y" || lower == "yes" {
        return Confirmation::Yes;
    }
    let reason = ["no", "n"]
        .iter()
        .find_map(|word| {
            lower
                .strip_prefix(word)
                .filter(|rest| rest.starts_with([' ', ',', ':']))
                .map(|_| {
                    answer[word.len()..]
                        .trim_start_matches([' ', ',', ':'])
                        .trim()
                })
        })
        .or((!answer.is_empty() && lower != "n" && lower != "no").then_some(answer))
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned);
    Confirmation::No(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_is_yes() {
        assert_eq!(parse_confirmation("y"), Confirmation::Yes);
        assert_eq!(parse_confirmation(" YES "), Confirmation::Yes);
        assert_eq!(parse_confirmation(""), Confirmation::No(None));
        assert_eq!(parse_confirmation("n"), Confirmation::No(None));
        assert_eq!(
            parse_confirmation("yeah"),
            Confirmation::No(Some("yeah".into()))
        );
        assert_eq!(
            parse_confirmation("no, use the travel category"),
            Confirmation::No(Some("use the travel category".into()))
        );
        assert_eq!(
            parse_confirmation("wrong amount"),
            Confirmation::No(Some("wrong amount".into()))
        );
    }
}
