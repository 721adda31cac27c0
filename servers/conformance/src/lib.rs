//! The fixture server the official MCP conformance suite tests against.
//!
//! Every name and answer here is dictated by the suite's scenarios (see
//! `shared/conformance.md`, section 5): the tool `test_simple_text` must answer exactly
//! "This is a simple text response for testing.", and so on. It is built on the same server
//! kit as our real servers, so the suite's score is a score of Switchboard.

use std::{collections::HashMap, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use switchboard_server::{
    CompletionRef, Content, HandlerError, LogLevel, Prompt, PromptOutput, Resource,
    ResourceContents, ResourceTemplate, Role, Server, Tool, ToolOutput, model::PromptMessage,
};

/// A 1×1 PNG.
pub const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A few milliseconds of silence as a 16-bit mono WAV.
pub const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoArguments {}

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
fn complete(reference: &CompletionRef, argument: &str, typed: &str) -> Vec<String> {
    let candidates: &[&str] = match (reference, argument) {
        (CompletionRef::Prompt { name }, "arg1") if name == "test_prompt_with_arguments" => {
            &["paris", "park", "party", "london"]
        }
        _ => &[],
    };
    candidates
        .iter()
        .filter(|c| c.starts_with(typed))
        .map(|c| (*c).to_owned())
        .collect()
}

/// The conformance fixture server.
pub fn server() -> Server {
    let (resources, templates) = resources();
    let mut builder = Server::builder("switchboard-conformance-server", env!("CARGO_PKG_VERSION"))
        .instructions("The MCP conformance suite's fixture server, on Switchboard's server kit.")
        .resource_subscriptions()
        .completions(complete);
    for tool in tools() {
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
