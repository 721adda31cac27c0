//! Finding a tool or a server from what a user or a model typed.

use switchboard_host::HostError;

use crate::host_of;

#[tokio::test]
async fn server_slash_tool_finds_the_tool_of_that_server() {
    let host = host_of(&["alpha", "beta"]).await;

    let tool = host.resolve_tool("alpha/add").await.unwrap();

    assert_eq!(tool.server.as_str(), "alpha");
    assert_eq!(tool.tool.name, "add");
    assert_eq!(tool.qualified, "alpha__add");
}

#[tokio::test]
async fn a_qualified_name_finds_the_tool_it_was_given_to() {
    let host = host_of(&["alpha", "beta"]).await;

    let tool = host.resolve_tool("beta__add").await.unwrap();

    assert_eq!(tool.server.as_str(), "beta");
    assert_eq!(tool.tool.name, "add");
}

#[tokio::test]
async fn a_bare_name_that_two_servers_have_is_ambiguous() {
    let host = host_of(&["alpha", "beta"]).await;

    let error = host.resolve_tool("add").await.unwrap_err();

    match &error {
        HostError::AmbiguousTool { name, candidates } => {
            assert_eq!(name, "add");
            assert_eq!(candidates, &["alpha/add", "beta/add"]);
        }
        other => panic!("expected AmbiguousTool, got {other:?}"),
    }
    assert!(
        error.to_string().contains("write it as SERVER/TOOL"),
        "{error}"
    );
}

#[tokio::test]
async fn a_bare_name_that_only_one_server_has_is_enough() {
    let host = host_of(&["alpha"]).await;

    let tool = host.resolve_tool("add").await.unwrap();

    assert_eq!(tool.server.as_str(), "alpha");
    assert_eq!(tool.qualified, "alpha__add");
}

#[tokio::test]
async fn a_misspelt_tool_suggests_the_close_one_on_the_same_server() {
    let host = host_of(&["alpha", "beta"]).await;

    let error = host.resolve_tool("alpha/ad").await.unwrap_err();

    match &error {
        HostError::UnknownTool { name, suggestions } => {
            assert_eq!(name, "alpha/ad");
            assert_eq!(suggestions, &["alpha/add"]);
        }
        other => panic!("expected UnknownTool, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        r#"no tool named "alpha/ad"; did you mean "alpha/add"?"#
    );
}

#[tokio::test]
async fn a_prefix_that_is_not_a_server_is_part_of_the_tool_name() {
    let host = host_of(&["alpha", "beta"]).await;

    let error = host.resolve_tool("gamma/add").await.unwrap_err();

    match error {
        HostError::UnknownTool { name, .. } => assert_eq!(name, "gamma/add"),
        other => panic!("expected UnknownTool, got {other:?}"),
    }
}

#[tokio::test]
async fn a_misspelt_server_suggests_the_close_one() {
    let host = host_of(&["alpha", "beta"]).await;

    let error = host.tools(Some("alhpa")).await.unwrap_err();

    match &error {
        HostError::UnknownServer { name, suggestions } => {
            assert_eq!(name, "alhpa");
            assert_eq!(suggestions, &["alpha"]);
        }
        other => panic!("expected UnknownServer, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        r#"no server named "alhpa"; did you mean "alpha"?"#
    );
}

#[tokio::test]
async fn a_tool_is_found_by_its_own_name_on_one_server() {
    let host = host_of(&["alpha", "beta"]).await;

    let tool = host.server_tool("beta", "add").await.unwrap().unwrap();
    assert_eq!(
        (
            tool.server.as_str(),
            tool.tool.name.as_str(),
            tool.qualified.as_str()
        ),
        ("beta", "add", "beta__add")
    );
    // The tool found is the cached list's own, not a copy of it.
    let listed = host.server_tools("beta").await.unwrap();
    assert!(listed.iter().any(|item| std::ptr::eq(item, &*tool.tool)));
    // The qualified name is not the tool's own name.
    assert!(
        host.server_tool("beta", "beta__add")
            .await
            .unwrap()
            .is_none()
    );
    assert!(host.server_tool("beta", "nope").await.unwrap().is_none());
    assert!(matches!(
        host.server_tool("gamma", "add").await,
        Err(HostError::UnknownServer { .. })
    ));
}

#[tokio::test]
async fn qualified_tool_takes_qualified_names_only() {
    // "a.b" cannot be written readably, so its tools get hashed names.
    let host = host_of(&["alpha", "a.b"]).await;
    let (tools, _) = host.tools(None).await.unwrap();

    for tool in &tools {
        let found = host.qualified_tool(&tool.qualified).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("{} not found", tool.qualified));
        assert_eq!(
            (found.server.as_str(), found.tool.name.as_str()),
            (tool.server.as_str(), tool.tool.name.as_str())
        );
        assert_eq!(found.qualified, tool.qualified);
    }
    assert!(tools.iter().any(|t| t.server.as_str() == "a.b"));

    // A bare name, a server/tool form, an unknown server or tool, and a hashed-looking name
    // that belongs to nobody are no qualified names of this host.
    for name in [
        "add",
        "alpha/add",
        "gamma__add",
        "alpha__nope",
        "alpha__add_h0123abcd",
    ] {
        assert!(
            host.qualified_tool(name).await.unwrap().is_none(),
            "{name} must not be found"
        );
    }
}
