//! The fixture server the official MCP conformance suite tests against.
//!
//! Every name and answer here is dictated by the suite's scenarios (see
//! `shared/conformance.md`, section 5): the tool `test_simple_text` must answer exactly
//! "This is a simple text response for testing.", and so on. It is built on the same server
//! kit as our real servers, so the suite's score is a score of Switchboard.

use std::{collections::HashMap, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_server::{
    CompletionRef, CompletionRequest, Content, HandlerError, InputRequest, LogLevel, Prompt,
    PromptOutput, RequestContext, Resource, ResourceContents, ResourceTemplate, Role, Server,
    TaskSupport, Tool, ToolOutput, model::PromptMessage,
};

/// A 1×1 PNG.
pub const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A few milliseconds of silence as a 16-bit mono WAV.
pub const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArguments {}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RegionArguments {
    /// A region name; clients also send it as the `Mcp-Param-Region` header.
    pub region: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SamplingArguments {
    /// The prompt to send to the client's LLM.
    pub prompt: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ElicitationArguments {
    /// The message to show the user.
    pub message: String,
}

fn image() -> Content {
    Content::Image {
        data: PNG_BASE64.into(),
        mime_type: "image/png".into(),
    }
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::builder("test_simple_text", "Returns a simple text response.")
            .read_only()
            .handler(|_: NoArguments, _| async { Ok(ToolOutput::text("This is a simple text response for testing.")) }),
        // SEP-2243 custom headers: `region` travels in the body and as `Mcp-Param-Region`, and
        // the kit refuses the call unless they agree. Not first: `http-header-validation`
        // calls the first tool listed with no arguments and expects it to succeed.
        Tool::builder("test_header_param", "Echoes a region that is also sent as the Mcp-Param-Region header.")
            .read_only()
            .input_schema(json!({
                "type": "object",
                "properties": {"region": {"type": "string", "description": "A region name.", "x-mcp-header": "Region"}},
                "required": ["region"],
                "additionalProperties": false
            }))
            .handler(|args: RegionArguments, _| async move { Ok(ToolOutput::text(format!("Region: {}", args.region))) }),
        Tool::builder("test_image_content", "Returns an image.")
            .read_only()
            .handler(|_: NoArguments, _| async { Ok(ToolOutput { content: vec![image()], ..ToolOutput::default() }) }),
        Tool::builder("test_audio_content", "Returns audio.").read_only().handler(|_: NoArguments, _| async {
            Ok(ToolOutput {
                content: vec![Content::Audio { data: WAV_BASE64.into(), mime_type: "audio/wav".into() }],
                ..ToolOutput::default()
            })
        }),
        Tool::builder("test_embedded_resource", "Returns an embedded resource.").read_only().handler(|_: NoArguments, _| async {
            Ok(ToolOutput {
                content: vec![Content::Resource {
                    resource: ResourceContents::text("test://embedded-resource", "text/plain", "This is an embedded resource content."),
                }],
                ..ToolOutput::default()
            })
        }),
        Tool::builder("test_multiple_content_types", "Returns text, an image and a resource.").read_only().handler(|_: NoArguments, _| async {
            Ok(ToolOutput {
                content: vec![
                    Content::text("Multiple content types test:"),
                    image(),
                    Content::Resource {
                        resource: ResourceContents::text(
                            "test://mixed-content-resource",
                            "application/json",
                            json!({"test": "data", "value": 123}).to_string(),
                        ),
                    },
                ],
                ..ToolOutput::default()
            })
        }),
        Tool::builder("test_tool_with_logging", "Logs three messages while it runs.").handler(|_: NoArguments, cx| async move {
            for (i, message) in ["Tool execution started", "Tool processing data", "Tool execution completed"].into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                cx.log(LogLevel::Info, json!(message)).await;
            }
            Ok(ToolOutput::text("Tool with logging executed successfully"))
        }),
        Tool::builder("test_error_handling", "Always fails.").handler(|_: NoArguments, _| async {
            Ok(ToolOutput::error("This tool intentionally returns an error for testing"))
        }),
        Tool::builder("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100.").handler(|_: NoArguments, cx| async move {
            for (i, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                cx.progress(progress, Some(100.0), None).await;
            }
            Ok(ToolOutput::text("Progress tool completed"))
        }),
        Tool::builder("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features")
            .input_schema(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                    "phone": {"type": "string"},
                    "email": {"type": "string"}
                },
                "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                "then": {"required": ["phone"]},
                "else": {"required": ["email"]},
                "additionalProperties": false
            }))
            .handler(|_: serde_json::Value, _| async { Ok(ToolOutput::text("ok")) }),
        Tool::builder("test_missing_capability", "Needs the client's sampling capability.")
            .requires_client_capability("sampling")
            .handler(|_: NoArguments, _| async { Ok(ToolOutput::text("the client declared sampling")) }),
        Tool::builder("test_logging_tool", "Logs at info level; only clients that opted in hear it.").handler(|_: NoArguments, cx| async move {
            cx.log(LogLevel::Info, json!("test_logging_tool ran")).await;
            Ok(ToolOutput::text("logged"))
        }),
    ]
}

/// The text of a sampling answer (`content` is one block or, since 2025-11-25, a list).
fn sampled_text(answer: &Value) -> String {
    let content = &answer["content"];
    let block = content
        .as_array()
        .and_then(|blocks| blocks.first())
        .unwrap_or(content);
    block["text"].as_str().unwrap_or_default().to_owned()
}

/// `action=accept, content={...}`, as the elicitation scenarios want it reported.
fn elicitation_outcome(answer: &Value) -> String {
    format!(
        "action={}, content={}",
        answer["action"].as_str().unwrap_or_default(),
        answer.get("content").unwrap_or(&Value::Null)
    )
}

/// A form with one required string field.
fn ask_for(message: &str, field: &str) -> InputRequest {
    InputRequest::elicitation(
        message,
        json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}),
    )
}

/// The accepted value of `field` in an elicitation answer.
fn accepted(answer: &Value, field: &str) -> Option<String> {
    (answer["action"] == "accept")
        .then(|| answer["content"][field].as_str().map(str::to_owned))
        .flatten()
}

/// Tools that ask the client for input: real requests in a legacy session (the 2025-11-25
/// scenarios), `input_required` results in 2026-07-28 (the `input-required-result-*` ones).
fn input_tools() -> Vec<Tool> {
    vec![
        Tool::builder("test_sampling", "Asks the client's LLM the prompt and returns its answer.").handler(
            |args: SamplingArguments, cx| async move {
                let answer = cx.input("sampling", InputRequest::sampling_text(args.prompt, 100)).await?;
                Ok(ToolOutput::text(format!("LLM response: {}", sampled_text(&answer))))
            },
        ),
        Tool::builder("test_elicitation", "Asks the user for a username and an email address.").handler(
            |args: ElicitationArguments, cx| async move {
                let form = json!({
                    "type": "object",
                    "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}
                    },
                    "required": ["username", "email"]
                });
                let answer = cx.input("user_info", InputRequest::elicitation(args.message, form)).await?;
                Ok(ToolOutput::text(format!("User response: {}", elicitation_outcome(&answer))))
            },
        ),
        Tool::builder("test_elicitation_sep1034_defaults", "Asks for a form whose fields have defaults (SEP-1034).").handler(
            |_: NoArguments, cx| async move {
                let form = json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "User name", "default": "John Doe"},
                        "age": {"type": "integer", "description": "User age", "default": 30},
                        "score": {"type": "number", "description": "User score", "default": 95.5},
                        "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                        "verified": {"type": "boolean", "description": "Verification status", "default": true}
                    }
                });
                let answer = cx.input("profile", InputRequest::elicitation("Please review and update the form fields with defaults", form)).await?;
                Ok(ToolOutput::text(format!("Elicitation completed: {}", elicitation_outcome(&answer))))
            },
        ),
        Tool::builder("test_elicitation_sep1330_enums", "Asks for a form with the five enum forms (SEP-1330).").handler(
            |_: NoArguments, cx| async move {
                let form = json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": {"type": "string", "description": "Pick one option", "enum": ["option1", "option2", "option3"]},
                        "titledSingle": {"type": "string", "description": "Pick one titled option", "oneOf": [
                            {"const": "value1", "title": "First Option"},
                            {"const": "value2", "title": "Second Option"},
                            {"const": "value3", "title": "Third Option"}
                        ]},
                        "legacyEnum": {"type": "string", "description": "Pick one (legacy titles)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                        "untitledMulti": {"type": "array", "description": "Pick several options", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                        "titledMulti": {"type": "array", "description": "Pick several titled options", "items": {"anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"}
                        ]}}
                    }
                });
                let answer = cx.input("choices", InputRequest::elicitation("Please choose from the enum fields", form)).await?;
                Ok(ToolOutput::text(format!("Elicitation completed: {}", elicitation_outcome(&answer))))
            },
        ),
        Tool::builder("test_input_required_result_elicitation", "Asks the user's name, then greets them.").handler(
            |_: NoArguments, cx| async move {
                let answer = cx.input("user_name", ask_for("What is your name?", "name")).await?;
                let name = accepted(&answer, "name").unwrap_or_else(|| "stranger".into());
                Ok(ToolOutput::text(format!("Hello, {name}!")))
            },
        ),
        Tool::builder("test_input_required_result_sampling", "Asks the client's LLM for the capital of France.").handler(
            |_: NoArguments, cx| async move {
                let answer = cx
                    .input("capital_question", InputRequest::sampling_text("What is the capital of France?", 100))
                    .await?;
                Ok(ToolOutput::text(format!("LLM response: {}", sampled_text(&answer))))
            },
        ),
        Tool::builder("test_input_required_result_list_roots", "Lists the client's roots.").handler(
            |_: NoArguments, cx| async move {
                let answer = cx.input("client_roots", InputRequest::roots()).await?;
                let uris: Vec<&str> = answer["roots"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|root| root["uri"].as_str())
                    .collect();
                Ok(ToolOutput::text(format!("Client roots: {}", uris.join(", "))))
            },
        ),
        Tool::builder("test_input_required_result_request_state", "Asks for a confirmation and checks the echoed requestState.")
            .handler(|_: NoArguments, cx| async move { confirm_with_state(&cx).await }),
        Tool::builder("test_input_required_result_tampered_state", "Like the request_state tool; a changed requestState is refused.")
            .handler(|_: NoArguments, cx| async move { confirm_with_state(&cx).await }),
        Tool::builder("test_input_required_result_multiple_inputs", "Asks for a name, a greeting and the roots at once.").handler(
            |_: NoArguments, cx| async move {
                let answers = cx
                    .inputs(&[
                        ("user_name", ask_for("What is your name?", "name")),
                        ("greeting", InputRequest::sampling_text("Generate a greeting", 50)),
                        ("client_roots", InputRequest::roots()),
                    ])
                    .await?;
                let name = accepted(&answers["user_name"], "name").unwrap_or_default();
                let roots = answers["client_roots"]["roots"].as_array().map_or(0, Vec::len);
                Ok(ToolOutput::text(format!(
                    "name={name}, greeting={}, roots={roots}",
                    sampled_text(&answers["greeting"])
                )))
            },
        ),
        Tool::builder("test_input_required_result_multi_round", "Asks for a name, then a favourite colour, in two rounds.").handler(
            |_: NoArguments, cx| async move {
                // The first answer is kept in the state: the third round carries only the second.
                let name = match cx.state().and_then(|state| state["name"].as_str().map(str::to_owned)) {
                    Some(name) => name,
                    None => {
                        let answer = cx.input("step1", ask_for("Step 1: What is your name?", "name")).await?;
                        let name = accepted(&answer, "name").unwrap_or_default();
                        cx.set_state(json!({"name": name}));
                        name
                    }
                };
                let answer = cx.input("step2", ask_for("Step 2: What is your favorite color?", "color")).await?;
                let color = accepted(&answer, "color").unwrap_or_default();
                Ok(ToolOutput::text(format!("{name} likes {color}.")))
            },
        ),
        Tool::builder("test_input_required_result_capabilities", "Asks only for what the client declared it can answer.").handler(
            |_: NoArguments, cx| async move {
                let wanted = [
                    ("capital_question", InputRequest::sampling_text("What is the capital of France?", 100)),
                    ("user_name", ask_for("What is your name?", "name")),
                    ("client_roots", InputRequest::roots()),
                ];
                let askable: Vec<(&str, InputRequest)> =
                    wanted.into_iter().filter(|(_, request)| cx.can_ask(request)).collect();
                if askable.is_empty() {
                    return Ok(ToolOutput::text("The client declared none of sampling, elicitation and roots."));
                }
                let answers = cx.inputs(&askable).await?;
                let mut keys: Vec<&String> = answers.keys().collect();
                keys.sort();
                Ok(ToolOutput::text(format!("Answered: {}", keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))))
            },
        ),
        Tool::builder("test_streaming_elicitation", "Asks the user for a confirmation (never as a request on a 2026-07-28 stream).").handler(
            |_: NoArguments, cx| async move {
                let answer = cx
                    .input("confirmation", InputRequest::elicitation("Continue?", json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})))
                    .await?;
                Ok(ToolOutput::text(format!("Elicitation completed: {}", elicitation_outcome(&answer))))
            },
        ),
    ]
}

/// Asks for a confirmation; on the retry, the state saved in round one proves the kit verified
/// the echoed `requestState` ("state-ok").
async fn confirm_with_state(cx: &RequestContext) -> Result<ToolOutput, HandlerError> {
    let verified = cx.state().is_some_and(|state| state["issued"] == "confirm");
    if !verified {
        cx.set_state(json!({"issued": "confirm"}));
    }
    let request = InputRequest::elicitation(
        "Please confirm",
        json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}),
    );
    let answer = cx.input("confirm", request).await?;
    let confirmed = answer["action"] == "accept" && answer["content"]["ok"] == true;
    Ok(ToolOutput::text(if verified {
        format!("state-ok: confirmed={confirmed}")
    } else {
        format!("confirmed={confirmed}, without a requestState to check")
    }))
}

fn resources() -> (Vec<Resource>, Vec<ResourceTemplate>) {
    let resources = vec![
        Resource::new(
            "test://static-text",
            "static-text",
            "text/plain",
            |_| async {
                Ok(vec![ResourceContents::text(
                    "test://static-text",
                    "text/plain",
                    "This is the content of the static text resource.",
                )])
            },
        )
        .description("A static text resource."),
        Resource::new(
            "test://static-binary",
            "static-binary",
            "image/png",
            |_| async {
                Ok(vec![ResourceContents::blob(
                    "test://static-binary",
                    "image/png",
                    PNG_BASE64,
                )])
            },
        )
        .description("A static binary resource."),
        Resource::new(
            "test://watched-resource",
            "watched-resource",
            "text/plain",
            |_| async {
                Ok(vec![ResourceContents::text(
                    "test://watched-resource",
                    "text/plain",
                    "Watched resource content.",
                )])
            },
        )
        .description("A resource clients can subscribe to."),
    ];
    let templates = vec![
        ResourceTemplate::new(
            "test://template/{id}/data",
            "template",
            "application/json",
            |uri, vars: HashMap<String, String>, _| async move {
                let id = vars.get("id").cloned().unwrap_or_default();
                let body =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                Ok(vec![ResourceContents::text(
                    uri,
                    "application/json",
                    body.to_string(),
                )])
            },
        )
        .description("A templated resource."),
    ];
    (resources, templates)
}

fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::builder("test_simple_prompt", "A simple prompt.").handler(|_, _| async {
            Ok(PromptOutput::user_text(
                "This is a simple prompt for testing.",
            ))
        }),
        Prompt::builder("test_prompt_with_arguments", "A prompt with arguments.")
            .argument("arg1", "First argument", true)
            .argument("arg2", "Second argument", true)
            .handler(|args, _| async move {
                let arg = |name: &str| args.get(name).cloned().unwrap_or_default();
                Ok(PromptOutput::user_text(format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    arg("arg1"),
                    arg("arg2")
                )))
            }),
        Prompt::builder(
            "test_prompt_with_embedded_resource",
            "A prompt with an embedded resource.",
        )
        .argument("resourceUri", "The URI of the resource to embed", true)
        .handler(|args, _| async move {
            let uri = args
                .get("resourceUri")
                .cloned()
                .ok_or_else(|| HandlerError::invalid("/resourceUri", "required"))?;
            Ok(PromptOutput {
                description: None,
                messages: vec![
                    PromptMessage {
                        role: Role::User,
                        content: Content::Resource {
                            resource: ResourceContents::text(
                                uri,
                                "text/plain",
                                "Embedded resource content for testing.",
                            ),
                        },
                    },
                    PromptMessage {
                        role: Role::User,
                        content: Content::text("Please process the embedded resource above."),
                    },
                ],
            })
        }),
        Prompt::builder(
            "test_input_required_result_prompt",
            "Asks the user what context to use, then builds the prompt.",
        )
        .handler(|_, cx| async move {
            let answer = cx
                .input(
                    "user_context",
                    ask_for("What context should the prompt use?", "context"),
                )
                .await?;
            let context = accepted(&answer, "context").unwrap_or_default();
            Ok(PromptOutput::user_text(format!(
                "Use this context: {context}"
            )))
        }),
        Prompt::builder("test_prompt_with_image", "A prompt with an image.").handler(
            |_, _| async {
                Ok(PromptOutput {
                    description: None,
                    messages: vec![
                        PromptMessage {
                            role: Role::User,
                            content: image(),
                        },
                        PromptMessage {
                            role: Role::User,
                            content: Content::text("Please analyze the image above."),
                        },
                    ],
                })
            },
        ),
    ]
}

/// Candidate values for `completion/complete`.
fn complete(request: &CompletionRequest) -> Vec<String> {
    let candidates: &[&str] = match (&request.reference, request.argument.as_str()) {
        (CompletionRef::Prompt { name }, "arg1") if name == "test_prompt_with_arguments" => {
            &["paris", "park", "party", "london"]
        }
        _ => &[],
    };
    candidates
        .iter()
        .filter(|c| c.starts_with(&request.value))
        .map(|c| (*c).to_owned())
        .collect()
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GreetArguments {
    /// Who to greet.
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ComputeArguments {
    /// How long the computation takes, in seconds (at most an hour).
    #[schemars(range(min = 0, max = 3600))]
    pub seconds: f64,
    /// A label to put in the result.
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileArguments {
    /// The file to delete.
    pub filename: String,
}

/// The tasks extension's fixtures (SEP-2663, the `tasks-*` scenarios): tools that run as
/// tasks, next to one that never does.
fn task_tools() -> Vec<Tool> {
    let confirm = |message: String| {
        InputRequest::elicitation(
            message,
            json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}),
        )
    };
    vec![
        Tool::builder("greet", "Greets by name, at once (never a task).")
            .read_only()
            .handler(|args: GreetArguments, _| async move { Ok(ToolOutput::text(format!("Hello, {}!", args.name))) }),
        Tool::builder("slow_compute", "Sleeps `seconds`, then answers; runs as a task for clients that take tasks.")
            .read_only()
            .task_support(TaskSupport::Optional)
            .handler(|args: ComputeArguments, cx| async move {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs_f64(args.seconds)) => {}
                    () = cx.cancellation().cancelled() => return Err(HandlerError::Internal("cancelled".into())),
                }
                let label = args.label.unwrap_or_default();
                Ok(ToolOutput::text(format!("Computed {label} in {} s", args.seconds)))
            }),
        Tool::builder("failing_job", "Works for a second, then reports a tool error; only as a task.")
            .task_support(TaskSupport::Required)
            .handler(|_: NoArguments, _| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(ToolOutput::error("the job failed: the input data is inconsistent"))
            }),
        Tool::builder("protocol_error_job", "Panics, which the task reports as a protocol error.")
            .task_support(TaskSupport::Required)
            .handler(|_: NoArguments, _| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                // A bug in a tool, as the kit meets it: the task fails with -32603.
                panic!("protocol_error_job fails on purpose")
            }),
        Tool::builder("confirm_delete", "Asks the user to confirm, then deletes the file (pretend).")
            .destructive()
            .task_support(TaskSupport::Optional)
            .handler(move |args: FileArguments, cx| async move {
                let answer = cx.input("confirm", confirm(format!("Delete {}?", args.filename))).await?;
                let confirmed = answer["action"] == "accept" && answer["content"]["confirm"] == true;
                Ok(ToolOutput::text(if confirmed {
                    format!("Deleted {}", args.filename)
                } else {
                    format!("Kept {}", args.filename)
                }))
            }),
        Tool::builder("multi_input", "Asks two questions at once, then answers with both.")
            .task_support(TaskSupport::Optional)
            .handler(|_: NoArguments, cx| async move {
                let answers = cx
                    .inputs(&[
                        ("first", ask_for("First name?", "name")),
                        ("second", ask_for("Second name?", "name")),
                    ])
                    .await?;
                let first = accepted(&answers["first"], "name").unwrap_or_default();
                let second = accepted(&answers["second"], "name").unwrap_or_default();
                Ok(ToolOutput::text(format!("Got {first} and {second}")))
            }),
        Tool::builder("test_tool_with_task", "Asks the user's name in 2026-07-28 rounds, then greets them from a task.")
            .task_support(TaskSupport::Required)
            .task_starts_in_handler()
            .handler(|_: NoArguments, cx| async move {
                let answer = cx.input("user_name", ask_for("What is your name?", "name")).await?;
                let name = accepted(&answer, "name").unwrap_or_else(|| "stranger".into());
                cx.start_task().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(ToolOutput::text(format!("Hello, {name}! (from task {})", cx.task_id().unwrap_or("none"))))
            }),
    ]
}

/// The conformance fixture server.
pub fn server() -> Server {
    let (resources, templates) = resources();
    let mut builder = Server::builder("switchboard-conformance-server", env!("CARGO_PKG_VERSION"))
        .instructions("The MCP conformance suite's fixture server, on Switchboard's server kit.")
        .resource_subscriptions()
        .completions(complete);
    for tool in tools().into_iter().chain(input_tools()).chain(task_tools()) {
        builder = builder.tool(tool);
    }
    for resource in resources {
        builder = builder.resource(resource);
    }
    for template in templates {
        builder = builder.resource_template(template);
    }
    for prompt in prompts() {
        builder = builder.prompt(prompt);
    }
    builder
        .build()
        .unwrap_or_else(|error| unreachable!("the conformance declarations are valid: {error}"))
}

/// The client side of the contract (`conformance-client`), on Switchboard's client and host.
pub mod client;
