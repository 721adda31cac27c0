//! Declaring tools, resources and prompts.
//!
//! Each is built once, when the server starts: schemas are generated from the argument types
//! (with `schemars`) and compiled for validation, and the list answers are encoded once. A call
//! then costs a lookup, a validation and the handler.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::{
    context::RequestContext,
    error::{HandlerError, Violation},
    model::{
        PromptArgument, PromptDescriptor, PromptOutput, ResourceContents, ResourceDescriptor,
        ResourceTemplateDescriptor, ToolAnnotations, ToolDescriptor, ToolOutput,
    },
    tasks::TaskSupport,
};

pub(crate) type ToolFn = dyn Fn(Value, RequestContext) -> BoxFuture<'static, Result<ToolOutput, HandlerError>>
    + Send
    + Sync;
pub(crate) type ReadFn = dyn Fn(
        String,
        HashMap<String, String>,
        RequestContext,
    ) -> BoxFuture<'static, Result<Vec<ResourceContents>, HandlerError>>
    + Send
    + Sync;
pub(crate) type PromptFn = dyn Fn(
        HashMap<String, String>,
        RequestContext,
    ) -> BoxFuture<'static, Result<PromptOutput, HandlerError>>
    + Send
    + Sync;

/// The `_meta` key under which a tool names the scope a caller needs (`expenses:read`, ...).
/// The gateway enforces it; servers set it with [`ToolBuilder::scope`].
pub const SCOPE_META_KEY: &str = "dev.switchboard/scope";

/// The JSON Schema of `T`, as MCP wants it: an object schema without the `$schema` noise when
/// it is the default dialect.
pub fn schema_for<T: JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        map.remove("title");
        map.entry("type")
            .or_insert_with(|| Value::String("object".to_owned()));
    }
    schema
}

/// A registered tool.
pub struct Tool {
    pub(crate) descriptor: ToolDescriptor,
    /// Client capabilities (`sampling`, `elicitation`, `roots`) the tool cannot run without.
    pub(crate) required_capabilities: Vec<String>,
    /// The input schema's validator, compiled on the tool's first call rather than at
    /// start-up: compiling checks the schema against its meta-schema first, which cost every
    /// server most of a millisecond of start-up and about 1 MiB of idle memory, called or not
    /// (see `docs/performance.md`). `None` inside: the schema does not compile, and arguments
    /// are not validated.
    pub(crate) validator: OnceLock<Option<jsonschema::Validator>>,
    pub(crate) handler: Arc<ToolFn>,
    /// Whether the tool can run as a task (see [`ToolBuilder::task_support`]).
    pub(crate) task_support: Option<TaskSupport>,
    /// The handler makes the call a task itself, with [`RequestContext::start_task`].
    pub(crate) task_in_handler: bool,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.descriptor.name)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// Start declaring a tool. Names are 1 to 64 characters of `[A-Za-z0-9_./-]`.
    pub fn builder(name: impl Into<String>, description: impl Into<String>) -> ToolBuilder {
        ToolBuilder {
            descriptor: ToolDescriptor {
                name: name.into(),
                title: None,
                description: description.into(),
                input_schema: serde_json::json!({"type": "object"}),
                output_schema: None,
                annotations: ToolAnnotations::default(),
                execution: None,
                meta: None,
            },
            required_capabilities: Vec::new(),
            task_support: None,
            task_in_handler: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    /// Check arguments against the input schema, reporting every violation.
    pub(crate) fn check(&self, arguments: &Value) -> Result<(), HandlerError> {
        let validator = self
            .validator
            .get_or_init(|| compile_input_schema(&self.descriptor));
        let Some(validator) = validator else {
            return Ok(());
        };
        let violations: Vec<Violation> = validator
            .iter_errors(arguments)
            .map(|error| Violation {
                pointer: error.instance_path().to_string(),
                message: error.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(HandlerError::InvalidArguments { violations })
        }
    }
}

/// Declares a tool; finish with [`ToolBuilder::handler`].
#[derive(Debug)]
pub struct ToolBuilder {
    descriptor: ToolDescriptor,
    required_capabilities: Vec<String>,
    task_support: Option<TaskSupport>,
    task_in_handler: bool,
}

impl ToolBuilder {
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.descriptor.title = Some(title.into());
        self
    }

    /// The tool does not change anything (`readOnlyHint`).
    pub fn read_only(mut self) -> Self {
        self.descriptor.annotations.read_only_hint = Some(true);
        self.descriptor.annotations.destructive_hint = None;
        self
    }

    /// The tool deletes or overwrites data (`destructiveHint`).
    pub fn destructive(mut self) -> Self {
        self.descriptor.annotations.read_only_hint = Some(false);
        self.descriptor.annotations.destructive_hint = Some(true);
        self
    }

    /// A write that has no further effect when repeated with the same arguments.
    pub fn idempotent(mut self) -> Self {
        self.descriptor.annotations.idempotent_hint = Some(true);
        self
    }

    /// A write that neither deletes nor overwrites (`destructiveHint: false`).
    pub fn additive(mut self) -> Self {
        self.descriptor.annotations.read_only_hint = Some(false);
        self.descriptor.annotations.destructive_hint = Some(false);
        self
    }

    /// Whether the tool reaches the outside world (`openWorldHint`).
    pub fn open_world(mut self, open: bool) -> Self {
        self.descriptor.annotations.open_world_hint = Some(open);
        self
    }

    /// Put a key in the tool's `_meta` (for example the scope it needs).
    pub fn meta(mut self, key: impl Into<String>, value: Value) -> Self {
        self.descriptor
            .meta
            .get_or_insert_with(Map::new)
            .insert(key.into(), value);
        self
    }

    /// The tool needs this client capability (for example `sampling`); a client that did not
    /// declare it gets `-32021` before the tool runs.
    pub fn requires_client_capability(mut self, capability: impl Into<String>) -> Self {
        self.required_capabilities.push(capability.into());
        self
    }

    /// The tool can run as a task (the 2026-07-28 tasks extension, SEP-2663): when the client
    /// declared `io.modelcontextprotocol/tasks`, a call is answered at once with a task and
    /// the handler runs in the background. With [`TaskSupport::Optional`] a client that did
    /// not declare it gets the result as from any tool; with [`TaskSupport::Required`] it gets
    /// `-32021`. The server then advertises the extension, and serves `tasks/get`,
    /// `tasks/update` and `tasks/cancel`.
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.task_support = Some(support);
        self.descriptor.execution = Some(serde_json::json!({"taskSupport": support.name()}));
        self
    }

    /// The handler, not the kit, decides when the call becomes a task: it runs as a plain
    /// call (asking for input in 2026-07-28 rounds, say) until it calls
    /// [`RequestContext::start_task`]. Implies [`TaskSupport::Optional`] unless
    /// [`Self::task_support`] said otherwise.
    pub fn task_starts_in_handler(mut self) -> Self {
        if self.task_support.is_none() {
            self = self.task_support(TaskSupport::Optional);
        }
        self.task_in_handler = true;
        self
    }

    /// The scope a caller needs to use this tool, recorded in `_meta` under
    /// [`SCOPE_META_KEY`].
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.meta(SCOPE_META_KEY, Value::String(scope.into()))
    }

    /// Declare the structured content type; its schema becomes `outputSchema`.
    pub fn output<O: JsonSchema>(mut self) -> Self {
        self.descriptor.output_schema = Some(schema_for::<O>());
        self
    }

    /// Use this exact input schema instead of one derived from the argument type.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.descriptor.input_schema = schema;
        self
    }

    /// Finish with a typed handler. The input schema comes from `A` unless
    /// [`Self::input_schema`] set one; arguments are validated against it before `A` is built.
    pub fn handler<A, F, Fut>(mut self, handler: F) -> Tool
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, HandlerError>> + Send + 'static,
    {
        if self.descriptor.input_schema == serde_json::json!({"type": "object"}) {
            self.descriptor.input_schema = schema_for::<A>();
        }
        let handler = Arc::new(handler);
        let erased: Arc<ToolFn> = Arc::new(move |arguments: Value, context: RequestContext| {
            let handler = handler.clone();
            Box::pin(async move {
                let arguments = A::deserialize(&arguments).map_err(|error| {
                    HandlerError::invalid("", format!("the arguments do not fit the tool: {error}"))
                })?;
                handler(arguments, context).await
            }) as BoxFuture<'static, _>
        });
        Tool {
            descriptor: self.descriptor,
            required_capabilities: self.required_capabilities,
            validator: OnceLock::new(),
            handler: erased,
            task_support: self.task_support,
            task_in_handler: self.task_in_handler,
        }
    }
}

/// The validator of a tool's input schema, or `None` (with a warning) when it does not compile.
fn compile_input_schema(descriptor: &ToolDescriptor) -> Option<jsonschema::Validator> {
    jsonschema::validator_for(&descriptor.input_schema)
        .map_err(|error| tracing::warn!(tool = %descriptor.name, %error, "the input schema does not compile; arguments are not validated"))
        .ok()
}

/// A resource at a fixed URI.
pub struct Resource {
    pub(crate) descriptor: ResourceDescriptor,
    pub(crate) reader: Arc<ReadFn>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("uri", &self.descriptor.uri)
            .finish_non_exhaustive()
    }
}

impl Resource {
    pub fn new<F, Fut>(
        uri: impl Into<String>,
        name: impl Into<String>,
        mime_type: impl Into<String>,
        reader: F,
    ) -> Self
    where
        F: Fn(RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        let reader = Arc::new(reader);
        Resource {
            descriptor: ResourceDescriptor {
                uri: uri.into(),
                name: name.into(),
                title: None,
                description: None,
                mime_type: Some(mime_type.into()),
            },
            reader: Arc::new(move |_uri, _params, context| {
                let reader = reader.clone();
                Box::pin(async move { reader(context).await })
            }),
        }
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.descriptor.description = Some(description.into());
        self
    }
}

/// Resources whose URIs follow a template such as `expenses://expense/{id}`.
pub struct ResourceTemplate {
    pub(crate) descriptor: ResourceTemplateDescriptor,
    pub(crate) pattern: UriPattern,
    pub(crate) reader: Arc<ReadFn>,
}

impl std::fmt::Debug for ResourceTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceTemplate")
            .field("uri_template", &self.descriptor.uri_template)
            .finish_non_exhaustive()
    }
}

impl ResourceTemplate {
    /// `reader` gets the URI and the template's variables by name.
    pub fn new<F, Fut>(
        uri_template: impl Into<String>,
        name: impl Into<String>,
        mime_type: impl Into<String>,
        reader: F,
    ) -> Self
    where
        F: Fn(String, HashMap<String, String>, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, HandlerError>> + Send + 'static,
    {
        let uri_template = uri_template.into();
        let reader = Arc::new(reader);
        ResourceTemplate {
            pattern: UriPattern::parse(&uri_template),
            descriptor: ResourceTemplateDescriptor {
                uri_template,
                name: name.into(),
                title: None,
                description: None,
                mime_type: Some(mime_type.into()),
            },
            reader: Arc::new(move |uri, params, context| {
                let reader = reader.clone();
                Box::pin(async move { reader(uri, params, context).await })
            }),
        }
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.descriptor.description = Some(description.into());
        self
    }
}

/// A level-1 URI template (RFC 6570 `{var}` expressions only), used to match URIs.
#[derive(Debug, Clone)]
pub(crate) struct UriPattern {
    /// Literal text and variable names, alternating, starting with literal text.
    parts: Vec<String>,
}

impl UriPattern {
    pub(crate) fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        loop {
            match rest.find('{') {
                Some(open) => {
                    let close = rest[open..].find('}').map(|c| open + c);
                    match close {
                        Some(close) => {
                            parts.push(rest[..open].to_owned());
                            parts.push(rest[open + 1..close].to_owned());
                            rest = &rest[close + 1..];
                        }
                        None => {
                            parts.push(rest.to_owned());
                            break;
                        }
                    }
                }
                None => {
                    parts.push(rest.to_owned());
                    break;
                }
            }
        }
        UriPattern { parts }
    }

    /// The variables if `uri` matches. A variable matches one or more characters other
    /// than `/`, `?` and `#`.
    pub(crate) fn matches(&self, uri: &str) -> Option<HashMap<String, String>> {
        let mut variables = HashMap::new();
        let mut rest = uri;
        let mut parts = self.parts.iter();
        let first = parts.next()?;
        rest = rest.strip_prefix(first.as_str())?;
        while let Some(variable) = parts.next() {
            let literal = parts.next().map(String::as_str).unwrap_or("");
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let candidate = &rest[..end];
            let value_end = if literal.is_empty() {
                candidate.len()
            } else {
                rest.find(literal)?
            };
            let value = &rest[..value_end];
            if value.is_empty() || value.contains(['/', '?', '#']) {
                return None;
            }
            variables.insert(variable.clone(), value.to_owned());
            rest = &rest[value_end + literal.len()..];
        }
        rest.is_empty().then_some(variables)
    }
}

/// A prompt template.
pub struct Prompt {
    pub(crate) descriptor: PromptDescriptor,
    pub(crate) handler: Arc<PromptFn>,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.descriptor.name)
            .finish_non_exhaustive()
    }
}

impl Prompt {
    pub fn builder(name: impl Into<String>, description: impl Into<String>) -> PromptBuilder {
        PromptBuilder {
            descriptor: PromptDescriptor {
                name: name.into(),
                title: None,
                description: Some(description.into()),
                arguments: Vec::new(),
            },
        }
    }
}

#[derive(Debug)]
pub struct PromptBuilder {
    descriptor: PromptDescriptor,
}

impl PromptBuilder {
    pub fn argument(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        required: bool,
    ) -> Self {
        self.descriptor.arguments.push(PromptArgument {
            name: name.into(),
            description: Some(description.into()),
            required,
        });
        self
    }

    /// Finish with a handler that gets the arguments by name (required ones are checked first).
    pub fn handler<F, Fut>(self, handler: F) -> Prompt
    where
        F: Fn(HashMap<String, String>, RequestContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<PromptOutput, HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        Prompt {
            descriptor: self.descriptor,
            handler: Arc::new(move |arguments, context| {
                let handler = handler.clone();
                Box::pin(async move { handler(arguments, context).await })
            }),
        }
    }
}

/// Encode a value once (for cached list answers).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    struct EchoArguments {
        #[allow(dead_code)]
        text: String,
    }

    #[test]
    fn input_validators_are_compiled_on_the_first_call_not_at_start_up() {
        let tool = Tool::builder("echo", "Echo.")
            .handler(|_: EchoArguments, _| async { Ok(ToolOutput::text("")) });
        assert!(tool.validator.get().is_none(), "compiled at start-up");
        let error = tool.check(&serde_json::json!({"text": 7}));
        assert!(
            matches!(error, Err(HandlerError::InvalidArguments { .. })),
            "{error:?}"
        );
        assert!(matches!(tool.validator.get(), Some(Some(_))));
        assert!(tool.check(&serde_json::json!({"text": "hi"})).is_ok());
    }

    #[test]
    fn templates_match_and_capture() {
        let pattern = UriPattern::parse("expenses://expense/{id}");
        let vars = pattern.matches("expenses://expense/42").unwrap_or_default();
        assert_eq!(vars.get("id").map(String::as_str), Some("42"));
        assert!(pattern.matches("expenses://expense/").is_none());
        assert!(pattern.matches("expenses://expense/4/2").is_none());
        assert!(pattern.matches("expenses://other/42").is_none());
        let two = UriPattern::parse("test://template/{id}/data");
        assert_eq!(
            two.matches("test://template/123/data")
                .unwrap_or_default()
                .get("id")
                .map(String::as_str),
            Some("123")
        );
        assert!(two.matches("test://template/123/other").is_none());
        let fixed = UriPattern::parse("a://b");
        assert!(fixed.matches("a://b").is_some());
        assert!(fixed.matches("a://bc").is_none());
    }
}
