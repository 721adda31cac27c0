//! OAuth against an in-process protected server (`test_support::oauth_server`): our server
//! kit's HTTP front behind a bearer check, with its metadata, registration, an authorization
//! endpoint that redirects at once, and a token endpoint.

use std::sync::Arc;

use axum::http::header;
use switchboard_client::{
    CallOptions, ClientError, ConnectOptions, Connection, EraPreference,
    callbacks::{CallbackError, CallbackFuture},
    model::Content,
    oauth::{Authorizer, ClientAuthentication, Grant, OAuthOptions},
};
use switchboard_config::ServerEntry;
use test_support::oauth_server::{
    MACHINE_CLIENT, READ, WORKLOAD_JWT, WRITE, protected_server, protected_server_with,
};

/// The user's part, without a browser: request the authorization URL and hand back where it
/// redirects.
#[derive(Debug)]
struct FollowRedirect;

impl Authorizer for FollowRedirect {
    fn authorize(&self, url: String) -> CallbackFuture<'_, String> {
        Box::pin(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| CallbackError::new(e.to_string()))?;
            let response = http
                .get(url)
                .send()
                .await
                .map_err(|e| CallbackError::new(e.to_string()))?;
            Ok(response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned())
        })
    }
}

#[derive(Debug)]
struct Declines;

impl Authorizer for Declines {
    fn authorize(&self, _url: String) -> CallbackFuture<'_, String> {
        Box::pin(async { Err(CallbackError::new("the user closed the browser")) })
    }
}

fn entry(base: &str) -> ServerEntry {
    crate::http_entry("protected", &format!("{base}/mcp"))
}

fn options(era: EraPreference, authorizer: Arc<dyn Authorizer>) -> ConnectOptions {
    ConnectOptions {
        era,
        oauth: Some(OAuthOptions::new("http://127.0.0.1:9/callback", authorizer)),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn a_protected_server_is_authorized_then_stepped_up_within_one_session() {
    for era in [EraPreference::Legacy, EraPreference::Modern] {
        let (base, issued) = protected_server().await;
        let connection =
            Connection::connect(&entry(&base), &options(era, Arc::new(FollowRedirect)))
                .await
                .unwrap();
        let tools = connection
            .list_tools(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(tools[0].name, "write");
        let result = connection
            .call_tool("write", None, CallOptions::default())
            .await
            .unwrap();
        assert_eq!(
            result.content,
            vec![Content::Text {
                text: "written".into()
            }]
        );
        let issued = issued.lock().unwrap();
        // First the scope of the 401 challenge; then, on 403, what was granted plus what the
        // call needs.
        assert_eq!(
            issued.authorizations,
            [READ, &format!("{READ} {WRITE}")],
            "{era:?}"
        );
        assert!(
            issued.resources.iter().all(|r| *r == format!("{base}/mcp")),
            "{:?}",
            issued.resources
        );
    }
}

#[tokio::test]
async fn a_refused_authorization_is_an_authorization_error_with_the_reason() {
    let (base, issued) = protected_server().await;
    let error = Connection::connect(
        &entry(&base),
        &options(EraPreference::Modern, Arc::new(Declines)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, ClientError::Authorization { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("the user closed the browser"),
        "{error}"
    );
    assert!(issued.lock().unwrap().tokens.is_empty());
}

#[tokio::test]
async fn without_oauth_a_protected_server_is_refused() {
    let (base, _) = protected_server().await;
    let options = ConnectOptions {
        era: EraPreference::Modern,
        ..ConnectOptions::default()
    };
    let error = Connection::connect(&entry(&base), &options)
        .await
        .unwrap_err();
    assert!(
        !matches!(error, ClientError::Authorization { .. }),
        "{error}"
    );
}

fn without_user(grant: Grant) -> ConnectOptions {
    ConnectOptions {
        era: EraPreference::Modern,
        oauth: Some(OAuthOptions::without_user(grant)),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn client_credentials_and_a_workload_jwt_authorize_without_a_user() {
    let (id, secret) = MACHINE_CLIENT;
    let grants = [
        (
            "client_credentials",
            Grant::ClientCredentials {
                client_id: id.to_owned(),
                authentication: ClientAuthentication::Secret(switchboard_config::Secret::new(
                    secret.to_owned(),
                )),
            },
        ),
        (
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            Grant::JwtBearer {
                assertion: switchboard_config::Secret::new(WORKLOAD_JWT.to_owned()),
                client_id: None,
            },
        ),
    ];
    for (grant_type, grant) in grants {
        let (base, issued) = protected_server().await;
        let connection = Connection::connect(&entry(&base), &without_user(grant))
            .await
            .unwrap();
        let result = connection
            .call_tool("write", None, CallOptions::default())
            .await
            .unwrap();
        assert_eq!(result.content.len(), 1, "{grant_type}");
        let issued = issued.lock().unwrap();
        assert_eq!(issued.grants, [grant_type], "one token request");
        assert!(issued.authorizations.is_empty(), "no user was asked");
        assert_eq!(issued.resources, [format!("{base}/mcp")], "{grant_type}");
    }
}

#[tokio::test]
async fn a_refused_grant_without_a_user_is_reported_and_not_repeated() {
    let (base, issued) = protected_server().await;
    let grant = Grant::JwtBearer {
        assertion: switchboard_config::Secret::new("not.a.trusted-jwt".to_owned()),
        client_id: Some("workload".to_owned()),
    };
    let error = Connection::connect(&entry(&base), &without_user(grant))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Authorization { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("invalid_grant") && message.contains("the assertion is not trusted"),
        "the server's reason is quoted: {message}"
    );
    assert!(
        !message.contains("not.a.trusted-jwt"),
        "the assertion is a secret: {message}"
    );
    assert_eq!(issued.lock().unwrap().grants.len(), 1, "asked once");

    let (id, _) = MACHINE_CLIENT;
    let wrong_secret = Grant::ClientCredentials {
        client_id: id.to_owned(),
        authentication: ClientAuthentication::Secret(switchboard_config::Secret::new(
            "wrong".to_owned(),
        )),
    };
    let error = Connection::connect(&entry(&base), &without_user(wrong_secret))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Authorization { .. }),
        "{error:?}"
    );
    assert_eq!(issued.lock().unwrap().grants.len(), 2, "asked once more");
}

#[tokio::test]
async fn metadata_cannot_send_token_requests_to_link_local_addresses() {
    // The instance-metadata address of cloud machines: a server naming it as its token
    // endpoint must not get the client to post there.
    let (base, issued) =
        protected_server_with(Some("http://169.254.169.254/latest/token".to_owned())).await;
    let grant = Grant::JwtBearer {
        assertion: switchboard_config::Secret::new(WORKLOAD_JWT.to_owned()),
        client_id: None,
    };
    let started = std::time::Instant::now();
    let error = Connection::connect(&entry(&base), &without_user(grant))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("169.254.169.254") && message.contains("may not be reached"),
        "{message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused before connecting"
    );
    assert!(issued.lock().unwrap().grants.is_empty());
}
