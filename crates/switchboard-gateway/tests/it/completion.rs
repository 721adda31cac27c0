//! `completion/complete` through the gateway: the upstream that owns the prompt or resource
//! template completes its argument, under the gateway's public names.

use std::collections::HashMap;

use switchboard_client::{
    ClientError, EraPreference,
    model::{Completion, CompletionTarget},
};
use switchboard_server::{
    CompletionRef, Prompt, PromptOutput, ResourceContents, ResourceTemplate, Server,
};

use crate::{TIMEOUT, http_upstream, start};

const CITIES: [(&str, &str); 4] = [
    ("paris", "fr"),
    ("park city", "us"),
    ("perth", "au"),
    ("lima", "pe"),
];

/// A travel server: a prompt and a resource template that both take a city, completed from
/// one list.
fn travel() -> Server {
    Server::builder("travel", "1")
        .prompt(
            Prompt::builder("trip", "Plan a trip.")
                .argument("city", "Where to", true)
                .handler(|args, _| async move {
                    Ok(PromptOutput::user_text(format!("Plan {}", args["city"])))
                }),
        )
        .resource_template(ResourceTemplate::new(
            "weather://{city}",
            "weather",
            "text/plain",
            |uri, vars: HashMap<String, String>, _| async move {
                Ok(vec![ResourceContents::text(
                    uri,
                    "text/plain",
                    format!("sunny in {}", vars["city"]),
                )])
            },
        ))
        .completions(|request| {
            let known = match &request.reference {
                CompletionRef::Prompt { name } => name == "trip",
                CompletionRef::Resource { uri } => uri == "weather://{city}",
            };
            // With the country chosen, only its cities.
            let country = request.context.get("country").map(String::as_str);
            CITIES
                .iter()
                .filter(|(city, land)| {
                    known
                        && request.argument == "city"
                        && city.starts_with(&request.value)
                        && country.is_none_or(|country| country == *land)
                })
                .map(|(city, _)| (*city).to_owned())
                .collect()
        })
        .build()
        .unwrap()
}

fn values(completion: &Completion) -> Vec<&str> {
    completion.values.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn prompt_and_template_arguments_are_completed_by_their_upstream_in_both_eras() {
    let upstream = http_upstream(travel()).await;
    let gateway = start(&format!("[upstreams.travel]\nurl = \"{}\"\n", upstream.url)).await;
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let client = gateway.connect(era).await;
        assert!(client.description().capabilities.completions);
        let prompts = client.list_prompts(TIMEOUT).await.unwrap();
        let [prompt] = prompts.as_slice() else {
            panic!("one prompt: {prompts:?}")
        };
        let templates = client.list_resource_templates(TIMEOUT).await.unwrap();
        let [template] = templates.as_slice() else {
            panic!("one template: {templates:?}")
        };
        // The gateway's names differ from the upstream's, and are what the client sends.
        assert_ne!(prompt.name, "trip");
        assert_ne!(template.uri_template, "weather://{city}");

        let target = CompletionTarget::Prompt(prompt.name.clone());
        let completion = client
            .complete(&target, "city", "pa", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(values(&completion), ["paris", "park city"], "{era:?}");

        let target = CompletionTarget::Resource(template.uri_template.clone());
        let completion = client
            .complete(&target, "city", "pe", TIMEOUT)
            .await
            .unwrap();
        assert_eq!(values(&completion), ["perth"], "{era:?}");

        // The values already chosen for the other arguments reach the upstream.
        let us = HashMap::from([("country".to_owned(), "us".to_owned())]);
        let completion = client
            .complete_in_context(&target, "city", "pa", &us, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(values(&completion), ["park city"], "{era:?}");

        // An argument the upstream does not know completes to nothing.
        let target = CompletionTarget::Prompt(prompt.name.clone());
        let completion = client.complete(&target, "date", "", TIMEOUT).await.unwrap();
        assert!(completion.values.is_empty());
    }
}

#[tokio::test]
async fn completing_an_unknown_prompt_or_template_is_an_error() {
    let upstream = http_upstream(travel()).await;
    let gateway = start(&format!("[upstreams.travel]\nurl = \"{}\"\n", upstream.url)).await;
    let client = gateway.connect(EraPreference::Modern).await;
    for target in [
        CompletionTarget::Prompt("travel__nope".into()),
        CompletionTarget::Resource("nope://{x}".into()),
    ] {
        match client.complete(&target, "city", "p", TIMEOUT).await {
            Err(ClientError::Rpc { code, message, .. }) => {
                assert_eq!(code, -32602, "{target:?}: {message}");
                assert!(message.contains("unknown"), "{message}");
            }
            other => panic!("{target:?}: expected an error, got {other:?}"),
        }
    }
    // The gateway still serves.
    let prompts = client.list_prompts(TIMEOUT).await.unwrap();
    assert_eq!(prompts.len(), 1);
}
