//! `switchboard discover URL`: read an MCP Registry (the official one, a Switchboard gateway's
//! `/v0/servers`, or any compatible one) and add its servers to the user's config.
//!
//! Each registry entry (`server.json`) becomes an `mcpServers` entry: a remote
//! (`streamable-http` or `sse`) becomes a `url` entry, a package a command that runs it (`npx`
//! for npm, `uvx` for PyPI, `docker run` for OCI images). Values the registry marks as needed
//! from the user (environment variables, headers) become `${NAME}` references, so no secret is
//! ever written to the file. The config file is edited in place: comments and formatting stay.

#![allow(clippy::print_stdout)]

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use clap::Args;
use jsonc_parser::cst::{CstInputValue, CstRootNode};
use serde_json::{Map, Value, json};

use crate::{cli::GlobalArgs, output, run::Failure, settings::default_config_path};

/// Most pages read from one registry.
const MAX_PAGES: usize = 20;
/// Servers asked for per page.
const PAGE_SIZE: usize = 100;
/// Largest registry answer read.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The registry: a base URL (https://registry.modelcontextprotocol.io, a gateway's
    /// http://127.0.0.1:8787) or the full URL of its server list (.../v0/servers).
    pub url: String,
    /// Only servers whose name contains this text (the registry's `search`).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Add this server to the config (its registry name, or the config name shown). Repeatable.
    #[arg(long = "add", value_name = "NAME")]
    pub add: Vec<String>,
    /// Add every server listed.
    #[arg(long, conflicts_with = "add")]
    pub all: bool,
    /// Show what would be added without changing the config.
    #[arg(long)]
    pub dry_run: bool,
}

/// One server of the registry, as this client understands it.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The registry name (`io.github.user/weather`).
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    /// The config entry's suggested name (`weather`).
    pub key: String,
    /// The `mcpServers` entry, or why none can be made.
    pub entry: Result<Value, String>,
}

/// The list URL for a registry given as a base URL or as its list URL.
pub fn list_url(registry: &str) -> Result<url::Url, String> {
    let mut url =
        url::Url::parse(registry).map_err(|e| format!("{registry:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{registry:?} is not an http(s) URL"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with("/servers") {
        url.set_path(&format!("{path}/v0/servers"));
    }
    Ok(url)
}

/// A config name from a registry name: its last segment, reduced to letters, digits, `_`, `-`.
fn config_key(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut key = String::new();
    for c in last.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            key.push(c);
        } else if !key.ends_with('-') {
            key.push('-');
        }
    }
    let key = key.trim_matches('-').chars().take(64).collect::<String>();
    if key.is_empty() {
        "server".to_owned()
    } else {
        key
    }
}

/// `${NAME}` references for the variables a package or remote declares.
fn placeholders(items: Option<&Value>) -> Map<String, Value> {
    items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?;
            let value = match item.get("value").and_then(Value::as_str) {
                // A fixed value with `{placeholders}` refers to variables the user supplies.
                Some(value) => value.replace('{', "${"),
                None => format!("${{{name}}}"),
            };
            Some((name.to_owned(), Value::String(value)))
        })
        .collect()
}

fn remote_entry(remote: &Value) -> Option<Value> {
    let url = remote.get("url")?.as_str()?;
    let mut entry = match remote.get("type").and_then(Value::as_str) {
        Some("streamable-http") | Some("http") | None => json!({ "url": url }),
        Some("sse") => json!({ "type": "sse", "url": url }),
        Some(_) => return None,
    };
    let headers = placeholders(remote.get("headers"));
    if !headers.is_empty() {
        entry["headers"] = Value::Object(headers);
    }
    Some(entry)
}

fn package_entry(package: &Value) -> Result<Value, String> {
    let kind = package
        .get("registryType")
        .or_else(|| package.get("registry_type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let identifier = package
        .get("identifier")
        .or_else(|| package.get("name"))
        .and_then(Value::as_str)
        .ok_or("a package without an identifier")?;
    let transport = package
        .pointer("/transport/type")
        .and_then(Value::as_str)
        .unwrap_or("stdio");
    if transport != "stdio" {
        return Err(format!(
            "package {identifier} runs as {transport}, not stdio"
        ));
    }
    let version = package.get("version").and_then(Value::as_str);
    let (command, mut args) = match kind {
        "npm" => (
            "npx",
            vec![
                "-y".to_owned(),
                version.map_or_else(|| identifier.to_owned(), |v| format!("{identifier}@{v}")),
            ],
        ),
        "pypi" => (
            "uvx",
            vec![version.map_or_else(|| identifier.to_owned(), |v| format!("{identifier}=={v}"))],
        ),
        "oci" | "docker" => (
            "docker",
            vec![
                "run".to_owned(),
                "-i".to_owned(),
                "--rm".to_owned(),
                identifier.to_owned(),
            ],
        ),
        other => return Err(format!("packages from {other:?} are not supported")),
    };
    for argument in package
        .get("packageArguments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(value) = argument.get("value").and_then(Value::as_str) {
            if let Some(name) = argument.get("name").and_then(Value::as_str)
                && argument.get("type").and_then(Value::as_str) == Some("named")
            {
                args.push(name.to_owned());
            }
            args.push(value.to_owned());
        }
    }
    let mut entry = json!({ "command": command, "args": args });
    let env = placeholders(package.get("environmentVariables"));
    if !env.is_empty() {
        entry["env"] = Value::Object(env);
    }
    Ok(entry)
}

/// Read one `servers[]` item: `{"server": {...}, "_meta": {...}}`, or a bare `server.json`.
pub fn discovered(item: &Value) -> Option<Discovered> {
    let server = item.get("server").filter(|s| s.is_object()).unwrap_or(item);
    let name = server.get("name")?.as_str()?.to_owned();
    let text = |field: &str| server.get(field).and_then(Value::as_str).map(str::to_owned);
    let remotes = server.get("remotes").and_then(Value::as_array);
    let packages = server.get("packages").and_then(Value::as_array);
    let from_remote = remotes.into_iter().flatten().find_map(remote_entry);
    let entry = match from_remote {
        Some(entry) => Ok(entry),
        None => {
            let mut reasons = Vec::new();
            let mut found = None;
            for package in packages.into_iter().flatten() {
                match package_entry(package) {
                    Ok(entry) => {
                        found = Some(entry);
                        break;
                    }
                    Err(reason) => reasons.push(reason),
                }
            }
            found.ok_or_else(|| {
                if reasons.is_empty() {
                    "it lists no remote URL and no package".to_owned()
                } else {
                    reasons.join("; ")
                }
            })
        }
    };
    Some(Discovered {
        key: config_key(&name),
        name,
        version: text("version"),
        description: text("description"),
        entry,
    })
}

async fn fetch(registry: &str, search: Option<&str>) -> Result<Vec<Discovered>, Failure> {
    let base = list_url(registry).map_err(Failure::usage)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| Failure::internal(format!("cannot start an HTTP client: {e}")))?;
    let mut servers = Vec::new();
    let mut cursor: Option<String> = None;
    for _page in 0..MAX_PAGES {
        let mut url = base.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &PAGE_SIZE.to_string());
            if let Some(search) = search {
                query.append_pair("search", search);
            }
            if let Some(cursor) = &cursor {
                query.append_pair("cursor", cursor);
            }
        }
        let unreachable = |e: reqwest::Error| {
            Failure::connection(format!("cannot read the registry at {base}: {e}"))
        };
        let mut response = client.get(url).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(Failure::connection(format!(
                "the registry at {base} answered HTTP {}",
                response.status()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE_BYTES {
                return Err(Failure::connection(format!(
                    "the registry at {base} sent more than {MAX_RESPONSE_BYTES} bytes in one page"
                )));
            }
        }
        let page: Value = serde_json::from_slice(&body).map_err(|e| {
            Failure::connection(format!("the registry at {base} did not answer JSON: {e}"))
        })?;
        let Some(items) = page.get("servers").and_then(Value::as_array) else {
            return Err(Failure::connection(format!(
                "the registry at {base} answered without a \"servers\" list"
            )));
        };
        servers.extend(items.iter().filter_map(discovered));
        cursor = page
            .pointer("/metadata/nextCursor")
            .or_else(|| page.pointer("/metadata/next_cursor"))
            .and_then(Value::as_str)
            .filter(|next| !next.is_empty() && Some(*next) != cursor.as_deref())
            .map(str::to_owned);
        if cursor.is_none() {
            return Ok(servers);
        }
    }
    output::warn(&format!(
        "the registry has more than {MAX_PAGES} pages; only those were read (narrow it with --search)"
    ));
    Ok(servers)
}

/// Add `entries` (name, entry) to the config text, under its `mcpServers` (or VS Code
/// `servers`) object, keeping comments and formatting. Names already taken get `-2`, `-3`, ...;
/// an entry identical to one already there is skipped. Returns the new text and the names used.
pub fn add_to_config(
    text: &str,
    entries: &[(String, Value)],
) -> Result<(String, Vec<(String, bool)>), String> {
    let text = if text.trim().is_empty() { "{}\n" } else { text };
    let root = CstRootNode::parse(text, &jsonc_parser::ParseOptions::default())
        .map_err(|e| e.to_string())?;
    let object = root
        .object_value()
        .ok_or("the config file is not a JSON object")?;
    let section_name = if object.get("mcpServers").is_none() && object.get("servers").is_some() {
        "servers"
    } else {
        "mcpServers"
    };
    let section = object
        .object_value_or_create(section_name)
        .ok_or_else(|| format!("\"{section_name}\" is not an object"))?;
    let mut used = Vec::new();
    for (key, entry) in entries {
        let existing: Vec<(String, Option<Value>)> = section
            .properties()
            .into_iter()
            .filter_map(|prop| {
                let name = prop.name()?.decoded_value().ok()?;
                Some((name, prop.value().and_then(|v| v.to_serde_value())))
            })
            .collect();
        if existing
            .iter()
            .any(|(_, value)| value.as_ref() == Some(entry))
        {
            used.push((key.clone(), false));
            continue;
        }
        let mut name = key.clone();
        let mut number = 2;
        while existing.iter().any(|(taken, _)| taken == &name) {
            name = format!("{key}-{number}");
            number += 1;
        }
        section.append(&name, input_value(entry));
        used.push((name, true));
    }
    Ok((root.to_string(), used))
}

fn input_value(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input_value).collect()),
        Value::Object(map) => CstInputValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), input_value(v)))
                .collect(),
        ),
    }
}

fn config_path(global: &GlobalArgs) -> Result<PathBuf, Failure> {
    global
        .config
        .clone()
        .or_else(default_config_path)
        .ok_or_else(|| Failure::usage("no config location is known; give --config PATH".to_owned()))
}

pub async fn run(global: &GlobalArgs, args: DiscoverArgs) -> Result<ExitCode, Failure> {
    let servers = fetch(&args.url, args.search.as_deref()).await?;
    let chosen: Vec<&Discovered> = if args.all {
        servers.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for wanted in &args.add {
            match servers
                .iter()
                .find(|s| &s.name == wanted || &s.key == wanted)
            {
                Some(server) => chosen.push(server),
                None => {
                    return Err(Failure::usage(format!(
                        "the registry lists no server named {wanted:?}{}",
                        did_you_mean(wanted, servers.iter().map(|s| s.name.as_str()))
                    )));
                }
            }
        }
        chosen
    };
    if chosen.is_empty() {
        return print_list(&servers, global.json);
    }
    let mut entries = Vec::new();
    for server in &chosen {
        match &server.entry {
            Ok(entry) => entries.push((server.key.clone(), entry.clone())),
            Err(reason) => output::warn(&format!("{} is not added: {reason}", server.name)),
        }
    }
    let path = config_path(global)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Failure::usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )));
        }
    };
    let (updated, used) = add_to_config(&text, &entries)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let mut out = std::io::stdout().lock();
    for (name, added) in &used {
        if *added {
            writeln!(out, "added {name}")?;
        } else {
            writeln!(out, "{name}: already in the config")?;
        }
    }
    if args.dry_run {
        writeln!(
            out,
            "\n(dry run: {} is unchanged; it would read:)\n{updated}",
            path.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if used.iter().any(|(_, added)| *added) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
        }
        // Write beside the file, then rename: a crash never leaves half a config.
        let temporary = path.with_extension("json.switchboard-tmp");
        std::fs::write(&temporary, &updated)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// "; did you mean X?" for the closest name, if one is close.
fn did_you_mean<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|name| (strsim::jaro_winkler(wanted, name), name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| format!("; did you mean {name:?}?"))
        .unwrap_or_default()
}

fn print_list(servers: &[Discovered], json: bool) -> Result<ExitCode, Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<Value> = servers
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "configName": s.key,
                    "version": s.version,
                    "description": s.description,
                    "entry": s.entry.as_ref().ok(),
                    "unsupported": s.entry.as_ref().err(),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)
            .map_err(|e| Failure::from(std::io::Error::other(e)))?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if servers.is_empty() {
        writeln!(out, "The registry lists no servers.")?;
    }
    for server in servers {
        let version = server
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        writeln!(out, "{}{version}  (as \"{}\")", server.name, server.key)?;
        if let Some(description) = &server.description {
            writeln!(out, "    {description}")?;
        }
        match &server.entry {
            Ok(entry) => writeln!(out, "    {entry}")?,
            Err(reason) => writeln!(out, "    cannot be added: {reason}")?,
        }
    }
    if !servers.is_empty() {
        writeln!(out, "\nAdd with --add NAME (repeatable) or --all.")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn list_urls_accept_a_base_or_the_list() {
        assert_eq!(
            list_url("https://registry.modelcontextprotocol.io")
                .unwrap()
                .as_str(),
            "https://registry.modelcontextprotocol.io/v0/servers"
        );
        assert_eq!(
            list_url("http://127.0.0.1:8787/v0.1/servers/")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8787/v0.1/servers/"
        );
        assert!(list_url("ftp://x").is_err());
        assert!(list_url("not a url").is_err());
    }

    #[test]
    fn registry_entries_become_config_entries() {
        let remote = discovered(&json!({"server": {
            "name": "com.example/acme-analytics", "version": "2.0.0",
            "remotes": [{"type": "streamable-http", "url": "https://a.example.com/mcp",
                         "headers": [{"name": "Authorization", "value": "Bearer {ACME_TOKEN}", "isSecret": true}]}]
        }}))
        .unwrap();
        assert_eq!(remote.key, "acme-analytics");
        assert_eq!(
            remote.entry,
            Ok(
                json!({"url": "https://a.example.com/mcp", "headers": {"Authorization": "Bearer ${ACME_TOKEN}"}})
            )
        );
        let npm = discovered(&json!({
            "name": "io.github.me/weather", "version": "1.2.0",
            "packages": [{"registryType": "npm", "identifier": "@me/weather-mcp", "version": "1.2.0",
                          "transport": {"type": "stdio"},
                          "environmentVariables": [{"name": "WEATHER_KEY", "isRequired": true}]}]
        }))
        .unwrap();
        assert_eq!(
            npm.entry,
            Ok(
                json!({"command": "npx", "args": ["-y", "@me/weather-mcp@1.2.0"], "env": {"WEATHER_KEY": "${WEATHER_KEY}"}})
            )
        );
        let pypi = discovered(&json!({"name": "x/time", "packages": [{"registryType": "pypi", "identifier": "mcp-server-time", "version": "1.0"}]})).unwrap();
        assert_eq!(
            pypi.entry,
            Ok(json!({"command": "uvx", "args": ["mcp-server-time==1.0"]}))
        );
        let nothing = discovered(
            &json!({"name": "x/odd", "packages": [{"registryType": "nuget", "identifier": "Odd"}]}),
        )
        .unwrap();
        assert!(nothing.entry.unwrap_err().contains("nuget"));
        assert!(discovered(&json!({"no": "name"})).is_none());
    }

    #[test]
    fn adding_keeps_comments_and_never_overwrites() {
        let text = "// my servers\n{\n  \"mcpServers\": {\n    // the clock\n    \"time\": { \"command\": \"uvx\", \"args\": [\"mcp-server-time\"] }\n  }\n}\n";
        let (updated, used) = add_to_config(
            text,
            &[
                ("time".into(), json!({"url": "http://127.0.0.1:8787/mcp"})),
                (
                    "time".into(),
                    json!({"command": "uvx", "args": ["mcp-server-time"]}),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            used,
            vec![("time-2".to_owned(), true), ("time".to_owned(), false)]
        );
        assert!(
            updated.contains("// my servers") && updated.contains("// the clock"),
            "{updated}"
        );
        let parsed: Value =
            jsonc_parser::parse_to_serde_value(&updated, &Default::default()).unwrap();
        assert_eq!(
            parsed["mcpServers"]["time-2"]["url"],
            "http://127.0.0.1:8787/mcp"
        );
        let (fresh, _) =
            add_to_config("", &[("a".into(), json!({"url": "http://x/mcp"}))]).unwrap();
        let parsed: Value = serde_json::from_str(&fresh).unwrap();
        assert_eq!(
            parsed,
            json!({"mcpServers": {"a": {"url": "http://x/mcp"}}})
        );
        assert!(add_to_config("[1]", &[]).is_err());
    }
}
