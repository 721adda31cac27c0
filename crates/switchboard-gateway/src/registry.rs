//! `GET /v0/servers`: the gateway's upstreams in the MCP Registry's list shape, so registry
//! clients (`switchboard discover`, VS Code's gallery, aggregators) can find what it serves.
//!
//! Each upstream is one `server.json`. Its one remote is the gateway's own `/mcp` (that is
//! where its tools are served, under the upstream's prefix); the prefix, health and the
//! upstream's own name and version are under `_meta["dev.switchboard/gateway"]`.

use axum::{
    Json,
    extract::{Query, State},
    http::{HeaderMap, header},
};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_host::ServerState;

use crate::upstreams::Upstreams;

/// The `server.json` schema the entries follow.
pub const SERVER_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";

/// The namespace of the entries' names (`dev.switchboard.gateway/UPSTREAM`).
pub const NAMESPACE: &str = "dev.switchboard.gateway";

/// Most entries in one page.
const MAX_LIMIT: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only servers whose name contains this (case-insensitive).
    pub search: Option<String>,
    pub limit: Option<usize>,
    /// The last name of the previous page.
    pub cursor: Option<String>,
}

/// The list, one page of it.
pub async fn servers(
    State(upstreams): State<Upstreams>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Json<Value> {
    // The Host header was checked against the allow-list by the front.
    let authority = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let endpoint = format!("http://{authority}/mcp");
    let health = upstreams.health();
    let search = query.search.as_deref().map(str::to_lowercase);
    let mut entries: Vec<(String, Value)> = upstreams
        .host()
        .servers()
        .filter_map(|(name, state)| {
            let full = format!("{NAMESPACE}/{name}");
            if let Some(search) = &search
                && !full.to_lowercase().contains(search)
            {
                return None;
            }
            let (implementation, description) = match state {
                ServerState::Connected(connection) => {
                    let description = connection.description();
                    (
                        description.implementation.clone(),
                        description.instructions.clone(),
                    )
                }
                ServerState::Failed(_) => (None, None),
            };
            let status = health.iter().find(|h| h.name == name.as_str());
            let version = implementation
                .as_ref()
                .map(|i| i.version.clone())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "0.0.0".to_owned());
            let description = description
                .map(|d| d.lines().next().unwrap_or_default().chars().take(100).collect())
                .unwrap_or_else(|| format!("The \"{name}\" upstream of this Switchboard gateway"));
            let server = json!({
                "$schema": SERVER_SCHEMA,
                "name": full,
                "description": description,
                "version": version,
                "remotes": [{"type": "streamable-http", "url": endpoint}],
                "_meta": {"dev.switchboard/gateway": {
                    "upstream": name.as_str(),
                    "toolPrefix": format!("{name}__"),
                    "resourcePrefix": format!("gateway://{name}/"),
                    "serverInfo": implementation.as_ref().map(|i| json!({"name": i.name, "version": i.version})),
                    "health": status.map(|h| h.status.clone()),
                    "healthy": status.map(|h| h.healthy),
                }},
            });
            Some((full, json!({"server": server, "_meta": {}})))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = query.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    let start = match &query.cursor {
        Some(cursor) => entries.partition_point(|(name, _)| name.as_str() <= cursor.as_str()),
        None => 0,
    };
    let page: Vec<&(String, Value)> = entries.iter().skip(start).take(limit).collect();
    let next = (start + page.len() < entries.len())
        .then(|| page.last().map(|(name, _)| name.clone()))
        .flatten();
    Json(json!({
        "servers": page.iter().map(|(_, entry)| entry).collect::<Vec<_>>(),
        "metadata": {"count": page.len(), "nextCursor": next},
    }))
}
