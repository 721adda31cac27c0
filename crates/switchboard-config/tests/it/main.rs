//! Integration tests for switchboard-config: one binary, one module per area.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

mod adhoc;
mod env_vars;
mod errors;
mod model;
mod resilience;
mod shapes;

use std::error::Error;
use std::path::Path;

use switchboard_config::{Config, ConfigError, parse_config};

/// The path every test config pretends to come from, so messages look like real ones.
pub const ORIGIN: &str = "/home/a/mcp.json";

/// A fixed environment, so tests never depend on the machine's.
pub fn test_env(name: &str) -> Option<String> {
    let value = match name {
        "TOKEN" => "t0ken",
        "GITHUB_TOKEN" => "ghp_example",
        "TZ" => "Europe/Berlin",
        "HOST" => "mcp.example.com",
        "EMPTY" => "",
        "MULTILINE" => "a\nb",
        "NESTED" => "${TOKEN}",
        _ => return None,
    };
    Some(value.to_owned())
}

pub fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_config(text, Some(Path::new(ORIGIN)), &test_env)
}

pub fn parse_ok(text: &str) -> Config {
    match parse(text) {
        Ok(config) => config,
        Err(error) => panic!("expected the config to parse, got: {}", chain(&error)),
    }
}

pub fn parse_err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error,
    }
}

/// The error and its sources joined with ": ", as the CLI prints them.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `(line, column)` of a file error.
pub fn line_column(error: &ConfigError) -> (usize, usize) {
    let location = error
        .location()
        .unwrap_or_else(|| panic!("{error:?} has no location"));
    assert_eq!(location.path.as_deref(), Some(Path::new(ORIGIN)));
    (location.line, location.column)
}
