//! The model types: names, secrets, redaction and merging.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use insta::assert_snapshot;
use switchboard_config::{
    Config, ConfigError, InvalidServerName, Secret, ServerEntry, ServerName, Transport,
    display_safe_url,
};
use url::Url;

use crate::{chain, parse_ok};

fn name(text: &str) -> ServerName {
    ServerName::new(text).unwrap()
}

fn stdio(server: &str) -> ServerEntry {
    ServerEntry::new(
        name(server),
        Transport::Stdio {
            command: "x".to_owned(),
            args: Vec::new(),
            env: IndexMap::new(),
            cwd: None,
        },
    )
}

#[test]
fn server_name_rules() {
    let reason = |text: &str| ServerName::new(text).err().map(|error| error.reason);

    assert_eq!(reason("time"), None);
    assert_eq!(reason("my server_2.0 (prod)"), None);
    assert_eq!(reason("café"), None);
    assert_eq!(reason(&"a".repeat(64)), None);
    assert_eq!(reason(&"é".repeat(64)), None);
    assert_eq!(reason(""), Some("it is empty"));
    assert_eq!(
        reason(&"a".repeat(65)),
        Some("it is longer than 64 characters")
    );
    assert_eq!(reason("a/b"), Some("it contains '/'"));
    assert_eq!(reason("a\tb"), Some("it contains a control character"));
    assert_eq!(reason(" time"), Some("it starts or ends with whitespace"));
    assert_eq!(reason("time "), Some("it starts or ends with whitespace"));
}

#[test]
fn invalid_server_name_message() {
    let error = ServerName::new("a/b").unwrap_err();

    assert_eq!(
        error,
        InvalidServerName {
            name: "a/b".to_owned(),
            reason: "it contains '/'"
        }
    );
    assert_eq!(
        error.to_string(),
        r#"server name "a/b" is invalid: it contains '/'"#
    );
}

#[test]
fn invalid_server_name_message_shortens_huge_names() {
    let error = ServerName::new("x".repeat(10_000)).unwrap_err();

    assert_eq!(error.name.len(), 10_000);
    assert_eq!(
        error.to_string(),
        format!(
            "server name \"{}\"… is invalid: it is longer than 64 characters",
            "x".repeat(80)
        )
    );
}

#[test]
fn server_name_display_borrow_and_parse() {
    let time: ServerName = "time".parse().unwrap();

    assert_eq!(time.to_string(), "time");
    assert_eq!(time.as_str(), "time");
    assert_eq!(String::from(time.clone()), "time");
    assert!("a/b".parse::<ServerName>().is_err());
    let mut servers = IndexMap::new();
    servers.insert(time, 1);
    assert_eq!(servers.get("time"), Some(&1));
}

#[test]
fn server_name_serde_validates() {
    let parsed: ServerName = serde_json::from_str(r#""time""#).unwrap();
    assert_eq!(parsed.as_str(), "time");
    assert_eq!(serde_json::to_string(&parsed).unwrap(), r#""time""#);

    let error = serde_json::from_str::<ServerName>(r#""a/b""#).unwrap_err();
    assert!(error.to_string().contains("it contains '/'"), "{error}");
}

#[test]
fn secret_debug_and_display_never_show_the_value() {
    let secret = Secret::new("ghp_supersecret");

    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(format!("{secret}"), "<redacted>");
    assert_eq!(format!("{secret:#?}"), "<redacted>");
    assert_eq!(secret.expose(), "ghp_supersecret");
    assert_eq!(secret, Secret::new("ghp_supersecret"));
}

#[test]
fn debug_of_a_parsed_config_hides_env_header_and_url_credentials() {
    let config = parse_ok(
        r#"{ "mcpServers": {
  "local": { "command": "x", "env": { "API_KEY": "sk-live-123" } },
  "remote": { "url": "https://user:hunter2@a.example/mcp?api_key=qk-999&profile=p", "headers": { "Authorization": "Bearer ${GITHUB_TOKEN}" } }
} }"#,
    );
    let debug = format!("{config:?}");

    for secret in ["sk-live-123", "ghp_example", "hunter2", "qk-999", "user:"] {
        assert!(!debug.contains(secret), "{secret} leaked in {debug}");
    }
    assert!(debug.contains("API_KEY"), "{debug}");
    assert!(
        debug.contains("https://REDACTED:REDACTED@a.example/mcp?api_key=REDACTED&profile=REDACTED"),
        "{debug}"
    );
}

#[test]
fn display_safe_url_leaves_plain_urls_alone() {
    let plain = Url::parse("https://a.example:8443/mcp").unwrap();
    let with_token = Url::parse("wss://token@a.example/ws?key=1").unwrap();

    assert_eq!(display_safe_url(&plain), "https://a.example:8443/mcp");
    assert_eq!(
        display_safe_url(&with_token),
        "wss://REDACTED@a.example/ws?key=REDACTED"
    );
}

#[test]
fn transport_kind_and_url() {
    let url = Url::parse("http://localhost/sse").unwrap();
    let sse = Transport::Sse {
        url: url.clone(),
        headers: IndexMap::new(),
    };

    assert_eq!(sse.kind(), "sse");
    assert_eq!(sse.url(), Some(&url));
    assert_eq!(stdio("a").transport.kind(), "stdio");
    assert_eq!(stdio("a").transport.url(), None);
}

#[test]
fn new_entries_are_enabled() {
    assert!(!stdio("a").disabled);
}

#[test]
fn empty_config_has_nothing() {
    let config = Config::empty();

    assert!(config.servers.is_empty());
    assert_eq!(config.origin, None);
    assert_eq!(config.enabled().count(), 0);
}

#[test]
fn merge_adhoc_appends_after_file_servers() {
    let mut config =
        parse_ok(r#"{ "mcpServers": { "b": { "command": "x" }, "a": { "command": "y" } } }"#);

    config.merge_adhoc(vec![stdio("z"), stdio("c")]).unwrap();

    let names: Vec<&str> = config.servers.keys().map(ServerName::as_str).collect();
    assert_eq!(names, ["b", "a", "z", "c"]);
    assert_eq!(config.enabled().count(), 4);
}

#[test]
fn merge_adhoc_refuses_a_clash_and_changes_nothing() {
    let mut config = parse_ok(r#"{ "mcpServers": { "time": { "command": "uvx" } } }"#);
    let before = config.clone();

    let error = config
        .merge_adhoc(vec![stdio("fresh"), stdio("time")])
        .unwrap_err();

    assert!(
        matches!(&error, ConfigError::DuplicateServer { server, path }
        if server.as_str() == "time" && path.as_deref() == Some(Path::new(crate::ORIGIN)))
    );
    assert_eq!(config, before);
    assert_snapshot!("merge_adhoc_clash", chain(&error));
}

#[test]
fn merge_adhoc_refuses_two_adhoc_servers_with_one_name() {
    let mut config = Config {
        servers: IndexMap::new(),
        origin: Some(PathBuf::from("/x/mcp.json")),
    };

    let error = config
        .merge_adhoc(vec![stdio("a"), stdio("a")])
        .unwrap_err();

    assert!(
        matches!(&error, ConfigError::DuplicateServer { server, .. } if server.as_str() == "a")
    );
    assert!(config.servers.is_empty());
}

#[test]
fn merge_adhoc_into_an_empty_config_says_config() {
    let mut config = Config::empty();
    config.merge_adhoc(vec![stdio("a")]).unwrap();

    let error = config.merge_adhoc(vec![stdio("a")]).unwrap_err();

    assert_eq!(
        error.to_string(),
        r#"<config>: server "a" from the command line is already defined; give it another name"#
    );
}
