//! DPoP (RFC 9449): tokens bound to a key only this connection holds.
//!
//! When the authorization server advertises ES256 in `dpop_signing_alg_values_supported`, the
//! connection makes a P-256 key, proves possession of it on every token request, and gets a
//! token the server binds to that key (`token_type: DPoP`). Every MCP request then carries
//! `Authorization: DPoP <token>` and a fresh proof naming the request's method and URL and the
//! token's hash. A stolen token is useless without the key, which never leaves the process.
//!
//! Servers may demand a nonce in the proofs (`use_dpop_nonce`, with a `DPoP-Nonce` header);
//! the authorization server and the MCP server each keep their own, and the last one each sent
//! goes into the following proofs to it.

use std::{
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use reqwest::Url;
use ring::{
    digest,
    rand::{SecureRandom as _, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use serde::Serialize;

/// The response header that carries a server's nonce.
pub(crate) const NONCE_HEADER: &str = "dpop-nonce";
/// The request header that carries a proof.
pub(crate) const PROOF_HEADER: &str = "dpop";
/// The error a server answers with when a proof lacks its current nonce.
pub(crate) const USE_NONCE_ERROR: &str = "use_dpop_nonce";
/// The signing algorithm we offer; servers must list it to get DPoP.
pub(crate) const ALGORITHM: &str = "ES256";

/// Which server a nonce belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    AuthorizationServer,
    ResourceServer,
}

/// One connection's DPoP key and the nonces its servers asked for.
pub(crate) struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
    random: SystemRandom,
    authorization_nonce: Mutex<Option<String>>,
    resource_nonce: Mutex<Option<String>>,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: String,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
}

impl DpopKey {
    /// A new P-256 key from the system's random source.
    pub(crate) fn generate() -> Result<DpopKey, String> {
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
            .map_err(|_| "could not make a DPoP key".to_owned())?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .map_err(|error| format!("could not describe the DPoP key: {error}"))?;
        Ok(DpopKey {
            key,
            jwk,
            random,
            authorization_nonce: Mutex::default(),
            resource_nonce: Mutex::default(),
        })
    }

    fn nonce_slot(&self, audience: Audience) -> &Mutex<Option<String>> {
        match audience {
            Audience::AuthorizationServer => &self.authorization_nonce,
            Audience::ResourceServer => &self.resource_nonce,
        }
    }

    /// Remember the nonce a server sent, for the next proofs to it.
    pub(crate) fn set_nonce(&self, audience: Audience, nonce: &str) {
        *self
            .nonce_slot(audience)
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(nonce.to_owned());
    }

    /// A proof for one request: `method` to `url`, carrying `token` when the request does.
    pub(crate) fn proof(
        &self,
        audience: Audience,
        method: &str,
        url: &Url,
        token: Option<&str>,
    ) -> Result<String, String> {
        // The target URI without query and fragment (RFC 9449 §4.2).
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let claims = ProofClaims {
            jti: random_id_from(&self.random)?,
            htm: method,
            htu: htu.into(),
            iat: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            ath: token.map(|token| {
                URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
            }),
            nonce: self
                .nonce_slot(audience)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        };
        let header = Header {
            typ: Some("dpop+jwt".to_owned()),
            jwk: Some(self.jwk.clone()),
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|error| format!("could not sign a DPoP proof: {error}"))
    }
}

/// 128 random bits, base64url: a `jti`.
pub(crate) fn random_id() -> Result<String, String> {
    random_id_from(&SystemRandom::new())
}

fn random_id_from(random: &SystemRandom) -> Result<String, String> {
    let mut id = [0u8; 16];
    random
        .fill(&mut id)
        .map_err(|_| "the system's random source failed".to_owned())?;
    Ok(URL_SAFE_NO_PAD.encode(id))
}

/// Whether an authorization server's metadata offers DPoP with our algorithm.
pub(crate) fn offered(metadata: &rmcp::transport::auth::AuthorizationMetadata) -> bool {
    metadata
        .additional_fields
        .get("dpop_signing_alg_values_supported")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|algorithms| {
            algorithms
                .iter()
                .any(|algorithm| algorithm.as_str() == Some(ALGORITHM))
        })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    use super::*;

    #[test]
    fn a_proof_is_signed_by_the_key_it_names_and_binds_the_request() {
        let key = DpopKey::generate().expect("a key");
        let url = Url::parse("http://localhost:3000/mcp?x=1#f").expect("a valid test value");
        let proof = key
            .proof(Audience::ResourceServer, "POST", &url, Some("token-1"))
            .expect("a proof");
        let header = jsonwebtoken::decode_header(&proof).expect("a JWS header");
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, Algorithm::ES256);
        let jwk = header.jwk.expect("the public key in the header");
        let public = serde_json::to_value(&jwk).expect("a valid test value");
        assert!(
            public.get("d").is_none(),
            "the private part must not leak: {public}"
        );
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(
            &proof,
            &DecodingKey::from_jwk(&jwk).expect("a decoding key"),
            &validation,
        )
        .expect("the signature verifies with the named key")
        .claims;
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "http://localhost:3000/mcp");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, b"token-1"))
        );
        assert!(claims.get("nonce").is_none());

        let again = key
            .proof(Audience::ResourceServer, "POST", &url, Some("token-1"))
            .expect("a valid test value");
        let jti = |proof: &str| {
            let payload = proof.split('.').nth(1).expect("a valid test value");
            let claims: Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD.decode(payload).expect("a valid test value"),
            )
            .expect("a valid test value");
            claims["jti"]
                .as_str()
                .expect("a valid test value")
                .to_owned()
        };
        assert_ne!(jti(&proof), jti(&again), "every proof is fresh");
    }

    #[test]
    fn nonces_are_kept_per_server() {
        let key = DpopKey::generate().expect("a valid test value");
        key.set_nonce(Audience::AuthorizationServer, "as-nonce");
        let url = Url::parse("http://localhost/token").expect("a valid test value");
        let nonce = |audience| {
            let proof = key
                .proof(audience, "POST", &url, None)
                .expect("a valid test value");
            let payload = proof
                .split('.')
                .nth(1)
                .expect("a valid test value")
                .to_owned();
            let claims: Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD.decode(payload).expect("a valid test value"),
            )
            .expect("a valid test value");
            claims.get("nonce").cloned()
        };
        assert_eq!(
            nonce(Audience::AuthorizationServer),
            Some(Value::from("as-nonce"))
        );
        assert_eq!(nonce(Audience::ResourceServer), None);
    }
}
