//! An MCP server that requires OAuth, with its own authorization server, on a loopback port:
//! our server kit's HTTP front behind a bearer check, protected resource metadata,
//! authorization server metadata, dynamic registration, an authorization endpoint that
//! consents at once (redirecting to the client's redirect URI with a code), and a token
//! endpoint (authorization code, client credentials and JWT-bearer grants). Reading needs
//! [`READ`]; calling a tool needs [`WRITE`] (a 403 `insufficient_scope` otherwise).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    body::Body,
    extract::{Query, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use switchboard_server::{Server, Tool, ToolOutput};

/// The scope reading needs.
pub const READ: &str = "mcp:read";
/// The scope calling a tool needs.
pub const WRITE: &str = "mcp:write";

/// What the authorization server issued, for tests to assert.
#[derive(Debug, Default)]
pub struct Issued {
    /// Scope of each authorization request, in order.
    pub authorizations: Vec<String>,
    /// code -> scope
    pub codes: HashMap<String, String>,
    /// token -> scope
    pub tokens: HashMap<String, String>,
    /// The `resource` of each token request.
    pub resources: Vec<String>,
    /// The `grant_type` of each token request.
    pub grants: Vec<String>,
}

/// The client that may use the client-credentials grant, and its secret.
pub const MACHINE_CLIENT: (&str, &str) = ("machine-client", "machine-secret");
/// The workload assertion the JWT-bearer grant accepts.
pub const WORKLOAD_JWT: &str = "eyJhbGciOiJFUzI1NiJ9.e30.workload";

#[derive(Clone)]
struct Protected {
    base: String,
    issued: Arc<Mutex<Issued>>,
    /// Where the metadata says tokens come from, when not from this server.
    token_endpoint: Option<String>,
}

impl Protected {
    fn challenge(&self, status: StatusCode, scope: &str, error: Option<&str>) -> Response {
        let mut value = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"{scope}\"",
            self.base
        );
        if let Some(error) = error {
            value.push_str(&format!(", error=\"{error}\""));
        }
        (status, [(header::WWW_AUTHENTICATE, value)], "").into_response()
    }
}

/// Reading needs `mcp:read`; calling a tool needs `mcp:write`.
async fn require_bearer(
    State(protected): State<Protected>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let method = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|message| message["method"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let needed = if method == "tools/call" { WRITE } else { READ };
    let granted = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| protected.issued.lock().unwrap().tokens.get(token).cloned());
    match granted {
        None => protected.challenge(StatusCode::UNAUTHORIZED, READ, None),
        Some(scope) if !scope.split(' ').any(|s| s == needed) => {
            protected.challenge(StatusCode::FORBIDDEN, needed, Some("insufficient_scope"))
        }
        Some(_) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

async fn resource_metadata(State(protected): State<Protected>) -> Json<Value> {
    Json(json!({
        "resource": format!("{}/mcp", protected.base),
        "authorization_servers": [protected.base],
        "scopes_supported": [READ, WRITE],
    }))
}

async fn server_metadata(State(protected): State<Protected>) -> Json<Value> {
    let base = &protected.base;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": protected.token_endpoint.clone().unwrap_or_else(|| format!("{base}/token")),
        "registration_endpoint": format!("{base}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn register(Json(request): Json<Value>) -> impl IntoResponse {
    (
        StatusCode::CREATED,
        Json(json!({
            "client_id": "registered-client",
            "client_name": request["client_name"],
            "redirect_uris": request["redirect_uris"],
        })),
    )
}

async fn authorize(
    State(protected): State<Protected>,
    Query(query): Query<HashMap<String, String>>,
) -> Redirect {
    let mut issued = protected.issued.lock().unwrap();
    let scope = query.get("scope").cloned().unwrap_or_default();
    issued.authorizations.push(scope.clone());
    let code = format!("code-{}", issued.authorizations.len());
    issued.codes.insert(code.clone(), scope);
    let mut target = url::Url::parse(&query["redirect_uri"]).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query["state"])
        .append_pair("iss", &protected.base);
    Redirect::to(target.as_str())
}

/// The client a token request authenticated as with HTTP Basic, if any.
fn basic_client(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn token(
    State(protected): State<Protected>,
    headers: axum::http::HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut issued = protected.issued.lock().unwrap();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    issued.grants.push(grant.clone());
    let refused = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let scope = match grant.as_str() {
        "client_credentials" => {
            let (id, secret) = MACHINE_CLIENT;
            if basic_client(&headers) != Some((id.to_owned(), secret.to_owned())) {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "invalid_client"})),
                )
                    .into_response();
            }
            format!("{READ} {WRITE}")
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            if form.get("assertion").map(String::as_str) != Some(WORKLOAD_JWT) {
                return refused("invalid_grant", "the assertion is not trusted");
            }
            format!("{READ} {WRITE}")
        }
        _ => match form.get("code").and_then(|code| issued.codes.remove(code)) {
            Some(scope) => scope,
            None => return refused("invalid_grant", "unknown code"),
        },
    };
    issued
        .resources
        .push(form.get("resource").cloned().unwrap_or_default());
    let token = format!("token-{}", issued.tokens.len() + 1);
    issued.tokens.insert(token.clone(), scope.clone());
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": scope}))
        .into_response()
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Empty {}

/// Serve the protected server on a free loopback port; its base URL and what it issued.
pub async fn protected_server() -> (String, Arc<Mutex<Issued>>) {
    protected_server_with(None).await
}

/// The same, with its metadata naming `token_endpoint` for tokens.
pub async fn protected_server_with(token_endpoint: Option<String>) -> (String, Arc<Mutex<Issued>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let protected = Protected {
        base: base.clone(),
        issued: Arc::default(),
        token_endpoint,
    };
    let kit = Server::builder("protected", "1")
        .tool(
            Tool::builder("write", "Changes something.")
                .handler(|_: Empty, _| async { Ok(ToolOutput::text("written")) }),
        )
        .build()
        .unwrap();
    let mcp = switchboard_server::router(kit, switchboard_server::HttpConfig::default()).layer(
        middleware::from_fn_with_state(protected.clone(), require_bearer),
    );
    let app = Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(server_metadata),
        )
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(protected.clone())
        .merge(mcp);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, protected.issued)
}
