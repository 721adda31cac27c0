//! Authorization by scope: where a scope comes from, hiding, refusing, allow and deny lists.

use http::{StatusCode, header};
use serde_json::{Value, json};
use switchboard_policy::{
    auth::{AuthMethod, Principal},
    config::SecurityConfig,
    scope::{Refusal, ScopePolicy, ToolFacts},
};

fn policy() -> ScopePolicy {
    let config = SecurityConfig::from_toml_section(
        r#"
[security.scopes.tools]
"expenses/delete_expense" = "expenses:admin"
"bookmarks/*" = "bookmarks:use"
[security.scopes.resources]
"expenses/expenses://summary" = "expenses:reports"
[security.scopes.prompts]
"expenses/*" = "expenses:prompts"
[security.clients.partner]
allow_servers = ["bookmarks"]
[security.clients.intern]
deny_servers = ["expenses"]
"#,
    )
    .expect("valid");
    ScopePolicy::from_config(&config).expect("valid policy")
}

fn principal(client: &str, scopes: &[&str]) -> Principal {
    Principal {
        client_id: client.to_owned(),
        subject: Some("alice".to_owned()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        method: AuthMethod::Jwt,
    }
}

/// Tools as an upstream lists them: one with a declared scope, read-only and write tools
/// without one, and one the policy overrides.
fn expenses_tools() -> Vec<Value> {
    vec![
        json!({"name": "list_expenses", "annotations": {"readOnlyHint": true}}),
        json!({"name": "add_expense", "annotations": {"readOnlyHint": false}}),
        json!({"name": "export", "annotations": {"readOnlyHint": true},
               "_meta": {"dev.switchboard/scope": "expenses:export"}}),
        json!({"name": "delete_expense", "_meta": {"dev.switchboard/scope": "expenses:write"}}),
    ]
}

#[test]
fn the_required_scope_comes_from_policy_then_meta_then_the_read_only_hint() {
    let policy = policy();
    let scopes: Vec<String> = expenses_tools()
        .iter()
        .map(|tool| policy.tool_scope(&ToolFacts::from_wire("expenses", tool)))
        .collect();
    assert_eq!(
        scopes,
        [
            "expenses:read",
            "expenses:write",
            "expenses:export",
            "expenses:admin"
        ]
    );
    let bookmarks = ToolFacts::from_wire("bookmarks", &json!({"name": "search"}));
    assert_eq!(policy.tool_scope(&bookmarks), "bookmarks:use");
    assert_eq!(
        policy.resource_scope("expenses", "expenses://summary"),
        "expenses:reports"
    );
    assert_eq!(
        policy.resource_scope("expenses", "expenses://other"),
        "expenses:read"
    );
    assert_eq!(
        policy.prompt_scope("expenses", "monthly"),
        "expenses:prompts"
    );
    assert_eq!(policy.prompt_scope("bookmarks", "digest"), "bookmarks:read");
}

#[test]
fn tools_the_caller_cannot_use_are_hidden_from_its_list() {
    let policy = policy();
    let reader = principal("chat-app", &["expenses:read"]);
    let listed = expenses_tools().into_iter().map(|tool| {
        (
            ToolFacts::from_wire("expenses", &tool),
            tool["name"].clone(),
        )
    });
    let visible: Vec<Value> = policy.visible_tools(&reader, listed).collect();
    assert_eq!(visible, vec![json!("list_expenses")]);

    let writer = principal("chat-app", &["expenses:read", "expenses:write"]);
    let listed = expenses_tools().into_iter().map(|tool| {
        (
            ToolFacts::from_wire("expenses", &tool),
            tool["name"].clone(),
        )
    });
    let visible: Vec<Value> = policy.visible_tools(&writer, listed).collect();
    assert_eq!(visible, vec![json!("list_expenses"), json!("add_expense")]);

    assert!(!policy.is_resource_visible(&reader, "expenses", "expenses://summary"));
    assert!(policy.is_resource_visible(&reader, "expenses", "expenses://other"));
    assert!(!policy.is_prompt_visible(&reader, "expenses", "monthly"));
}

#[test]
fn escalation_is_refused_including_a_hidden_tool_called_by_its_exact_name() {
    let policy = policy();
    let writer = principal("chat-app", &["expenses:read", "expenses:write"]);
    // delete_expense declares expenses:write, but the policy requires admin.
    let delete = ToolFacts::from_wire("expenses", &expenses_tools()[3]);
    assert_eq!(
        policy.authorize_tool(&writer, &delete),
        Err(Refusal::InsufficientScope {
            required_scope: "expenses:admin".into()
        })
    );
    // A scope for another server does not count.
    let other = principal("chat-app", &["bookmarks:write", "expenses:ADMIN"]);
    assert!(policy.authorize_tool(&other, &delete).is_err());
    let admin = principal("chat-app", &["expenses:admin"]);
    assert_eq!(policy.authorize_tool(&admin, &delete), Ok(()));
}

#[test]
fn allow_and_deny_lists_limit_servers_whatever_the_scopes() {
    let policy = policy();
    let search = ToolFacts::from_wire("bookmarks", &json!({"name": "search"}));
    let list = ToolFacts::from_wire("expenses", &expenses_tools()[0]);
    let partner = principal("partner", &["bookmarks:use", "expenses:read"]);
    assert_eq!(policy.authorize_tool(&partner, &search), Ok(()));
    assert_eq!(
        policy.authorize_tool(&partner, &list),
        Err(Refusal::ServerNotAllowed {
            client_id: "partner".into(),
            server: "expenses".into()
        })
    );
    let intern = principal("intern", &["bookmarks:use", "expenses:read"]);
    assert!(policy.authorize_tool(&intern, &list).is_err());
    assert!(
        !policy.is_resource_visible(&intern, "expenses", "expenses://other"),
        "a denied server's resources are hidden too"
    );
    assert_eq!(policy.authorize_tool(&intern, &search), Ok(()));
}

#[tokio::test]
async fn a_refusal_is_403_insufficient_scope_on_http_and_32001_in_band() {
    let refusal = Refusal::InsufficientScope {
        required_scope: "expenses:write".into(),
    };
    let response = refusal.http_response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii");
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"expenses:write\""),
        "{challenge}"
    );
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["scope"], "expenses:write");

    let error = refusal.jsonrpc_error().to_json();
    assert_eq!(
        error,
        json!({
            "code": -32001,
            "message": "insufficient scope: this call needs expenses:write",
            "data": {"required_scope": "expenses:write"}
        })
    );
    let denied = Refusal::ServerNotAllowed {
        client_id: "partner".into(),
        server: "expenses".into(),
    };
    assert_eq!(denied.http_response().status(), StatusCode::FORBIDDEN);
    assert_eq!(denied.jsonrpc_error().code, -32001);
}
