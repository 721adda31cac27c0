//! The gateway's security building blocks, each usable on its own:
//!
//! * [`auth`]: static API keys (stored as SHA-256 hashes) and JWTs (HS256, or RS256/ES256 from
//!   a JWKS), a tower [`auth::AuthLayer`] that puts a [`auth::Principal`] into each request and
//!   strips the credential headers, and the RFC 9728 protected-resource metadata;
//! * [`scope`]: the scope each tool, resource and prompt needs, visibility, refusals, and
//!   per-client allow and deny lists of servers;
//! * [`ratelimit`]: GCRA per client and class, in memory or in Redis;
//! * [`audit`]: one record per call with secrets redacted, to JSONL or a database, and reads;
//! * [`config`]: the `[security]` section of `gateway.toml`.
//!
//! The gateway composes them; this crate knows nothing of it. Every refusal has an HTTP form
//! and an in-band JSON-RPC form, as `shared/design.md` ("Errors on the wire") lays out:
//!
//! ```
//! use switchboard_policy::{auth::{AuthMethod, Principal}, scope::{ScopePolicy, ToolFacts}};
//! let policy = ScopePolicy::from_config(&Default::default()).expect("valid");
//! let reader = Principal {
//!     client_id: "ci-bot".into(),
//!     subject: None,
//!     scopes: ["expenses:read".to_owned()].into(),
//!     method: AuthMethod::ApiKey,
//! };
//! let add = ToolFacts::from_wire(
//!     "expenses",
//!     &serde_json::json!({"name": "add_expense", "_meta": {"dev.switchboard/scope": "expenses:write"}}),
//! );
//! let refusal = policy.authorize_tool(&reader, &add).expect_err("a reader cannot write");
//! assert_eq!(refusal.jsonrpc_error().code, -32001);
//! assert_eq!(refusal.http_response().status(), 403);
//! ```

pub mod audit;
pub mod auth;
pub mod config;
pub mod ratelimit;
pub mod revocation;
pub mod scope;
pub mod wire;
