//! Servers from `--stdio`, `--url` and `--header`, and their names.

use indexmap::IndexMap;
use insta::assert_snapshot;
use switchboard_config::{
    ConfigError, Secret, ServerEntry, ServerName, Transport, adhoc_stdio, adhoc_url, dedupe_names,
};
use url::Url;

use crate::chain;

fn stdio_name(spec: &str) -> String {
    adhoc_stdio(spec).unwrap().name.as_str().to_owned()
}

fn url_entry(url: &str, headers: &[&str]) -> Result<ServerEntry, ConfigError> {
    let headers: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    adhoc_url(url, &headers)
}

fn names(entries: &[ServerEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.name.as_str()).collect()
}

#[test]
fn stdio_transport_keeps_command_and_split_args() {
    let entry = adhoc_stdio(r#"npx -y "@scope/server foo" --root 'a b' c\ d"#).unwrap();

    assert_eq!(
        entry.transport,
        Transport::Stdio {
            command: "npx".to_owned(),
            args: vec![
                "-y".to_owned(),
                "@scope/server foo".to_owned(),
                "--root".to_owned(),
                "a b".to_owned(),
                "c d".to_owned(),
            ],
            env: IndexMap::new(),
            cwd: None,
        }
    );
    assert!(!entry.disabled);
}

#[test]
fn stdio_names_from_the_spec_examples() {
    assert_eq!(
        stdio_name("npx -y @modelcontextprotocol/server-everything"),
        "server-everything"
    );
    assert_eq!(stdio_name("npx -y @scope/server-foo"), "server-foo");
    assert_eq!(stdio_name("uvx mcp-server-time"), "mcp-server-time");
    assert_eq!(stdio_name("python3 server.py"), "server");
}

#[test]
fn stdio_names_prefer_packages_and_scripts_over_paths_urls_and_flags() {
    let cases = [
        (
            "npx -y @modelcontextprotocol/server-filesystem /Users/me/Desktop",
            "server-filesystem",
        ),
        (
            "npx -y @modelcontextprotocol/server-filesystem data",
            "server-filesystem",
        ),
        ("npx -y @upstash/context7-mcp@latest", "context7-mcp"),
        (
            "npx -y mcp-remote@0.1 https://example.com/mcp",
            "mcp-remote",
        ),
        (
            "uvx mcp-server-time --local-timezone America/New_York",
            "mcp-server-time",
        ),
        ("uvx mcp-server-fetch==2025.1.1", "mcp-server-fetch"),
        (
            "python -m mcp_server_git --repository ~/src/repo",
            "mcp_server_git",
        ),
        ("uv --directory /home/me/weather run weather.py", "weather"),
        ("node /opt/servers/build/index.js --port 3000", "index"),
        ("docker run -i --rm -e GITHUB_TOKEN mcp/github", "github"),
        (
            "docker run -i --rm ghcr.io/github/github-mcp-server:latest",
            "github-mcp-server",
        ),
        ("/usr/local/bin/my-server --stdio", "my-server"),
        ("./target/release/mcp.server", "mcp"),
        ("npx", "npx"),
        ("deno run -A ./server.ts", "server"),
        ("python3 My.Server.PY", "My-Server"),
    ];
    for (spec, expected) in cases {
        assert_eq!(stdio_name(spec), expected, "for {spec:?}");
    }
}

#[test]
fn stdio_names_are_sanitized() {
    assert_eq!(stdio_name("'my server (dev)'"), "my-server-dev");
    assert_eq!(stdio_name("python3 './héllo wörld.py'"), "h-llo-w-rld");
    assert_eq!(stdio_name("…"), "server");
    assert_eq!(
        stdio_name(&format!("python3 {}.py", "s".repeat(100))),
        "s".repeat(64)
    );
}

#[test]
fn empty_stdio_spec_is_refused() {
    for spec in ["", "   ", "''"] {
        let error = adhoc_stdio(spec).unwrap_err();
        assert!(
            matches!(error, ConfigError::AdhocCommandEmpty),
            "for {spec:?}: {error:?}"
        );
    }
    assert_snapshot!("stdio_empty", chain(&adhoc_stdio("").unwrap_err()));
}

#[test]
fn unbalanced_quote_in_stdio_spec_is_refused() {
    let error = adhoc_stdio("npx -y 'server").unwrap_err();

    assert!(matches!(error, ConfigError::AdhocCommandSyntax { .. }));
    assert_snapshot!("stdio_unbalanced_quote", chain(&error));
}

#[test]
fn url_transport_depends_on_scheme_and_path() {
    let http = url_entry("http://127.0.0.1:3000/mcp", &[]).unwrap();
    let sse = url_entry("https://a.example/v1/sse", &[]).unwrap();
    let ws = url_entry("ws://localhost:9000/", &[]).unwrap();
    let wss = url_entry("wss://a.example/ws", &[]).unwrap();
    let sse_in_middle = url_entry("https://a.example/sse/mcp", &[]).unwrap();

    assert_eq!(
        http.transport,
        Transport::StreamableHttp {
            url: Url::parse("http://127.0.0.1:3000/mcp").unwrap(),
            headers: IndexMap::new(),
        }
    );
    assert_eq!(sse.transport.kind(), "sse");
    assert_eq!(ws.transport.kind(), "websocket");
    assert_eq!(wss.transport.kind(), "websocket");
    assert_eq!(sse_in_middle.transport.kind(), "streamable-http");
}

#[test]
fn url_names_are_host_and_port() {
    let name = |url: &str| url_entry(url, &[]).unwrap().name.as_str().to_owned();

    assert_eq!(name("http://127.0.0.1:3000/mcp"), "127-0-0-1-3000");
    assert_eq!(name("https://mcp.example.com/mcp"), "mcp-example-com");
    assert_eq!(name("https://mcp.example.com:443/mcp"), "mcp-example-com");
    assert_eq!(name("http://localhost:8080/sse"), "localhost-8080");
    assert_eq!(name("http://[::1]:8080/mcp"), "1-8080");
    assert_eq!(name("  https://a.example/mcp  "), "a-example");
}

#[test]
fn url_headers_accept_both_spacings_and_keep_colons_in_values() {
    let entry = url_entry(
        "https://a.example/mcp",
        &["Authorization: Bearer a:b", "X-Team:core", "  X-Empty :  "],
    )
    .unwrap();
    let Transport::StreamableHttp { headers, .. } = &entry.transport else {
        panic!("unexpected {entry:?}");
    };

    let expected: IndexMap<String, Secret> = [
        ("Authorization", "Bearer a:b"),
        ("X-Team", "core"),
        ("X-Empty", ""),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), Secret::new(value)))
    .collect();
    assert_eq!(headers, &expected);
}

#[test]
fn header_without_colon_is_refused_without_echoing_it() {
    let error = url_entry("https://a.example/mcp", &["X-Ok: 1", "Bearer sk-live-123"]).unwrap_err();

    assert!(matches!(
        error,
        ConfigError::AdhocInvalidHeader {
            position: 2,
            name: None,
            ..
        }
    ));
    assert!(!error.to_string().contains("sk-live"), "{error}");
    assert_snapshot!("header_without_colon", chain(&error));
}

#[test]
fn header_with_invalid_name_is_refused() {
    let error = url_entry("https://a.example/mcp", &["Authorization Bearer sk-1: x"]).unwrap_err();

    assert!(!error.to_string().contains("sk-1"), "{error}");
    assert_snapshot!("header_invalid_name", chain(&error));
}

#[test]
fn repeated_header_is_refused() {
    let error = url_entry("https://a.example/mcp", &["X-Key: 1", "x-key: 2"]).unwrap_err();

    assert!(matches!(
        &error,
        ConfigError::AdhocInvalidHeader { position: 2, name: Some(name), .. } if name == "x-key"
    ));
    assert_snapshot!("header_repeated", chain(&error));
}

#[test]
fn url_without_scheme_reads_as_an_unknown_scheme() {
    // `localhost:3000` is a valid URL whose scheme is `localhost`; the message names it.
    let error = url_entry("localhost:3000", &[]).unwrap_err();

    assert!(
        matches!(&error, ConfigError::AdhocUnsupportedScheme { scheme } if scheme == "localhost")
    );
}

#[test]
fn url_with_unsupported_scheme_is_refused() {
    let error = url_entry("ftp://a.example/mcp", &[]).unwrap_err();

    assert!(matches!(&error, ConfigError::AdhocUnsupportedScheme { scheme } if scheme == "ftp"));
    assert_snapshot!("url_unsupported_scheme", chain(&error));
}

#[test]
fn unparsable_url_is_refused() {
    let error = url_entry("http://exa mple.com/mcp", &[]).unwrap_err();

    assert!(matches!(error, ConfigError::AdhocInvalidUrl { .. }));
    assert_snapshot!("url_unparsable", chain(&error));
}

#[test]
fn dedupe_appends_the_first_free_number() {
    let mut entries = vec![
        adhoc_stdio("uvx mcp-server-time").unwrap(),
        adhoc_stdio("uvx mcp-server-time").unwrap(),
        adhoc_stdio("uvx mcp-server-fetch").unwrap(),
        adhoc_stdio("uvx mcp-server-time").unwrap(),
    ];
    let taken = [
        ServerName::new("mcp-server-time").unwrap(),
        ServerName::new("mcp-server-time-3").unwrap(),
    ];

    dedupe_names(&mut entries, &taken);

    assert_eq!(
        names(&entries),
        [
            "mcp-server-time-2",
            "mcp-server-time-4",
            "mcp-server-fetch",
            "mcp-server-time-5"
        ]
    );
}

#[test]
fn dedupe_leaves_unique_names_alone() {
    let mut entries = vec![
        url_entry("http://localhost:3000/mcp", &[]).unwrap(),
        url_entry("http://localhost:3001/mcp", &[]).unwrap(),
    ];

    dedupe_names(&mut entries, &[ServerName::new("other").unwrap()]);

    assert_eq!(names(&entries), ["localhost-3000", "localhost-3001"]);
}

#[test]
fn dedupe_does_not_collide_with_a_later_entry_that_already_has_the_suffix() {
    let mut entries = vec![
        adhoc_stdio("uvx a").unwrap(),
        adhoc_stdio("uvx a").unwrap(),
        adhoc_stdio("uvx a-2").unwrap(),
    ];

    dedupe_names(&mut entries, &[]);

    assert_eq!(names(&entries), ["a", "a-2", "a-2-2"]);
}

#[test]
fn dedupe_keeps_names_within_the_length_limit() {
    let long = "s".repeat(64);
    let mut entries = vec![adhoc_stdio(&format!("python3 {long}.py")).unwrap()];

    dedupe_names(&mut entries, &[ServerName::new(long.clone()).unwrap()]);

    let renamed = entries[0].name.as_str();
    assert_eq!(renamed, format!("{}-2", "s".repeat(62)));
    assert_eq!(renamed.len(), 64);
}

#[test]
fn deduped_entries_merge_cleanly() {
    let mut config =
        crate::parse_ok(r#"{ "mcpServers": { "server-everything": { "command": "x" } } }"#);
    let mut entries = vec![adhoc_stdio("npx -y @modelcontextprotocol/server-everything").unwrap()];
    let taken: Vec<ServerName> = config.servers.keys().cloned().collect();

    dedupe_names(&mut entries, &taken);
    config.merge_adhoc(entries).unwrap();

    let names: Vec<&str> = config.servers.keys().map(ServerName::as_str).collect();
    assert_eq!(names, ["server-everything", "server-everything-2"]);
}
