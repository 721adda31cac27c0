//! Every error points at the file, line and column, names the server, and reads as one sentence.
//!
//! Positions are asserted directly; the wording is in `snapshots/`.

use insta::assert_snapshot;
use switchboard_config::{ConfigError, MAX_CONFIG_BYTES, parse_config};

use crate::{chain, line_column, parse_err, test_env};

/// Asserts the position and server of a file error and returns its full message for a snapshot.
fn check(error: &ConfigError, line: usize, column: usize, server: Option<&str>) -> String {
    assert_eq!(line_column(error), (line, column), "{}", chain(error));
    assert_eq!(error.server().map(|name| name.as_str()), server);
    chain(error)
}

#[test]
fn syntax_error_reports_the_parser_position() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "a": { "command": "x" }
    "b": { "command": "y" }
  }
}"#,
    );
    assert!(matches!(error, ConfigError::Syntax { .. }));
    assert_snapshot!("syntax_missing_comma", check(&error, 3, 28, None));
}

#[test]
fn unterminated_object_is_a_syntax_error() {
    let error = parse_err("{\n  \"mcpServers\": {\n");
    assert_snapshot!("syntax_unterminated", check(&error, 2, 17, None));
}

#[test]
fn single_quoted_strings_are_refused_as_vscode_does() {
    let error = parse_err("{ 'mcpServers': {} }");
    assert_snapshot!("syntax_single_quotes", check(&error, 1, 3, None));
}

#[test]
fn positions_ignore_a_byte_order_mark_and_count_crlf_once() {
    let error =
        parse_err("\u{feff}{\r\n  \"mcpServers\": {\r\n    \"a\": { \"args\": 1 }\r\n  }\r\n}");
    assert_eq!(line_column(&error), (3, 5));
}

#[test]
fn columns_count_characters_not_bytes() {
    let error = parse_err(r#"{ "mcpServers": { "ümlaut": { "command": 7 } } }"#);
    assert_snapshot!(
        "wrong_type_after_unicode",
        check(&error, 1, 42, Some("ümlaut"))
    );
}

#[test]
fn config_over_four_mebibytes_is_refused() {
    let mut text = String::from(r#"{ "mcpServers": {} }"#);
    text.push_str(&" ".repeat(MAX_CONFIG_BYTES + 1 - text.len()));
    let error = parse_err(&text);
    assert!(matches!(
        error,
        ConfigError::TooLarge { size, limit: MAX_CONFIG_BYTES, .. } if size == MAX_CONFIG_BYTES + 1
    ));
    assert_eq!(error.location(), None);
    assert_snapshot!("too_large", chain(&error));
}

#[test]
fn config_of_exactly_four_mebibytes_is_accepted() {
    let mut text = String::from(r#"{ "mcpServers": {} }"#);
    text.push_str(&" ".repeat(MAX_CONFIG_BYTES - text.len()));
    assert_eq!(text.len(), 4 * 1024 * 1024);
    assert!(crate::parse(&text).is_ok());
}

#[test]
fn too_large_without_origin_says_config() {
    let text = " ".repeat(MAX_CONFIG_BYTES + 1);
    let error = parse_config(&text, None, &test_env).unwrap_err();
    assert_eq!(
        error.to_string(),
        "<config>: the config is 4194305 bytes, more than the 4 MiB limit (4194304 bytes)"
    );
}

#[test]
fn errors_without_origin_use_config_placeholder() {
    let error = parse_config(r#"{ "servers": { "a": {} } }"#, None, &test_env).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("<config>:1:16: server \"a\": "),
        "{error}"
    );
}

#[test]
fn empty_text_is_an_error() {
    let error = parse_err("");
    assert_snapshot!("empty", check(&error, 1, 1, None));
}

#[test]
fn text_with_only_comments_points_at_the_end() {
    let error = parse_err("// nothing yet\n");
    assert!(matches!(error, ConfigError::Empty { .. }));
    assert_eq!(line_column(&error), (2, 1));
}

#[test]
fn top_level_array_is_an_error() {
    let error = parse_err("\n  [1, 2]");
    assert_snapshot!("root_not_an_object", check(&error, 2, 3, None));
}

#[test]
fn missing_server_list_says_which_keys_are_expected() {
    let error = parse_err(r#"{ "globalShortcut": "Ctrl+Space" }"#);
    assert_snapshot!("missing_servers", check(&error, 1, 1, None));
}

#[test]
fn both_mcp_servers_and_servers_is_ambiguous() {
    let error = parse_err(
        r#"{
  "servers": {},
  "mcpServers": {}
}"#,
    );
    assert!(matches!(
        error,
        ConfigError::AmbiguousServers {
            first: "servers",
            second: "mcpServers",
            ..
        }
    ));
    assert_snapshot!("ambiguous_servers", check(&error, 3, 3, None));
}

#[test]
fn mcp_servers_beside_vscode_settings_servers_is_ambiguous() {
    let error = parse_err(r#"{ "mcpServers": {}, "mcp": { "servers": {} } }"#);
    assert!(matches!(
        error,
        ConfigError::AmbiguousServers {
            first: "mcpServers",
            second: "mcp.servers",
            ..
        }
    ));
    assert_eq!(line_column(&error), (1, 30));
}

#[test]
fn repeated_mcp_servers_key_is_an_error() {
    let error = parse_err(r#"{ "mcpServers": {}, "mcpServers": {} }"#);
    assert_snapshot!("repeated_section", check(&error, 1, 21, None));
}

#[test]
fn server_list_must_be_an_object() {
    let error = parse_err(r#"{ "mcpServers": [ { "command": "x" } ] }"#);
    assert_snapshot!("section_not_an_object", check(&error, 1, 17, None));
}

#[test]
fn invalid_server_name_points_at_the_key() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "a/b": { "command": "x" }
  }
}"#,
    );
    let ConfigError::InvalidServerName {
        source, section, ..
    } = &error
    else {
        panic!("unexpected {error:?}");
    };
    assert_eq!(source.name, "a/b");
    assert_eq!(source.reason, "it contains '/'");
    assert_eq!(*section, "mcpServers");
    assert_snapshot!("invalid_server_name", check(&error, 3, 5, None));
}

#[test]
fn server_defined_twice_names_both_places() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "time": { "command": "uvx" },
    "time": { "command": "npx" }
  }
}"#,
    );
    assert!(matches!(
        error,
        ConfigError::ServerDefinedTwice {
            first_line: 3,
            first_column: 5,
            ..
        }
    ));
    assert_snapshot!("server_defined_twice", check(&error, 4, 5, Some("time")));
}

#[test]
fn entry_must_be_an_object() {
    let error = parse_err(r#"{ "mcpServers": { "time": "uvx mcp-server-time" } }"#);
    assert_snapshot!("entry_not_an_object", check(&error, 1, 27, Some("time")));
}

#[test]
fn args_as_a_string_names_field_and_expected_type() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "time": {
      "command": "uvx",
      "env": {},
      "cwd": "/tmp",
      "args": "mcp-server-time"
    }
  }
}"#,
    );
    assert!(matches!(
        &error,
        ConfigError::WrongType { field, expected: "an array of strings", found: "a string", .. }
            if field == "args"
    ));
    assert_snapshot!("args_not_an_array", check(&error, 7, 15, Some("time")));
}

#[test]
fn non_string_argument_names_its_index() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "command": "x", "args": ["--port", 3000] } } }"#);
    assert_snapshot!("arg_not_a_string", check(&error, 1, 61, Some("s")));
}

#[test]
fn non_string_env_value_names_the_variable() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "x", "env": { "A": 1 } } } }"#);
    assert_snapshot!("env_value_not_a_string", check(&error, 1, 56, Some("s")));
}

#[test]
fn env_as_an_array_is_refused() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "x", "env": ["A=1"] } } }"#);
    assert_snapshot!("env_not_an_object", check(&error, 1, 49, Some("s")));
}

#[test]
fn disabled_must_be_a_boolean() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "x", "disabled": "yes" } } }"#);
    assert_snapshot!("disabled_not_a_boolean", check(&error, 1, 54, Some("s")));
}

#[test]
fn command_and_url_together_are_refused() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "weather": {
      "command": "npx",
      "url": "https://weather.example/mcp"
    }
  }
}"#,
    );
    assert_snapshot!("command_and_url", check(&error, 3, 5, Some("weather")));
}

#[test]
fn entry_without_command_or_url_is_refused() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "empty": { "args": ["x"] }
  }
}"#,
    );
    assert_snapshot!("no_command_or_url", check(&error, 3, 5, Some("empty")));
}

#[test]
fn empty_command_is_refused() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "  " } } }"#);
    assert_snapshot!("empty_command", check(&error, 1, 37, Some("s")));
}

#[test]
fn command_that_expands_to_nothing_is_refused() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "command": "${EMPTY}" } } }"#);
    assert!(matches!(&error, ConfigError::EmptyField { field, .. } if field == "command"));
}

#[test]
fn unknown_type_lists_the_accepted_ones() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "type": "grpc", "url": "https://a.example" } } }"#);
    assert_snapshot!("unknown_type", check(&error, 1, 34, Some("s")));
}

#[test]
fn type_names_are_case_sensitive() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "type": "HTTP", "url": "https://a.example" } } }"#);
    assert!(matches!(&error, ConfigError::UnknownTransport { value, .. } if value == "HTTP"));
}

#[test]
fn type_must_be_a_string() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "type": 1, "command": "x" } } }"#);
    assert!(matches!(&error, ConfigError::WrongType { field, .. } if field == "type"));
    assert_eq!(line_column(&error), (1, 34));
}

#[test]
fn http_type_with_a_command_is_a_mismatch() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "type": "http", "command": "x" } } }"#);
    assert_snapshot!("type_http_with_command", check(&error, 1, 34, Some("s")));
}

#[test]
fn stdio_transport_with_a_url_is_a_mismatch() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "transport": "stdio", "url": "https://a.example" } } }"#,
    );
    assert_snapshot!("transport_stdio_with_url", check(&error, 1, 39, Some("s")));
}

#[test]
fn type_and_transport_that_disagree_are_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "transport": "sse", "type": "http", "url": "https://a.example" } } }"#,
    );
    assert!(matches!(
        error,
        ConfigError::ConflictingFields {
            first: "transport",
            second: "type",
            ..
        }
    ));
    assert_snapshot!(
        "type_and_transport_disagree",
        check(&error, 1, 54, Some("s"))
    );
}

#[test]
fn url_and_server_url_that_differ_are_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "url": "https://a.example", "serverUrl": "https://b.example" } } }"#,
    );
    assert_snapshot!("url_and_server_url_differ", check(&error, 1, 54, Some("s")));
}

#[test]
fn headers_on_a_local_server_are_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "command": "x", "headers": { "Authorization": "Bearer a" } } } }"#,
    );
    assert_snapshot!("headers_on_stdio", check(&error, 1, 42, Some("s")));
}

#[test]
fn args_on_a_remote_server_are_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "url": "https://a.example", "args": ["--verbose"] } } }"#,
    );
    assert_snapshot!("args_on_remote", check(&error, 1, 54, Some("s")));
}

#[test]
fn env_file_is_refused_with_advice() {
    let error = parse_err(
        r#"{ "servers": { "s": { "command": "x", "envFile": "${workspaceFolder}/.env" } } }"#,
    );
    assert_snapshot!("env_file", check(&error, 1, 39, Some("s")));
}

#[test]
fn unparsable_url_keeps_the_parser_error_as_source() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "url": "http://exa mple.com/mcp" } } }"#);
    assert!(matches!(
        error,
        ConfigError::InvalidUrl { field: "url", .. }
    ));
    assert!(std::error::Error::source(&error).is_some());
    assert_snapshot!("invalid_url", check(&error, 1, 33, Some("s")));
}

#[test]
fn unsupported_url_scheme_is_refused() {
    let error = parse_err(r#"{ "mcpServers": { "s": { "url": "ftp://files.example/mcp" } } }"#);
    assert_snapshot!("ftp_scheme", check(&error, 1, 33, Some("s")));
}

#[test]
fn websocket_url_with_http_type_is_refused() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "type": "http", "url": "ws://a.example" } } }"#);
    assert_snapshot!("ws_url_with_http_type", check(&error, 1, 49, Some("s")));
}

#[test]
fn http_url_with_websocket_type_is_refused() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "type": "ws", "url": "https://a.example" } } }"#);
    assert!(matches!(
        &error,
        ConfigError::UnsupportedScheme { scheme, expected: "ws or wss", .. } if scheme == "https"
    ));
}

#[test]
fn invalid_header_name_points_at_the_key() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "url": "https://a.example", "headers": { "X Api Key": "k" } } } }"#,
    );
    assert_snapshot!("invalid_header_name", check(&error, 1, 67, Some("s")));
}

#[test]
fn header_value_with_a_line_break_is_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "url": "https://a.example", "headers": { "X-Key": "${MULTILINE}" } } } }"#,
    );
    assert_snapshot!("header_value_line_break", check(&error, 1, 76, Some("s")));
}

#[test]
fn header_value_with_another_control_character_is_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "url": "https://a.example", "headers": { "X-Key": "a\u0001b", "X-Tab": "a\tb" } } } }"#,
    );
    assert!(matches!(&error, ConfigError::InvalidHeader { header, .. } if header == "X-Key"));
    assert_eq!(line_column(&error), (1, 76));
}

#[test]
fn headers_differing_only_in_case_are_duplicates() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "url": "https://a.example", "headers": {
  "Authorization": "Bearer a",
  "authorization": "Bearer b"
} } } }"#,
    );
    assert!(matches!(
        &error,
        ConfigError::FieldDefinedTwice { field, first_line: 2, first_column: 3, .. }
            if field == "headers.authorization"
    ));
    assert_eq!(line_column(&error), (3, 3));
}

#[test]
fn invalid_env_name_is_refused() {
    let error =
        parse_err(r#"{ "mcpServers": { "s": { "command": "x", "env": { "A=B": "1" } } } }"#);
    assert_snapshot!("invalid_env_name", check(&error, 1, 51, Some("s")));
}

#[test]
fn repeated_field_in_an_entry_is_refused() {
    let error = parse_err(
        r#"{
  "mcpServers": {
    "s": {
      "command": "a",
      "command": "b"
    }
  }
}"#,
    );
    assert_snapshot!("repeated_field", check(&error, 5, 7, Some("s")));
}

#[test]
fn repeated_env_variable_is_refused() {
    let error = parse_err(
        r#"{ "mcpServers": { "s": { "command": "x", "env": { "A": "1", "A": "2" } } } }"#,
    );
    assert!(matches!(
        &error,
        ConfigError::FieldDefinedTwice { field, first_line: 1, first_column: 51, .. } if field == "env.A"
    ));
    assert_eq!(line_column(&error), (1, 61));
}

#[test]
fn the_first_bad_server_is_reported() {
    let error = parse_err(
        r#"{ "mcpServers": {
  "good": { "command": "x" },
  "bad": { "command": 1 },
  "worse": {}
} }"#,
    );
    assert_eq!(line_column(&error), (3, 23));
    assert_eq!(error.server().map(|name| name.as_str()), Some("bad"));
}
