//! The `requestState` of 2026-07-28 `input_required` results: the handler's own state, carried
//! by the client between rounds and protected against tampering.
//!
//! A token is `v1.<payload>.<tag>`, both parts base64url without padding. The payload is JSON
//! `{"exp": <unix seconds>, "state": <the handler's state or null>}`; it is signed, not
//! encrypted, so the client can read it and a handler must not put secrets in its state. The
//! tag is HMAC-SHA256, under a key only this server knows, over the payload and the request it
//! belongs to: the method, the tool or prompt name and the arguments in canonical JSON. A
//! token is therefore good for the same call only, until it expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// How long a `requestState` stays good: long enough for a person to answer a form.
pub const REQUEST_STATE_TTL: Duration = Duration::from_secs(60 * 60);
/// Longest `requestState` accepted, in bytes.
pub const MAX_REQUEST_STATE_BYTES: usize = 64 * 1024;

const VERSION: &str = "v1";
const DOMAIN: &[u8] = b"switchboard/request-state/v1";

/// The signing key. Each server makes a random one, unless told to share one (several
/// processes behind one address).
#[derive(Clone)]
pub(crate) struct StateKey([u8; 32]);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

/// The request a token is bound to.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) method: &'static str,
    pub(crate) name: String,
    /// The arguments in canonical JSON (object keys sorted).
    pub(crate) arguments: String,
}

impl Binding {
    pub(crate) fn new(method: &'static str, name: &str, arguments: &Value) -> Self {
        let mut canonical = String::new();
        write_canonical(arguments, &mut canonical);
        Binding {
            method,
            name: name.to_owned(),
            arguments: canonical,
        }
    }
}

/// Why a `requestState` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StateError {
    #[error("requestState is not one this server issued")]
    Malformed,
    #[error(
        "requestState failed its integrity check: it was changed, or issued for another request"
    )]
    Forged,
    #[error("requestState has expired")]
    Expired,
    #[error("requestState is longer than {MAX_REQUEST_STATE_BYTES} bytes")]
    TooLong,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    exp: u64,
    state: Option<Value>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The handler state a `requestState` token carries, read without checking it: for routing
/// only (which of several processes behind one address issued it, when the handler put that
/// in its state), never for trusting. The process that issued the token verifies it when the
/// request reaches it. `None` for anything that is not a well-formed token.
pub fn unverified_state(token: &str) -> Option<Value> {
    if token.len() > MAX_REQUEST_STATE_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(VERSION), Some(payload), Some(_tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Payload>(&payload).ok()?.state
}

impl StateKey {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        StateKey(key)
    }

    /// A key from the operating system's random source.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut key = [0; 32];
        getrandom::fill(&mut key)?;
        Ok(StateKey(key))
    }

    fn tag(&self, binding: &Binding, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        // Each part is length-prefixed, so no two different requests sign the same bytes.
        mac.update(DOMAIN);
        for part in [
            binding.method.as_bytes(),
            binding.name.as_bytes(),
            binding.arguments.as_bytes(),
            payload,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// A token carrying `state`, good for `binding` until [`REQUEST_STATE_TTL`] from now.
    pub(crate) fn seal(&self, binding: &Binding, state: Option<&Value>) -> String {
        self.seal_at(binding, state, now())
    }

    fn seal_at(&self, binding: &Binding, state: Option<&Value>, now: u64) -> String {
        let payload = serde_json::to_vec(&Payload {
            exp: now + REQUEST_STATE_TTL.as_secs(),
            state: state.cloned(),
        })
        .unwrap_or_default();
        let tag = self.tag(binding, &payload).finalize().into_bytes();
        format!(
            "{VERSION}.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The state a token carries, if it is genuine, meant for `binding` and not expired.
    pub(crate) fn open(&self, binding: &Binding, token: &str) -> Result<Option<Value>, StateError> {
        self.open_at(binding, token, now())
    }

    fn open_at(
        &self,
        binding: &Binding,
        token: &str,
        now: u64,
    ) -> Result<Option<Value>, StateError> {
        if token.len() > MAX_REQUEST_STATE_BYTES {
            return Err(StateError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(VERSION), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StateError::Malformed);
        };
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Malformed)?;
        // Checked in constant time, before the payload is trusted enough to be parsed.
        self.tag(binding, &payload)
            .verify_slice(&tag)
            .map_err(|_| StateError::Forged)?;
        let payload: Payload =
            serde_json::from_slice(&payload).map_err(|_| StateError::Malformed)?;
        if payload.exp < now {
            return Err(StateError::Expired);
        }
        Ok(payload.state)
    }
}

/// JSON with object keys sorted, so equal arguments give equal bytes whatever their order on
/// the wire (serde_json keeps insertion order in this workspace).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn binding(arguments: Value) -> Binding {
        Binding::new("tools/call", "tool", &arguments)
    }

    #[test]
    fn the_state_of_any_well_formed_token_reads_without_the_key() {
        let token = StateKey::new([7; 32]).seal(&binding(json!({})), Some(&json!({"at": "r1"})));
        assert_eq!(unverified_state(&token), Some(json!({"at": "r1"})));
        let stateless = StateKey::new([7; 32]).seal(&binding(json!({})), None);
        assert_eq!(unverified_state(&stateless), None);
        for bad in [
            "",
            "v1",
            "v1.!!!.tag",
            "v2.e30.tag",
            "v1.e30.tag.more",
            "v1.bm90IGpzb24.tag",
        ] {
            assert_eq!(unverified_state(bad), None, "{bad}");
        }
        assert_eq!(
            unverified_state(&"v1.".repeat(MAX_REQUEST_STATE_BYTES)),
            None
        );
    }

    #[test]
    fn a_sealed_state_opens_for_the_same_request_only() {
        let key = StateKey::new([7; 32]);
        let token = key.seal(
            &binding(json!({"a": 1, "b": [2, {"c": 3}]})),
            Some(&json!({"step": 2})),
        );
        // The same arguments in another order are the same request.
        assert_eq!(
            key.open(&binding(json!({"b": [2, {"c": 3}], "a": 1})), &token),
            Ok(Some(json!({"step": 2})))
        );
        assert_eq!(
            key.open(&binding(json!({"a": 2, "b": [2, {"c": 3}]})), &token),
            Err(StateError::Forged)
        );
        assert_eq!(
            key.open(
                &Binding::new("prompts/get", "tool", &json!({"a": 1, "b": [2, {"c": 3}]})),
                &token
            ),
            Err(StateError::Forged)
        );
        assert_eq!(
            StateKey::new([8; 32]).open(&binding(json!({"a": 1, "b": [2, {"c": 3}]})), &token),
            Err(StateError::Forged),
            "another server's state is refused"
        );
    }

    #[test]
    fn tampered_and_expired_states_are_refused() {
        let key = StateKey::new([7; 32]);
        let request = binding(json!({}));
        let token = key.seal_at(&request, None, 1_000);
        assert_eq!(key.open_at(&request, &token, 1_000), Ok(None));
        // What the conformance suite does to a token.
        assert!(
            key.open_at(&request, &format!("{token}-TAMPERED"), 1_000)
                .is_err()
        );
        // A new payload under the old tag.
        let (_, tag) = token.rsplit_once('.').unwrap_or_default();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"exp":99999999999,"state":{"admin":true}}"#);
        let forged = format!("v1.{forged_payload}.{tag}");
        assert_eq!(
            key.open_at(&request, &forged, 1_000),
            Err(StateError::Forged)
        );
        assert_eq!(
            key.open_at(&request, &token, 1_001 + REQUEST_STATE_TTL.as_secs()),
            Err(StateError::Expired)
        );
        assert_eq!(
            key.open_at(&request, "garbage", 1_000),
            Err(StateError::Malformed)
        );
    }
}
