//! Streamable HTTP: a legacy session that the server forgot (404) is opened again without the
//! caller noticing; a 2026-07-28 server has no session to lose.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    extract::Request,
    http::{Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use serde_json::json;
use switchboard_client::{CallOptions, ConnectOptions, Connection, EraPreference};
use switchboard_server::{Server, Tool, ToolOutput};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Text {
    text: String,
}

/// What the session-expiring front saw.
#[derive(Debug, Default)]
struct Expiry {
    /// Requests with a session id still to refuse with 404, as if the session had expired.
    to_expire: AtomicUsize,
    expired: AtomicUsize,
    /// POSTs without a session id: `initialize`, and every 2026-07-28 request.
    sessionless_posts: AtomicUsize,
}

async fn expiring(expiry: Arc<Expiry>, request: Request, next: Next) -> Response {
    let has_session = request.headers().contains_key("mcp-session-id");
    if request.method() == Method::POST && !has_session {
        expiry.sessionless_posts.fetch_add(1, Ordering::SeqCst);
    }
    if request.method() == Method::POST
        && has_session
        && expiry
            .to_expire
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        expiry.expired.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_FOUND, "session expired").into_response();
    }
    next.run(request).await
}

async fn serve() -> (String, Arc<Expiry>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let kit = Server::builder("echoer", "1")
        .tool(
            Tool::builder("echo", "Send the text back.")
                .handler(|args: Text, _| async move { Ok(ToolOutput::text(args.text)) }),
        )
        .build()
        .unwrap();
    let expiry = Arc::new(Expiry::default());
    let state = expiry.clone();
    let app = switchboard_server::router(kit, switchboard_server::HttpConfig::default()).layer(
        middleware::from_fn(move |request, next| expiring(state.clone(), request, next)),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, expiry)
}

async fn connect(url: &str, era: EraPreference) -> Connection {
    let entry = crate::http_entry("http", url);
    let options = ConnectOptions {
        era,
        ..ConnectOptions::default()
    };
    Connection::connect(&entry, &options).await.unwrap()
}

async fn echo(connection: &Connection, text: &str) -> String {
    let result = connection
        .call_tool(
            "echo",
            json!({"text": text}).as_object().cloned(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    result.raw["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_expired_legacy_session_is_initialised_again_transparently() {
    let (url, expiry) = serve().await;
    let connection = connect(&url, EraPreference::Legacy).await;
    assert_eq!(echo(&connection, "before").await, "before");
    assert_eq!(
        expiry.sessionless_posts.load(Ordering::SeqCst),
        1,
        "one initialize"
    );

    expiry.to_expire.store(1, Ordering::SeqCst);
    assert_eq!(echo(&connection, "after").await, "after");
    assert_eq!(
        expiry.expired.load(Ordering::SeqCst),
        1,
        "the server said 404"
    );
    assert_eq!(
        expiry.sessionless_posts.load(Ordering::SeqCst),
        2,
        "a second initialize opened a new session"
    );
    assert_eq!(echo(&connection, "again").await, "again");
    assert_eq!(expiry.sessionless_posts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_modern_server_has_no_session_to_expire() {
    let (url, expiry) = serve().await;
    let connection = connect(&url, EraPreference::Modern).await;
    expiry.to_expire.store(1, Ordering::SeqCst);
    assert_eq!(echo(&connection, "stateless").await, "stateless");
    assert_eq!(
        expiry.expired.load(Ordering::SeqCst),
        0,
        "no request named a session"
    );
}
