//! Authentication: static API keys (stored as SHA-256 hashes, compared in constant time) and
//! JWT bearer tokens (HS256 with a secret, or RS256/ES256 from a JWKS), the tower layer that
//! puts a [`Principal`] into each request, and the RFC 9728 protected-resource metadata.
//!
//! Credentials are taken from `Authorization: Bearer ...` or `X-API-Key`, and both headers are
//! removed from the request before it goes on, so no upstream ever sees a client's token. No
//! token is ever logged, at any level; errors name what was wrong, never the token.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    path::PathBuf,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use base64::Engine as _;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::{
    config::{JwtAlgorithm, JwtConfig, ResourceMetadataConfig, SecurityConfig},
    revocation::Revocations,
};

/// The header that carries a static API key (besides `Authorization: Bearer`).
pub const API_KEY_HEADER: &str = "x-api-key";
/// Where the protected-resource metadata is served (RFC 9728 section 3).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// How long one JWKS download may take.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// The longest credential looked at; longer ones are refused without being parsed.
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// The SHA-256 of an API key as 64 lowercase hex digits: what the config stores.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks(2).enumerate() {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        out[index] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ApiKey,
    Jwt,
}

/// An authenticated caller, put into the request's extensions by [`AuthLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub client_id: String,
    /// The token's `sub` (the user), when it has one.
    pub subject: Option<String>,
    pub scopes: BTreeSet<String>,
    pub method: AuthMethod,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

/// A credential taken from a request. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    pub fn new(value: impl Into<String>) -> Self {
        Credential(value.into())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Why a token was refused. The descriptions go into `error_description`, so they never
/// quote the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidToken {
    UnknownApiKey,
    Malformed,
    TooLong,
    Expired,
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    BadSignature,
    AlgorithmNotAllowed,
    MissingKeyId,
    UnknownKeyId,
    MissingClaim(&'static str),
    /// A JWT was given but only API keys are configured.
    JwtNotAccepted,
    /// The token's id (`jti`) has been revoked.
    Revoked,
}

impl InvalidToken {
    pub fn description(self) -> &'static str {
        match self {
            InvalidToken::UnknownApiKey => "unknown API key",
            InvalidToken::Malformed => "malformed token",
            InvalidToken::TooLong => "token too long",
            InvalidToken::Expired => "token expired",
            InvalidToken::NotYetValid => "token not yet valid",
            InvalidToken::WrongAudience => "token is for another audience",
            InvalidToken::WrongIssuer => "token is from an untrusted issuer",
            InvalidToken::BadSignature => "invalid signature",
            InvalidToken::AlgorithmNotAllowed => "signing algorithm not allowed",
            InvalidToken::MissingKeyId => "token has no key id (kid)",
            InvalidToken::UnknownKeyId => "unknown key id (kid)",
            InvalidToken::MissingClaim("exp") => "token has no exp claim",
            InvalidToken::MissingClaim("iss") => "token has no iss claim",
            InvalidToken::MissingClaim("aud") => "token has no aud claim",
            InvalidToken::MissingClaim(_) => "token names no client (client id, azp or sub)",
            InvalidToken::JwtNotAccepted => "bearer tokens other than API keys are not accepted",
            InvalidToken::Revoked => "token revoked",
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials were given")]
    Missing,
    #[error("invalid token: {}", .0.description())]
    InvalidToken(InvalidToken),
    /// The signing keys or the revocation list could not be read; not the caller's fault.
    #[error("tokens cannot be checked right now: {reason}")]
    KeysUnavailable { reason: String },
}

/// The authenticator could not be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("security.api_keys[{index}].sha256 is not a SHA-256 in hex")]
    BadKeyHash { index: usize },
    #[error("the environment variable {var} (security.jwt.hs256_secret_env) is not set or empty")]
    MissingSecret { var: String },
    #[error("cannot load the JWKS from {location}: {reason}")]
    Jwks { location: String, reason: String },
    #[error("cannot build the HTTP client for the JWKS: {0}")]
    HttpClient(#[source] reqwest::Error),
}

struct ApiKeyEntry {
    hash: [u8; 32],
    client_id: String,
    scopes: BTreeSet<String>,
}

/// Checks credentials. Build it once from the config; share it (`Arc`) between layers.
pub struct Authenticator {
    api_keys: Vec<ApiKeyEntry>,
    jwt: Option<JwtVerifier>,
    resource_metadata_url: String,
    /// Token ids from the config, refused for good.
    revoked: std::collections::HashSet<String>,
    /// Token ids revoked at run time (in memory, or shared through Redis).
    revocations: Option<Arc<dyn Revocations>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_keys", &self.api_keys.len())
            .field("jwt", &self.jwt.is_some())
            .field("resource_metadata_url", &self.resource_metadata_url)
            .finish()
    }
}

impl Authenticator {
    /// Build from the `[security]` config. `lookup_env` resolves the variable named by
    /// `jwt.hs256_secret_env` (only the CLI reads the environment). A JWKS is loaded now, so a
    /// bad URL or file is reported at start-up.
    pub async fn from_config(
        config: &SecurityConfig,
        lookup_env: impl Fn(&str) -> Option<String>,
    ) -> Result<Authenticator, AuthSetupError> {
        let mut api_keys = Vec::with_capacity(config.api_keys.len());
        for (index, key) in config.api_keys.iter().enumerate() {
            let hash = unhex(&key.sha256.to_ascii_lowercase())
                .ok_or(AuthSetupError::BadKeyHash { index })?;
            api_keys.push(ApiKeyEntry {
                hash,
                client_id: key.client_id.clone(),
                scopes: key.scopes.iter().cloned().collect(),
            });
        }
        let jwt = match &config.jwt {
            Some(jwt) => Some(JwtVerifier::from_config(jwt, lookup_env).await?),
            None => None,
        };
        Ok(Authenticator {
            api_keys,
            jwt,
            resource_metadata_url: format!("{}{RESOURCE_METADATA_PATH}", config.public_base_url()),
            revoked: config
                .jwt
                .iter()
                .flat_map(|jwt| jwt.revoked.iter().cloned())
                .collect(),
            revocations: None,
        })
    }

    /// Also refuse JWTs whose `jti` is on `revocations`. A list that cannot be read fails
    /// closed: the request gets 503, not access.
    pub fn with_revocations(mut self, revocations: Arc<dyn Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    async fn check_revoked(&self, jti: Option<&str>) -> Result<(), AuthError> {
        let Some(jti) = jti else {
            return Ok(());
        };
        if self.revoked.contains(jti) {
            return Err(AuthError::InvalidToken(InvalidToken::Revoked));
        }
        if let Some(revocations) = &self.revocations {
            match revocations.is_revoked(jti).await {
                Ok(true) => return Err(AuthError::InvalidToken(InvalidToken::Revoked)),
                Ok(false) => {}
                Err(error) => {
                    return Err(AuthError::KeysUnavailable {
                        reason: error.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The URL named in `WWW-Authenticate: Bearer resource_metadata="..."`.
    pub fn resource_metadata_url(&self) -> &str {
        &self.resource_metadata_url
    }

    /// Check one credential. An API key is looked up first (every stored hash is compared, in
    /// constant time); anything else is verified as a JWT when JWTs are configured.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, AuthError> {
        let value = credential.0.as_str();
        if value.is_empty() {
            return Err(AuthError::Missing);
        }
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(AuthError::InvalidToken(InvalidToken::TooLong));
        }
        if let Some(principal) = self.api_key(value) {
            return Ok(principal);
        }
        match &self.jwt {
            Some(jwt) if value.split('.').count() == 3 => {
                let (principal, jti) = jwt.verify(value).await?;
                self.check_revoked(jti.as_deref()).await?;
                Ok(principal)
            }
            Some(_) => Err(AuthError::InvalidToken(InvalidToken::UnknownApiKey)),
            None if value.split('.').count() == 3 && !self.api_keys.is_empty() => {
                Err(AuthError::InvalidToken(InvalidToken::UnknownApiKey))
            }
            None if value.split('.').count() == 3 => {
                Err(AuthError::InvalidToken(InvalidToken::JwtNotAccepted))
            }
            None => Err(AuthError::InvalidToken(InvalidToken::UnknownApiKey)),
        }
    }

    fn api_key(&self, value: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        // Compare against every key without stopping early, so timing says nothing about
        // which (or whether a) key matched.
        let mut found: Option<&ApiKeyEntry> = None;
        for entry in &self.api_keys {
            let equal: bool = entry.hash.ct_eq(&digest).into();
            if equal && found.is_none() {
                found = Some(entry);
            }
        }
        found.map(|entry| Principal {
            client_id: entry.client_id.clone(),
            subject: None,
            scopes: entry.scopes.clone(),
            method: AuthMethod::ApiKey,
        })
    }

    /// The answer to a failed authentication: 401 with `WWW-Authenticate` naming the
    /// resource metadata (and `invalid_token` when a token was given), or 503 when the
    /// signing keys are unavailable.
    pub fn refusal(&self, error: &AuthError) -> Response<Body> {
        let (status, challenge, body) = match error {
            AuthError::Missing => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer resource_metadata=\"{}\"",
                    self.resource_metadata_url
                ),
                serde_json::json!({"error": "unauthorized", "error_description": "credentials are required"}),
            ),
            AuthError::InvalidToken(reason) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer resource_metadata=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
                    self.resource_metadata_url,
                    reason.description()
                ),
                serde_json::json!({"error": "invalid_token", "error_description": reason.description()}),
            ),
            AuthError::KeysUnavailable { .. } => {
                let mut response = json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"error": "temporarily_unavailable", "error_description": "cannot check tokens right now"}),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
        };
        let mut response = json_response(status, &body);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Take the credential out of the headers, removing `Authorization` and `X-API-Key` whatever
/// they hold, so they are never forwarded. `Ok(None)`: none was given; `Err`: one was given in
/// a form that is not accepted (e.g. `Authorization: Basic`).
pub fn take_credential(headers: &mut HeaderMap) -> Result<Option<Credential>, AuthError> {
    let authorization: Vec<HeaderValue> = match headers.entry(header::AUTHORIZATION) {
        http::header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
        http::header::Entry::Vacant(_) => Vec::new(),
    };
    let api_key: Vec<HeaderValue> = match headers.entry(API_KEY_HEADER) {
        http::header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
        http::header::Entry::Vacant(_) => Vec::new(),
    };
    if authorization.len() + api_key.len() > 1 {
        return Err(AuthError::InvalidToken(InvalidToken::Malformed));
    }
    if let Some(value) = authorization.first() {
        let text = value
            .to_str()
            .map_err(|_| AuthError::InvalidToken(InvalidToken::Malformed))?;
        let (scheme, token) = text
            .split_once(' ')
            .ok_or(AuthError::InvalidToken(InvalidToken::Malformed))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::InvalidToken(InvalidToken::Malformed));
        }
        return Ok(Some(Credential::new(token.trim())));
    }
    if let Some(value) = api_key.first() {
        let text = value
            .to_str()
            .map_err(|_| AuthError::InvalidToken(InvalidToken::Malformed))?;
        if text.trim().is_empty() {
            return Err(AuthError::InvalidToken(InvalidToken::Malformed));
        }
        return Ok(Some(Credential::new(text.trim())));
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// JWT

struct VerifyKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

enum KeySource {
    Secret(Arc<VerifyKey>),
    Jwks(Box<JwksCache>),
}

struct JwtVerifier {
    issuer: String,
    audience: Vec<String>,
    leeway: u64,
    client_id_claim: String,
    algorithms: Vec<Algorithm>,
    source: KeySource,
}

fn to_algorithm(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
    }
}

/// The fields of a JWT header read before any verification, to pick the key.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl JwtVerifier {
    async fn from_config(
        config: &JwtConfig,
        lookup_env: impl Fn(&str) -> Option<String>,
    ) -> Result<JwtVerifier, AuthSetupError> {
        let algorithms: Vec<Algorithm> = config
            .effective_algorithms()
            .into_iter()
            .map(to_algorithm)
            .collect();
        let source = if let Some(var) = &config.hs256_secret_env {
            let secret = lookup_env(var)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| AuthSetupError::MissingSecret { var: var.clone() })?;
            KeySource::Secret(Arc::new(VerifyKey {
                key: DecodingKey::from_secret(secret.as_bytes()),
                algorithms: vec![Algorithm::HS256],
            }))
        } else {
            let location = match (&config.jwks_url, &config.jwks_file) {
                (Some(url), _) => {
                    let url = url::Url::parse(url).map_err(|error| AuthSetupError::Jwks {
                        location: url.clone(),
                        reason: error.to_string(),
                    })?;
                    // reqwest is built without a bundled TLS provider (see switchboard-client);
                    // installing twice is harmless.
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    let client = reqwest::Client::builder()
                        .timeout(JWKS_FETCH_TIMEOUT)
                        .build()
                        .map_err(AuthSetupError::HttpClient)?;
                    JwksLocation::Url { client, url }
                }
                (None, Some(path)) => JwksLocation::File(path.clone()),
                (None, None) => {
                    return Err(AuthSetupError::Jwks {
                        location: "security.jwt".into(),
                        reason: "no hs256_secret_env, jwks_url or jwks_file".into(),
                    });
                }
            };
            let cache = JwksCache {
                ttl: Duration::from_secs(config.jwks_ttl_secs),
                min_refresh: Duration::from_secs(config.jwks_min_refresh_secs),
                allowed: algorithms.clone(),
                state: RwLock::new(None),
                refresh: tokio::sync::Mutex::new(()),
                location,
            };
            let keys = cache.load().await.map_err(|reason| AuthSetupError::Jwks {
                location: cache.location.to_string(),
                reason,
            })?;
            cache.store(keys, false);
            KeySource::Jwks(Box::new(cache))
        };
        Ok(JwtVerifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway_secs,
            client_id_claim: config.client_id_claim.clone(),
            algorithms,
            source,
        })
    }

    /// The token's principal and its id (`jti`), if it has one.
    async fn verify(&self, token: &str) -> Result<(Principal, Option<String>), AuthError> {
        let invalid = AuthError::InvalidToken;
        let header_part = token.split('.').next().unwrap_or_default();
        let header_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_part.trim_end_matches('='))
            .map_err(|_| invalid(InvalidToken::Malformed))?;
        let header: RawHeader =
            serde_json::from_slice(&header_bytes).map_err(|_| invalid(InvalidToken::Malformed))?;
        // `none` and anything not configured stop here, before any key is chosen.
        let algorithm = header
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or(invalid(InvalidToken::AlgorithmNotAllowed))?;
        let key = match &self.source {
            KeySource::Secret(key) => key.clone(),
            KeySource::Jwks(cache) => {
                let kid = header.kid.ok_or(invalid(InvalidToken::MissingKeyId))?;
                cache.key(&kid).await?
            }
        };
        // Each key allows only its own family's algorithms: an RSA public key is never used
        // as an HMAC secret (the HS/RS confusion).
        if !key.algorithms.contains(&algorithm) || key.key.family() != algorithm.family() {
            return Err(invalid(InvalidToken::AlgorithmNotAllowed));
        }
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            token.as_bytes(),
            &key.key,
            &validation,
        )
        .map_err(|error| {
            invalid(match error.kind() {
                ErrorKind::ExpiredSignature => InvalidToken::Expired,
                ErrorKind::ImmatureSignature => InvalidToken::NotYetValid,
                ErrorKind::InvalidAudience => InvalidToken::WrongAudience,
                ErrorKind::InvalidIssuer => InvalidToken::WrongIssuer,
                ErrorKind::InvalidSignature => InvalidToken::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                    InvalidToken::AlgorithmNotAllowed
                }
                ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                    "exp" => InvalidToken::MissingClaim("exp"),
                    "iss" => InvalidToken::MissingClaim("iss"),
                    "aud" => InvalidToken::MissingClaim("aud"),
                    _ => InvalidToken::Malformed,
                },
                _ => InvalidToken::Malformed,
            })
        })?;
        let claims = data.claims;
        let string = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let subject = string("sub");
        let client_id = string(&self.client_id_claim)
            .or_else(|| string("azp"))
            .or_else(|| subject.clone())
            .ok_or(invalid(InvalidToken::MissingClaim("client_id")))?;
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(scope)), _) | (None, Some(Value::String(scope))) => scope
                .split_whitespace()
                .map(str::to_owned)
                .collect::<BTreeSet<_>>(),
            (None, Some(Value::Array(items))) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            (None, None) => BTreeSet::new(),
            _ => return Err(invalid(InvalidToken::Malformed)),
        };
        let jti = string("jti");
        if jti
            .as_ref()
            .is_some_and(|jti| jti.len() > crate::revocation::MAX_TOKEN_ID_BYTES)
        {
            return Err(invalid(InvalidToken::Malformed));
        }
        Ok((
            Principal {
                client_id,
                subject,
                scopes,
                method: AuthMethod::Jwt,
            },
            jti,
        ))
    }
}

enum JwksLocation {
    Url {
        client: reqwest::Client,
        url: url::Url,
    },
    File(PathBuf),
}

impl fmt::Display for JwksLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksLocation::Url { url, .. } => write!(f, "{url}"),
            JwksLocation::File(path) => write!(f, "{}", path.display()),
        }
    }
}

struct JwksState {
    keys: HashMap<String, Arc<VerifyKey>>,
    fetched_at: Instant,
    /// The last refetch caused by an unknown `kid`, which is rate-limited.
    last_forced: Option<Instant>,
}

/// The key set, refetched when older than `ttl` and (at most once per `min_refresh`) when a
/// token names a `kid` it does not have. A failed refetch keeps the keys already known.
struct JwksCache {
    location: JwksLocation,
    ttl: Duration,
    min_refresh: Duration,
    allowed: Vec<Algorithm>,
    state: RwLock<Option<JwksState>>,
    /// One refetch at a time; others wait for it and then look again.
    refresh: tokio::sync::Mutex<()>,
}

impl JwksCache {
    async fn load(&self) -> Result<HashMap<String, Arc<VerifyKey>>, String> {
        let bytes = match &self.location {
            JwksLocation::File(path) => tokio::fs::read(path)
                .await
                .map_err(|error| error.to_string())?,
            JwksLocation::Url { client, url } => {
                let mut response = client
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(|error| error.without_url().to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP status {}", response.status()));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|error| error.without_url().to_string())?
                {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                body
            }
        };
        let set: JwkSet =
            serde_json::from_slice(&bytes).map_err(|error| format!("not a JWKS: {error}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                tracing::warn!(kid, "skipping a JWKS key that cannot be used");
                continue;
            };
            let family = key.family();
            let declared = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            let algorithms: Vec<Algorithm> = self
                .allowed
                .iter()
                .copied()
                .filter(|a| a.family() == family && family != AlgorithmFamily::Hmac)
                .filter(|a| declared.is_none_or(|d| d == *a))
                .collect();
            if !algorithms.is_empty() {
                keys.insert(kid, Arc::new(VerifyKey { key, algorithms }));
            }
        }
        Ok(keys)
    }

    fn store(&self, keys: HashMap<String, Arc<VerifyKey>>, forced: bool) {
        let now = Instant::now();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let last_forced = match (&*state, forced) {
            (_, true) => Some(now),
            (Some(old), false) => old.last_forced,
            (None, false) => None,
        };
        *state = Some(JwksState {
            keys,
            fetched_at: now,
            last_forced,
        });
    }

    /// The key with this id, stale state refreshed first.
    async fn key(&self, kid: &str) -> Result<Arc<VerifyKey>, AuthError> {
        let (found, stale, may_force) = self.look(kid);
        if let Some(key) = found.as_ref().filter(|_| !stale) {
            return Ok(key.clone());
        }
        if found.is_none() && !stale && !may_force {
            return Err(AuthError::InvalidToken(InvalidToken::UnknownKeyId));
        }
        let _guard = self.refresh.lock().await;
        // Someone else may have refreshed while we waited.
        let (again, stale_now, may_force_now) = self.look(kid);
        if let Some(key) = again.as_ref().filter(|_| !stale_now) {
            return Ok(key.clone());
        }
        if again.is_none() && !stale_now && !may_force_now {
            return Err(AuthError::InvalidToken(InvalidToken::UnknownKeyId));
        }
        match self.load().await {
            Ok(keys) => {
                let key = keys.get(kid).cloned();
                self.store(keys, !stale_now);
                key.ok_or(AuthError::InvalidToken(InvalidToken::UnknownKeyId))
            }
            Err(reason) => {
                tracing::warn!(location = %self.location, %reason, "cannot refresh the JWKS");
                if !stale_now {
                    // Do not retry an unknown kid's refetch until min_refresh has passed.
                    self.mark_forced();
                }
                match again {
                    Some(key) => Ok(key),
                    None if stale_now => Err(AuthError::KeysUnavailable { reason }),
                    None => Err(AuthError::InvalidToken(InvalidToken::UnknownKeyId)),
                }
            }
        }
    }

    fn mark_forced(&self) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = state.as_mut() {
            state.last_forced = Some(Instant::now());
        }
    }

    /// (the key if known, whether the set is past its TTL, whether an unknown kid may refetch)
    fn look(&self, kid: &str) -> (Option<Arc<VerifyKey>>, bool, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        match &*state {
            None => (None, true, true),
            Some(state) => (
                state.keys.get(kid).cloned(),
                state.fetched_at.elapsed() >= self.ttl,
                state
                    .last_forced
                    .is_none_or(|at| at.elapsed() >= self.min_refresh),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The layer

/// A tower layer that authenticates every request: the [`Principal`] goes into the request's
/// extensions, the credential headers are removed, and a failure is answered 401 (or 503 when
/// signing keys are unavailable) without calling the inner service.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    public_paths: Arc<[String]>,
}

impl AuthLayer {
    /// Every path needs credentials except [`RESOURCE_METADATA_PATH`] (and paths under it).
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        AuthLayer {
            authenticator,
            public_paths: Arc::from(vec![RESOURCE_METADATA_PATH.to_owned()]),
        }
    }

    /// Paths (exact, or a prefix followed by `/`) served without credentials, e.g.
    /// `/healthz`. Credential headers are still removed on them.
    pub fn with_public_paths(mut self, paths: impl IntoIterator<Item = String>) -> Self {
        let mut all: Vec<String> = self.public_paths.to_vec();
        all.extend(paths);
        self.public_paths = Arc::from(all);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
            public_paths: self.public_paths.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    public_paths: Arc<[String]>,
}

fn is_public(paths: &[String], path: &str) -> bool {
    paths.iter().any(|p| {
        path == p
            || path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

impl<S, B> tower::Service<Request<B>> for AuthService<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service that was polled ready is the one that is called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        let public = is_public(&self.public_paths, request.uri().path());
        Box::pin(async move {
            let credential = take_credential(request.headers_mut());
            if public {
                return inner.call(request).await;
            }
            let result = match credential {
                Ok(Some(credential)) => authenticator.authenticate(&credential).await,
                Ok(None) => Err(AuthError::Missing),
                Err(error) => Err(error),
            };
            match result {
                Ok(principal) => {
                    tracing::debug!(client_id = %principal.client_id, method = ?principal.method, "authenticated");
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => {
                    tracing::info!(reason = %error, "refused a request: not authenticated");
                    Ok(authenticator.refusal(&error))
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 9728

/// The protected-resource metadata document (RFC 9728 section 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
}

impl ProtectedResourceMetadata {
    /// From the config: the resource defaults to `<public_base_url>/mcp`.
    pub fn from_config(config: &SecurityConfig) -> Self {
        let ResourceMetadataConfig {
            resource,
            authorization_servers,
            scopes_supported,
            resource_documentation,
        } = &config.resource;
        ProtectedResourceMetadata {
            resource: resource
                .clone()
                .unwrap_or_else(|| format!("{}/mcp", config.public_base_url())),
            authorization_servers: authorization_servers.clone(),
            scopes_supported: scopes_supported.clone(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_documentation: resource_documentation.clone(),
        }
    }
}

/// A router serving the metadata at [`RESOURCE_METADATA_PATH`] and, as RFC 9728 section 3.1
/// asks for a resource with a path, at that path appended (e.g.
/// `/.well-known/oauth-protected-resource/mcp`). Merge it outside the [`AuthLayer`] (or rely
/// on the layer's public paths).
pub fn protected_resource_router(metadata: ProtectedResourceMetadata) -> axum::Router {
    let suffix = url::Url::parse(&metadata.resource)
        .ok()
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .filter(|path| !path.is_empty());
    let body = Arc::new(serde_json::to_value(&metadata).unwrap_or(Value::Null));
    let handler = move || {
        let body = body.clone();
        async move { json_response(StatusCode::OK, &body) }
    };
    let router =
        axum::Router::new().route(RESOURCE_METADATA_PATH, axum::routing::get(handler.clone()));
    match suffix {
        Some(path) => router.route(
            &format!("{RESOURCE_METADATA_PATH}{path}"),
            axum::routing::get(handler),
        ),
        None => router,
    }
}
