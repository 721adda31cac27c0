//! OAuth 2.1 for Streamable HTTP servers that require authorization (the MCP authorization
//! specification), on rmcp's implementation of the protocol steps.
//!
//! Authorization is reactive, as the specification describes: requests go out without a token
//! until the server answers 401. The `WWW-Authenticate` challenge then drives discovery
//! (protected resource metadata, then the authorization server's metadata), client
//! identification (a pre-registered client, a Client ID Metadata Document, or dynamic
//! registration, in that order), scope selection and an authorization-code grant with PKCE.
//! The user's part (visiting the authorization URL and coming back to the redirect URI) is
//! delegated to an [`Authorizer`]. The request that was refused is then sent again with the
//! token, so an authorization in the middle of a session is invisible to the caller. A 403
//! `insufficient_scope` asks for the union of the granted and the newly required scopes (step-up),
//! a bounded number of times.
//!
//! ```no_run
//! # async fn demo(entry: switchboard_config::ServerEntry) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use switchboard_client::{
//!     ConnectOptions, Connection,
//!     callbacks::CallbackFuture,
//!     oauth::{Authorizer, OAuthOptions},
//! };
//!
//! /// Prints the URL and reads the redirect the browser landed on from stdin.
//! #[derive(Debug)]
//! struct AskTheUser;
//!
//! impl Authorizer for AskTheUser {
//!     fn authorize(&self, url: String) -> CallbackFuture<'_, String> {
//!         Box::pin(async move {
//!             eprintln!("open {url}, then paste the address you were sent back to:");
//!             let mut line = String::new();
//!             std::io::stdin().read_line(&mut line).map_err(|e| {
//!                 switchboard_client::callbacks::CallbackError::new(e.to_string())
//!             })?;
//!             Ok(line.trim().to_owned())
//!         })
//!     }
//! }
//!
//! // `entry` is a Streamable HTTP server from the config.
//! let options = ConnectOptions {
//!     oauth: Some(OAuthOptions::new("http://127.0.0.1:8976/callback", Arc::new(AskTheUser))),
//!     ..ConnectOptions::default()
//! };
//! let connection = Connection::connect(&entry, &options).await?;
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use reqwest::Url;
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::{
        auth::{
            AuthError, AuthorizationCallback, AuthorizationManager, AuthorizationRequest,
            AuthorizationSession, ScopeUpgradeConfig,
        },
        streamable_http_client::{
            StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
            StreamableHttpResponseLimits,
        },
    },
};
use sse_stream::{Error as SseError, Sse};
use switchboard_config::Secret;

use crate::callbacks::CallbackFuture;

/// Scope step-ups (403 `insufficient_scope`) allowed per authorization. Together with the
/// first authorization this keeps a server that is never satisfied to three authorization
/// requests, the bound the specification's conformance suite checks.
pub const MAX_SCOPE_UPGRADES: u32 = 2;
/// Authorizations in a row whose token the server still refuses before we give up.
pub const MAX_CONSECUTIVE_AUTHORIZATIONS: u32 = 3;

/// The user's part of an authorization-code grant.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Let the user visit `url` (the authorization server's authorization endpoint with the
    /// request's parameters) and return the full URL the authorization server redirected back
    /// to: the redirect URI with `code`, `state` and, when the server sends it, `iss`.
    fn authorize(&self, url: String) -> CallbackFuture<'_, String>;
}

/// A client registered with the authorization server out of band.
#[derive(Debug, Clone)]
pub struct PreregisteredClient {
    pub client_id: String,
    /// For a confidential client; sent as the server's metadata asks (HTTP Basic or in the body).
    pub client_secret: Option<Secret>,
}

/// How to obtain tokens for a server that requires authorization.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// Where the authorization server sends the user back with the code.
    pub redirect_uri: String,
    /// The name given in dynamic client registration.
    pub client_name: String,
    /// A pre-registered client, used before anything else.
    pub client: Option<PreregisteredClient>,
    /// The HTTPS URL of this client's Client ID Metadata Document, used as the client id when
    /// the authorization server supports such documents and no client is pre-registered.
    pub client_metadata_url: Option<String>,
    /// Performs the user's part of the grant.
    pub authorizer: Arc<dyn Authorizer>,
}

impl OAuthOptions {
    /// Dynamic registration as "switchboard", redirected to `redirect_uri`.
    pub fn new(redirect_uri: impl Into<String>, authorizer: Arc<dyn Authorizer>) -> Self {
        OAuthOptions {
            redirect_uri: redirect_uri.into(),
            client_name: "switchboard".to_owned(),
            client: None,
            client_metadata_url: None,
            authorizer,
        }
    }
}

/// Why authorization failed, shared between the HTTP layer that runs it and the connection
/// that reports it (the transport only passes a generic send failure up).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthFailure(Arc<Mutex<Option<String>>>);

impl AuthFailure {
    fn record(&self, reason: String) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The last failure, if the last authorization failed.
    pub(crate) fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The tokens and the state of authorization of one connection.
struct Flow {
    /// The MCP endpoint: where discovery starts and the default resource indicator.
    url: Url,
    options: OAuthOptions,
    /// The manager of the current grant; `None` before the first authorization. An async
    /// mutex, because the whole authorization (the user's part included) must run once even
    /// when several requests are refused at the same time.
    manager: tokio::sync::Mutex<Option<AuthorizationManager>>,
    /// Authorizations since the server last accepted a token.
    consecutive: std::sync::atomic::AtomicU32,
    failure: AuthFailure,
}

/// A [`StreamableHttpClient`] that adds the bearer token and authorizes when the server asks.
#[derive(Clone)]
pub(crate) struct OAuthHttp {
    http: reqwest::Client,
    flow: Arc<Flow>,
}

impl OAuthHttp {
    pub(crate) fn new(
        http: reqwest::Client,
        url: Url,
        options: OAuthOptions,
    ) -> (Self, AuthFailure) {
        let failure = AuthFailure::default();
        let flow = Flow {
            url,
            options,
            manager: tokio::sync::Mutex::new(None),
            consecutive: std::sync::atomic::AtomicU32::new(0),
            failure: failure.clone(),
        };
        (
            OAuthHttp {
                http,
                flow: Arc::new(flow),
            },
            failure,
        )
    }

    /// Run `call` with the current token (or the caller's own `Authorization`), and once more
    /// after authorizing when the server refuses it with 401 or 403 `insufficient_scope`.
    async fn with_authorization<T, F, Fut>(
        &self,
        given: Option<String>,
        call: F,
    ) -> Result<T, StreamableHttpError<reqwest::Error>>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<reqwest::Error>>>,
    {
        let mut token = match given {
            Some(token) => Some(token),
            None => self.flow.token().await,
        };
        loop {
            match call(token.clone()).await {
                Err(StreamableHttpError::AuthRequired(challenge)) => {
                    self.flow
                        .authorize(&challenge.www_authenticate_header, token.as_deref())
                        .await?;
                }
                Err(StreamableHttpError::InsufficientScope(challenge)) => {
                    self.flow
                        .step_up(
                            &challenge.www_authenticate_header,
                            challenge.required_scope.as_deref(),
                            token.as_deref(),
                        )
                        .await?;
                }
                other => {
                    if other.is_ok() {
                        self.flow.accepted();
                    }
                    return other;
                }
            }
            token = self.flow.token().await;
        }
    }
}

impl Flow {
    async fn token(&self) -> Option<String> {
        let manager = self.manager.lock().await;
        match manager.as_ref()?.get_access_token().await {
            Ok(token) => Some(token),
            Err(error) => {
                tracing::debug!(%error, "no usable access token");
                None
            }
        }
    }

    /// The server took a request: earlier failures no longer explain anything.
    fn accepted(&self) {
        self.consecutive
            .store(0, std::sync::atomic::Ordering::SeqCst);
        self.failure.clear();
    }

    fn fail<T>(&self, error: AuthError) -> Result<T, StreamableHttpError<reqwest::Error>> {
        self.failure.record(error.to_string());
        Err(StreamableHttpError::Auth(error))
    }

    /// Count an authorization; refuse once the server has rejected too many tokens in a row.
    fn count_authorization(&self) -> Result<(), AuthError> {
        let previous = self
            .consecutive
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if previous >= MAX_CONSECUTIVE_AUTHORIZATIONS {
            return Err(AuthError::AuthorizationFailed(format!(
                "the server refused the tokens of {MAX_CONSECUTIVE_AUTHORIZATIONS} authorizations in a row"
            )));
        }
        Ok(())
    }

    /// Whether the grant changed since `sent` was sent (another request authorized meanwhile).
    async fn changed_since(manager: &Option<AuthorizationManager>, sent: Option<&str>) -> bool {
        let current = match manager {
            Some(manager) => manager.get_access_token().await.ok(),
            None => None,
        };
        current.is_some() && current.as_deref() != sent
    }

    /// The server answered 401: authorize from its challenge (discovery, client
    /// identification, the user's consent, the token exchange).
    async fn authorize(
        &self,
        challenge: &str,
        sent: Option<&str>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        let mut slot = self.manager.lock().await;
        if Self::changed_since(&slot, sent).await {
            return Ok(());
        }
        if let Err(error) = self.count_authorization() {
            return self.fail(error);
        }
        match self.new_grant(challenge).await {
            Ok(manager) => {
                *slot = Some(manager);
                self.failure.clear();
                Ok(())
            }
            Err(error) => self.fail(error),
        }
    }

    async fn new_grant(&self, challenge: &str) -> Result<AuthorizationManager, AuthError> {
        // A fresh manager each time: after a 401 the resource may name another
        // authorization server, with which this client has to identify itself anew.
        let mut manager = AuthorizationManager::new(self.url.clone()).await?;
        let mut upgrades = ScopeUpgradeConfig::default();
        upgrades.max_upgrade_attempts = MAX_SCOPE_UPGRADES;
        manager.set_scope_upgrade_config(upgrades);
        let resolution = manager
            .resolve_metadata_from_challenge(Some(challenge))
            .await?;
        manager.set_metadata(resolution.metadata);

        let options = &self.options;
        let mut request = AuthorizationRequest::new(&options.redirect_uri)
            .with_initial_scope_selection()
            .with_client_name(&options.client_name);
        if let Some(client) = &options.client {
            request = request.with_preregistered_client(&client.client_id);
            if let Some(secret) = &client.client_secret {
                request = request.with_client_secret(secret.expose());
            }
        }
        if let Some(url) = &options.client_metadata_url {
            request = request.with_client_metadata_url(url);
        }
        let session = AuthorizationSession::new(manager, request)
            .await
            .map_err(|(_, error)| error)?;
        let redirect = self.user_consent(session.get_authorization_url()).await?;
        session.handle_callback_url(&redirect).await?;
        Ok(session.auth_manager)
    }

    /// The server answered 403 `insufficient_scope`: ask for the union of what was granted
    /// and what it now requires.
    async fn step_up(
        &self,
        challenge: &str,
        required: Option<&str>,
        sent: Option<&str>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        let slot = self.manager.lock().await;
        if Self::changed_since(&slot, sent).await {
            return Ok(());
        }
        let Some(manager) = slot.as_ref() else {
            // A 403 before any authorization: treat it as the start of one.
            drop(slot);
            return self.authorize(challenge, sent).await;
        };
        let Some(required) = required.filter(|scope| !scope.trim().is_empty()) else {
            return self.fail(AuthError::AuthorizationFailed(
                "the server refused the token (403) without naming the scope it requires"
                    .to_owned(),
            ));
        };
        let granted = manager.get_current_scopes().await;
        if required
            .split_whitespace()
            .all(|scope| granted.iter().any(|have| have == scope))
        {
            return self.fail(AuthError::InsufficientScope {
                required_scope: required.to_owned(),
                upgrade_url: None,
            });
        }
        if let Err(error) = self.count_authorization() {
            return self.fail(error);
        }
        let result = async {
            let url = manager.request_scope_upgrade(required).await?;
            let redirect = self.user_consent(&url).await?;
            let callback = AuthorizationCallback::from_redirect_url(&redirect)?;
            manager
                .exchange_code_for_token_with_issuer(
                    &callback.code,
                    &callback.csrf_token,
                    callback.issuer.as_deref(),
                )
                .await
        }
        .await;
        match result {
            // The slot keeps the same manager, now holding the wider grant.
            Ok(_) => {
                self.failure.clear();
                Ok(())
            }
            Err(error) => self.fail(error),
        }
    }

    async fn user_consent(&self, url: &str) -> Result<String, AuthError> {
        self.options
            .authorizer
            .authorize(url.to_owned())
            .await
            .map_err(|error| AuthError::AuthorizationFailed(error.message))
    }
}

impl StreamableHttpClient for OAuthHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.with_authorization(auth_header, |token| {
            self.http.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.with_authorization(auth_header, |token| {
            self.http.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        // Ending a session is not worth an authorization: send what we have.
        let token = match auth_header {
            Some(token) => Some(token),
            None => self.flow.token().await,
        };
        self.http
            .delete_session(uri, session_id, token, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.with_authorization(auth_header, |token| {
            self.http.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        self.with_authorization(auth_header, |token| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
