//! One function per scenario of the suite's client sets.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchboard_client::{
    CallOptions, ConnectOptions, Connection,
    model::{Content, ToolResult},
};
use switchboard_config::{ServerEntry, ServerName, Transport};
use switchboard_host::{Host, HostError, HostOptions, HostTool, validate::ArgumentValidator};

use super::{FixtureAnswers, Invocation, STEP_TIMEOUT, ScenarioError, answers, auth};

/// Carry out the scenario the suite named.
pub async fn run(invocation: &Invocation) -> Result<(), ScenarioError> {
    match invocation.scenario.as_str() {
        // The handshake itself is the test; listing tools shows the session works.
        "initialize" | "request-metadata" => {
            let host = connect(invocation).await?;
            all(host.tools(None).await?)?;
            finish(host).await
        }
        "tools_call" => {
            let host = connect(invocation).await?;
            let result = call(&host, "add_numbers", json!({"a": 5, "b": 3})).await?;
            expect_text(&result, "8")?;
            finish(host).await
        }
        // The server asks for input inside the call; the fixture's answers reply.
        "elicitation-sep1034-client-defaults" => {
            call_one(invocation, "test_client_elicitation_defaults").await
        }
        // The server closes the call's SSE stream; the transport resumes it with GET.
        "sse-retry" => {
            let host = connect(invocation).await?;
            // rmcp's transport opens its standalone GET stream in a task spawned after
            // notifications/initialized. On a loaded machine that GET can reach the server
            // after the call below has started, and the scenario then takes it for the
            // resumption (too early, no Last-Event-ID). Letting it land first keeps the
            // scenario about resumption, which is what it tests.
            tokio::time::sleep(STANDALONE_STREAM_SETTLE).await;
            let resolved = host.resolve_tool("test_reconnection").await?;
            let arguments = arguments_for(&resolved.tool.input_schema);
            call_resolved(&host, &resolved, arguments).await?;
            finish(host).await
        }
        "sep-2322-client-request-state" => Box::pin(input_required_rounds(invocation)).await,
        "http-standard-headers" => everything(invocation).await,
        "http-custom-headers" => calls_from_context(invocation).await,
        // Tools with malformed x-mcp-header annotations never reach the list; the rest work.
        "http-invalid-tool-headers" => call_every_tool(invocation).await,
        "json-schema-ref-no-deref" => check_schemas_offline(invocation).await,
        "json-schema-2020-12-preservation" => echo_schema(invocation).await,
        // The auth/* scenarios and any other: what a host does with a new server (list its
        // tools and call them), authorizing when the server asks.
        _ => call_every_tool(invocation).await,
    }
}

fn connect_options(invocation: &Invocation) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: STEP_TIMEOUT,
        era: invocation.era(),
        client_name: "switchboard-conformance-client".to_owned(),
        callbacks: Some(Arc::new(FixtureAnswers)),
        // Authorization starts only when a server answers 401, as in a user's host.
        oauth: Some(auth::options(&invocation.context)),
        ..ConnectOptions::default()
    }
}

fn entry(invocation: &Invocation) -> ServerEntry {
    ServerEntry::new(
        ServerName::new("conformance").expect("a valid server name"),
        Transport::StreamableHttp {
            url: invocation.url.clone(),
            headers: Default::default(),
        },
    )
}

async fn connect(invocation: &Invocation) -> Result<Host, ScenarioError> {
    let connection = Connection::connect(&entry(invocation), &connect_options(invocation)).await?;
    Ok(host_of(connection))
}

pub(super) fn host_of(connection: Connection) -> Host {
    Host::from_connections(
        vec![connection],
        HostOptions {
            request_timeout: STEP_TIMEOUT,
            ..HostOptions::default()
        },
    )
}

/// A host listing's items, or the first server's error: with one server, any error means the
/// listing failed.
fn all<T>((items, mut errors): (Vec<T>, Vec<HostError>)) -> Result<Vec<T>, ScenarioError> {
    match errors.pop() {
        Some(error) => Err(error.into()),
        None => Ok(items),
    }
}

async fn finish(host: Host) -> Result<(), ScenarioError> {
    host.shutdown().await;
    Ok(())
}

fn call_options() -> CallOptions {
    CallOptions {
        timeout: STEP_TIMEOUT,
        ..CallOptions::default()
    }
}

/// Resolve `tool` through the host and call it with `arguments` (checked against its schema).
async fn call(host: &Host, tool: &str, arguments: Value) -> Result<ToolResult, ScenarioError> {
    let tool = host.resolve_tool(tool).await?;
    call_resolved(host, &tool, arguments).await
}

async fn call_resolved(
    host: &Host,
    tool: &HostTool,
    arguments: Value,
) -> Result<ToolResult, ScenarioError> {
    let result = host.call_tool(tool, arguments, call_options()).await?;
    if result.is_error {
        return Err(ScenarioError::Unexpected(format!(
            "{} failed: {}",
            tool.tool.name,
            text_of(&result)
        )));
    }
    Ok(result)
}

/// How long `sse-retry` waits after connecting for the transport's standalone GET stream.
const STANDALONE_STREAM_SETTLE: std::time::Duration = std::time::Duration::from_millis(400);

async fn call_one(invocation: &Invocation, tool: &str) -> Result<(), ScenarioError> {
    let host = connect(invocation).await?;
    let resolved = host.resolve_tool(tool).await?;
    let arguments = arguments_for(&resolved.tool.input_schema);
    call_resolved(&host, &resolved, arguments).await?;
    finish(host).await
}

fn text_of(result: &ToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|content| match content {
            Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn expect_text(result: &ToolResult, needle: &str) -> Result<(), ScenarioError> {
    let text = text_of(result);
    if text.contains(needle) {
        Ok(())
    } else {
        Err(ScenarioError::Unexpected(format!(
            "expected {needle:?} in the result, got {text:?}"
        )))
    }
}

/// Arguments that satisfy a tool's schema: a value of the right type for every required
/// property and every property mirrored into a header (`x-mcp-header`).
fn arguments_for(schema: &Value) -> Value {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut arguments = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let wanted =
                required.contains(&name.as_str()) || property.get("x-mcp-header").is_some();
            if wanted && let Some(value) = answers::placeholder(property) {
                arguments.insert(name.clone(), value);
            }
        }
    }
    Value::Object(arguments)
}

async fn call_every_tool(invocation: &Invocation) -> Result<(), ScenarioError> {
    let host = connect(invocation).await?;
    let tools = all(host.tools(None).await?)?;
    for tool in &tools {
        call_resolved(&host, tool, arguments_for(&tool.tool.input_schema)).await?;
    }
    finish(host).await
}

/// Every request kind that carries the standard headers: list and call tools, list and read
/// resources, list and get prompts.
async fn everything(invocation: &Invocation) -> Result<(), ScenarioError> {
    let host = connect(invocation).await?;
    let tools = all(host.tools(None).await?)?;
    for tool in &tools {
        call_resolved(&host, tool, arguments_for(&tool.tool.input_schema)).await?;
    }
    let resources = all(host.resources(None).await?)?;
    for (server, resource) in &resources {
        host.read_resource(&resource.uri, Some(server.as_str()))
            .await?;
    }
    let prompts = all(host.prompts(None).await?)?;
    for (server, prompt) in &prompts {
        let arguments: Map<String, Value> = prompt
            .arguments
            .iter()
            .filter(|argument| argument.required)
            .map(|argument| (argument.name.clone(), json!("conformance")))
            .collect();
        host.get_prompt(server, &prompt.name, arguments).await?;
    }
    finish(host).await
}

/// The calls the scenario lists in its context (`toolCalls: [{name, arguments}]`), sent with
/// exactly those arguments: they include a `null` for an optional boolean, which the host's
/// schema check would refuse, to test that the transport omits its header.
async fn calls_from_context(invocation: &Invocation) -> Result<(), ScenarioError> {
    let calls = invocation
        .context
        .get("toolCalls")
        .and_then(Value::as_array)
        .ok_or_else(|| ScenarioError::Context("no toolCalls array".to_owned()))?;
    let connection = Connection::connect(&entry(invocation), &connect_options(invocation)).await?;
    // The transport learns which arguments to mirror into headers from the tool list.
    connection.list_tools(STEP_TIMEOUT).await?;
    for planned in calls {
        let name = planned
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ScenarioError::Context("a tool call without a name".to_owned()))?;
        let arguments = planned.get("arguments").and_then(Value::as_object).cloned();
        let result = connection
            .call_tool(name, arguments, call_options())
            .await?;
        if result.is_error {
            return Err(ScenarioError::Unexpected(format!(
                "{name} failed: {}",
                text_of(&result)
            )));
        }
    }
    connection.close().await;
    Ok(())
}

/// SEP-2322: calls the server answers with `input_required`, one with a `requestState` and one
/// without, a plain call made while those are in flight, and a result without `resultType`.
async fn input_required_rounds(invocation: &Invocation) -> Result<(), ScenarioError> {
    let host = connect(invocation).await?;
    let (echo_state, unrelated, no_state) = tokio::join!(
        call(&host, "test_mrtr_echo_state", json!({})),
        call(&host, "test_mrtr_unrelated", json!({})),
        call(&host, "test_mrtr_no_state", json!({})),
    );
    expect_text(&echo_state?, "echo-state-ok")?;
    expect_text(&unrelated?, "unrelated-ok")?;
    expect_text(&no_state?, "no-state-ok")?;
    let plain = call(&host, "test_mrtr_no_result_type", json!({})).await?;
    expect_text(&plain, "no-result-type-test-ok")?;
    finish(host).await
}

/// SEP-2106: list tools and compile each input schema the way the host checks arguments,
/// without ever fetching a `$ref` that points at the network.
async fn check_schemas_offline(invocation: &Invocation) -> Result<(), ScenarioError> {
    let host = connect(invocation).await?;
    let tools = all(host.tools(None).await?)?;
    for tool in &tools {
        let validator = ArgumentValidator::new(&tool.tool.input_schema);
        let violations = validator.violations(&arguments_for(&tool.tool.input_schema));
        tracing::debug!(tool = %tool.tool.name, ?violations, "schema compiled offline");
    }
    finish(host).await
}

/// SEP-1613: hand a tool's input schema back to the server unchanged.
async fn echo_schema(invocation: &Invocation) -> Result<(), ScenarioError> {
    let host = connect(invocation).await?;
    let tools = all(host.tools(None).await?)?;
    let focal = tools
        .iter()
        .find(|tool| tool.tool.name == "json_schema_2020_12_tool")
        .ok_or_else(|| {
            ScenarioError::Unexpected("the server did not list json_schema_2020_12_tool".into())
        })?;
    let schema = focal.tool.input_schema.clone();
    call(&host, "json_schema_echo", json!({ "schema": schema })).await?;
    finish(host).await
}
