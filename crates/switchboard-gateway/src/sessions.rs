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
//! 2026-07-28 clients have no sessions, but a task and a call parked while its client answers
//! an `input_required` round also live in one replica's memory. Their ids begin with the id of
//! the replica that holds them ([`crate::Gateway::replica`]), and each replica records its id
//! and URL in Redis. A `tasks/get`, `tasks/update` or `tasks/cancel` names its task in the
//! `Mcp-Name` header; a retry names its parked call in the state of its `requestState` (read
//! here without the key; the holder verifies it). Either is sent on to the holder like a
//! session's request.
//!
//! If Redis cannot be reached, requests are served locally: sessions, tasks and parked calls
//! on this replica keep working, and one held elsewhere gets the usual answer for an unknown
//! one (404 for a session, so its client initializes again; an unknown task; an expired
//! `requestState`, so the call is sent again).

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use redis::AsyncCommands;
use switchboard_server::{METHOD_HEADER, NAME_HEADER, SESSION_HEADER};
use tokio_util::task::AbortOnDropHandle;

use crate::metrics as m;

/// Marks a request one replica forwarded to another; such a request is always served locally.
pub const FORWARDED_HEADER: &str = "x-switchboard-forwarded";
/// The prefix of routing-table keys in Redis.
pub const SESSION_KEY_PREFIX: &str = "switchboard:gw:session:";
/// The prefix of the keys that give a replica's URL by its id.
pub const REPLICA_KEY_PREFIX: &str = "switchboard:gw:replica:";
/// How long a replica's entry lives unless renewed; it is renewed every third of this, so an
/// entry outlives its replica by at most this long.
pub const REPLICA_TTL: Duration = Duration::from_secs(15 * 60);
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
    /// This replica's id ([`crate::Gateway::replica`]).
    replica: String,
    /// Renews this replica's entry; stops when the last clone of the table is dropped.
    _renewal: Arc<AbortOnDropHandle<()>>,
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
    /// Connect to the table in Redis, and record this replica (`replica`, at `own_url`) in it.
    pub async fn connect(
        redis_url: &str,
        own_url: String,
        replica: String,
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
        let own_url = own_url.trim_end_matches('/').to_owned();
        // Recorded before the first request is served: a task or parked call made then is
        // reachable from the other replicas at once.
        let key = format!("{REPLICA_KEY_PREFIX}{replica}");
        record_replica(redis.clone(), &key, &own_url).await?;
        let renewal = tokio::spawn({
            let (redis, own_url) = (redis.clone(), own_url.clone());
            async move {
                let mut every = tokio::time::interval(REPLICA_TTL / 3);
                every.tick().await;
                loop {
                    every.tick().await;
                    if let Err(error) = record_replica(redis.clone(), &key, &own_url).await {
                        tracing::warn!(%error, "replica routing: cannot renew this replica's entry");
                    }
                }
            }
        });
        Ok(SessionRoutes {
            redis,
            own_url,
            ttl,
            max_body_bytes,
            http,
            replica,
            _renewal: Arc::new(AbortOnDropHandle::new(renewal)),
        })
    }

    /// The URL of the replica with id `replica`, if the table knows it (`None` also when
    /// Redis fails).
    async fn replica_url(&self, replica: &str) -> Option<String> {
        self.lookup(format!("{REPLICA_KEY_PREFIX}{replica}"), "replica")
            .await
    }

    /// The URL stored under `key` (`None` when there is none, or Redis fails: the request is
    /// then served locally). `what` names the kind of entry in warnings (the key is not
    /// logged: a session's holds its id).
    async fn lookup(&self, key: String, what: &'static str) -> Option<String> {
        let mut redis = self.redis.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, redis.get::<_, Option<String>>(&key)).await {
            Ok(Ok(url)) => url,
            Ok(Err(error)) => {
                tracing::warn!(%error, what, "routing: Redis lookup failed; serving locally");
                None
            }
            Err(_) => {
                tracing::warn!(what, "routing: Redis lookup timed out; serving locally");
                None
            }
        }
    }

    /// The replica that holds what a 2026-07-28 request refers to, with the request as it
    /// was (its body read back in when it had to be read): the task of a `tasks/*` request,
    /// or the call parked by the replica a retry's `requestState` names.
    async fn holder(&self, request: Request) -> Result<(Request, Option<String>), Response> {
        let headers = request.headers();
        let method = headers.get(METHOD_HEADER).and_then(|v| v.to_str().ok());
        match method.map(str::trim) {
            Some("tasks/get" | "tasks/update" | "tasks/cancel") => {
                let replica = headers
                    .get(NAME_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|task| task.trim().split_once('-'))
                    .map(|(replica, _)| replica.to_owned());
                Ok((request, replica))
            }
            Some("tools/call" | "prompts/get" | "resources/read") => {
                let (parts, body) = request.into_parts();
                let Ok(bytes) = axum::body::to_bytes(body, self.max_body_bytes).await else {
                    return Err(crate::front::body_too_large(self.max_body_bytes));
                };
                let replica = parked_by(&bytes);
                Ok((Request::from_parts(parts, Body::from(bytes)), replica))
            }
            _ => Ok((request, None)),
        }
    }

    fn key(id: &str) -> String {
        format!("{SESSION_KEY_PREFIX}{id}")
    }

    /// The owner of a session, if the table knows it (`None` also when Redis fails).
    async fn owner(&self, id: &str) -> Option<String> {
        self.lookup(Self::key(id), "session").await
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
            return crate::front::body_too_large(self.max_body_bytes);
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
                    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"the replica that holds this session, task or call cannot be reached; try again, or start over","data":{"retryable":true}}}"#,
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

/// Record (or renew) a replica's URL under `key`, for [`REPLICA_TTL`].
async fn record_replica(
    mut redis: redis::aio::ConnectionManager,
    key: &str,
    url: &str,
) -> Result<(), SessionRoutesError> {
    let set = redis.set_ex::<_, _, ()>(key, url, REPLICA_TTL.as_secs());
    tokio::time::timeout(REDIS_TIMEOUT, set)
        .await
        .map_err(|_| SessionRoutesError::Timeout(REDIS_TIMEOUT))?
        .map_err(SessionRoutesError::from)
}

/// The replica named by the `requestState` of a JSON-RPC request body, if it has one that
/// this gateway issued. Bodies without the word are not parsed.
fn parked_by(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Message {
        params: Params,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "requestState")]
        request_state: String,
    }
    memchr::memmem::find(body, b"\"requestState\"")?;
    let message: Message = serde_json::from_slice(body).ok()?;
    crate::relay::parked_by(&message.params.request_state)
}

/// The front layer: forward requests for sessions, tasks and parked calls held elsewhere, and
/// record new sessions.
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
    let request = if session.is_none() && !forwarded && request.method() == axum::http::Method::POST
    {
        let (request, holder) = match routes.holder(request).await {
            Ok(found) => found,
            Err(refused) => return refused,
        };
        if let Some(replica) = holder
            && replica != routes.replica
            && let Some(url) = routes.replica_url(&replica).await
        {
            metrics::counter!(m::REPLICA_FORWARDED).increment(1);
            return routes.forward(&url, request).await;
        }
        request
    } else {
        request
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `requestState` as the kit seals it (the tag is not checked here).
    fn token(state: &serde_json::Value) -> String {
        use base64::Engine;
        let payload = serde_json::json!({"exp": 1, "state": state}).to_string();
        format!(
            "v1.{}.tag",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn body(request_state: &str) -> Vec<u8> {
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "t", "arguments": {}, "requestState": request_state}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_retry_names_the_replica_that_parked_its_call() {
        let parked = token(&serde_json::json!({"gatewayCall": "0123456789abcdef-5a5a"}));
        assert_eq!(
            parked_by(&body(&parked)).as_deref(),
            Some("0123456789abcdef")
        );
        // Not the gateway's state, an id without a replica, no state, not a token, not
        // JSON-RPC, no requestState, a requestState that is not a string.
        let undashed = token(&serde_json::json!({"gatewayCall": "0123456789abcdef"}));
        assert_eq!(parked_by(&body(&undashed)), None);
        assert_eq!(
            parked_by(&body(&token(&serde_json::json!({"step": 2})))),
            None
        );
        assert_eq!(parked_by(&body(&token(&serde_json::Value::Null))), None);
        assert_eq!(parked_by(&body("not a token")), None);
        assert_eq!(parked_by(br#"{"requestState": "#), None);
        assert_eq!(
            parked_by(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#),
            None
        );
        assert_eq!(
            parked_by(br#"{"jsonrpc":"2.0","id":1,"params":{"requestState":7}}"#),
            None
        );
    }
}
