//! A server whose catalogue changes at run time: lists and calls go to a `Catalogue`, and
//! list changes reach clients of both eras on stdio and HTTP.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use switchboard_client::{
    CallOptions, ConnectOptions, Connection, EraPreference,
    model::{Content, ServerEvent},
};
use switchboard_config::{ServerEntry, ServerName, Transport};
use switchboard_server::{
    BuildError, Caller, Catalogue, CatalogueResult, HandlerError, HttpConfig, ListKind,
    ListRequest, RequestContext, Server, Session, Tool, ToolOutput,
};

use crate::{Empty, MODERN_META, exchange, legacy_session};

/// Tools named at run time; `whoami` answers with the caller's request id.
#[derive(Debug, Default)]
struct Names {
    tools: Mutex<Vec<String>>,
}

impl Names {
    fn with(names: &[&str]) -> Arc<Self> {
        Arc::new(Names {
            tools: Mutex::new(names.iter().map(|n| (*n).to_owned()).collect()),
        })
    }
}

impl Catalogue for Names {
    fn list(
        &self,
        list: ListRequest,
        _cx: RequestContext,
    ) -> BoxFuture<'static, Result<Vec<Value>, HandlerError>> {
        let items = match list {
            ListRequest::Tools => self
                .tools
                .lock()
                .unwrap()
                .iter()
                .map(|name| json!({"name": name, "inputSchema": {"type": "object"}}))
                .collect(),
            ListRequest::Resources => vec![json!({"uri": "dyn://a", "name": "a"})],
            ListRequest::ResourceTemplates | ListRequest::Prompts => Vec::new(),
        };
        Box::pin(async move { Ok(items) })
    }

    fn call_tool(
        &self,
        name: String,
        arguments: Map<String, Value>,
        cx: RequestContext,
    ) -> CatalogueResult {
        let known = self.tools.lock().unwrap().contains(&name);
        Box::pin(async move {
            if !known {
                return Err(HandlerError::NotFound {
                    message: format!("unknown tool: {name}"),
                    data: json!({"name": name}),
                });
            }
            let text = match name.as_str() {
                "whoami" => cx
                    .caller()
                    .and_then(|c| c.request_id.clone())
                    .unwrap_or_else(|| "nobody".into()),
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    "slept".into()
                }
                _ => format!("{name} {}", Value::Object(arguments)),
            };
            let result = json!({"content": [{"type": "text", "text": text}]});
            Ok(result.as_object().cloned().unwrap_or_default())
        })
    }

    fn read_resource(&self, uri: String, _cx: RequestContext) -> CatalogueResult {
        Box::pin(async move {
            let result = json!({"contents": [{"uri": uri, "text": "dynamic"}]});
            Ok(result.as_object().cloned().unwrap_or_default())
        })
    }

    fn get_prompt(
        &self,
        name: String,
        _arguments: Map<String, Value>,
        _cx: RequestContext,
    ) -> CatalogueResult {
        Box::pin(async move {
            Err(HandlerError::NotFound {
                message: format!("unknown prompt: {name}"),
                data: json!({"name": name}),
            })
        })
    }
}

fn dynamic_server(names: Arc<Names>) -> Server {
    Server::builder("dyn", "1.0.0")
        .catalogue(names)
        .build()
        .unwrap()
}

#[test]
fn a_catalogue_and_static_items_do_not_mix() {
    let error = Server::builder("dyn", "1.0.0")
        .catalogue(Names::with(&[]))
        .tool(
            Tool::builder("x", "x").handler(|_: Empty, _| async move { Ok(ToolOutput::text("x")) }),
        )
        .build()
        .unwrap_err();
    assert_eq!(error, BuildError::CatalogueWithStaticItems);
}

#[test]
fn lists_and_calls_go_to_the_catalogue_in_both_eras() {
    let names = Names::with(&["one"]);
    let server = dynamic_server(names.clone());
    let mut session = legacy_session(&server);
    let answers = exchange(
        &server,
        &mut session,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"one","arguments":{"a":1}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"two"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"dyn://a"}}"#,
        ],
    );
    assert_eq!(answers[0]["result"]["tools"][0]["name"], "one");
    assert!(answers[0]["result"].get("resultType").is_none());
    assert_eq!(answers[1]["result"]["content"][0]["text"], "one {\"a\":1}");
    assert_eq!(answers[2]["error"]["code"], -32602);
    assert_eq!(answers[2]["error"]["message"], "unknown tool: two");
    assert_eq!(answers[3]["result"]["contents"][0]["text"], "dynamic");

    // The list is asked for again each time: a change shows at once.
    names.tools.lock().unwrap().push("two".into());
    let modern = [
        format!(r#"{{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{{{MODERN_META}}}}}"#),
        format!(
            r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"two",{MODERN_META}}}}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"server/discover","params":{{{MODERN_META}}}}}"#
        ),
    ];
    let lines: Vec<&str> = modern.iter().map(String::as_str).collect();
    let answers = exchange(&server, &mut Session::new(None), &lines);
    assert_eq!(answers[0]["result"]["tools"][1]["name"], "two");
    assert_eq!(answers[0]["result"]["resultType"], "complete");
    assert_eq!(answers[0]["result"]["ttlMs"], 0);
    assert_eq!(answers[1]["result"]["resultType"], "complete");
    assert_eq!(answers[1]["result"]["content"][0]["text"], "two {}");
    assert_eq!(
        answers[2]["result"]["capabilities"]["tools"],
        json!({"listChanged": true})
    );
}

#[test]
fn the_caller_reaches_the_catalogue() {
    let server = dynamic_server(Names::with(&["whoami"]));
    let mut session = legacy_session(&server);
    session.set_caller(Some(Arc::new(Caller {
        request_id: Some("req-7".into()),
        ..Caller::default()
    })));
    let answers = exchange(
        &server,
        &mut session,
        &[r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#],
    );
    assert_eq!(answers[0]["result"]["content"][0]["text"], "req-7");
}

async fn connect_stdio(server: Server, era: EraPreference) -> Connection {
    let (client, server_side) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(switchboard_server::serve(server, server_read, server_write));
    let (client_read, client_write) = tokio::io::split(client);
    let options = ConnectOptions {
        era,
        ..ConnectOptions::default()
    };
    Connection::connect_io(
        ServerName::new("dyn").unwrap(),
        client_read,
        client_write,
        &options,
    )
    .await
    .unwrap()
}

/// Announce a tools change until the connection reports it (a modern client opens its
/// listen stream in the background, so the first announcements may precede it).
async fn change_is_seen(server: &Server, connection: &Connection) {
    let mut events = connection.take_events().unwrap();
    for _ in 0..50 {
        server.notify_list_changed(ListKind::Tools);
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            assert!(matches!(event, ServerEvent::ToolsChanged), "{event:?}");
            return;
        }
    }
    panic!("the client never heard that the tools changed");
}

#[tokio::test]
async fn list_changes_reach_stdio_clients_of_both_eras() {
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let names = Names::with(&["one"]);
        let server = dynamic_server(names.clone());
        let connection = connect_stdio(server.clone(), era).await;
        let tools = connection.list_tools(Duration::from_secs(5)).await.unwrap();
        assert_eq!(tools.len(), 1, "{era:?}");
        change_is_seen(&server, &connection).await;
        let error = connection
            .call_tool("slow", None, CallOptions::default())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown tool: slow"),
            "slow is not in the catalogue yet: {era:?}: {error}"
        );
        names.tools.lock().unwrap().push("slow".into());
        let result = connection
            .call_tool("slow", None, CallOptions::default())
            .await;
        match result {
            Ok(result) => assert_eq!(
                result.content,
                vec![Content::Text {
                    text: "slept".into()
                }]
            ),
            Err(error) => panic!("{era:?}: {error}"),
        }
    }
}

#[tokio::test]
async fn list_changes_reach_http_clients_of_both_eras() {
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let server = dynamic_server(Names::with(&["one"]));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(switchboard_server::serve_listener(
            server.clone(),
            listener,
            HttpConfig::default(),
        ));
        let entry = ServerEntry::new(
            ServerName::new("dyn").unwrap(),
            Transport::StreamableHttp {
                url: format!("http://127.0.0.1:{port}/mcp").parse().unwrap(),
                headers: Default::default(),
            },
        );
        let options = ConnectOptions {
            era,
            ..ConnectOptions::default()
        };
        let connection = Connection::connect(&entry, &options).await.unwrap();
        let tools = connection.list_tools(Duration::from_secs(5)).await.unwrap();
        assert_eq!(tools[0].name, "one");
        change_is_seen(&server, &connection).await;
        connection.close().await;
        task.abort();
    }
}

#[tokio::test]
async fn a_static_server_still_refuses_get() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(switchboard_server::serve_listener(
        crate::test_server(),
        listener,
        HttpConfig::default(),
    ));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
    task.abort();
}
