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
//! Besides the user's consent ([`Grant::AuthorizationCode`]), a connection can authorize
//! without anyone present: client credentials with a secret or a signed assertion
//! ([`Grant::ClientCredentials`], SEP-1046), a workload identity's JWT ([`Grant::JwtBearer`],
//! RFC 7523), or an enterprise identity provider's ID token exchanged for an ID-JAG
//! ([`Grant::EnterpriseManaged`], SEP-990). A failed grant of that kind is not tried again: it
//! would fail the same way, and authorization servers count repeated attempts against a client.
//!
//! When the authorization server offers DPoP with ES256 (RFC 9449), tokens are bound to a key
//! the connection makes and never shares ([`dpop`]); [`OAuthOptions::dpop`] turns this off.
//! Every OAuth request goes through one client that refuses addresses the MCP server's own
//! address does not allow ([`addresses`]): metadata cannot send the client into its network.
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

mod addresses;
pub(crate) mod dpop;
mod http;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use ::http::{HeaderName, HeaderValue, header};
use futures::stream::BoxStream;
use oauth2::TokenResponse as _;
use reqwest::Url;
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::{
        auth::{
            AuthError, AuthorizationCallback, AuthorizationManager, AuthorizationMetadata,
            AuthorizationRequest, AuthorizationSession, ClientCredentialsConfig, CredentialStore,
            InMemoryCredentialStore, OAuthTokenResponse, ScopeUpgradeConfig, StoredCredentials,
            WWWAuthenticateParams,
            enterprise::{EmaAuthorizationServer, EmaClientAuthentication, EmaExchangeRequest},
        },
        streamable_http_client::{
            StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
            StreamableHttpResponseLimits,
        },
    },
};
use sse_stream::{Error as SseError, Sse};
use switchboard_config::Secret;

use self::{
    dpop::{Audience, DpopKey},
    http::OAuthNet,
};
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

/// How a client proves who it is when it asks for a token without a user.
#[derive(Debug, Clone)]
pub enum ClientAuthentication {
    /// A shared secret, sent as the authorization server's metadata asks (HTTP Basic when
    /// that is all it lists, otherwise in the request body).
    Secret(Secret),
    /// `private_key_jwt` (RFC 7523 §2.2): a short-lived assertion signed with this PEM
    /// (PKCS#8) key, its issuer and subject the client id, its audience the authorization
    /// server. The key never leaves the client.
    PrivateKeyJwt {
        key_pem: Secret,
        algorithm: SigningAlgorithm,
    },
}

/// The algorithms a `private_key_jwt` assertion can be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// ECDSA with P-384 and SHA-384.
    Es384,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
}

impl SigningAlgorithm {
    /// The JOSE name (`ES256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Es384 => "ES384",
            SigningAlgorithm::Rs256 => "RS256",
        }
    }

    /// The algorithm with this JOSE name.
    pub fn from_name(name: &str) -> Option<SigningAlgorithm> {
        match name {
            "ES256" => Some(SigningAlgorithm::Es256),
            "ES384" => Some(SigningAlgorithm::Es384),
            "RS256" => Some(SigningAlgorithm::Rs256),
            _ => None,
        }
    }
}

/// An enterprise identity provider that exchanges the user's ID token for an ID-JAG.
#[derive(Debug, Clone)]
pub struct IdentityProvider {
    /// Its issuer identifier, as in its ID tokens.
    pub issuer: String,
    /// Its token endpoint, where the exchange happens.
    pub token_endpoint: String,
    /// This client's id at the identity provider.
    pub client_id: String,
}

/// How the connection obtains a token.
#[derive(Debug, Clone)]
pub enum Grant {
    /// Authorization code with PKCE: the user consents through [`OAuthOptions::authorizer`].
    /// A pre-registered confidential client ([`OAuthOptions::client`] with a secret) whose
    /// authorization server offers only `client_credentials` uses that grant instead.
    AuthorizationCode,
    /// Client credentials (SEP-1046): the client acts on its own behalf, no user involved.
    ClientCredentials {
        client_id: String,
        authentication: ClientAuthentication,
    },
    /// An assertion issued to this workload by an identity provider the authorization server
    /// trusts (RFC 7523 §2.1; workload identity federation, SEP-1933), sent as it is.
    JwtBearer {
        assertion: Secret,
        /// Sent when given; a public client.
        client_id: Option<String>,
    },
    /// Enterprise-managed authorization (SEP-990): the user's ID token from `idp` is exchanged
    /// there for an ID-JAG (RFC 8693), which the MCP server's authorization server redeems
    /// for a token (RFC 7523) from this client (`client_id`, `client_secret`, HTTP Basic).
    EnterpriseManaged {
        idp: IdentityProvider,
        id_token: Secret,
        client_id: String,
        client_secret: Secret,
    },
}

/// How to obtain tokens for a server that requires authorization.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// Which grant; [`Grant::AuthorizationCode`] unless set.
    pub grant: Grant,
    /// Bind tokens to a key of this connection (DPoP) when the authorization server offers
    /// it; on unless turned off.
    pub dpop: bool,
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
            grant: Grant::AuthorizationCode,
            dpop: true,
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
    /// Every OAuth request goes through this client (address policy, DPoP on token requests).
    net: Arc<OAuthNet>,
    /// The connection's DPoP key, when [`OAuthOptions::dpop`] is on.
    dpop: Option<Arc<DpopKey>>,
    /// The current grant; `None` before the first authorization. An async mutex, because the
    /// whole authorization (the user's part included) must run once even when several
    /// requests are refused at the same time.
    current: tokio::sync::Mutex<Option<Current>>,
    /// Authorizations since the server last accepted a token.
    consecutive: std::sync::atomic::AtomicU32,
    failure: AuthFailure,
    /// Why a grant without a user failed; it is not tried again.
    failed_grant: Mutex<Option<String>>,
}

/// One grant: rmcp's manager (refresh, step-up) and the store that holds its token.
struct Current {
    manager: AuthorizationManager,
    store: InMemoryCredentialStore,
}

/// The bearer token for rmcp to send, if any, and the headers of one request.
type Presented = (Option<String>, HashMap<HeaderName, HeaderValue>);

/// An access token and how it is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    value: String,
    /// Bound to the connection's DPoP key: `Authorization: DPoP` with a proof per request.
    dpop: bool,
}

/// A [`StreamableHttpClient`] that adds the token and authorizes when the server asks.
#[derive(Clone)]
pub(crate) struct OAuthHttp {
    http: reqwest::Client,
    flow: Arc<Flow>,
}

/// Refuses: the grant of this connection has no user to ask.
#[derive(Debug)]
struct NoUser;

impl Authorizer for NoUser {
    fn authorize(&self, _url: String) -> CallbackFuture<'_, String> {
        Box::pin(async {
            Err(crate::callbacks::CallbackError::new(
                "this connection authorizes without a user",
            ))
        })
    }
}

impl OAuthOptions {
    /// A grant without a user ([`Grant::ClientCredentials`], [`Grant::JwtBearer`],
    /// [`Grant::EnterpriseManaged`]), with DPoP when offered.
    pub fn without_user(grant: Grant) -> Self {
        OAuthOptions {
            grant,
            ..OAuthOptions::new("http://localhost/unused", Arc::new(NoUser))
        }
    }
}

impl OAuthHttp {
    pub(crate) fn new(
        http: reqwest::Client,
        url: Url,
        options: OAuthOptions,
    ) -> Result<(Self, AuthFailure), String> {
        let failure = AuthFailure::default();
        let dpop = if options.dpop {
            Some(Arc::new(DpopKey::generate()?))
        } else {
            None
        };
        let net = Arc::new(OAuthNet::new(&url, dpop.clone())?);
        let flow = Flow {
            url,
            options,
            net,
            dpop,
            current: tokio::sync::Mutex::new(None),
            consecutive: std::sync::atomic::AtomicU32::new(0),
            failure: failure.clone(),
            failed_grant: Mutex::new(None),
        };
        Ok((
            OAuthHttp {
                http,
                flow: Arc::new(flow),
            },
            failure,
        ))
    }

    /// Run `call` with the current token (or the caller's own `Authorization`), and once more
    /// after authorizing when the server refuses it with 401 or 403 `insufficient_scope`.
    /// `call` gets the bearer token to send, if any, and the headers to send; a DPoP-bound
    /// token travels in those headers with a fresh proof for `method` on `uri`.
    async fn with_authorization<T, F, Fut>(
        &self,
        method: &'static str,
        uri: &str,
        given: Option<String>,
        headers: &HashMap<HeaderName, HeaderValue>,
        call: F,
    ) -> Result<T, StreamableHttpError<reqwest::Error>>
    where
        F: Fn(Option<String>, HashMap<HeaderName, HeaderValue>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<reqwest::Error>>>,
    {
        let mut token = match given {
            Some(value) => Some(Token { value, dpop: false }),
            None => self.flow.token().await,
        };
        let mut nonce_asked = false;
        loop {
            let (bearer, with_token) = self.flow.present(token.as_ref(), method, uri, headers)?;
            match call(bearer, with_token).await {
                Err(StreamableHttpError::AuthRequired(challenge))
                    if token.as_ref().is_some_and(|token| token.dpop)
                        && !nonce_asked
                        && wants_nonce(&challenge.www_authenticate_header, &self.flow.url) =>
                {
                    // The MCP server wants a nonce in the proofs. rmcp's error keeps only the
                    // challenge, so the nonce is read from a request that carries nothing the
                    // server could act on, and the refused request is sent again with it.
                    nonce_asked = true;
                    if let Some(token) = &token {
                        self.learn_resource_nonce(uri, token, headers).await?;
                    }
                    continue;
                }
                Err(StreamableHttpError::AuthRequired(challenge)) => {
                    self.flow
                        .authorize(
                            &challenge.www_authenticate_header,
                            token.as_ref().map(|token| token.value.as_str()),
                        )
                        .await?;
                }
                Err(StreamableHttpError::InsufficientScope(challenge)) => {
                    self.flow
                        .step_up(
                            &challenge.www_authenticate_header,
                            challenge.required_scope.as_deref(),
                            token.as_ref().map(|token| token.value.as_str()),
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
            nonce_asked = false;
        }
    }

    /// POST an empty JSON object with the token and a proof, to read the MCP server's
    /// `DPoP-Nonce`. A server that wants a nonce refuses it before reading the body; one that
    /// does not answers that `{}` is no JSON-RPC message.
    async fn learn_resource_nonce(
        &self,
        uri: &str,
        token: &Token,
        headers: &HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        let (_, headers) = self.flow.present(Some(token), "POST", uri, headers)?;
        let mut probe = self
            .http
            .post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body("{}");
        for (name, value) in headers {
            probe = probe.header(name, value);
        }
        let answer = probe.send().await.map_err(StreamableHttpError::Client)?;
        match answer
            .headers()
            .get(dpop::NONCE_HEADER)
            .and_then(|value| value.to_str().ok())
        {
            Some(nonce) => {
                if let Some(key) = &self.flow.dpop {
                    key.set_nonce(Audience::ResourceServer, nonce);
                }
                Ok(())
            }
            None => self.flow.fail(AuthError::AuthorizationFailed(
                "the server asked for a DPoP nonce (use_dpop_nonce) but sent none".to_owned(),
            )),
        }
    }
}

/// Whether a 401's challenge asks for a DPoP nonce.
fn wants_nonce(challenge: &str, base: &Url) -> bool {
    WWWAuthenticateParams::parse(challenge, base)
        .error
        .as_deref()
        == Some(dpop::USE_NONCE_ERROR)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl Flow {
    async fn token(&self) -> Option<Token> {
        let current = self.current.lock().await;
        let current = current.as_ref()?;
        let value = match current.manager.get_access_token().await {
            Ok(token) => token,
            Err(error) => {
                tracing::debug!(%error, "no usable access token");
                return None;
            }
        };
        let dpop = self.dpop.is_some()
            && current
                .store
                .load()
                .await
                .ok()
                .flatten()
                .and_then(|stored| stored.token_response)
                .is_some_and(|response| {
                    response.token_type().as_ref().eq_ignore_ascii_case("dpop")
                });
        Some(Token { value, dpop })
    }

    /// The bearer token for rmcp to send, and the headers for the request: with a DPoP-bound
    /// token, no bearer but `Authorization: DPoP` and a fresh proof.
    fn present(
        &self,
        token: Option<&Token>,
        method: &str,
        uri: &str,
        headers: &HashMap<HeaderName, HeaderValue>,
    ) -> Result<Presented, StreamableHttpError<reqwest::Error>> {
        let mut headers = headers.clone();
        let (Some(token), Some(key)) = (token, &self.dpop) else {
            return Ok((token.map(|token| token.value.clone()), headers));
        };
        if !token.dpop {
            return Ok((Some(token.value.clone()), headers));
        }
        let proof = Url::parse(uri)
            .map_err(|error| error.to_string())
            .and_then(|url| key.proof(Audience::ResourceServer, method, &url, Some(&token.value)));
        let values = proof.and_then(|proof| {
            let authorization = HeaderValue::from_str(&format!("DPoP {}", token.value))
                .map_err(|_| "the token cannot be sent in a header".to_owned())?;
            let proof = HeaderValue::from_str(&proof)
                .map_err(|_| "the DPoP proof cannot be sent in a header".to_owned())?;
            Ok((authorization, proof))
        });
        match values {
            Ok((authorization, proof)) => {
                headers.insert(header::AUTHORIZATION, authorization);
                headers.insert(HeaderName::from_static(dpop::PROOF_HEADER), proof);
                Ok((None, headers))
            }
            Err(reason) => self.fail(AuthError::InternalError(reason)),
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
    async fn changed_since(current: &Option<Current>, sent: Option<&str>) -> bool {
        let now = match current {
            Some(current) => current.manager.get_access_token().await.ok(),
            None => None,
        };
        now.is_some() && now.as_deref() != sent
    }

    /// The server answered 401: authorize from its challenge (discovery, client
    /// identification, the grant).
    async fn authorize(
        &self,
        challenge: &str,
        sent: Option<&str>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        let mut slot = self.current.lock().await;
        if Self::changed_since(&slot, sent).await {
            return Ok(());
        }
        let failed_before = self
            .failed_grant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(reason) = failed_before {
            return self.fail(AuthError::AuthorizationFailed(reason));
        }
        if let Err(error) = self.count_authorization() {
            return self.fail(error);
        }
        // Boxed: a grant's steps are many and large, and every request would carry their
        // space otherwise.
        match Box::pin(self.new_grant(challenge)).await {
            Ok(current) => {
                *slot = Some(current);
                self.failure.clear();
                Ok(())
            }
            Err(error) => {
                if !matches!(self.options.grant, Grant::AuthorizationCode) {
                    *self.failed_grant.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(error.to_string());
                }
                self.fail(error)
            }
        }
    }

    /// The resource indicator (RFC 8707): the MCP endpoint without query or fragment.
    fn resource(&self) -> String {
        let mut resource = self.url.clone();
        resource.set_query(None);
        resource.set_fragment(None);
        resource.into()
    }

    async fn new_grant(&self, challenge: &str) -> Result<Current, AuthError> {
        // A fresh manager each time: after a 401 the resource may name another
        // authorization server, with which this client has to identify itself anew.
        let mut manager =
            AuthorizationManager::new_with_oauth_http_client(self.url.clone(), self.net.clone())
                .await?;
        let store = InMemoryCredentialStore::new();
        manager.set_credential_store(store.clone());
        let mut upgrades = ScopeUpgradeConfig::default();
        upgrades.max_upgrade_attempts = MAX_SCOPE_UPGRADES;
        manager.set_scope_upgrade_config(upgrades);
        let resolution = manager
            .resolve_metadata_from_challenge(Some(challenge))
            .await?;
        let metadata = resolution.metadata;
        if self.options.dpop && dpop::offered(&metadata) && self.net.use_dpop() {
            tracing::debug!(
                "the authorization server offers DPoP: tokens will be bound to this connection's key"
            );
        }
        manager.set_metadata(metadata.clone());
        let scopes: Vec<String> = WWWAuthenticateParams::parse(challenge, &self.url)
            .scope
            .map(|scope| scope.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let grant = Machine {
            net: &self.net,
            metadata: &metadata,
            resource: self.resource(),
            scopes,
            store: &store,
        };
        match &self.options.grant {
            Grant::AuthorizationCode => match &self.options.client {
                Some(PreregisteredClient {
                    client_id,
                    client_secret: Some(secret),
                }) if offers_only_client_credentials(&metadata) => {
                    grant.client_secret(&mut manager, client_id, secret).await?
                }
                _ => return self.consent(manager, store).await,
            },
            Grant::ClientCredentials {
                client_id,
                authentication: ClientAuthentication::Secret(secret),
            } => grant.client_secret(&mut manager, client_id, secret).await?,
            Grant::ClientCredentials {
                client_id,
                authentication: ClientAuthentication::PrivateKeyJwt { key_pem, algorithm },
            } => {
                grant
                    .private_key_jwt(client_id, key_pem, *algorithm)
                    .await?
            }
            Grant::JwtBearer {
                assertion,
                client_id,
            } => grant.jwt_bearer(assertion, client_id.as_deref()).await?,
            Grant::EnterpriseManaged {
                idp,
                id_token,
                client_id,
                client_secret,
            } => {
                grant
                    .enterprise(idp, id_token, client_id, client_secret)
                    .await?
            }
        }
        Ok(Current { manager, store })
    }

    /// The authorization-code grant: client identification, the user's consent, the code
    /// exchanged for a token.
    async fn consent(
        &self,
        manager: AuthorizationManager,
        store: InMemoryCredentialStore,
    ) -> Result<Current, AuthError> {
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
        Ok(Current {
            manager: session.auth_manager,
            store,
        })
    }

    /// The server answered 403 `insufficient_scope`: ask for the union of what was granted
    /// and what it now requires.
    async fn step_up(
        &self,
        challenge: &str,
        required: Option<&str>,
        sent: Option<&str>,
    ) -> Result<(), StreamableHttpError<reqwest::Error>> {
        let slot = self.current.lock().await;
        if Self::changed_since(&slot, sent).await {
            return Ok(());
        }
        let Some(Current { manager, .. }) = slot.as_ref() else {
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
        let back = self
            .options
            .authorizer
            .authorize(url.to_owned())
            .await
            .map_err(|error| AuthError::AuthorizationFailed(error.message))?;
        match refusal_in(&back) {
            Some(refusal) => Err(AuthError::AuthorizationFailed(refusal)),
            None => Ok(back),
        }
    }
}

/// The authorization server's refusal in the address it sent the user back to (RFC 6749
/// section 4.1.2.1: `error`, and `error_description` when given), in words.
fn refusal_in(redirect: &str) -> Option<String> {
    let url = Url::parse(redirect).ok()?;
    let mut error = None;
    let mut description = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    let error = error?;
    Some(match description {
        Some(description) => {
            format!("the authorization server refused the sign-in: {error} ({description})")
        }
        None => format!("the authorization server refused the sign-in: {error}"),
    })
}

/// The grants without a user, for one authorization: what discovery found and where the
/// token goes.
struct Machine<'a> {
    net: &'a OAuthNet,
    metadata: &'a AuthorizationMetadata,
    /// The resource indicator (RFC 8707).
    resource: String,
    /// What the server's challenge asked for, if anything.
    scopes: Vec<String>,
    store: &'a InMemoryCredentialStore,
}

const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a `private_key_jwt` assertion is valid.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// Whether an authorization server offers client credentials and no authorization code.
fn offers_only_client_credentials(metadata: &AuthorizationMetadata) -> bool {
    let Some(grants) = metadata
        .additional_fields
        .get("grant_types_supported")
        .and_then(serde_json::Value::as_array)
    else {
        return false;
    };
    let offers = |name: &str| grants.iter().any(|grant| grant.as_str() == Some(name));
    offers(GRANT_CLIENT_CREDENTIALS) && !offers("authorization_code")
}

impl Machine<'_> {
    /// Client credentials with a secret, through rmcp (Basic or body, as the metadata asks).
    async fn client_secret(
        &self,
        manager: &mut AuthorizationManager,
        client_id: &str,
        secret: &Secret,
    ) -> Result<(), AuthError> {
        let config = ClientCredentialsConfig::ClientSecret {
            client_id: client_id.to_owned(),
            client_secret: secret.expose().to_owned(),
            scopes: self.scopes.clone(),
            resource: Some(self.resource.clone()),
        };
        manager.validate_client_credentials_metadata(&config)?;
        manager.configure_client_credentials(&config)?;
        manager.exchange_client_credentials(&config).await?;
        Ok(())
    }

    /// Client credentials with a `private_key_jwt` assertion (RFC 7523 §2.2).
    async fn private_key_jwt(
        &self,
        client_id: &str,
        key_pem: &Secret,
        algorithm: SigningAlgorithm,
    ) -> Result<(), AuthError> {
        let field = |name: &str| {
            self.metadata
                .additional_fields
                .get(name)
                .and_then(serde_json::Value::as_array)
        };
        if let Some(methods) = field("token_endpoint_auth_methods_supported")
            && !methods
                .iter()
                .any(|m| m.as_str() == Some("private_key_jwt"))
        {
            return Err(AuthError::ClientCredentialsError(format!(
                "the authorization server does not accept private_key_jwt (it lists {})",
                serde_json::Value::Array(methods.clone())
            )));
        }
        if let Some(algorithms) = field("token_endpoint_auth_signing_alg_values_supported")
            && !algorithms
                .iter()
                .any(|a| a.as_str() == Some(algorithm.as_str()))
        {
            return Err(AuthError::ClientCredentialsError(format!(
                "the authorization server does not accept {} assertions (it lists {})",
                algorithm.as_str(),
                serde_json::Value::Array(algorithms.clone())
            )));
        }
        let audience = self
            .metadata
            .issuer
            .clone()
            .unwrap_or_else(|| self.metadata.token_endpoint.clone());
        let assertion = client_assertion(client_id, &audience, key_pem, algorithm)?;
        let form = [
            ("grant_type", GRANT_CLIENT_CREDENTIALS),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
            ("resource", self.resource.as_str()),
        ];
        self.redeem(&form, client_id, AuthError::ClientCredentialsError)
            .await
    }

    /// The JWT-bearer grant with an assertion issued to this workload (RFC 7523 §2.1).
    async fn jwt_bearer(
        &self,
        assertion: &Secret,
        client_id: Option<&str>,
    ) -> Result<(), AuthError> {
        let mut form = vec![
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", assertion.expose()),
            ("resource", self.resource.as_str()),
        ];
        if let Some(client_id) = client_id {
            form.push(("client_id", client_id));
        }
        self.redeem(
            &form,
            client_id.unwrap_or_default(),
            AuthError::AuthorizationFailed,
        )
        .await
    }

    /// Send a token request of ours (`form`, plus the scopes asked for) and keep its token;
    /// `refused` says how a refusal is reported.
    async fn redeem(
        &self,
        form: &[(&str, &str)],
        client_id: &str,
        refused: fn(String) -> AuthError,
    ) -> Result<(), AuthError> {
        let scope = self.scopes.join(" ");
        let mut form = form.to_vec();
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let token = self
            .net
            .token_request(&self.metadata.token_endpoint, &form, None)
            .await
            .map_err(refused)?;
        self.keep(client_id, token).await
    }

    /// Enterprise-managed authorization through rmcp: the ID token for an ID-JAG at the
    /// identity provider, the ID-JAG for a token at the MCP server's authorization server.
    async fn enterprise(
        &self,
        idp: &IdentityProvider,
        id_token: &Secret,
        client_id: &str,
        client_secret: &Secret,
    ) -> Result<(), AuthError> {
        let issuer = self.metadata.issuer.as_deref().ok_or_else(|| {
            AuthError::AuthorizationFailed(
                "the authorization server's metadata has no issuer, which an ID-JAG must name"
                    .to_owned(),
            )
        })?;
        let identity_provider =
            EmaAuthorizationServer::new(&idp.issuer, &idp.token_endpoint, &idp.client_id);
        let authorization_server =
            EmaAuthorizationServer::new(issuer, &self.metadata.token_endpoint, client_id)
                .with_client_authentication(EmaClientAuthentication::ClientSecretBasic(
                    oauth2::ClientSecret::new(client_secret.expose().to_owned()),
                ));
        let token = EmaExchangeRequest::new_with_id_token(
            identity_provider,
            authorization_server,
            &self.resource,
            id_token.expose(),
        )
        .with_scopes(self.scopes.iter().cloned())
        .exchange(self.net, self.net)
        .await
        .map_err(|error| {
            AuthError::AuthorizationFailed(format!("enterprise-managed authorization: {error}"))
        })?;
        let mut answer = serde_json::json!({
            "access_token": token.access_token.secret(),
            "token_type": "Bearer",
        });
        if let Some(expires_in) = token.expires_in {
            answer["expires_in"] = expires_in.as_secs().into();
        }
        if !token.scopes.is_empty() {
            let mut scopes: Vec<&str> = token.scopes.iter().map(String::as_str).collect();
            scopes.sort_unstable();
            answer["scope"] = scopes.join(" ").into();
        }
        self.keep(client_id, answer).await
    }

    /// Keep a token answer in the grant's store, where rmcp's manager finds it.
    async fn keep(&self, client_id: &str, answer: serde_json::Value) -> Result<(), AuthError> {
        let response: OAuthTokenResponse = serde_json::from_value(answer).map_err(|error| {
            AuthError::AuthorizationFailed(format!(
                "the authorization server's token answer is not a token: {error}"
            ))
        })?;
        let granted = response
            .scopes()
            .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
            .unwrap_or_else(|| self.scopes.clone());
        self.store
            .save(StoredCredentials::new(
                client_id.to_owned(),
                Some(response),
                granted,
                Some(now_secs()),
            ))
            .await
    }
}

/// A `private_key_jwt` client assertion: issuer and subject the client, audience the
/// authorization server, valid for five minutes, with a unique id.
fn client_assertion(
    client_id: &str,
    audience: &str,
    key_pem: &Secret,
    algorithm: SigningAlgorithm,
) -> Result<String, AuthError> {
    let pem = key_pem.expose().as_bytes();
    let (key, algorithm) = match algorithm {
        SigningAlgorithm::Es256 => (
            jsonwebtoken::EncodingKey::from_ec_pem(pem),
            jsonwebtoken::Algorithm::ES256,
        ),
        SigningAlgorithm::Es384 => (
            jsonwebtoken::EncodingKey::from_ec_pem(pem),
            jsonwebtoken::Algorithm::ES384,
        ),
        SigningAlgorithm::Rs256 => (
            jsonwebtoken::EncodingKey::from_rsa_pem(pem),
            jsonwebtoken::Algorithm::RS256,
        ),
    };
    let key = key.map_err(|error| {
        AuthError::ClientCredentialsError(format!(
            "the client's private key is not a PEM key for {algorithm:?}: {error}"
        ))
    })?;
    let now = now_secs();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "jti": dpop::random_id().map_err(AuthError::InternalError)?,
    });
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &key).map_err(|error| {
        AuthError::ClientCredentialsError(format!("could not sign the client assertion: {error}"))
    })
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
        self.with_authorization(
            "POST",
            &uri,
            auth_header,
            &custom_headers,
            |token, headers| {
                self.http.post_message(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    token,
                    headers,
                )
            },
        )
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
        self.with_authorization(
            "POST",
            &uri,
            auth_header,
            &custom_headers,
            |token, headers| {
                self.http.post_message_with_response_limits(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    token,
                    headers,
                    limits,
                )
            },
        )
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
            Some(value) => Some(Token { value, dpop: false }),
            None => self.flow.token().await,
        };
        let (token, headers) =
            self.flow
                .present(token.as_ref(), "DELETE", &uri, &custom_headers)?;
        self.http
            .delete_session(uri, session_id, token, headers)
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
        self.with_authorization(
            "GET",
            &uri,
            auth_header,
            &custom_headers,
            |token, headers| {
                self.http.get_stream(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    token,
                    headers,
                )
            },
        )
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
        self.with_authorization(
            "GET",
            &uri,
            auth_header,
            &custom_headers,
            |token, headers| {
                self.http.get_stream_with_max_sse_event_size(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    token,
                    headers,
                    max_sse_event_size,
                )
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_in_the_redirect_is_put_in_words() {
        assert_eq!(
            refusal_in("http://127.0.0.1:1/callback?error=access_denied&state=s").as_deref(),
            Some("the authorization server refused the sign-in: access_denied")
        );
        assert_eq!(
            refusal_in(
                "http://127.0.0.1:1/callback?state=s&error=invalid_scope&error_description=no+such+scope"
            )
            .as_deref(),
            Some("the authorization server refused the sign-in: invalid_scope (no such scope)")
        );
        assert_eq!(
            refusal_in("http://127.0.0.1:1/callback?code=c&state=s"),
            None
        );
        assert_eq!(refusal_in("not a url"), None);
    }
}
