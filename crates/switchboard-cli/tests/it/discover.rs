//! `switchboard discover` against a registry on loopback: paging, listing, adding to a config
//! with comments, and bad registries.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    thread,
};

use serde_json::{Value, json};

use crate::{Sandbox, stderr, stdout};

/// A registry that answers each GET with the next of `pages` (status, body), and records the
/// request lines. Serves at most `pages.len()` requests.
fn registry(pages: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    thread::spawn(move || {
        for (status, body) in pages {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            record.lock().unwrap().push(line.trim().to_owned());
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    });
    (url, seen)
}

fn page(servers: Value, next: Option<&str>) -> (u16, String) {
    (
        200,
        json!({"servers": servers, "metadata": {"nextCursor": next, "count": 1}}).to_string(),
    )
}

#[test]
fn discover_lists_every_page_and_adds_to_a_commented_config() {
    let (url, seen) = registry(vec![
        page(
            json!([{"server": {"name": "io.github.me/weather", "version": "1.2.0", "description": "Forecasts",
                "packages": [{"registryType": "npm", "identifier": "@me/weather-mcp", "version": "1.2.0",
                    "environmentVariables": [{"name": "WEATHER_KEY", "isRequired": true, "isSecret": true}]}]},
                "_meta": {"io.modelcontextprotocol.registry/official": {"status": "active"}}}]),
            Some("page-2"),
        ),
        page(
            json!([{"server": {"name": "com.example/acme", "remotes": [{"type": "streamable-http", "url": "https://acme.example.com/mcp"}]}}]),
            None,
        ),
        page(
            json!([{"server": {"name": "io.github.me/weather", "packages": [{"registryType": "npm", "identifier": "@me/weather-mcp", "version": "1.2.0",
                    "environmentVariables": [{"name": "WEATHER_KEY"}]}]}},
                 {"server": {"name": "com.example/acme", "remotes": [{"type": "streamable-http", "url": "https://acme.example.com/mcp"}]}}]),
            None,
        ),
    ]);
    let sandbox = Sandbox::new();
    let output = sandbox.cmd().args(["discover", &url]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("io.github.me/weather 1.2.0  (as \"weather\")"),
        "{out}"
    );
    assert!(out.contains("com.example/acme  (as \"acme\")"), "{out}");
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests[0].starts_with("GET /v0/servers?limit=100 "),
        "{requests:?}"
    );
    assert!(requests[1].contains("cursor=page-2"), "{requests:?}");

    let config = sandbox.path().join("mcp.json");
    std::fs::write(&config, "{\n  // mine\n  \"mcpServers\": {}\n}\n").unwrap();
    let output = sandbox
        .cmd()
        .arg("--config")
        .arg(&config)
        .args(["discover", &url, "--all"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("// mine"), "comments are kept: {text}");
    assert!(text.contains("${WEATHER_KEY}"), "{text}");
    assert!(!text.contains("isSecret"), "{text}");
    let parsed: Value = jsonc_parser::parse_to_serde_value(&text, &Default::default()).unwrap();
    assert_eq!(parsed["mcpServers"]["weather"]["command"], "npx");
    assert_eq!(
        parsed["mcpServers"]["acme"]["url"],
        "https://acme.example.com/mcp"
    );
    // The result is a config switchboard reads (parsed, not run: the servers are not here).
    // The key is a ${WEATHER_KEY} reference: the user sets it; nothing secret is in the file.
    let lookup = |name: &str| (name == "WEATHER_KEY").then(|| "k".to_owned());
    let config = switchboard_config::parse_config(&text, Some(&config), &lookup)
        .expect("the written config parses");
    assert_eq!(config.servers.len(), 2);
}

#[test]
fn discover_reports_bad_registries_and_unknown_names() {
    let (url, _) = registry(vec![(200, "<html>not json</html>".to_owned())]);
    let sandbox = Sandbox::new();
    let output = sandbox.cmd().args(["discover", &url]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("did not answer JSON"),
        "{}",
        stderr(&output)
    );

    let (url, _) = registry(vec![(500, "{}".to_owned())]);
    let output = sandbox.cmd().args(["discover", &url]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("HTTP 500"), "{}", stderr(&output));

    let (url, _) = registry(vec![page(
        json!([{"server": {"name": "io.github.me/weather", "remotes": [{"url": "http://w/mcp"}]}}]),
        None,
    )]);
    let output = sandbox
        .cmd()
        .args(["discover", &url, "--add", "io.github.me/wether"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("did you mean \"io.github.me/weather\""),
        "{}",
        stderr(&output)
    );

    let output = sandbox
        .cmd()
        .args(["discover", "ftp://example.com"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
