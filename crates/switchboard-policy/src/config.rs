//! The `[security]` section of `gateway.toml`: serde structs with secure defaults and clear
//! errors. The gateway embeds [`SecurityConfig`] in its own config; nothing here reads files or
//! the environment (secrets are looked up through a function the caller passes).
//!
//! A commented example (every field shown; all are optional except where noted):
//!
//! ```
//! let text = r#"
//! [security]
//! ## The address clients use to reach the gateway; names the RFC 9728 metadata in 401 answers.
//! public_base_url = "https://mcp.example.com"
//!
//! ## RFC 9728 protected-resource metadata, served at /.well-known/oauth-protected-resource.
//! [security.resource]
//! resource = "https://mcp.example.com/mcp"          # default: public_base_url + "/mcp"
//! authorization_servers = ["https://auth.example.com"]
//! scopes_supported = ["expenses:read", "expenses:write", "bookmarks:read"]
//!
//! ## Static API keys: only the SHA-256 (hex) of each key is stored. Print one with
//! ## `echo -n KEY | switchboard gateway hash-key`.
//! [[security.api_keys]]
//! client_id = "ci-bot"
//! sha256 = "4c806362b613f7496abf284146efd31da90e4b16169fe001841ca17290f427c4"
//! scopes = ["expenses:read"]
//!
//! ## JWT bearer tokens: HS256 with a secret from an environment variable, or RS256/ES256
//! ## with a JWKS (jwks_url or jwks_file). Exactly one of the three.
//! [security.jwt]
//! issuer = "https://auth.example.com"
//! audience = ["https://mcp.example.com/mcp"]
//! jwks_url = "https://auth.example.com/.well-known/jwks.json"
//! ## hs256_secret_env = "SWITCHBOARD_JWT_SECRET"
//! ## jwks_file = "/etc/switchboard/jwks.json"
//! algorithms = ["RS256", "ES256"]     # the default for a JWKS
//! leeway_secs = 30                    # clock skew allowed on exp and nbf
//! client_id_claim = "client_id"       # then azp, then sub
//! jwks_ttl_secs = 600                 # refetch the key set this often
//! jwks_min_refresh_secs = 30          # at most one refetch for an unknown kid per this
//!
//! ## Required scopes: exact "server/tool" or "server/*". Without an entry a tool's
//! ## _meta["dev.switchboard/scope"] applies, else SERVER:read (read-only tools) or SERVER:write.
//! [security.scopes.tools]
//! "expenses/delete_expense" = "expenses:admin"
//! "bookmarks/*" = "bookmarks:read"
//! [security.scopes.resources]
//! "expenses/*" = "expenses:read"
//! [security.scopes.prompts]
//!
//! ## Rate limits (GCRA; the burst equals the per-minute count).
//! [security.rate_limits]
//! reads_per_minute = 100
//! writes_per_minute = 10
//! ## redis_url = "redis://127.0.0.1:6379"   # share counters between replicas
//! [security.rate_limits.tools]
//! "expenses/import_expenses" = 2
//!
//! ## Per-client settings, by client id (an API key's client_id or the JWT's client claim).
//! [security.clients.ci-bot]
//! allow_servers = ["expenses"]      # empty: every server
//! deny_servers = []
//! reads_per_minute = 600
//! writes_per_minute = 60
//!
//! [security.audit]
//! sink = "jsonl"                     # or "database" with url = "postgres://..."
//! path = "audit.jsonl"
//! max_file_bytes = 10485760          # rotate at 10 MiB
//! keep_files = 5                     # audit.jsonl.1 .. audit.jsonl.5
//! fsync = false                      # true: survive power loss, not only a crash
//! redact_keys = ["password", "token", "secret", "api_key", "authorization"]
//! "#;
//! let config = switchboard_policy::config::SecurityConfig::from_toml_section(text)?;
//! assert_eq!(config.api_keys[0].client_id, "ci-bot");
//! # Ok::<(), switchboard_policy::config::ConfigError>(())
//! ```

use std::{collections::BTreeMap, num::NonZeroU32, path::PathBuf};

use serde::{Deserialize, Serialize};

/// Default read limit per client and minute.
pub const DEFAULT_READS_PER_MINUTE: u32 = 100;
/// Default write limit per client and minute.
pub const DEFAULT_WRITES_PER_MINUTE: u32 = 10;
/// Default clock skew allowed on `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Default lifetime of a fetched JWKS.
pub const DEFAULT_JWKS_TTL_SECS: u64 = 600;
/// Default least time between two refetches of the JWKS caused by unknown `kid`s.
pub const DEFAULT_JWKS_MIN_REFRESH_SECS: u64 = 30;
/// Default size at which the audit file is rotated.
pub const DEFAULT_AUDIT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of rotated audit files kept.
pub const DEFAULT_AUDIT_KEEP_FILES: u32 = 5;
/// Default argument keys whose values the audit log redacts.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "credential",
];

/// A configuration that cannot be used, with the field it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the [security] section is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("security.{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything the gateway's security layers need.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The external base URL of the gateway (no trailing slash needed), used in
    /// `WWW-Authenticate: Bearer resource_metadata="..."`. Default: `http://127.0.0.1:8787`.
    pub public_base_url: Option<String>,
    pub resource: ResourceMetadataConfig,
    pub api_keys: Vec<ApiKeyConfig>,
    pub jwt: Option<JwtConfig>,
    pub scopes: ScopePolicyConfig,
    pub rate_limits: RateLimitConfig,
    /// Per-client settings, keyed by client id.
    pub clients: BTreeMap<String, ClientConfig>,
    pub audit: AuditConfig,
}

/// The gateway's default address, used when `public_base_url` is not set.
pub const DEFAULT_PUBLIC_BASE_URL: &str = "http://127.0.0.1:8787";

impl SecurityConfig {
    /// Parse a TOML document whose `[security]` table is this config (other tables are
    /// ignored), and [validate](Self::validate) it.
    pub fn from_toml_section(text: &str) -> Result<SecurityConfig, ConfigError> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            security: SecurityConfig,
        }
        let document: Document = toml::from_str(text)?;
        document.security.validate()?;
        Ok(document.security)
    }

    /// The base URL with no trailing slash.
    pub fn public_base_url(&self) -> String {
        self.public_base_url
            .as_deref()
            .unwrap_or(DEFAULT_PUBLIC_BASE_URL)
            .trim_end_matches('/')
            .to_owned()
    }

    /// Check what serde cannot: hashes are SHA-256 hex, one JWT key source, rates not zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(base) = &self.public_base_url {
            url::Url::parse(base).map_err(|error| {
                ConfigError::invalid("public_base_url", format!("not a URL: {error}"))
            })?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, key) in self.api_keys.iter().enumerate() {
            let field = format!("api_keys[{index}]");
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    format!("{field}.sha256"),
                    "must be the 64 hex digits of a SHA-256 (see `switchboard gateway hash-key`); keys themselves are never stored",
                ));
            }
            if !seen.insert(key.sha256.to_ascii_lowercase()) {
                return Err(ConfigError::invalid(
                    format!("{field}.sha256"),
                    "the same key hash is listed twice",
                ));
            }
            if key.client_id.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{field}.client_id"),
                    "must not be empty",
                ));
            }
        }
        if let Some(jwt) = &self.jwt {
            let sources = [
                jwt.hs256_secret_env.is_some(),
                jwt.jwks_url.is_some(),
                jwt.jwks_file.is_some(),
            ]
            .iter()
            .filter(|set| **set)
            .count();
            if sources != 1 {
                return Err(ConfigError::invalid(
                    "jwt",
                    "give exactly one of hs256_secret_env, jwks_url and jwks_file",
                ));
            }
            if let Some(url) = &jwt.jwks_url {
                url::Url::parse(url).map_err(|error| {
                    ConfigError::invalid("jwt.jwks_url", format!("not a URL: {error}"))
                })?;
            }
            if jwt.hs256_secret_env.is_some()
                && jwt.algorithms.iter().any(|a| *a != JwtAlgorithm::HS256)
            {
                return Err(ConfigError::invalid(
                    "jwt.algorithms",
                    "with hs256_secret_env only HS256 is allowed",
                ));
            }
            if jwt.hs256_secret_env.is_none() && jwt.algorithms.contains(&JwtAlgorithm::HS256) {
                return Err(ConfigError::invalid(
                    "jwt.algorithms",
                    "HS256 needs hs256_secret_env; a JWKS allows RS256 and ES256 only",
                ));
            }
        }
        let patterns = self
            .scopes
            .tools
            .keys()
            .chain(self.scopes.resources.keys())
            .chain(self.scopes.prompts.keys())
            .chain(self.rate_limits.tools.keys());
        for pattern in patterns {
            crate::scope::Pattern::parse(pattern).map_err(|reason| {
                ConfigError::invalid(format!("scopes or rate_limits.tools \"{pattern}\""), reason)
            })?;
        }
        for (client, settings) in &self.clients {
            if let Some(server) = settings
                .allow_servers
                .iter()
                .find(|s| settings.deny_servers.contains(s))
            {
                return Err(ConfigError::invalid(
                    format!("clients.{client}"),
                    format!("server \"{server}\" is both allowed and denied"),
                ));
            }
        }
        if let AuditSinkConfig::Jsonl { keep_files, .. } = &self.audit.sink
            && *keep_files == 0
        {
            return Err(ConfigError::invalid(
                "audit.keep_files",
                "must be at least 1 (rotation would otherwise delete records)",
            ));
        }
        Ok(())
    }
}

/// RFC 9728 metadata settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceMetadataConfig {
    /// The resource identifier; default `<public_base_url>/mcp`.
    pub resource: Option<String>,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub resource_documentation: Option<String>,
}

/// One static API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub client_id: String,
    /// SHA-256 of the key, as 64 hex digits.
    pub sha256: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// An algorithm a JWT may be signed with. `none` is not representable.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

/// JWT validation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Expected `iss`. Required: a token from another issuer is refused.
    pub issuer: String,
    /// Accepted `aud` values (one must match). Required.
    pub audience: Vec<String>,
    /// The environment variable holding the HS256 secret.
    #[serde(default)]
    pub hs256_secret_env: Option<String>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Allowed algorithms; default HS256 with a secret, RS256 and ES256 with a JWKS.
    #[serde(default)]
    pub algorithms: Vec<JwtAlgorithm>,
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Claim naming the client; `azp` and then `sub` are tried when it is absent.
    #[serde(default = "default_client_id_claim")]
    pub client_id_claim: String,
    #[serde(default = "default_jwks_ttl")]
    pub jwks_ttl_secs: u64,
    #[serde(default = "default_jwks_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// Token ids (`jti`) refused whatever their signature says. At run time, with Redis,
    /// `switchboard gateway revoke JTI` adds to the list every replica shares.
    #[serde(default)]
    pub revoked: Vec<String>,
}

impl JwtConfig {
    /// The configured algorithms, or the default for the key source.
    pub fn effective_algorithms(&self) -> Vec<JwtAlgorithm> {
        if !self.algorithms.is_empty() {
            return self.algorithms.clone();
        }
        if self.hs256_secret_env.is_some() {
            vec![JwtAlgorithm::HS256]
        } else {
            vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256]
        }
    }
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}
fn default_client_id_claim() -> String {
    "client_id".to_owned()
}
fn default_jwks_ttl() -> u64 {
    DEFAULT_JWKS_TTL_SECS
}
fn default_jwks_min_refresh() -> u64 {
    DEFAULT_JWKS_MIN_REFRESH_SECS
}

/// Required scopes by pattern (`server/name` or `server/*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScopePolicyConfig {
    pub tools: BTreeMap<String, String>,
    pub resources: BTreeMap<String, String>,
    pub prompts: BTreeMap<String, String>,
}

/// Default rate limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub reads_per_minute: NonZeroU32,
    pub writes_per_minute: NonZeroU32,
    /// Per-tool limits (`server/tool` or `server/*`), each its own bucket per client.
    pub tools: BTreeMap<String, NonZeroU32>,
    /// Share counters between replicas through this Redis; without it, each replica counts
    /// in memory.
    pub redis_url: Option<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            reads_per_minute: NonZeroU32::new(DEFAULT_READS_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            writes_per_minute: NonZeroU32::new(DEFAULT_WRITES_PER_MINUTE)
                .unwrap_or(NonZeroU32::MIN),
            tools: BTreeMap::new(),
            redis_url: None,
        }
    }
}

/// Settings for one client id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Only these servers (empty: all).
    pub allow_servers: Vec<String>,
    /// Never these servers.
    pub deny_servers: Vec<String>,
    pub reads_per_minute: Option<NonZeroU32>,
    pub writes_per_minute: Option<NonZeroU32>,
}

/// The audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditConfig {
    #[serde(flatten)]
    pub sink: AuditSinkConfig,
    /// Argument keys whose values are redacted (case-insensitive, `_`/`-` ignored, matched as
    /// a part of the key, at any depth).
    #[serde(default = "default_redact_keys")]
    pub redact_keys: Vec<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            sink: AuditSinkConfig::default(),
            redact_keys: default_redact_keys(),
        }
    }
}

fn default_redact_keys() -> Vec<String> {
    DEFAULT_REDACT_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect()
}

/// Where audit records go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "sink", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuditSinkConfig {
    /// JSON lines in a file, rotated by size.
    Jsonl {
        #[serde(default = "default_audit_path")]
        path: PathBuf,
        #[serde(default = "default_max_file_bytes")]
        max_file_bytes: u64,
        #[serde(default = "default_keep_files")]
        keep_files: u32,
        /// `fsync` each record (survives power loss) instead of only writing it to the OS
        /// (survives a crash of the gateway).
        #[serde(default)]
        fsync: bool,
    },
    /// A table in PostgreSQL (or SQLite), through switchboard-store.
    Database { url: String },
}

impl Default for AuditSinkConfig {
    fn default() -> Self {
        AuditSinkConfig::Jsonl {
            path: default_audit_path(),
            max_file_bytes: DEFAULT_AUDIT_MAX_FILE_BYTES,
            keep_files: DEFAULT_AUDIT_KEEP_FILES,
            fsync: false,
        }
    }
}

fn default_audit_path() -> PathBuf {
    PathBuf::from("audit.jsonl")
}
fn default_max_file_bytes() -> u64 {
    DEFAULT_AUDIT_MAX_FILE_BYTES
}
fn default_keep_files() -> u32 {
    DEFAULT_AUDIT_KEEP_FILES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_has_the_documented_defaults() {
        let config = SecurityConfig::from_toml_section("").expect("empty is valid");
        assert_eq!(config.rate_limits.reads_per_minute.get(), 100);
        assert_eq!(config.rate_limits.writes_per_minute.get(), 10);
        assert!(config.api_keys.is_empty() && config.jwt.is_none());
        assert_eq!(config.public_base_url(), DEFAULT_PUBLIC_BASE_URL);
        assert!(matches!(
            config.audit.sink,
            AuditSinkConfig::Jsonl {
                keep_files: 5,
                fsync: false,
                ..
            }
        ));
        assert!(config.audit.redact_keys.iter().any(|k| k == "password"));
    }

    #[test]
    fn a_plain_key_instead_of_its_hash_is_refused_with_the_field() {
        let error = SecurityConfig::from_toml_section(
            "[[security.api_keys]]\nclient_id = \"a\"\nsha256 = \"my-secret-key\"\n",
        )
        .expect_err("not a hash");
        let message = error.to_string();
        assert!(message.contains("api_keys[0].sha256"), "{message}");
        assert!(message.contains("hash-key"), "{message}");
    }

    #[test]
    fn jwt_needs_exactly_one_key_source() {
        let error = SecurityConfig::from_toml_section(
            "[security.jwt]\nissuer = \"i\"\naudience = [\"a\"]\n",
        )
        .expect_err("no key source");
        assert!(error.to_string().contains("exactly one"), "{error}");
        let error = SecurityConfig::from_toml_section(
            "[security.jwt]\nissuer = \"i\"\naudience = [\"a\"]\njwks_file = \"k.json\"\nalgorithms = [\"HS256\"]\n",
        )
        .expect_err("HS256 with a JWKS");
        assert!(error.to_string().contains("HS256"), "{error}");
    }

    #[test]
    fn unknown_fields_zero_rates_and_bad_patterns_are_refused() {
        let unknown = SecurityConfig::from_toml_section("[security]\npublic_url = \"x\"\n")
            .expect_err("typo");
        assert!(unknown.to_string().contains("public_url"), "{unknown}");
        let zero =
            SecurityConfig::from_toml_section("[security.rate_limits]\nwrites_per_minute = 0\n")
                .expect_err("zero");
        assert!(zero.to_string().contains("writes_per_minute"), "{zero}");
        let pattern =
            SecurityConfig::from_toml_section("[security.scopes.tools]\n\"expenses\" = \"x\"\n")
                .expect_err("no slash");
        assert!(pattern.to_string().contains("\"expenses\""), "{pattern}");
    }

    #[test]
    fn the_database_sink_is_chosen_by_tag() {
        let config = SecurityConfig::from_toml_section(
            "[security.audit]\nsink = \"database\"\nurl = \"postgres://db/audit\"\nredact_keys = [\"pin\"]\n",
        )
        .expect("valid");
        assert_eq!(
            config.audit.sink,
            AuditSinkConfig::Database {
                url: "postgres://db/audit".into()
            }
        );
        assert_eq!(config.audit.redact_keys, vec!["pin".to_owned()]);
    }
}
