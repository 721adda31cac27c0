//! The entry's `"switchboard"` object: [`Resilience`] with `file:line:column` errors.

use std::num::NonZeroU32;
use std::time::Duration;

use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use url::Url;

use super::{Document, key_of};
use crate::error::ConfigError;
use crate::model::{ServerName, Transport};
use crate::resilience::{
    BreakerSettings, HealthSettings, RESILIENCE_KEY, RateLimitSettings, ReconnectSettings,
    Resilience, RetrySettings, ToolSettings,
};

const TOP: &[&str] = &[
    "connectTimeoutMs",
    "requestTimeoutMs",
    "retry",
    "circuitBreaker",
    "rateLimit",
    "reconnect",
    "healthCheck",
    "replicas",
    "tools",
];
const RETRY: &[&str] = &[
    "maxAttempts",
    "initialBackoffMs",
    "maxBackoffMs",
    "budgetPercent",
    "minRetriesPerSecond",
];
const BREAKER: &[&str] = &["failureThreshold", "openMs", "halfOpenProbes"];
const RATE_LIMIT: &[&str] = &["requestsPerSecond", "burst"];
const RECONNECT: &[&str] = &["maxAttempts", "initialBackoffMs", "maxBackoffMs"];
const HEALTH: &[&str] = &["intervalMs", "timeoutMs"];
const TOOL: &[&str] = &["timeoutMs", "idempotent", "cacheTtlMs"];

/// Longest duration a setting may hold (one day): larger values are typos, and a bound keeps
/// timer arithmetic far from overflow.
const MAX_SETTING_MS: u64 = 24 * 60 * 60 * 1000;

/// The properties of one settings object, checked against the keys accepted there.
struct Settings<'p, 'a> {
    path: String,
    props: Vec<&'p ObjectProp<'a>>,
}

impl<'p, 'a> Settings<'p, 'a> {
    fn get(&self, key: &str) -> Option<&'p ObjectProp<'a>> {
        self.props.iter().copied().find(|prop| key_of(prop) == key)
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }
}

impl Document<'_> {
    /// Parses the entry's `"switchboard"` object; defaults when it is absent or `null`.
    pub(super) fn parse_resilience(
        &self,
        server: &ServerName,
        object: &Object<'_>,
        transport: &Transport,
    ) -> Result<Resilience, ConfigError> {
        let mut resilience = Resilience::default();
        let Some(prop) = self.unique_prop(object, RESILIENCE_KEY, RESILIENCE_KEY, Some(server))?
        else {
            return Ok(resilience);
        };
        if matches!(prop.value, Value::NullKeyword(_)) {
            return Ok(resilience);
        }
        let top = self.settings(server, &prop.value, RESILIENCE_KEY.to_owned(), TOP)?;
        resilience.connect_timeout = self.duration(server, &top, "connectTimeoutMs", true)?;
        resilience.request_timeout = self.duration(server, &top, "requestTimeoutMs", true)?;
        if let Some(retry) = self.nested(server, &top, "retry", RETRY)? {
            let defaults = RetrySettings::default();
            resilience.retry = RetrySettings {
                max_attempts: self
                    .count(server, &retry, "maxAttempts", 1)?
                    .unwrap_or(defaults.max_attempts),
                initial_backoff: self
                    .duration(server, &retry, "initialBackoffMs", false)?
                    .unwrap_or(defaults.initial_backoff),
                max_backoff: self
                    .duration(server, &retry, "maxBackoffMs", false)?
                    .unwrap_or(defaults.max_backoff),
                budget_percent: self
                    .count(server, &retry, "budgetPercent", 0)?
                    .unwrap_or(defaults.budget_percent),
                min_retries_per_second: self
                    .count(server, &retry, "minRetriesPerSecond", 0)?
                    .unwrap_or(defaults.min_retries_per_second),
            };
        }
        if let Some(breaker) = self.nested(server, &top, "circuitBreaker", BREAKER)? {
            let defaults = BreakerSettings::default();
            resilience.circuit_breaker = BreakerSettings {
                failure_threshold: self
                    .count(server, &breaker, "failureThreshold", 0)?
                    .unwrap_or(defaults.failure_threshold),
                open_duration: self
                    .duration(server, &breaker, "openMs", true)?
                    .unwrap_or(defaults.open_duration),
                half_open_probes: self
                    .count(server, &breaker, "halfOpenProbes", 1)?
                    .unwrap_or(defaults.half_open_probes),
            };
        }
        if let Some(limit) = self.nested(server, &top, "rateLimit", RATE_LIMIT)? {
            let Some(rate) = self.count(server, &limit, "requestsPerSecond", 1)? else {
                return Err(ConfigError::InvalidSetting {
                    location: self.location(prop.value.start()),
                    server: server.clone(),
                    field: limit.field("requestsPerSecond"),
                    reason: "is required when \"rateLimit\" is given",
                });
            };
            let burst = self.count(server, &limit, "burst", 1)?.unwrap_or(rate);
            // Both are at least 1 (checked by `count`).
            if let (Some(rate), Some(burst)) = (NonZeroU32::new(rate), NonZeroU32::new(burst)) {
                resilience.rate_limit = Some(RateLimitSettings::new(rate, burst));
            }
        }
        if let Some(reconnect) = self.nested(server, &top, "reconnect", RECONNECT)? {
            let defaults = ReconnectSettings::default();
            resilience.reconnect = ReconnectSettings {
                max_attempts: self
                    .count(server, &reconnect, "maxAttempts", 0)?
                    .unwrap_or(defaults.max_attempts),
                initial_backoff: self
                    .duration(server, &reconnect, "initialBackoffMs", false)?
                    .unwrap_or(defaults.initial_backoff),
                max_backoff: self
                    .duration(server, &reconnect, "maxBackoffMs", false)?
                    .unwrap_or(defaults.max_backoff),
            };
        }
        if let Some(health) = self.nested(server, &top, "healthCheck", HEALTH)? {
            let defaults = HealthSettings::default();
            resilience.health_check = HealthSettings {
                interval: self
                    .duration(server, &health, "intervalMs", false)?
                    .unwrap_or(defaults.interval),
                timeout: self
                    .duration(server, &health, "timeoutMs", true)?
                    .unwrap_or(defaults.timeout),
            };
        }
        if let Some(replicas) = top.get("replicas") {
            resilience.replicas =
                self.replicas(server, replicas, &top.field("replicas"), transport)?;
        }
        if let Some(tools) = top.get("tools") {
            let Value::Object(object) = &tools.value else {
                return Err(self.wrong_type(
                    &tools.value,
                    Some(server),
                    &top.field("tools"),
                    "an object of tool settings",
                ));
            };
            for tool in &object.properties {
                let name = key_of(tool);
                let path = format!("{}.{name}", top.field("tools"));
                if resilience.tools.contains_key(name) {
                    let first = object
                        .properties
                        .iter()
                        .find(|p| key_of(p) == name)
                        .unwrap_or(tool);
                    return Err(self.field_defined_twice(first, tool, &path, Some(server)));
                }
                let settings = self.settings(server, &tool.value, path, TOOL)?;
                let idempotent = match settings.get("idempotent").map(|p| &p.value) {
                    None | Some(Value::NullKeyword(_)) => None,
                    Some(Value::BooleanLit(flag)) => Some(flag.value),
                    Some(other) => {
                        return Err(self.wrong_type(
                            other,
                            Some(server),
                            &settings.field("idempotent"),
                            "a boolean",
                        ));
                    }
                };
                let parsed = ToolSettings {
                    timeout: self.duration(server, &settings, "timeoutMs", true)?,
                    idempotent,
                    cache_ttl: self.duration(server, &settings, "cacheTtlMs", true)?,
                };
                resilience.tools.insert(name.to_owned(), parsed);
            }
        }
        Ok(resilience)
    }

    /// `value` as an object whose keys are all in `accepted`, each at most once.
    fn settings<'p, 'a>(
        &self,
        server: &ServerName,
        value: &'p Value<'a>,
        path: String,
        accepted: &'static [&'static str],
    ) -> Result<Settings<'p, 'a>, ConfigError> {
        let Value::Object(object) = value else {
            return Err(self.wrong_type(value, Some(server), &path, "an object"));
        };
        let mut props: Vec<&'p ObjectProp<'a>> = Vec::new();
        for prop in &object.properties {
            let key = key_of(prop);
            if !accepted.contains(&key) {
                return Err(ConfigError::UnknownSetting {
                    location: self.location(prop.name.start()),
                    server: server.clone(),
                    field: format!("{path}.{key}"),
                    expected: accepted,
                });
            }
            if let Some(first) = props.iter().find(|p| key_of(p) == key) {
                return Err(self.field_defined_twice(
                    first,
                    prop,
                    &format!("{path}.{key}"),
                    Some(server),
                ));
            }
            if !matches!(prop.value, Value::NullKeyword(_)) {
                props.push(prop);
            }
        }
        Ok(Settings { path, props })
    }

    fn nested<'p, 'a>(
        &self,
        server: &ServerName,
        parent: &Settings<'p, 'a>,
        key: &str,
        accepted: &'static [&'static str],
    ) -> Result<Option<Settings<'p, 'a>>, ConfigError> {
        parent
            .get(key)
            .map(|prop| self.settings(server, &prop.value, parent.field(key), accepted))
            .transpose()
    }

    /// A non-negative integer setting, at least `min`.
    fn count(
        &self,
        server: &ServerName,
        settings: &Settings<'_, '_>,
        key: &str,
        min: u32,
    ) -> Result<Option<u32>, ConfigError> {
        let Some(prop) = settings.get(key) else {
            return Ok(None);
        };
        let number = self.integer(server, &prop.value, &settings.field(key))?;
        let number = u32::try_from(number).map_err(|_| ConfigError::InvalidSetting {
            location: self.location(prop.value.start()),
            server: server.clone(),
            field: settings.field(key),
            reason: "is too large",
        })?;
        if number < min {
            return Err(ConfigError::InvalidSetting {
                location: self.location(prop.value.start()),
                server: server.clone(),
                field: settings.field(key),
                reason: "must be at least 1",
            });
        }
        Ok(Some(number))
    }

    /// A setting in milliseconds, at most one day; `positive` refuses 0.
    fn duration(
        &self,
        server: &ServerName,
        settings: &Settings<'_, '_>,
        key: &str,
        positive: bool,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(prop) = settings.get(key) else {
            return Ok(None);
        };
        let ms = self.integer(server, &prop.value, &settings.field(key))?;
        let invalid = |reason| ConfigError::InvalidSetting {
            location: self.location(prop.value.start()),
            server: server.clone(),
            field: settings.field(key),
            reason,
        };
        if positive && ms == 0 {
            return Err(invalid("must be at least 1 millisecond"));
        }
        if ms > MAX_SETTING_MS {
            return Err(invalid("is more than one day (86400000 ms)"));
        }
        Ok(Some(Duration::from_millis(ms)))
    }

    fn integer(
        &self,
        server: &ServerName,
        value: &Value<'_>,
        field: &str,
    ) -> Result<u64, ConfigError> {
        match value {
            Value::NumberLit(number) => {
                number
                    .value
                    .parse::<u64>()
                    .map_err(|_| ConfigError::WrongType {
                        location: self.location(value.start()),
                        server: Some(server.clone()),
                        field: field.to_owned(),
                        expected: "a whole number of 0 or more",
                        found: "another number",
                    })
            }
            other => Err(self.wrong_type(other, Some(server), field, "a whole number")),
        }
    }

    fn replicas(
        &self,
        server: &ServerName,
        prop: &ObjectProp<'_>,
        field: &str,
        transport: &Transport,
    ) -> Result<Vec<Url>, ConfigError> {
        let Value::Array(array) = &prop.value else {
            return Err(self.wrong_type(&prop.value, Some(server), field, "an array of URLs"));
        };
        let Some(primary) = transport.url() else {
            return Err(ConfigError::InvalidSetting {
                location: self.location(prop.name.start()),
                server: server.clone(),
                field: field.to_owned(),
                reason: "is only for servers with a \"url\"",
            });
        };
        let mut urls = Vec::with_capacity(array.elements.len());
        for (index, element) in array.elements.iter().enumerate() {
            let item = format!("{field}[{index}]");
            let Value::StringLit(text) = element else {
                return Err(self.wrong_type(element, Some(server), &item, "a URL string"));
            };
            let url = Url::parse(&text.value).map_err(|source| ConfigError::InvalidUrl {
                location: self.location(element.start()),
                server: server.clone(),
                field: "switchboard.replicas",
                source,
            })?;
            if url.scheme() != primary.scheme() {
                return Err(ConfigError::InvalidSetting {
                    location: self.location(element.start()),
                    server: server.clone(),
                    field: item,
                    reason: "must use the same scheme as the server's \"url\"",
                });
            }
            urls.push(url);
        }
        Ok(urls)
    }
}
