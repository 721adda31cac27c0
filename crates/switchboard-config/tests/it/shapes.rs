//! Real-shaped configs from each supported client parse into the expected model.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use switchboard_config::{Secret, ServerName, Transport};
use url::Url;

use crate::parse_ok;

fn secrets(pairs: &[(&str, &str)]) -> IndexMap<String, Secret> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), Secret::new(*value)))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn names(config: &switchboard_config::Config) -> Vec<&str> {
    config.servers.keys().map(ServerName::as_str).collect()
}

#[test]
fn claude_desktop_config_with_command_args_and_env() {
    let config = parse_ok(
        r#"{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"]
    },
    "github": {
      "command": "docker",
      "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
      "env": { "GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_literal" }
    }
  }
}"#,
    );

    assert_eq!(config.origin.as_deref(), Some(Path::new(crate::ORIGIN)));
    assert_eq!(names(&config), ["filesystem", "github"]);
    assert_eq!(
        config.servers["filesystem"].transport,
        Transport::Stdio {
            command: "npx".to_owned(),
            args: strings(&[
                "-y",
                "@modelcontextprotocol/server-filesystem",
                "/Users/me/Desktop"
            ]),
            env: IndexMap::new(),
            cwd: None,
        }
    );
    assert_eq!(
        config.servers["github"].transport,
        Transport::Stdio {
            command: "docker".to_owned(),
            args: strings(&[
                "run",
                "-i",
                "--rm",
                "-e",
                "GITHUB_PERSONAL_ACCESS_TOKEN",
                "ghcr.io/github/github-mcp-server"
            ]),
            env: secrets(&[("GITHUB_PERSONAL_ACCESS_TOKEN", "ghp_literal")]),
            cwd: None,
        }
    );
    assert!(config.servers.values().all(|entry| !entry.disabled));
    assert_eq!(config.servers["github"].name.as_str(), "github");
}

#[test]
fn cursor_config_with_url_and_headers() {
    let config = parse_ok(
        r#"{
  "mcpServers": {
    "linear": {
      "url": "https://mcp.linear.app/mcp",
      "headers": { "Authorization": "Bearer ${TOKEN}", "X-Team": "core" }
    },
    "local": { "url": "http://localhost:8000/sse" },
    "socket": { "url": "wss://example.com/ws" }
  }
}"#,
    );

    assert_eq!(names(&config), ["linear", "local", "socket"]);
    assert_eq!(
        config.servers["linear"].transport,
        Transport::StreamableHttp {
            url: url("https://mcp.linear.app/mcp"),
            headers: secrets(&[("Authorization", "Bearer t0ken"), ("X-Team", "core")]),
        }
    );
    // Without a "type", a URL ending in /sse is still Streamable HTTP: the client falls back to
    // legacy SSE by itself when the server is older.
    assert_eq!(
        config.servers["local"].transport,
        Transport::StreamableHttp {
            url: url("http://localhost:8000/sse"),
            headers: IndexMap::new(),
        }
    );
    assert_eq!(
        config.servers["socket"].transport,
        Transport::WebSocket {
            url: url("wss://example.com/ws"),
            headers: IndexMap::new(),
        }
    );
}

#[test]
fn vscode_mcp_json_with_comments_trailing_commas_and_types() {
    let config = parse_ok(
        r#"{
  // Shared with the team; VS Code prompts for inputs, which we ignore.
  "inputs": [
    { "type": "promptString", "id": "perplexity-key", "description": "Perplexity API Key", "password": true },
  ],
  "servers": {
    /* A local server. */
    "fetch": { "type": "stdio", "command": "uvx", "args": ["mcp-server-fetch",], },
    "github": { "type": "http", "url": "https://api.githubcopilot.com/mcp/", },
    "legacy": { "type": "sse", "url": "http://localhost:3001/sse" },
    "socket": { "type": "ws", "url": "ws://127.0.0.1:9000" }, // trailing comment
  },
}"#,
    );

    assert_eq!(names(&config), ["fetch", "github", "legacy", "socket"]);
    assert_eq!(
        config.servers["fetch"].transport,
        Transport::Stdio {
            command: "uvx".to_owned(),
            args: strings(&["mcp-server-fetch"]),
            env: IndexMap::new(),
            cwd: None,
        }
    );
    assert_eq!(
        config.servers["github"].transport,
        Transport::StreamableHttp {
            url: url("https://api.githubcopilot.com/mcp/"),
            headers: IndexMap::new(),
        }
    );
    assert_eq!(
        config.servers["legacy"].transport,
        Transport::Sse {
            url: url("http://localhost:3001/sse"),
            headers: IndexMap::new(),
        }
    );
    assert_eq!(config.servers["socket"].transport.kind(), "websocket");
}

#[test]
fn vscode_settings_json_with_nested_mcp_servers() {
    let config = parse_ok(
        r#"{
  "editor.fontSize": 14,
  "chat.mcp.discovery.enabled": true,
  "mcp": {
    "inputs": [],
    "servers": {
      "time": { "command": "uvx", "args": ["mcp-server-time", "--local-timezone=${env:TZ}"] }
    }
  },
}"#,
    );

    assert_eq!(names(&config), ["time"]);
    assert_eq!(
        config.servers["time"].transport,
        Transport::Stdio {
            command: "uvx".to_owned(),
            args: strings(&["mcp-server-time", "--local-timezone=Europe/Berlin"]),
            env: IndexMap::new(),
            cwd: None,
        }
    );
}

#[test]
fn cline_config_with_disabled_servers_and_extra_fields() {
    let config = parse_ok(
        r#"{
  "mcpServers": {
    "weather": {
      "command": "node",
      "args": ["/Users/me/weather/build/index.js"],
      "env": { "OPENWEATHER_API_KEY": "k" },
      "cwd": "/Users/me/weather",
      "disabled": false,
      "autoApprove": ["get_forecast"],
      "alwaysAllow": [],
      "timeout": 60,
      "description": "Forecasts"
    },
    "remote": {
      "type": "streamableHttp",
      "url": "https://example.com/mcp",
      "disabled": true
    }
  }
}"#,
    );

    assert_eq!(
        config.servers["weather"].transport,
        Transport::Stdio {
            command: "node".to_owned(),
            args: strings(&["/Users/me/weather/build/index.js"]),
            env: secrets(&[("OPENWEATHER_API_KEY", "k")]),
            cwd: Some(PathBuf::from("/Users/me/weather")),
        }
    );
    assert!(!config.servers["weather"].disabled);
    assert!(config.servers["remote"].disabled);
    let enabled: Vec<&str> = config.enabled().map(|entry| entry.name.as_str()).collect();
    assert_eq!(enabled, ["weather"]);
}

#[test]
fn windsurf_server_url_is_a_synonym_of_url() {
    let config = parse_ok(
        r#"{ "mcpServers": { "remote": { "serverUrl": "https://${HOST}/mcp", "headers": { "Authorization": "Bearer ${TOKEN}" } } } }"#,
    );

    assert_eq!(
        config.servers["remote"].transport,
        Transport::StreamableHttp {
            url: url("https://mcp.example.com/mcp"),
            headers: secrets(&[("Authorization", "Bearer t0ken")]),
        }
    );
}

#[test]
fn url_and_server_url_with_the_same_value_are_accepted() {
    let config = parse_ok(
        r#"{ "mcpServers": { "remote": { "url": "https://a.example/mcp", "serverUrl": "https://a.example/mcp" } } }"#,
    );

    assert_eq!(
        config.servers["remote"].transport.url(),
        Some(&url("https://a.example/mcp"))
    );
}

#[test]
fn url_and_server_url_are_compared_after_unescaping() {
    let config = parse_ok(
        r#"{ "mcpServers": { "remote": { "url": "https://a.example/mcp", "serverUrl": "https:\/\/a.example\/mcp" } } }"#,
    );

    assert_eq!(
        config.servers["remote"].transport.url(),
        Some(&url("https://a.example/mcp"))
    );
}

#[test]
fn claude_code_mcp_json_with_transport_synonym_and_defaults() {
    let config = parse_ok(
        r#"{
  "mcpServers": {
    "api": {
      "transport": "http",
      "type": "streamable-http",
      "url": "${API_BASE_URL:-https://api.example.com}/mcp",
      "headers": { "Authorization": "Bearer ${API_KEY:-anonymous}" }
    }
  }
}"#,
    );

    assert_eq!(
        config.servers["api"].transport,
        Transport::StreamableHttp {
            url: url("https://api.example.com/mcp"),
            headers: secrets(&[("Authorization", "Bearer anonymous")]),
        }
    );
}

#[test]
fn null_fields_count_as_absent() {
    let config = parse_ok(
        r#"{ "mcpServers": { "a": { "command": "x", "env": null, "url": null, "type": null } } }"#,
    );

    assert_eq!(
        config.servers["a"].transport,
        Transport::Stdio {
            command: "x".to_owned(),
            args: Vec::new(),
            env: IndexMap::new(),
            cwd: None,
        }
    );
}

#[test]
fn empty_leftover_fields_of_the_other_kind_are_accepted() {
    let config = parse_ok(
        r#"{ "mcpServers": {
  "remote": { "url": "https://a.example/mcp", "args": [], "env": {}, "cwd": "" },
  "local": { "command": "x", "headers": {} }
} }"#,
    );

    assert_eq!(config.servers["remote"].transport.kind(), "streamable-http");
    assert_eq!(config.servers["local"].transport.kind(), "stdio");
}

#[test]
fn an_empty_server_list_is_a_valid_config() {
    let config = parse_ok(r#"{ "mcpServers": {} }"#);

    assert!(config.servers.is_empty());
    assert_eq!(config.enabled().count(), 0);
}

#[test]
fn servers_keep_file_order() {
    let config = parse_ok(
        r#"{ "servers": { "zeta": { "command": "z" }, "alpha": { "command": "a" }, "mid": { "command": "m" } } }"#,
    );

    assert_eq!(names(&config), ["zeta", "alpha", "mid"]);
}

#[test]
fn an_mcp_key_without_servers_is_ignored_beside_mcp_servers() {
    // opencode and others use "mcp" for their own format; only VS Code's "mcp.servers" counts.
    let config =
        parse_ok(r#"{ "mcp": { "enabled": true }, "mcpServers": { "a": { "command": "x" } } }"#);

    assert_eq!(names(&config), ["a"]);
}

#[test]
fn byte_order_mark_and_crlf_line_endings_are_accepted() {
    let config = parse_ok(
        "\u{feff}{\r\n  \"mcpServers\": {\r\n    \"a\": { \"command\": \"x\" }\r\n  }\r\n}\r\n",
    );

    assert_eq!(names(&config), ["a"]);
}

#[test]
fn unicode_server_names_are_kept() {
    let config = parse_ok(r#"{ "mcpServers": { "café münü": { "command": "x" } } }"#);

    assert_eq!(names(&config), ["café münü"]);
}
