//! `${VAR}` expansion: where it applies, its escapes, and its errors.

use std::path::PathBuf;

use insta::assert_snapshot;
use switchboard_config::{ConfigError, Transport};

use crate::{chain, line_column, parse_err, parse_ok};

/// The parts of the only server in `text`, which must be a stdio server; env values exposed.
struct StdioParts {
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
}

fn stdio_parts(text: &str) -> StdioParts {
    let config = parse_ok(text);
    let Some(entry) = config.servers.values().next() else {
        panic!("no servers in {config:?}");
    };
    let Transport::Stdio {
        command,
        args,
        env,
        cwd,
    } = &entry.transport
    else {
        panic!("not stdio: {entry:?}");
    };
    StdioParts {
        command: command.clone(),
        args: args.clone(),
        env: env
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().to_owned()))
            .collect(),
        cwd: cwd.clone(),
    }
}

#[test]
fn both_forms_expand_in_command_args_env_and_cwd() {
    let StdioParts {
        command,
        args,
        env,
        cwd,
    } = stdio_parts(
        r#"{ "mcpServers": { "s": {
  "command": "/opt/${TZ}/bin/server",
  "args": ["--token=${TOKEN}", "${env:GITHUB_TOKEN}"],
  "env": { "API_TOKEN": "${env:TOKEN}", "PLAIN": "x" },
  "cwd": "/srv/${TZ}"
} } }"#,
    );

    assert_eq!(command, "/opt/Europe/Berlin/bin/server");
    assert_eq!(args, ["--token=t0ken", "ghp_example"]);
    assert_eq!(
        env,
        [
            ("API_TOKEN".to_owned(), "t0ken".to_owned()),
            ("PLAIN".to_owned(), "x".to_owned())
        ]
    );
    assert_eq!(cwd, Some(PathBuf::from("/srv/Europe/Berlin")));
}

#[test]
fn expansion_applies_to_url_and_header_values_but_not_names() {
    let config = parse_ok(
        r#"{ "mcpServers": { "s": {
  "url": "https://${HOST}/mcp?key=${env:TOKEN}",
  "headers": { "X-$$": "${GITHUB_TOKEN}" }
} } }"#,
    );
    let Transport::StreamableHttp { url, headers } = &config.servers["s"].transport else {
        panic!("unexpected {config:?}");
    };

    assert_eq!(url.as_str(), "https://mcp.example.com/mcp?key=t0ken");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    assert_eq!(headers, [("X-$$", "ghp_example")]);
}

#[test]
fn env_names_are_not_expanded() {
    let StdioParts { env, .. } = stdio_parts(
        r#"{ "mcpServers": { "s": { "command": "x", "env": { "A_${TOKEN}": "v" } } } }"#,
    );

    assert_eq!(env, [("A_${TOKEN}".to_owned(), "v".to_owned())]);
}

#[test]
fn dollar_escapes_and_lone_dollars() {
    let StdioParts { args, .. } = stdio_parts(
        r#"{ "mcpServers": { "s": { "command": "x", "args": [
  "$${TOKEN}", "a$$b", "$HOME", "cost: 5$", "$", "${TOKEN}$${TOKEN}", "$$$${TOKEN}"
] } } }"#,
    );

    assert_eq!(
        args,
        [
            "${TOKEN}",
            "a$b",
            "$HOME",
            "cost: 5$",
            "$",
            "t0ken${TOKEN}",
            "$${TOKEN}"
        ]
    );
}

#[test]
fn expanded_values_are_not_expanded_again() {
    let StdioParts { args, .. } =
        stdio_parts(r#"{ "mcpServers": { "s": { "command": "x", "args": ["${NESTED}"] } } }"#);

    assert_eq!(args, ["${TOKEN}"]);
}

#[test]
fn set_but_empty_variable_expands_to_nothing() {
    let StdioParts { args, .. } =
        stdio_parts(r#"{ "mcpServers": { "s": { "command": "x", "args": ["[${EMPTY}]"] } } }"#);

    assert_eq!(args, ["[]"]);
}

#[test]
fn defaults_apply_when_unset_or_empty() {
    let StdioParts { args, .. } = stdio_parts(
        r#"{ "mcpServers": { "s": { "command": "x", "args": [
  "${MISSING:-fallback}", "${EMPTY:-fallback}", "${TOKEN:-fallback}", "${MISSING:-}"
] } } }"#,
    );

    assert_eq!(args, ["fallback", "fallback", "t0ken", ""]);
}

#[test]
fn unset_variable_names_variable_server_field_and_position() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "github": {
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": { "Authorization": "Bearer ${MISSING_TOKEN}" }
    }
  }
}"#,
    );

    let ConfigError::UnsetVariable {
        variable, field, ..
    } = &error
    else {
        panic!("unexpected {error:?}");
    };
    assert_eq!(variable, "MISSING_TOKEN");
    assert_eq!(field, "headers.Authorization");
    // The value's opening quote is at column 37, so `Bearer ` takes 38 to 44 and `$` is at 45.
    assert_eq!(line_column(&error), (5, 45));
    assert_snapshot!("unset_variable", chain(&error));
}

#[test]
fn unset_variable_position_accounts_for_escapes_before_it() {
    // `\u00e9` is six characters in the file but one in the value, and `\"` is two for one.
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "command": "x", "args": ["\u00e9\"${MISSING}"] } } }"#,
    );

    assert!(matches!(&error, ConfigError::UnsetVariable { field, .. } if field == "args[0]"));
    assert_eq!(line_column(&error), (1, 60));
}

#[test]
fn unset_variable_in_env_form_is_reported_by_name() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "${env:NOPE}" } } }"#);

    assert!(matches!(
        &error,
        ConfigError::UnsetVariable { variable, field, .. } if variable == "NOPE" && field == "command"
    ));
    assert_eq!(line_column(&error), (1, 38));
}

#[test]
fn disabled_servers_keep_unset_references_instead_of_failing() {
    let config = parse_ok(
        r#"{ "mcpServers": { "later": {
  "command": "x", "args": ["${MISSING}", "${TOKEN}"], "disabled": true
} } }"#,
    );
    let entry = &config.servers["later"];
    let Transport::Stdio { args, .. } = &entry.transport else {
        panic!("unexpected {entry:?}");
    };

    assert!(entry.disabled);
    assert_eq!(args, &["${MISSING}", "t0ken"]);
}

#[test]
fn disabled_servers_still_report_malformed_references() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "command": "${MISSING", "disabled": true } } }"#);

    assert!(matches!(error, ConfigError::MalformedVariable { .. }));
}

#[test]
fn vscode_input_variable_is_refused_with_advice() {
    let error = parse_err(
        r#"{
  "inputs": [{ "type": "promptString", "id": "key", "password": true }],
  "servers": {
    "perplexity": {
      "command": "npx",
      "env": { "PERPLEXITY_API_KEY": "${input:key}" }
    }
  }
}"#,
    );

    assert!(matches!(
        &error,
        ConfigError::UnsupportedVariable { reference, field, .. }
            if reference == "${input:key}" && field == "env.PERPLEXITY_API_KEY"
    ));
    assert_eq!(line_column(&error), (6, 39));
    assert_snapshot!("vscode_input_variable", chain(&error));
}

#[test]
fn vscode_workspace_folder_is_refused() {
    let error = parse_err(
        r#"{ "servers": { "s": { "command": "node", "args": ["${workspaceFolder}/index.js"] } } }"#,
    );

    assert!(matches!(
        &error,
        ConfigError::UnsupportedVariable { reference, field, .. }
            if reference == "${workspaceFolder}" && field == "args[0]"
    ));
    assert_eq!(line_column(&error), (1, 52));
}

#[test]
fn other_prefixed_variables_are_refused() {
    let error = parse_err(r#"{ "servers": { "s": { "command": "${config:python.path}" } } }"#);

    assert!(matches!(
        &error,
        ConfigError::UnsupportedVariable { reference, .. } if reference == "${config:python.path}"
    ));
}

#[test]
fn unterminated_reference_is_malformed() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "x", "cwd": "/srv/${HOME" } } }"#);

    assert!(matches!(&error, ConfigError::MalformedVariable { field, .. } if field == "cwd"));
    assert_eq!(line_column(&error), (1, 55));
    assert_snapshot!("unterminated_reference", chain(&error));
}

#[test]
fn empty_reference_is_malformed() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "x", "args": ["${}"] } } }"#);

    assert!(matches!(error, ConfigError::MalformedVariable { .. }));
    assert_snapshot!("empty_reference", chain(&error));
}

#[test]
fn reference_with_invalid_name_is_malformed() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "command": "x", "args": ["${MY VAR}"] } } }"#);

    assert!(matches!(error, ConfigError::MalformedVariable { .. }));
    assert_snapshot!("invalid_variable_name", chain(&error));
}
