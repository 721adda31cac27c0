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

/// How the fixture behaves beyond its normal answers. The fault modes apply to `tools/call`
/// only, in this order: crash, lose the response, fail the first calls, fail at a rate, delay.
#[derive(Debug, Clone, Default)]
pub struct FixtureOptions {
    /// Exit the process abruptly on the tools/call after this many have succeeded.
    pub crash_after_calls: Option<u32>,
    /// Speak only the legacy revisions (up to 2025-11-25).
    pub legacy_only: bool,
    /// Answer the first N tools/calls with a retryable `-32000` error (then work).
    pub fail_first_calls: u32,
    /// Put `retry_after_ms` into the retryable errors' `data`.
    pub retry_after_ms: Option<u64>,
    /// Fail this many of every hundred tools/calls with a retryable `-32000`, on a fixed
    /// pseudo-random pattern (the same calls fail on every run).
    pub failure_percent: u8,
    /// Record the first N tools/calls, then never answer them (as if the response were lost
    /// on the way back) until the client cancels them.
    pub lose_first_responses: u32,
    /// Wait this long before running every tools/call.
    pub delay_ms: u64,
    /// Where every call, listing and cancellation is recorded.
    pub journal: Option<Arc<Journal>>,
    /// Send this `ttlMs` with the tool list (2026-07-28 cache hint).
    pub list_ttl_ms: Option<u64>,
    /// Do not declare `tools.listChanged`: the client cannot rely on change announcements.
    pub unannounced_changes: bool,
}

/// One thing the fixture saw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalEntry {
    /// A `tools/call` arrived (before any fault mode applied).
    Call { id: String, tool: String },
    /// A `notifications/cancelled` arrived.
    Cancelled { id: String, reason: Option<String> },
    /// A `tools/list` arrived.
    ListedTools,
}

/// Every request the fixture saw, in order: kept in memory and, for a fixture in a child
/// process, appended as JSON lines to a file the test reads back.
#[derive(Debug, Default)]
pub struct Journal {
    entries: std::sync::Mutex<Vec<JournalEntry>>,
    file: Option<std::path::PathBuf>,
}

impl Journal {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A journal that also appends every entry to `path` as one JSON line.
    pub fn to_file(path: impl Into<std::path::PathBuf>) -> Arc<Self> {
        Arc::new(Journal {
            entries: std::sync::Mutex::default(),
            file: Some(path.into()),
        })
    }

    pub fn record(&self, entry: JournalEntry) {
        if let Some(path) = &self.file {
            use std::io::Write;
            let line = serde_json::to_string(&entry).unwrap_or_default();
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{line}");
            }
        }
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    pub fn entries(&self) -> Vec<JournalEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many tools/calls of `tool` arrived.
    pub fn calls_of(&self, tool: &str) -> usize {
        count_calls(&self.entries(), tool)
    }

    /// The entries a child process wrote to `path`.
    pub fn read_file(path: &std::path::Path) -> Vec<JournalEntry> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// How many tools/calls of `tool` are among `entries`.
pub fn count_calls(entries: &[JournalEntry], tool: &str) -> usize {
    entries
        .iter()
        .filter(|e| matches!(e, JournalEntry::Call { tool: t, .. } if t == tool))
        .count()
}

/// Whether call number `index` (from 0) fails at `percent`: a fixed scramble of the index, so
/// failures are spread out, not in runs, and repeat exactly from run to run.
pub fn fails_at(index: u32, percent: u8) -> bool {
    // SplitMix64's finaliser: neighbouring indices give unrelated values.
    let mut z = u64::from(index).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z % 100 < u64::from(percent)
}

/// The `-32000` error a server sends for transient trouble (design.md's error table).
fn retryable_error(retry_after_ms: Option<u64>) -> ErrorData {
    let mut data = json!({"retryable": true});
    if let Some(ms) = retry_after_ms {
        data["retry_after_ms"] = json!(ms);
    }
    ErrorData::new(
        rmcp::model::ErrorCode(-32000),
        "the fixture is failing on purpose; try again",
        Some(data),
    )
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
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_prompts()
            .build();
        if self.options.unannounced_changes
            && let Some(tools) = capabilities.tools.as_mut()
        {
            tools.list_changed = None;
        }
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

    async fn on_cancelled(
        &self,
        notification: rmcp::model::CancelledNotificationParam,
        _context: rmcp::service::NotificationContext<RoleServer>,
    ) {
        if let (Some(journal), Some(id)) = (&self.options.journal, notification.request_id) {
            journal.record(JournalEntry::Cancelled {
                id: id.to_string(),
                reason: notification.reason,
            });
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
        if let Some(journal) = &self.options.journal {
            journal.record(JournalEntry::ListedTools);
        }
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
        let listed = ListToolsResult::with_all_items(tools);
        Ok(match self.options.list_ttl_ms {
            Some(ttl) => listed.with_ttl_ms(ttl),
            None => listed,
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let done = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(journal) = &self.options.journal {
            journal.record(JournalEntry::Call {
                id: context.id.to_string(),
                tool: request.name.to_string(),
            });
        }
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
        if done < self.options.lose_first_responses {
            // The work was done; the answer never arrives. Cancellation ends the wait.
            context.ct.cancelled().await;
            return Err(ErrorData::internal_error("cancelled", None));
        }
        if done < self.options.fail_first_calls || fails_at(done, self.options.failure_percent) {
            return Err(retryable_error(self.options.retry_after_ms));
        }
        if self.options.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.options.delay_ms)).await;
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
