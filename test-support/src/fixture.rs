//! The fixture MCP server: small, deterministic answers that tests assert exactly.

use std::{
    borrow::Cow,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use rmcp::model::SubscriptionFilter;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
        GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProgressNotificationParam, ProtocolVersion, ReadResourceRequestParams,
        ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
    },
    schemars,
    service::{RequestContext, SubscriptionContext, SubscriptionSink},
    tool, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// A 1×1 transparent PNG, base64.
pub const PIXEL_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// The text of `fixture://greeting`.
pub const GREETING: &str = "Hello from the fixture";

/// How the fixture behaves beyond its normal answers.
#[derive(Debug, Clone, Default)]
pub struct FixtureOptions {
    /// Exit the process abruptly on the tools/call after this many have succeeded.
    pub crash_after_calls: Option<u32>,
    /// Speak only the legacy revisions (up to 2025-11-25).
    pub legacy_only: bool,
}

#[derive(Debug, Clone)]
pub struct Fixture {
    tool_router: ToolRouter<Fixture>,
    options: FixtureOptions,
    calls: Arc<AtomicU32>,
    extra_tool: Arc<AtomicBool>,
    /// The open `subscriptions/listen` stream of a 2026-07-28 client, if any.
    subscription: Arc<std::sync::Mutex<Option<SubscriptionSink>>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AddArgs {
    /// First addend.
    pub a: i64,
    /// Second addend.
    pub b: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SlowArgs {
    /// How long to work, in milliseconds.
    pub ms: u64,
    /// How many progress notifications to send (default 4).
    pub steps: Option<u32>,
}

fn result(value: Value) -> Result<CallToolResult, ErrorData> {
    serde_json::from_value(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

#[tool_router]
impl Fixture {
    pub fn new(options: FixtureOptions) -> Self {
        Fixture {
            tool_router: Self::tool_router(),
            options,
            calls: Arc::default(),
            extra_tool: Arc::default(),
            subscription: Arc::default(),
        }
    }

    #[tool(
        description = "Send the text back unchanged.",
        annotations(read_only_hint = true)
    )]
    fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> Result<CallToolResult, ErrorData> {
        result(json!({"content": [{"type": "text", "text": args.text}]}))
    }

    #[tool(description = "Add two integers.", annotations(read_only_hint = true))]
    fn add(&self, Parameters(args): Parameters<AddArgs>) -> Result<CallToolResult, ErrorData> {
        let sum = args.a + args.b;
        result(json!({
            "content": [{"type": "text", "text": sum.to_string()}],
            "structuredContent": {"sum": sum}
        }))
    }

    #[tool(description = "Always fails, as a tool error the model can read.")]
    fn fail(&self) -> Result<CallToolResult, ErrorData> {
        result(json!({
            "content": [{"type": "text", "text": "this tool always fails"}],
            "isError": true
        }))
    }

    #[tool(
        description = "Return a 1x1 PNG image.",
        annotations(read_only_hint = true)
    )]
    fn pixel(&self) -> Result<CallToolResult, ErrorData> {
        result(json!({"content": [
            {"type": "text", "text": "one pixel"},
            {"type": "image", "data": PIXEL_PNG_BASE64, "mimeType": "image/png"}
        ]}))
    }

    #[tool(description = "Work for a while, reporting progress.")]
    async fn slow(
        &self,
        Parameters(args): Parameters<SlowArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let steps = args.steps.unwrap_or(4).max(1);
        let token = context.meta.get_progress_token();
        for step in 1..=steps {
            tokio::time::sleep(Duration::from_millis(args.ms / u64::from(steps))).await;
            if let Some(token) = &token {
                let _ = context
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), f64::from(step))
                            .with_total(f64::from(steps))
                            .with_message(format!("step {step} of {steps}")),
                    )
                    .await;
            }
        }
        result(json!({"content": [{"type": "text", "text": format!("done after {} ms", args.ms)}]}))
    }

    #[tool(
        description = "Add a tool named `extra` and tell the client that the tool list changed."
    )]
    async fn enable_extra(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        self.extra_tool.store(true, Ordering::SeqCst);
        // As 2026-07-28 says: a modern client hears list changes only on the stream it opened
        // with subscriptions/listen; a legacy session gets them unasked.
        let modern = context
            .protocol_version()
            .is_some_and(|v| !v.has_initialize());
        if modern {
            let sink = self
                .subscription
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(sink) = sink {
                let _ = sink.notify_tool_list_changed().await;
            }
        } else {
            let _ = context.peer.notify_tool_list_changed().await;
        }
        result(json!({"content": [{"type": "text", "text": "extra enabled"}]}))
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_prompts()
            .build();
        let mut info = ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("switchboard-fixture", "1.0.0"))
            .with_instructions("A fixture server for Switchboard's tests.".to_owned());
        if self.options.legacy_only {
            info = info.with_protocol_version(ProtocolVersion::V_2025_11_25);
        }
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        if self.options.legacy_only {
            Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
        } else {
            Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        *self.subscription.lock().unwrap_or_else(|e| e.into_inner()) = Some(context.sink().clone());
        context.cancelled().await;
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.tool_router.list_all();
        if self.extra_tool.load(Ordering::SeqCst) {
            let extra: Tool = serde_json::from_value(json!({
                "name": "extra",
                "description": "Appears after enable_extra.",
                "inputSchema": {"type": "object"}
            }))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            tools.push(extra);
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let done = self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .options
            .crash_after_calls
            .is_some_and(|limit| done >= limit)
        {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("fixture: crashing on call {} as asked", done + 1);
            }
            std::process::exit(101);
        }
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        serde_json::from_value(json!({"resources": [
            {"uri": "fixture://greeting", "name": "greeting", "mimeType": "text/plain", "description": "A friendly text."},
            {"uri": "fixture://pixel", "name": "pixel", "mimeType": "image/png"}
        ]}))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        serde_json::from_value(json!({"resourceTemplates": [
            {"uriTemplate": "fixture://items/{id}", "name": "item", "mimeType": "application/json"}
        ]}))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let contents = match uri {
            "fixture://greeting" => json!({"uri": uri, "mimeType": "text/plain", "text": GREETING}),
            "fixture://pixel" => {
                json!({"uri": uri, "mimeType": "image/png", "blob": PIXEL_PNG_BASE64})
            }
            _ => match uri.strip_prefix("fixture://items/") {
                Some(id) => {
                    json!({"uri": uri, "mimeType": "application/json", "text": json!({"id": id}).to_string()})
                }
                None => {
                    return Err(ErrorData::invalid_params(
                        format!("unknown resource {uri}"),
                        Some(json!({"uri": uri})),
                    ));
                }
            },
        };
        let result: rmcp::model::ReadResourceResult =
            serde_json::from_value(json!({"contents": [contents]}))
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        serde_json::from_value(json!({"prompts": [{
            "name": "greet",
            "description": "Ask for a warm greeting.",
            "arguments": [{"name": "name", "description": "Who to greet", "required": true}]
        }]}))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "greet" {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt {}", request.name),
                None,
            ));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| ErrorData::invalid_params("argument `name` is required", None))?;
        serde_json::from_value::<GetPromptResult>(json!({
            "description": "A greeting",
            "messages": [{"role": "user", "content": {"type": "text", "text": format!("Please greet {name} warmly.")}}]
        }))
        .map(Into::into)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }
}

/// Serve the fixture over an in-memory duplex; returns the client's ends.
pub fn serve_in_memory(
    options: FixtureOptions,
) -> (
    tokio::io::ReadHalf<tokio::io::DuplexStream>,
    tokio::io::WriteHalf<tokio::io::DuplexStream>,
) {
    use rmcp::ServiceExt;
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server);
    tokio::spawn(async move {
        if let Ok(running) = Fixture::new(options)
            .serve((server_read, server_write))
            .await
        {
            let _ = running.waiting().await;
        }
    });
    tokio::io::split(client)
}
