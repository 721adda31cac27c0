//! Authentication: API keys, JWTs (HS256 and a JWKS from a file or a URL), the layer, and
//! RFC 9728 metadata.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::body::Body;
use base64::Engine as _;
use http::{Request, Response, StatusCode, header};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use serde_json::{Value, json};
use switchboard_policy::{
    auth::{
        AuthLayer, AuthMethod, Authenticator, Principal, ProtectedResourceMetadata, hash_key,
        protected_resource_router,
    },
    config::SecurityConfig,
};
use tower::{Layer, ServiceExt};

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/ec_private.pem");
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource";
const API_KEY: &str = "sbk_live_4f1b6f0e-the-ci-bot-key";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("fixture RSA key")
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("fixture EC key")
}

fn jwk(key: &EncodingKey, algorithm: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, algorithm).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn jwks(kids: &[(&str, Algorithm)]) -> Value {
    let keys = kids
        .iter()
        .map(|(kid, algorithm)| match algorithm {
            Algorithm::ES256 => jwk(&ec_key(), *algorithm, kid),
            _ => jwk(&rsa_key(), *algorithm, kid),
        })
        .collect();
    serde_json::to_value(JwkSet { keys }).expect("JWKS JSON")
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@example.com",
        "client_id": "chat-app",
        "scope": "expenses:read expenses:write",
        "exp": now() + 300,
        "nbf": now() - 10,
    })
}

fn sign(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signed")
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), claims)
}

fn config_toml(jwt: &str) -> SecurityConfig {
    let text = format!(
        r#"
[security]
public_base_url = "https://mcp.example.com/"
[[security.api_keys]]
client_id = "ci-bot"
sha256 = "{}"
scopes = ["expenses:read"]
{jwt}
"#,
        hash_key(API_KEY)
    );
    SecurityConfig::from_toml_section(&text).expect("valid config")
}

struct Jwks {
    _dir: tempfile::TempDir,
    authenticator: Arc<Authenticator>,
}

async fn with_jwks_file() -> Jwks {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        jwks(&[("rsa-1", Algorithm::RS256), ("ec-1", Algorithm::ES256)]).to_string(),
    )
    .expect("write JWKS");
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_file = \"{}\"\n",
        path.display()
    ));
    let authenticator = Authenticator::from_config(&config, |_| None)
        .await
        .expect("authenticator");
    Jwks {
        _dir: dir,
        authenticator: Arc::new(authenticator),
    }
}

/// What the inner service saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    principal: Option<Principal>,
    authorization: Option<String>,
    api_key: Option<String>,
    calls: usize,
}

async fn send(
    authenticator: &Arc<Authenticator>,
    request: Request<Body>,
) -> (Response<Body>, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let inner = tower::service_fn(move |request: Request<Body>| {
        let record = record.clone();
        async move {
            let mut seen = record.lock().expect("lock");
            seen.calls += 1;
            seen.principal = request.extensions().get::<Principal>().cloned();
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().expect("ascii").to_owned())
            };
            seen.authorization = header("authorization");
            seen.api_key = header("x-api-key");
            Ok::<_, Infallible>(Response::new(Body::from("upstream answer")))
        }
    });
    let service = AuthLayer::new(authenticator.clone())
        .with_public_paths(["/healthz".to_owned()])
        .layer(inner);
    let response = service.oneshot(request).await.expect("infallible");
    let seen = seen.lock().expect("lock").clone();
    (response, seen)
}

fn bearer(token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

fn challenge(response: &Response<Body>) -> String {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .expect("a WWW-Authenticate header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Send a bearer token that must be refused with 401 `invalid_token` and this description.
async fn assert_refused(authenticator: &Arc<Authenticator>, token: &str, description: &str) {
    let (response, seen) = send(authenticator, bearer(token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{description}");
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer resource_metadata=\"{METADATA}\", error=\"invalid_token\", error_description=\"{description}\""
        )
    );
    assert_eq!(seen.calls, 0, "the upstream must not be called");
}

#[test]
fn hash_key_is_sha256_hex() {
    assert_eq!(
        hash_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn an_api_key_authenticates_and_neither_credential_header_reaches_the_upstream() {
    let jwks = with_jwks_file().await;
    for request in [
        bearer(API_KEY),
        Request::post("/mcp")
            .header("X-API-Key", API_KEY)
            .body(Body::empty())
            .expect("request"),
    ] {
        let (response, seen) = send(&jwks.authenticator, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            seen.principal,
            Some(Principal {
                client_id: "ci-bot".into(),
                subject: None,
                scopes: ["expenses:read".to_owned()].into(),
                method: AuthMethod::ApiKey,
            })
        );
        assert_eq!(seen.authorization, None);
        assert_eq!(seen.api_key, None);
    }
}

#[tokio::test]
async fn a_valid_jwt_gives_its_client_user_and_scopes_and_is_not_forwarded() {
    let jwks = with_jwks_file().await;
    let (response, seen) = send(&jwks.authenticator, bearer(&rs256(&claims()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let principal = seen.principal.expect("a principal");
    assert_eq!(principal.client_id, "chat-app");
    assert_eq!(principal.subject.as_deref(), Some("alice@example.com"));
    assert_eq!(
        principal.scopes,
        ["expenses:read".to_owned(), "expenses:write".to_owned()].into()
    );
    assert_eq!(principal.method, AuthMethod::Jwt);
    assert_eq!(seen.authorization, None);

    // ES256 from the same set; scopes from `scp`, client from `azp` when client_id is absent.
    let mut other = claims();
    let object = other.as_object_mut().expect("object");
    object.remove("client_id");
    object.remove("scope");
    object.insert("azp".into(), json!("cli"));
    object.insert("scp".into(), json!(["bookmarks:read"]));
    let token = sign(Algorithm::ES256, Some("ec-1"), &ec_key(), &other);
    let (response, seen) = send(&jwks.authenticator, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let principal = seen.principal.expect("a principal");
    assert_eq!(principal.client_id, "cli");
    assert_eq!(principal.scopes, ["bookmarks:read".to_owned()].into());

    // Neither client_id nor azp: the client is the subject.
    other.as_object_mut().expect("object").remove("azp");
    let token = sign(Algorithm::ES256, Some("ec-1"), &ec_key(), &other);
    let (_, seen) = send(&jwks.authenticator, bearer(&token)).await;
    assert_eq!(
        seen.principal.expect("a principal").client_id,
        "alice@example.com"
    );
}

#[tokio::test]
async fn missing_credentials_get_401_naming_the_resource_metadata() {
    let jwks = with_jwks_file().await;
    let request = Request::post("/mcp").body(Body::empty()).expect("request");
    let (response, seen) = send(&jwks.authenticator, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!("Bearer resource_metadata=\"{METADATA}\"")
    );
    assert_eq!(seen.calls, 0);

    let basic = Request::post("/mcp")
        .header(header::AUTHORIZATION, "Basic YWxpY2U6c2VjcmV0")
        .body(Body::empty())
        .expect("request");
    let (response, _) = send(&jwks.authenticator, basic).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn bad_tokens_are_refused_each_with_its_reason() {
    let jwks = with_jwks_file().await;
    let auth = &jwks.authenticator;
    assert_refused(auth, "not-a-key", "unknown API key").await;

    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    assert_refused(auth, &rs256(&expired), "token expired").await;

    let mut early = claims();
    early["nbf"] = json!(now() + 300);
    assert_refused(auth, &rs256(&early), "token not yet valid").await;

    let mut audience = claims();
    audience["aud"] = json!("https://other.example.com/mcp");
    assert_refused(auth, &rs256(&audience), "token is for another audience").await;

    let mut issuer = claims();
    issuer["iss"] = json!("https://evil.example.com");
    assert_refused(auth, &rs256(&issuer), "token is from an untrusted issuer").await;

    let mut no_exp = claims();
    no_exp.as_object_mut().expect("object").remove("exp");
    assert_refused(auth, &rs256(&no_exp), "token has no exp claim").await;

    // Forged: the payload of a valid token changed to claim more scopes.
    let token = rs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut escalated = claims();
    escalated["scope"] = json!("expenses:admin");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(escalated.to_string());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_refused(auth, &forged, "invalid signature").await;

    // Signed by a key that is not in the set, under a kid that is.
    let stranger =
        EncodingKey::from_ec_pem(include_bytes!("../fixtures/ec_other.pem")).expect("an EC key");
    let token = sign(Algorithm::ES256, Some("ec-1"), &stranger, &claims());
    assert_refused(auth, &token, "invalid signature").await;
}

#[tokio::test]
async fn the_wrong_algorithm_and_unknown_keys_are_refused() {
    let jwks = with_jwks_file().await;
    let auth = &jwks.authenticator;
    let encode =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());

    // alg "none", unsigned.
    let none = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
        encode(&claims())
    );
    assert_refused(auth, &none, "signing algorithm not allowed").await;

    // HS/RS confusion: HMAC with the RSA public key as the secret, under the RSA key's kid.
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &claims(),
    );
    assert_refused(auth, &confused, "signing algorithm not allowed").await;

    // An RS256 token naming the EC key.
    let crossed = sign(Algorithm::RS256, Some("ec-1"), &rsa_key(), &claims());
    assert_refused(auth, &crossed, "signing algorithm not allowed").await;

    // RS384 is not configured even though the key is RSA.
    let rs384 = sign(Algorithm::RS384, Some("rsa-1"), &rsa_key(), &claims());
    assert_refused(auth, &rs384, "signing algorithm not allowed").await;

    let unknown = sign(Algorithm::RS256, Some("rsa-9"), &rsa_key(), &claims());
    assert_refused(auth, &unknown, "unknown key id (kid)").await;

    let no_kid = sign(Algorithm::RS256, None, &rsa_key(), &claims());
    assert_refused(auth, &no_kid, "token has no key id (kid)").await;
}

#[tokio::test]
async fn hs256_uses_the_secret_from_the_named_variable_and_nothing_else() {
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\nhs256_secret_env = \"TEST_JWT_SECRET\"\n"
    ));
    let secret = "a-shared-secret-of-enough-length-000";
    let missing = Authenticator::from_config(&config, |_| None)
        .await
        .expect_err("the variable is unset");
    assert!(missing.to_string().contains("TEST_JWT_SECRET"), "{missing}");
    let auth = Arc::new(
        Authenticator::from_config(&config, |name| {
            (name == "TEST_JWT_SECRET").then(|| secret.to_owned())
        })
        .await
        .expect("authenticator"),
    );
    let good = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(secret.as_bytes()),
        &claims(),
    );
    let (response, seen) = send(&auth, bearer(&good)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.principal.expect("principal").client_id, "chat-app");

    let wrong = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another-secret"),
        &claims(),
    );
    assert_refused(&auth, &wrong, "invalid signature").await;
    assert_refused(&auth, &rs256(&claims()), "signing algorithm not allowed").await;
}

/// A JWKS endpoint on loopback whose key set can change, counting fetches.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    /// When set, the endpoint answers 500.
    failing: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks_server(initial: Value) -> JwksServer {
    let keys = Arc::new(Mutex::new(initial));
    let hits = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (served, counted, broken) = (keys.clone(), hits.clone(), failing.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (served, counted, broken) = (served.clone(), counted.clone(), broken.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                if broken.load(Ordering::SeqCst) {
                    return Response::builder()
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                        .body(Body::empty())
                        .expect("response");
                }
                let body = served.lock().expect("lock").to_string();
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .expect("response")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    JwksServer {
        url: format!("http://{address}/jwks.json"),
        keys,
        hits,
        failing,
        task,
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let server = jwks_server(jwks(&[("rsa-1", Algorithm::RS256)])).await;
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_url = \"{}\"\njwks_min_refresh_secs = 3600\n",
        server.url
    ));
    let auth = Arc::new(
        Authenticator::from_config(&config, |_| None)
            .await
            .expect("authenticator"),
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "fetched at start");
    let (response, _) = send(&auth, bearer(&rs256(&claims()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );

    // The issuer rotates in a new key: the first token naming it causes one refetch.
    *server.keys.lock().expect("lock") =
        jwks(&[("rsa-1", Algorithm::RS256), ("ec-2", Algorithm::ES256)]);
    let token = sign(Algorithm::ES256, Some("ec-2"), &ec_key(), &claims());
    let (response, _) = send(&auth, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);

    // That was this interval's one refetch: unknown kids are now refused without fetching.
    for kid in ["nope-1", "nope-2", "nope-3"] {
        let token = sign(Algorithm::RS256, Some(kid), &rsa_key(), &claims());
        assert_refused(&auth, &token, "unknown key id (kid)").await;
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "no refetch within the interval"
    );
}

#[tokio::test]
async fn the_jwks_is_refetched_after_its_ttl() {
    let server = jwks_server(jwks(&[("rsa-1", Algorithm::RS256)])).await;
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_url = \"{}\"\njwks_ttl_secs = 0\n",
        server.url
    ));
    let auth = Arc::new(
        Authenticator::from_config(&config, |_| None)
            .await
            .expect("authenticator"),
    );
    // The key is removed upstream; with a TTL of zero the next token sees that.
    *server.keys.lock().expect("lock") = jwks(&[("rsa-2", Algorithm::RS256)]);
    assert_refused(&auth, &rs256(&claims()), "unknown key id (kid)").await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_jwks_keeps_known_keys_and_answers_503_for_others() {
    let server = jwks_server(jwks(&[("rsa-1", Algorithm::RS256)])).await;
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_url = \"{}\"\njwks_ttl_secs = 0\n",
        server.url
    ));
    let auth = Arc::new(
        Authenticator::from_config(&config, |_| None)
            .await
            .expect("authenticator"),
    );
    server.failing.store(true, Ordering::SeqCst);
    // The set is past its TTL and cannot be refetched: the keys already known still work.
    let (response, seen) = send(&auth, bearer(&rs256(&claims()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.principal.is_some());
    // A kid that cannot be checked is not the client's fault: 503, not 401.
    let token = sign(Algorithm::ES256, Some("ec-new"), &ec_key(), &claims());
    let (response, seen) = send(&auth, bearer(&token)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert_eq!(seen.calls, 0);
}

/// A `MakeWriter` that keeps everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_are_never_logged_even_at_trace() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let jwks = with_jwks_file().await;
    let good = rs256(&claims());
    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    let expired = rs256(&expired);
    let wrong_key = "sbk_live_wrong-key-that-must-not-leak";
    for request in [
        bearer(&good),
        bearer(&expired),
        bearer(API_KEY),
        bearer(wrong_key),
        Request::post("/mcp")
            .header("X-API-Key", wrong_key)
            .body(Body::empty())
            .expect("request"),
    ] {
        let _ = send(&jwks.authenticator, request).await;
    }
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(log.contains("authenticated"), "the layer logs: {log}");
    assert!(log.contains("token expired"), "refusals are logged: {log}");
    for secret in [good.as_str(), expired.as_str(), API_KEY, wrong_key] {
        assert!(!log.contains(secret), "a credential was logged");
    }
    // Not even the signature part of a JWT.
    let signature = good.rsplit('.').next().expect("signature");
    assert!(!log.contains(signature));
}

#[tokio::test]
async fn public_paths_need_no_credentials_but_still_lose_them() {
    let jwks = with_jwks_file().await;
    let request = Request::get("/healthz")
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .body(Body::empty())
        .expect("request");
    let (response, seen) = send(&jwks.authenticator, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.authorization, None);
    assert_eq!(seen.principal, None);

    let request = Request::get("/healthzz")
        .body(Body::empty())
        .expect("request");
    let (response, _) = send(&jwks.authenticator, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_protected_resource_metadata_follows_rfc_9728() {
    let config = SecurityConfig::from_toml_section(
        r#"
[security]
public_base_url = "https://mcp.example.com"
[security.resource]
authorization_servers = ["https://auth.example.com"]
scopes_supported = ["expenses:read", "expenses:write"]
"#,
    )
    .expect("valid");
    let router = protected_resource_router(ProtectedResourceMetadata::from_config(&config));
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let document: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            document,
            json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["expenses:read", "expenses:write"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}

#[tokio::test]
async fn a_jwks_that_cannot_be_loaded_is_reported_at_start_up() {
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_file = \"/nonexistent/jwks.json\"\n"
    ));
    let error = Authenticator::from_config(&config, |_| None)
        .await
        .expect_err("no such file");
    assert!(
        error.to_string().contains("/nonexistent/jwks.json"),
        "{error}"
    );
}

#[tokio::test]
async fn the_layer_mounts_on_an_axum_router_next_to_the_metadata() {
    let jwks = with_jwks_file().await;
    let config = config_toml("");
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(
                |axum::Extension(principal): axum::Extension<Principal>,
                 headers: http::HeaderMap| async move {
                    format!(
                        "{} {}",
                        principal.client_id,
                        headers.contains_key(header::AUTHORIZATION)
                    )
                },
            ),
        )
        .merge(protected_resource_router(
            ProtectedResourceMetadata::from_config(&config),
        ))
        .layer(AuthLayer::new(jwks.authenticator.clone()));

    let response = app
        .clone()
        .oneshot(bearer(API_KEY))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .expect("body");
    assert_eq!(&body[..], b"ci-bot false");

    let metadata = app
        .clone()
        .oneshot(
            Request::get("/.well-known/oauth-protected-resource")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(metadata.status(), StatusCode::OK, "public without a token");

    let refused = app
        .oneshot(Request::post("/mcp").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

fn with_jti(jti: &str) -> Value {
    let mut claims = claims();
    claims["jti"] = json!(jti);
    claims
}

async fn verdict(authenticator: &Authenticator, token: &str) -> Result<Principal, String> {
    authenticator
        .authenticate(&switchboard_policy::auth::Credential::new(token))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn revoked_token_ids_are_refused() {
    use switchboard_policy::revocation::{MemoryRevocations, Revocations};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[("rsa-1", Algorithm::RS256)]).to_string()).expect("JWKS");
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_file = \"{}\"\nrevoked = [\"stolen-1\"]\n",
        path.display()
    ));
    let list = Arc::new(MemoryRevocations::new());
    let authenticator = Authenticator::from_config(&config, |_| None)
        .await
        .expect("authenticator")
        .with_revocations(list.clone());
    // From the config, for good.
    let error = verdict(&authenticator, &rs256(&with_jti("stolen-1")))
        .await
        .expect_err("revoked in the config");
    assert!(error.contains("token revoked"), "{error}");
    // At run time.
    let token = rs256(&with_jti("session-7"));
    verdict(&authenticator, &token).await.expect("valid before");
    list.revoke(
        "session-7",
        SystemTime::now() + std::time::Duration::from_secs(300),
    )
    .await
    .expect("revoke");
    let error = verdict(&authenticator, &token)
        .await
        .expect_err("revoked at run time");
    assert!(error.contains("token revoked"), "{error}");
    // Other tokens, and tokens without an id, still work.
    verdict(&authenticator, &rs256(&with_jti("session-8")))
        .await
        .expect("another id");
    verdict(&authenticator, &rs256(&claims()))
        .await
        .expect("no jti");
    // An absurdly long id is malformed, not looked up.
    let error = verdict(&authenticator, &rs256(&with_jti(&"j".repeat(300))))
        .await
        .expect_err("too long");
    assert!(error.contains("malformed"), "{error}");
}

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn revocations_in_redis_reach_every_replica_and_fail_closed() {
    use switchboard_policy::revocation::{RedisRevocations, Revocations};
    let Ok(url) = std::env::var("SWITCHBOARD_TEST_REDIS_URL") else {
        eprintln!("SKIPPED: SWITCHBOARD_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("sb-test-revoke-{}-{}", std::process::id(), now());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[("rsa-1", Algorithm::RS256)]).to_string()).expect("JWKS");
    let config = config_toml(&format!(
        "[security.jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\"]\njwks_file = \"{}\"\n",
        path.display()
    ));
    // Two replicas, each with its own connection, and the operator's CLI as a third.
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let list = RedisRevocations::connect(&url, &prefix)
            .await
            .expect("redis");
        replicas.push(
            Authenticator::from_config(&config, |_| None)
                .await
                .expect("authenticator")
                .with_revocations(Arc::new(list)),
        );
    }
    let operator = RedisRevocations::connect(&url, &prefix)
        .await
        .expect("redis");
    let token = rs256(&with_jti("laptop-lost"));
    for replica in &replicas {
        verdict(replica, &token).await.expect("valid before");
    }
    operator
        .revoke(
            "laptop-lost",
            SystemTime::now() + std::time::Duration::from_secs(60),
        )
        .await
        .expect("revoke");
    for replica in &replicas {
        let error = verdict(replica, &token)
            .await
            .expect_err("revoked everywhere");
        assert!(error.contains("token revoked"), "{error}");
    }
    // A list that cannot be read refuses (503), it does not let the token through.
    let unreachable = Authenticator::from_config(&config, |_| None)
        .await
        .expect("authenticator")
        .with_revocations(Arc::new(BrokenList));
    let error = verdict(&unreachable, &rs256(&with_jti("any")))
        .await
        .expect_err("fails closed");
    assert!(error.contains("revocation list"), "{error}");
}

#[derive(Debug)]
struct BrokenList;

impl switchboard_policy::revocation::Revocations for BrokenList {
    fn is_revoked<'a>(
        &'a self,
        _jti: &'a str,
    ) -> switchboard_policy::revocation::RevocationFuture<'a, bool> {
        Box::pin(async {
            Err(switchboard_policy::revocation::RevocationError::Redis(
                redis::RedisError::from((redis::ErrorKind::Io, "connection refused")),
            ))
        })
    }
    fn revoke<'a>(
        &'a self,
        _jti: &'a str,
        _until: SystemTime,
    ) -> switchboard_policy::revocation::RevocationFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}
