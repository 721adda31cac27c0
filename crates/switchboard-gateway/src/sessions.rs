//! Legacy sessions across replicas: a routing table in Redis (session id → the URL of the
//! replica that owns it), and a front layer that forwards a request for a session this
//! replica does not own to its owner over HTTP.
//!
//! A legacy session lives in the memory of the replica that answered its `initialize` (its
//! negotiated version, log level, pending requests to the client, its `GET /mcp` stream), so
//! it is not copied: requests go to it. When a replica answers `initialize` with an
//! `Mcp-Session-Id`, it records itself as the owner (with the idle timeout as the key's
//! lifetime, renewed on each use). A request naming a session the table gives to another
//! replica is sent on to that replica unchanged, credentials included (the owner
//! authenticates it; credentials only ever go to another replica of the same gateway, never
//! to an upstream), marked with [`FORWARDED_HEADER`] so it is never forwarded twice, and its
//! answer (an event stream too) is passed back as it comes.
//!
//! If Redis cannot be reached, requests are served locally: sessions on this replica keep
//! working, and one owned elsewhere gets the usual 404 (its client initializes again).

use std::time::Duration;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use redis::AsyncCommands;
use switchboard_server::SESSION_HEADER;

use crate::metrics as m;

/// Marks a request one replica forwarded to another; such a request is always served locally.
pub const FORWARDED_HEADER: &str = "x-switchboard-forwarded";
/// The prefix of routing-table keys in Redis.
pub const SESSION_KEY_PREFIX: &str = "switchboard:gw:session:";
/// How long a Redis lookup or update may take before the request is served locally.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to Redis may take at start-up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a forwarded request may take to get its answer's headers.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(70);

/// Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1), plus
/// the length, which the forwarding client sets again.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// The routing table and this replica's place in it.
#[derive(Clone)]
pub struct SessionRoutes {
    redis: redis::aio::ConnectionManager,
    /// The URL other replicas reach this one at (no trailing slash).
    own_url: String,
    /// The lifetime of a table entry: the legacy session idle timeout.
    ttl: Duration,
    /// The largest body forwarded.
    max_body_bytes: usize,
    http: reqwest::Client,
}

impl std::fmt::Debug for SessionRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRoutes")
            .field("own_url", &self.own_url)
            .finish_non_exhaustive()
    }
}

/// The routing table could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionRoutesError {
    #[error("cannot reach Redis for the session routing table: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot build the HTTP client that forwards sessions: {0}")]
    Http(#[from] reqwest::Error),
}

impl SessionRoutes {
    pub async fn connect(
        redis_url: &str,
        own_url: String,
        ttl: Duration,
        max_body_bytes: usize,
    ) -> Result<SessionRoutes, SessionRoutesError> {
        let client = redis::Client::open(redis_url)?;
        let redis = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, client.get_connection_manager())
            .await
            .map_err(|_| SessionRoutesError::Timeout(REDIS_CONNECT_TIMEOUT))??;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        Ok(SessionRoutes {
            redis,
            own_url: own_url.trim_end_matches('/').to_owned(),
            ttl,
            max_body_bytes,
            http,
        })
    }

    fn key(id: &str) -> String {
        format!("{SESSION_KEY_PREFIX}{id}")
    }

    /// The owner of a session, if the table knows it (`None` also when Redis fails).
    async fn owner(&self, id: &str) -> Option<String> {
        let mut redis = self.redis.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, redis.get::<_, Option<String>>(Self::key(id)))
            .await
        {
            Ok(Ok(owner)) => owner,
            Ok(Err(error)) => {
                tracing::warn!(%error, "session routing: Redis lookup failed; serving locally");
                None
            }
            Err(_) => {
                tracing::warn!("session routing: Redis lookup timed out; serving locally");
                None
            }
        }
    }

    /// Record (or renew) this replica as the owner of a session.
    async fn claim(&self, id: &str) {
        let mut redis = self.redis.clone();
        let seconds = self.ttl.as_secs().max(1);
        let set = redis.set_ex::<_, _, ()>(Self::key(id), &self.own_url, seconds);
        match tokio::time::timeout(REDIS_TIMEOUT, set).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "session routing: cannot record a session"),
            Err(_) => tracing::warn!("session routing: recording a session timed out"),
        }
    }

    async fn forget(&self, id: &str) {
        let mut redis = self.redis.clone();
        let _ = tokio::time::timeout(REDIS_TIMEOUT, redis.del::<_, ()>(Self::key(id))).await;
    }

    /// Send `request` to the replica at `owner` and pass its answer back.
    async fn forward(&self, owner: &str, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, self.max_body_bytes).await else {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
                .into_response();
        };
        let path = parts.uri.path_and_query().map_or("/mcp", |p| p.as_str());
        let mut forwarded = self
            .http
            .request(parts.method.clone(), format!("{owner}{path}"))
            .timeout(FORWARD_TIMEOUT)
            .body(body);
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                forwarded = forwarded.header(name, value);
            }
        }
        forwarded = forwarded.header(FORWARDED_HEADER, "1");
        let answer = match forwarded.send().await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, %owner, "session routing: the owning replica cannot be reached");
                metrics::counter!(m::REJECTED, "reason" => "session_owner_unreachable")
                    .increment(1);
                return (
                    StatusCode::BAD_GATEWAY,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"the replica that holds this session cannot be reached; try again or initialize a new session","data":{"retryable":true}}}"#,
                )
                    .into_response();
            }
        };
        let mut response = Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(&name.as_str())
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_str().as_bytes()),
                    HeaderValue::from_bytes(value.as_bytes()),
                )
            {
                response = response.header(name, value);
            }
        }
        response
            .body(Body::from_stream(answer.bytes_stream()))
            .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
    }
}

/// The front layer: forward requests for sessions owned elsewhere, record new sessions.
pub async fn route_sessions(
    State(routes): State<SessionRoutes>,
    request: Request,
    next: Next,
) -> Response {
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let forwarded = request.headers().contains_key(FORWARDED_HEADER);
    if let Some(id) = &session
        && !forwarded
        && let Some(owner) = routes.owner(id).await
        && owner != routes.own_url
    {
        metrics::counter!(m::SESSIONS_FORWARDED).increment(1);
        return routes.forward(&owner, request).await;
    }
    let deleting = request.method() == axum::http::Method::DELETE;
    let response = next.run(request).await;
    // A new session (initialize answered) or a used one: this replica owns it.
    let created = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (created, session) {
        (Some(id), _) => routes.claim(&id).await,
        (None, Some(id)) if deleting && response.status().is_success() => routes.forget(&id).await,
        (None, Some(id)) if response.status() != StatusCode::NOT_FOUND => routes.claim(&id).await,
        _ => {}
    }
    response
}
