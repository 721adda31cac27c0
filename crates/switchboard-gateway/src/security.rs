//! The gateway's security, built once from `[security]`: who is calling (the policy crate's
//! [`Authenticator`], mounted as the front's `AuthLayer`), what each caller may see and call
//! ([`ScopePolicy`]), how often ([`RateLimits`] in memory or in Redis), and the audit log.
//!
//! Where each is enforced:
//! - **authentication** on the HTTP front (`/mcp` and the `/ws` upgrade): 401 before anything
//!   else learns of the request; the credential headers are removed there, so no upstream
//!   ever sees them. The [`Principal`] becomes the kit's `Caller` (`client_id`, `subject`,
//!   `scopes`).
//! - **scopes, allow/deny lists, rate limits and audit** in the catalogue ([`crate::Upstreams`]),
//!   which every front (HTTP, WebSocket, stdio, batches) goes through: lists are filtered,
//!   calls are refused in-band (`-32001`, `-32000` retryable), and every `tools/call` writes
//!   one audit record before its answer. On HTTP a single POSTed `tools/call` that the scopes
//!   refuse is answered 403 `insufficient_scope` before dispatch (and audited there), and a
//!   JSON answer that is a rate-limit refusal gets 429 `Retry-After` (see [`crate::front`]);
//!   an event-stream answer has sent 200 before the rate limit is known, so that refusal is
//!   in-band only.
//! - **stdio** (`--front stdio`) is a local, single-user transport: whoever can start the
//!   gateway can read its config and its upstreams' credentials anyway. Its caller is the
//!   client `stdio`, with every scope, but allow/deny lists, rate limits and audit apply.

use std::{collections::BTreeSet, net::IpAddr, sync::Arc, time::Instant};

use serde_json::Value;
use switchboard_policy::{
    audit::{AuditLog, AuditRecord, Outcome},
    auth::{AuthMethod, Authenticator, Principal, ProtectedResourceMetadata},
    ratelimit::{
        Decision, MemoryRateLimiter, RateClass, RateLimiter, RateLimits, RedisRateLimiter,
    },
    revocation::{MemoryRevocations, RedisRevocations, Revocations},
    scope::{Refusal, ScopePolicy, ToolFacts},
};
use switchboard_server::{Caller, HandlerError, RequestContext};

use crate::{config::GatewayConfig, error::GatewayError};

/// The client id of the stdio front's one caller.
pub const STDIO_CLIENT: &str = "stdio";
/// The client id given to an HTTP request that reached the catalogue unauthenticated (which
/// the front prevents); it holds no scopes.
pub const ANONYMOUS_CLIENT: &str = "anonymous";
/// The prefix of the gateway's rate-limit keys in Redis; replicas of one gateway share it.
pub const REDIS_RATE_LIMIT_PREFIX: &str = "switchboard:gw:rl:";

/// The prefix of revoked token ids in Redis (`PREFIX:revoked:JTI`).
pub const REDIS_REVOCATION_PREFIX: &str = "switchboard:gw";

/// Everything `[security]` sets up. Built once; shared by the front and the catalogue.
pub struct Security {
    pub authenticator: Arc<Authenticator>,
    pub metadata: ProtectedResourceMetadata,
    pub policy: ScopePolicy,
    pub limits: RateLimits,
    pub limiter: Arc<dyn RateLimiter>,
    pub audit: AuditLog,
    /// Audit records of calls whose answer was abandoned (see [`AuditOnDrop`]); waited for
    /// at shutdown.
    pub(crate) abandoned: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("authenticator", &self.authenticator)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

fn setup_error(what: &str, error: impl std::fmt::Display) -> GatewayError {
    GatewayError::Security(format!("{what}: {error}"))
}

impl Security {
    /// Build from the config, or `None` without `[security]`. `limiter` replaces the one the
    /// config names (tests pass one with a controllable clock). Fails, so the gateway does
    /// not start, when any part cannot be set up: a JWKS that cannot be loaded, a Redis that
    /// cannot be reached, an audit log that cannot be opened.
    pub async fn open(
        config: &GatewayConfig,
        limiter: Option<Arc<dyn RateLimiter>>,
    ) -> Result<Option<Arc<Security>>, GatewayError> {
        let Some(security) = &config.security else {
            return Ok(None);
        };
        let secret_var = security
            .jwt
            .as_ref()
            .and_then(|jwt| jwt.hs256_secret_env.clone());
        let secret = config.jwt_secret.clone();
        let authenticator = Authenticator::from_config(security, move |name| {
            (secret_var.as_deref() == Some(name))
                .then(|| secret.as_ref().map(|s| s.expose().to_owned()))
                .flatten()
        })
        .await
        .map_err(|e| setup_error("security: authentication", e))?;
        // Token ids revoked at run time: shared through Redis (`switchboard gateway revoke`),
        // else kept by this replica.
        let revocations: Arc<dyn Revocations> = match &config.redis_url {
            Some(url) => Arc::new(
                RedisRevocations::connect(url.expose(), REDIS_REVOCATION_PREFIX)
                    .await
                    .map_err(|e| setup_error("security: revoked tokens (Redis)", e))?,
            ),
            None => Arc::new(MemoryRevocations::new()),
        };
        let authenticator = authenticator.with_revocations(revocations);
        let policy =
            ScopePolicy::from_config(security).map_err(|e| setup_error("security.scopes", e))?;
        let limits = RateLimits::from_config(&security.rate_limits, &security.clients)
            .map_err(|e| setup_error("security.rate_limits", e))?;
        let limiter: Arc<dyn RateLimiter> = match (limiter, &config.redis_url) {
            (Some(limiter), _) => limiter,
            (None, Some(url)) => Arc::new(
                RedisRateLimiter::connect(url.expose(), REDIS_RATE_LIMIT_PREFIX)
                    .await
                    .map_err(|e| setup_error("security.rate_limits.redis_url", e))?,
            ),
            (None, None) => Arc::new(MemoryRateLimiter::new()),
        };
        let audit = AuditLog::open(&security.audit)
            .await
            .map_err(|e| setup_error("security.audit", e))?;
        Ok(Some(Arc::new(Security {
            authenticator: Arc::new(authenticator),
            metadata: ProtectedResourceMetadata::from_config(security),
            policy,
            limits,
            limiter,
            audit,
            abandoned: tokio_util::task::TaskTracker::new(),
        })))
    }
}

/// Who is calling, as the catalogue sees it.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub principal: Principal,
    /// The stdio front's caller: every scope (allow/deny lists still apply).
    pub every_scope: bool,
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
}

impl Access {
    pub fn of(cx: &RequestContext) -> Access {
        Self::of_caller(cx.caller())
    }

    /// `None`: the stdio front, which has no caller.
    pub fn of_caller(caller: Option<&Caller>) -> Access {
        let Some(caller) = caller else {
            return Access {
                principal: Principal {
                    client_id: STDIO_CLIENT.to_owned(),
                    subject: None,
                    scopes: BTreeSet::new(),
                    method: AuthMethod::ApiKey,
                },
                every_scope: true,
                request_id: "-".to_owned(),
                source_ip: None,
            };
        };
        // An HTTP request always passed authentication before it got here; one that did not
        // (a front wired without the layer) holds no scopes, so it can see and do nothing.
        let principal = Principal {
            client_id: match (&caller.scopes, &caller.client_id) {
                (Some(_), Some(client)) => client.clone(),
                _ => ANONYMOUS_CLIENT.to_owned(),
            },
            subject: caller.subject.clone(),
            scopes: caller.scopes.clone().unwrap_or_default(),
            // Only the client, user and scopes enter decisions; the method is not carried.
            method: if caller.subject.is_some() {
                AuthMethod::Jwt
            } else {
                AuthMethod::ApiKey
            },
        };
        Access {
            principal,
            every_scope: false,
            request_id: caller.request_id.clone().unwrap_or_else(|| "-".to_owned()),
            source_ip: caller.remote_addr.map(|addr| addr.ip()),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.principal.client_id
    }
}

/// Writes the audit record of a `tools/call` whose future is dropped before it finished (the
/// client went away, or its request timed out), so that every call has its record. Disarmed
/// once the call's own record is about to be written.
pub(crate) struct AuditOnDrop {
    security: Arc<Security>,
    access: Access,
    time: chrono::DateTime<chrono::Utc>,
    started: Instant,
    name: String,
    arguments: Option<Value>,
}

impl AuditOnDrop {
    pub fn new(
        security: Arc<Security>,
        access: Access,
        time: chrono::DateTime<chrono::Utc>,
        started: Instant,
        name: String,
        arguments: Value,
    ) -> Self {
        AuditOnDrop {
            security,
            access,
            time,
            started,
            name,
            arguments: Some(arguments),
        }
    }

    /// The call finished; its own record is written by the caller. Gives the arguments back.
    pub fn disarm(mut self) -> Value {
        self.arguments.take().unwrap_or(Value::Null)
    }
}

impl Drop for AuditOnDrop {
    fn drop(&mut self) {
        let Some(arguments) = self.arguments.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(tool = %self.name, "an abandoned call could not be audited: no runtime");
            return;
        };
        let security = self.security.clone();
        let access = self.access.clone();
        let (time, started, name) = (self.time, self.started, std::mem::take(&mut self.name));
        let abandoned = security.abandoned.clone();
        abandoned.spawn_on(
            async move {
                // The upstream tool is not known here: the name is the one the client sent.
                let _ = security
                    .record_call(
                        &access,
                        time,
                        started,
                        "-".to_owned(),
                        name,
                        arguments,
                        Outcome::Failed,
                        Some("abandoned".to_owned()),
                    )
                    .await;
            },
            &runtime,
        );
    }
}

/// The in-band form of a scope or allow-list refusal.
pub(crate) fn refused(refusal: &Refusal) -> HandlerError {
    let error = refusal.jsonrpc_error();
    HandlerError::Rpc {
        code: error.code,
        message: error.message,
        data: error.data,
    }
}

impl Security {
    pub(crate) fn tool_allowed(&self, access: &Access, facts: &ToolFacts) -> Result<(), Refusal> {
        if access.every_scope {
            self.policy.check_server(&access.principal, &facts.server)
        } else {
            self.policy.authorize_tool(&access.principal, facts)
        }
    }

    pub(crate) fn resource_allowed(
        &self,
        access: &Access,
        server: &str,
        uri: &str,
    ) -> Result<(), Refusal> {
        if access.every_scope {
            self.policy.check_server(&access.principal, server)
        } else {
            self.policy
                .authorize_resource(&access.principal, server, uri)
        }
    }

    pub(crate) fn prompt_allowed(
        &self,
        access: &Access,
        server: &str,
        prompt: &str,
    ) -> Result<(), Refusal> {
        if access.every_scope {
            self.policy.check_server(&access.principal, server)
        } else {
            self.policy
                .authorize_prompt(&access.principal, server, prompt)
        }
    }

    /// Spend one call of `class` (or of the tool's own quota). A rate-limit store that cannot
    /// answer refuses the call as retryable: limits fail closed.
    pub(crate) async fn spend(
        &self,
        access: &Access,
        class: RateClass,
        server: &str,
        tool: &str,
    ) -> Result<(), (HandlerError, &'static str)> {
        let bucket = self.limits.bucket(access.client_id(), class, server, tool);
        match self.limiter.check(&bucket).await {
            Ok(Decision::Allowed) => Ok(()),
            Ok(Decision::Denied(limited)) => {
                let error = limited.jsonrpc_error();
                Err((
                    HandlerError::Rpc {
                        code: error.code,
                        message: error.message,
                        data: error.data,
                    },
                    "rate_limited",
                ))
            }
            Err(error) => {
                tracing::error!(%error, "the rate-limit store failed; refusing the call");
                Err((
                    HandlerError::Transient {
                        message: "the gateway cannot check its rate limits right now".to_owned(),
                        retry_after_ms: Some(1000),
                    },
                    "rate_limit_store",
                ))
            }
        }
    }

    /// Write the one audit record of a `tools/call`. Returns an error when it cannot be
    /// stored: the answer is then withheld, so no call goes unrecorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_call(
        &self,
        access: &Access,
        time: chrono::DateTime<chrono::Utc>,
        started: Instant,
        server: String,
        tool: String,
        arguments: Value,
        outcome: Outcome,
        error_class: Option<String>,
    ) -> Result<(), HandlerError> {
        let record = AuditRecord {
            time,
            request_id: access.request_id.clone(),
            client_id: access.client_id().to_owned(),
            user: access.principal.subject.clone(),
            source_ip: access.source_ip,
            server,
            tool,
            arguments,
            outcome,
            error_class,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            scopes: access.principal.scopes.iter().cloned().collect(),
        };
        self.audit.record(record).await.map_err(|error| {
            metrics::counter!(crate::metrics::ERRORS, "server" => "-", "class" => "audit")
                .increment(1);
            tracing::error!(%error, "an audit record could not be written; the answer is withheld");
            HandlerError::Internal(
                "the call could not be recorded in the audit log, so its answer is withheld"
                    .to_owned(),
            )
        })
    }
}
