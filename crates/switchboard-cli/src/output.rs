//! Everything the CLI prints. Results go to stdout; warnings, logs and progress go to stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use base64::Engine;
use serde_json::{Value, json};
use switchboard_client::model::{
    Content, LogMessage, Progress, Prompt, PromptResult, ReadResult, Resource, ResourceContents,
    ResourceTemplate, ToolResult,
};
use switchboard_config::ServerName;
use switchboard_host::{HealthStatus, Host, HostError, HostTool, ServerState};
use tokio::{sync::mpsc, task::JoinHandle};

pub fn warn(message: &str) {
    eprintln!("switchboard: warning: {message}");
}

/// A line for the user that is not output: prompts' context, agent notices.
pub fn notice(message: &str) {
    eprintln!("{message}");
}

pub fn server_log(server: &ServerName, log: &LogMessage) {
    let text = match &log.data {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match &log.logger {
        Some(logger) => eprintln!("[{server}] {} {logger}: {text}", log.level),
        None => eprintln!("[{server}] {}: {text}", log.level),
    }
}

/// A JSON write error as an I/O error that keeps its kind, so a closed pipe is still seen as
/// one (and treated as success) when it happens inside serde_json.
fn json_io(error: serde_json::Error) -> std::io::Error {
    match error.io_error_kind() {
        Some(kind) => std::io::Error::new(kind, error),
        None => std::io::Error::other(error),
    }
}

fn print_json(value: &Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(json_io)?;
    writeln!(out)
}

fn first_line(text: Option<&str>) -> &str {
    text.and_then(|t| t.lines().find(|l| !l.trim().is_empty()))
        .map(str::trim)
        .unwrap_or("")
}

/// `timezone*: string, verbose: boolean` from an inputSchema (`*` marks required).
fn argument_summary(schema: &Value) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let ty = match property.get("type") {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("|"),
                _ if property.get("enum").is_some() => "enum".to_owned(),
                _ => "any".to_owned(),
            };
            let star = if required.contains(&name.as_str()) {
                "*"
            } else {
                ""
            };
            format!("{name}{star}: {ty}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn print_tools(tools: &[HostTool], json: bool) -> std::io::Result<()> {
    if json {
        let items: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut tool = serde_json::to_value(&t.tool).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut tool {
                    map.insert("server".into(), json!(t.server.as_str()));
                    map.insert("qualifiedName".into(), json!(t.qualified));
                }
                tool
            })
            .collect();
        return print_json(&Value::Array(items));
    }
    let mut out = std::io::stdout().lock();
    let mut current: Option<&ServerName> = None;
    for tool in tools {
        if current != Some(&tool.server) {
            if current.is_some() {
                writeln!(out)?;
            }
            let count = tools.iter().filter(|t| t.server == tool.server).count();
            writeln!(
                out,
                "{} ({count} tool{})",
                tool.server,
                if count == 1 { "" } else { "s" }
            )?;
            current = Some(&tool.server);
        }
        let mut flags = Vec::new();
        if tool.tool.is_read_only() {
            flags.push("read-only");
        }
        if tool
            .tool
            .annotations
            .as_ref()
            .and_then(|a| a.destructive_hint)
            == Some(true)
        {
            flags.push("destructive");
        }
        match tool.tool.task_support() {
            Some(switchboard_client::model::TaskSupport::Optional) => flags.push("task"),
            Some(switchboard_client::model::TaskSupport::Required) => flags.push("task only"),
            None => {}
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        writeln!(out, "  {}/{}{flags}", tool.server, tool.tool.name)?;
        let description = first_line(tool.tool.description.as_deref());
        if !description.is_empty() {
            writeln!(out, "      {description}")?;
        }
        let args = argument_summary(&tool.tool.input_schema);
        if !args.is_empty() {
            writeln!(out, "      args: {args}")?;
        }
    }
    if tools.is_empty() {
        writeln!(out, "no tools")?;
    }
    Ok(())
}

fn extension(mime: &str) -> &str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "application/pdf" => "pdf",
        "application/json" => "json",
        _ => "bin",
    }
}

/// Decode base64 and, with --save, write it to `DIR/<stem>-<n>.<ext>`; returns a one-line summary.
fn binary_summary(
    kind: &str,
    data: &str,
    mime: &str,
    save: Option<&Path>,
    index: usize,
) -> std::io::Result<String> {
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(bytes) => bytes,
        Err(error) => {
            return Ok(format!(
                "[{kind} {mime}: the base64 data is invalid: {error}]"
            ));
        }
    };
    match save {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let path: PathBuf = dir.join(format!("{kind}-{index}.{}", extension(mime)));
            std::fs::write(&path, &bytes)?;
            Ok(format!(
                "[{kind} {mime}, {} bytes, saved to {}]",
                bytes.len(),
                path.display()
            ))
        }
        None => Ok(format!(
            "[{kind} {mime}, {} bytes; use --save DIR to write it to a file]",
            bytes.len()
        )),
    }
}

fn print_resource_contents(
    out: &mut impl Write,
    contents: &ResourceContents,
    save: Option<&Path>,
    index: usize,
) -> std::io::Result<()> {
    let mime = contents.mime_type.as_deref().unwrap_or("unknown type");
    match (&contents.text, &contents.blob) {
        (Some(text), _) => {
            writeln!(out, "[resource {} ({mime})]", contents.uri)?;
            writeln!(out, "{text}")
        }
        (None, Some(blob)) => {
            let summary = binary_summary("resource", blob, mime, save, index)?;
            writeln!(out, "[resource {}] {summary}", contents.uri)
        }
        (None, None) => writeln!(out, "[resource {} ({mime}), empty]", contents.uri),
    }
}

fn print_content(
    out: &mut impl Write,
    content: &Content,
    save: Option<&Path>,
    index: usize,
) -> std::io::Result<()> {
    match content {
        Content::Text { text } => writeln!(out, "{text}"),
        Content::Image { data, mime_type } => writeln!(
            out,
            "{}",
            binary_summary("image", data, mime_type, save, index)?
        ),
        Content::Audio { data, mime_type } => writeln!(
            out,
            "{}",
            binary_summary("audio", data, mime_type, save, index)?
        ),
        Content::ResourceLink {
            uri,
            name,
            mime_type,
        } => writeln!(
            out,
            "[link {uri}{}{}]",
            name.as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default(),
            mime_type
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
        Content::Resource { resource } => print_resource_contents(out, resource, save, index),
        Content::Unknown => writeln!(
            out,
            "[content of a type this version does not know; see --json]"
        ),
    }
}

/// Whether `text` already says what `structured` says: the same JSON, or the Python SDK's
/// `{"result": value}` wrapper around a plain return value.
fn repeats(text: &str, structured: &Value) -> bool {
    let text = text.trim();
    let parsed = serde_json::from_str::<Value>(text).ok();
    if parsed.as_ref() == Some(structured) {
        return true;
    }
    match structured.as_object() {
        Some(map) if map.len() == 1 => match map.get("result") {
            Some(Value::String(s)) => s == text,
            Some(other) => parsed.as_ref() == Some(other),
            None => false,
        },
        _ => false,
    }
}

pub fn print_tool_result(
    result: &ToolResult,
    json: bool,
    save: Option<&Path>,
) -> std::io::Result<()> {
    if json {
        return print_json(&result.raw);
    }
    let mut out = std::io::stdout().lock();
    for (index, content) in result.content.iter().enumerate() {
        print_content(&mut out, content, save, index + 1)?;
    }
    if let Some(structured) = &result.structured_content {
        // Servers often repeat structured content as text; print it only when it adds something.
        let repeated = result.content.iter().any(|c| match c {
            Content::Text { text } => repeats(text, structured),
            _ => false,
        });
        if !repeated {
            if !result.content.is_empty() {
                writeln!(out, "structured content:")?;
            }
            serde_json::to_writer_pretty(&mut out, structured).map_err(json_io)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

pub fn print_resources(
    resources: &[(ServerName, Resource)],
    templates: &[(ServerName, ResourceTemplate)],
    json: bool,
) -> std::io::Result<()> {
    if json {
        let value = json!({
            "resources": resources.iter().map(|(s, r)| {
                let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v { m.insert("server".into(), json!(s.as_str())); }
                v
            }).collect::<Vec<_>>(),
            "resourceTemplates": templates.iter().map(|(s, t)| {
                let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v { m.insert("server".into(), json!(s.as_str())); }
                v
            }).collect::<Vec<_>>(),
        });
        return print_json(&value);
    }
    let mut out = std::io::stdout().lock();
    if resources.is_empty() && templates.is_empty() {
        return writeln!(out, "no resources");
    }
    for (server, resource) in resources {
        let mime = resource
            .mime_type
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        writeln!(out, "{server}  {}  {}{mime}", resource.uri, resource.name)?;
    }
    for (server, template) in templates {
        let mime = template
            .mime_type
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        writeln!(
            out,
            "{server}  {}  {} [template]{mime}",
            template.uri_template, template.name
        )?;
    }
    Ok(())
}

pub fn print_read_result(
    server: &ServerName,
    result: &ReadResult,
    json: bool,
    save: Option<&Path>,
) -> std::io::Result<()> {
    if json {
        return print_json(&result.raw);
    }
    let _ = server;
    let mut out = std::io::stdout().lock();
    for (index, contents) in result.contents.iter().enumerate() {
        match (&contents.text, result.contents.len()) {
            // A single text resource prints as itself, so it can be piped.
            (Some(text), 1) => writeln!(out, "{text}")?,
            _ => print_resource_contents(&mut out, contents, save, index + 1)?,
        }
    }
    Ok(())
}

pub fn print_prompts(prompts: &[(ServerName, Prompt)], json: bool) -> std::io::Result<()> {
    if json {
        let items: Vec<Value> = prompts
            .iter()
            .map(|(s, p)| {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("server".into(), json!(s.as_str()));
                }
                v
            })
            .collect();
        return print_json(&Value::Array(items));
    }
    let mut out = std::io::stdout().lock();
    if prompts.is_empty() {
        return writeln!(out, "no prompts");
    }
    for (server, prompt) in prompts {
        writeln!(out, "{server}/{}", prompt.name)?;
        let description = first_line(prompt.description.as_deref());
        if !description.is_empty() {
            writeln!(out, "      {description}")?;
        }
        if !prompt.arguments.is_empty() {
            let args: Vec<String> = prompt
                .arguments
                .iter()
                .map(|a| format!("{}{}", a.name, if a.required { "*" } else { "" }))
                .collect();
            writeln!(out, "      args: {}", args.join(", "))?;
        }
    }
    Ok(())
}

pub fn print_prompt_result(result: &PromptResult, json: bool) -> std::io::Result<()> {
    if json {
        return print_json(&result.raw);
    }
    let mut out = std::io::stdout().lock();
    if let Some(description) = &result.description {
        writeln!(out, "# {description}")?;
    }
    for (index, message) in result.messages.iter().enumerate() {
        writeln!(out, "[{}]", message.role)?;
        print_content(&mut out, &message.content, None, index + 1)?;
    }
    Ok(())
}

/// How many items a listing found, or null when it failed.
fn count<T>(listed: Result<(Vec<T>, Vec<HostError>), HostError>) -> Value {
    match listed {
        Ok((items, errors)) if errors.is_empty() => Value::from(items.len()),
        _ => Value::Null,
    }
}

/// The `servers` command's table.
pub struct ServersReport {
    rows: Vec<Value>,
}

impl ServersReport {
    pub async fn gather(host: &Host) -> Self {
        let mut rows = Vec::new();
        // Checked now (ping or server/discover, bounded by each server's health timeout).
        let health = host.check_health().await;
        for (name, state) in host.servers() {
            let health = health.iter().find(|h| &h.server == name);
            let row = match state {
                ServerState::Failed(error) => json!({
                    "name": name.as_str(),
                    "status": "failed",
                    "error": error.to_string(),
                }),
                ServerState::Connected(connection) => {
                    let description = connection.description();
                    let caps = &description.capabilities;
                    let server = Some(name.as_str());
                    let tools = if caps.tools {
                        count(host.tools(server).await)
                    } else {
                        Value::Null
                    };
                    let resources = if caps.resources {
                        count(host.resources(server).await)
                    } else {
                        Value::Null
                    };
                    let prompts = if caps.prompts {
                        count(host.prompts(server).await)
                    } else {
                        Value::Null
                    };
                    json!({
                        "name": name.as_str(),
                        "status": "connected",
                        "transport": description.transport,
                        "era": description.era,
                        "protocolVersion": description.protocol_version,
                        "serverInfo": description.implementation,
                        "capabilities": caps.raw,
                        "tools": tools,
                        "resources": resources,
                        "prompts": prompts,
                        "health": health.map(|h| h.status.to_string()),
                        "healthDetail": health.and_then(|h| match &h.status {
                            HealthStatus::Unhealthy { reason } | HealthStatus::Down { reason } => {
                                Some(reason.clone())
                            }
                            HealthStatus::Healthy | HealthStatus::Unknown => None,
                        }),
                        "latencyMs": health
                            .and_then(|h| h.latency)
                            .map(|l| (l.as_secs_f64() * 10_000.0).round() / 10.0),
                        "breaker": health.map(|h| h.breaker.to_string()),
                    })
                }
            };
            rows.push(row);
        }
        ServersReport { rows }
    }

    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(|r| r["status"] == "failed")
    }

    pub fn print(&self, json: bool) -> std::io::Result<()> {
        if json {
            return print_json(&Value::Array(self.rows.clone()));
        }
        let mut out = std::io::stdout().lock();
        for row in &self.rows {
            let name = row["name"].as_str().unwrap_or_default();
            if row["status"] == "failed" {
                writeln!(out, "{name}: FAILED")?;
                writeln!(out, "    {}", row["error"].as_str().unwrap_or_default())?;
                continue;
            }
            let info = &row["serverInfo"];
            let implementation = match (info["name"].as_str(), info["version"].as_str()) {
                (Some(n), Some(v)) => format!("{n} {v}"),
                _ => "(no serverInfo)".to_owned(),
            };
            let count = |key: &str| match &row[key] {
                Value::Number(n) => n.to_string(),
                _ => "-".to_owned(),
            };
            let capabilities: Vec<&str> = row["capabilities"]
                .as_object()
                .map(|c| c.keys().map(String::as_str).collect())
                .unwrap_or_default();
            writeln!(out, "{name}: connected")?;
            writeln!(
                out,
                "    {implementation}, {} era, protocol {}, over {}",
                row["era"].as_str().unwrap_or_default(),
                row["protocolVersion"].as_str().unwrap_or_default(),
                row["transport"].as_str().unwrap_or_default()
            )?;
            writeln!(
                out,
                "    tools {}, resources {}, prompts {}",
                count("tools"),
                count("resources"),
                count("prompts")
            )?;
            writeln!(
                out,
                "    capabilities: {}",
                if capabilities.is_empty() {
                    "none".to_owned()
                } else {
                    capabilities.join(", ")
                }
            )?;
            let latency = match row["latencyMs"].as_f64() {
                Some(ms) => format!("latency {ms} ms"),
                None => "latency -".to_owned(),
            };
            writeln!(
                out,
                "    health {}, {latency}, breaker {}",
                row["health"].as_str().unwrap_or("unknown"),
                row["breaker"].as_str().unwrap_or("-")
            )?;
            if let Some(detail) = row["healthDetail"].as_str() {
                writeln!(out, "    {detail}")?;
            }
        }
        Ok(())
    }
}

/// A progress bar on stderr for a long tool call, drawn only while progress arrives.
pub struct ProgressDisplay {
    task: JoinHandle<()>,
}

impl ProgressDisplay {
    pub fn spawn(mut updates: mpsc::Receiver<Progress>) -> Self {
        let task = tokio::spawn(async move {
            let mut bar: Option<indicatif::ProgressBar> = None;
            while let Some(update) = updates.recv().await {
                let bar = bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::with_draw_target(
                        None,
                        indicatif::ProgressDrawTarget::stderr(),
                    );
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{spinner} [{bar:30}] {pos}/{len} {msg}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar
                });
                // Progress values may be fractional; the bar counts in hundredths.
                if let Some(total) = update.total {
                    bar.set_length((total * 100.0).max(0.0) as u64);
                }
                bar.set_position((update.progress * 100.0).max(0.0) as u64);
                if let Some(message) = update.message {
                    bar.set_message(message);
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        ProgressDisplay { task }
    }

    pub async fn finish(self) {
        let _ = self.task.await;
    }
}
