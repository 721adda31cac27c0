//! Qualified names: every tool of every server in one flat namespace a model can call.

use std::collections::{BTreeSet, HashSet};

use crate::{FIXTURE_TOOLS, host_of};

/// What Anthropic and OpenAI accept as a tool name: `^[A-Za-z0-9_-]{1,64}$`.
fn acceptable_to_llm_apis(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[tokio::test]
async fn two_servers_with_the_same_tools_get_distinct_qualified_names() {
    let host = host_of(&["alpha", "beta"]).await;

    let (tools, errors) = host.tools(None).await.unwrap();

    assert!(errors.is_empty(), "{errors:?}");
    let qualified: BTreeSet<&str> = tools.iter().map(|t| t.qualified.as_str()).collect();
    let expected: BTreeSet<String> = ["alpha", "beta"]
        .iter()
        .flat_map(|server| {
            FIXTURE_TOOLS
                .iter()
                .map(move |tool| format!("{server}__{tool}"))
        })
        .collect();
    assert_eq!(
        qualified,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert_eq!(tools.len(), 12, "no tool is listed twice: {tools:?}");
    for tool in &tools {
        assert!(
            acceptable_to_llm_apis(&tool.qualified),
            "{:?} is not a valid LLM tool name",
            tool.qualified
        );
    }
    let alpha_add = tools.iter().find(|t| t.qualified == "alpha__add").unwrap();
    assert_eq!(alpha_add.server.as_str(), "alpha");
    assert_eq!(alpha_add.tool.name, "add");
    assert_eq!(alpha_add.display_name(), "alpha/add");
    let beta_add = tools.iter().find(|t| t.qualified == "beta__add").unwrap();
    assert_eq!(beta_add.server.as_str(), "beta");
    assert_eq!(beta_add.display_name(), "beta/add");
}

#[tokio::test]
async fn server_names_with_invalid_characters_still_give_valid_unique_names() {
    // "a.b" and "a_b" both sanitise to "a_b", so one of them must be disambiguated.
    let host = host_of(&["a.b", "a_b"]).await;

    let (tools, _) = host.tools(None).await.unwrap();

    let unique: HashSet<&str> = tools.iter().map(|t| t.qualified.as_str()).collect();
    assert_eq!(unique.len(), tools.len(), "{tools:?}");
    assert!(tools.iter().all(|t| acceptable_to_llm_apis(&t.qualified)));
    for tool in &tools {
        let resolved = host.resolve_tool(&tool.qualified).await.unwrap();
        assert_eq!(
            (resolved.server.as_str(), resolved.tool.name.as_str()),
            (tool.server.as_str(), tool.tool.name.as_str()),
            "{} must resolve back to its own tool",
            tool.qualified
        );
    }
}

#[tokio::test]
async fn a_tool_has_the_same_qualified_name_whether_listed_alone_or_with_all_servers() {
    let host = host_of(&["a.b", "a_b"]).await;
    let (all, _) = host.tools(None).await.unwrap();

    let (alone, _) = host.tools(Some("a_b")).await.unwrap();

    let add_alone = alone.iter().find(|t| t.tool.name == "add").unwrap();
    let add_in_all = all
        .iter()
        .find(|t| t.server.as_str() == "a_b" && t.tool.name == "add")
        .unwrap();
    assert_eq!(add_alone.qualified, add_in_all.qualified);
    let resolved = host.resolve_tool(&add_alone.qualified).await.unwrap();
    assert_eq!(resolved.server.as_str(), "a_b");
}
