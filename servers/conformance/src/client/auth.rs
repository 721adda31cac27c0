//! OAuth for the `auth/*` scenarios: the fixture's client identity and a headless stand-in for
//! the user's browser.

use std::sync::Arc;

use serde_json::Value;
use switchboard_client::{
    callbacks::{CallbackError, CallbackFuture},
    oauth::{
        Authorizer, ClientAuthentication, Grant, IdentityProvider, OAuthOptions,
        PreregisteredClient, SigningAlgorithm,
    },
};
use switchboard_config::Secret;

/// The Client ID Metadata Document the suite's authorization servers expect a client to name
/// (SEP-991). The suite never fetches it; a real client hosts its own.
pub const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";
/// The redirect URI we register. Nothing listens there: the headless authorizer reads the
/// redirect from the authorization endpoint's answer instead of following it.
pub const REDIRECT_URI: &str = "http://localhost:3030/callback";

/// How the fixture authorizes, as a host configured with the scenario's context would:
/// - a private key (`private_key_pem`): client credentials with a signed assertion;
/// - an enterprise ID token (`idp_id_token`): enterprise-managed authorization;
/// - a workload's JWT (`valid_jwt`): the JWT-bearer grant;
/// - otherwise the user's consent, as a pre-registered client when the context gives one
///   (`client_id`, `client_secret`; client credentials when that is all the authorization
///   server offers), or by its metadata document or registration.
///
/// DPoP is on, as by default: tokens are bound when the authorization server offers it.
pub fn options(context: &Value) -> OAuthOptions {
    let text = |key: &str| context.get(key).and_then(Value::as_str).map(str::to_owned);
    let secret = |key: &str| text(key).map(Secret::new);
    let grant = if let (Some(client_id), Some(key_pem)) =
        (text("client_id"), secret("private_key_pem"))
    {
        Grant::ClientCredentials {
            client_id,
            authentication: ClientAuthentication::PrivateKeyJwt {
                key_pem,
                algorithm: text("signing_algorithm")
                    .and_then(|name| SigningAlgorithm::from_name(&name))
                    .unwrap_or(SigningAlgorithm::Es256),
            },
        }
    } else if let (Some(id_token), Some(issuer), Some(token_endpoint), Some(idp_client)) = (
        secret("idp_id_token"),
        text("idp_issuer"),
        text("idp_token_endpoint"),
        text("idp_client_id"),
    ) {
        Grant::EnterpriseManaged {
            idp: IdentityProvider {
                issuer,
                token_endpoint,
                client_id: idp_client,
            },
            id_token,
            client_id: text("client_id").unwrap_or_default(),
            client_secret: secret("client_secret").unwrap_or_else(|| Secret::new(String::new())),
        }
    } else if let Some(assertion) = secret("valid_jwt") {
        Grant::JwtBearer {
            assertion,
            client_id: text("client_id"),
        }
    } else {
        Grant::AuthorizationCode
    };
    OAuthOptions {
        grant,
        dpop: true,
        redirect_uri: REDIRECT_URI.to_owned(),
        client_name: "switchboard-conformance-client".to_owned(),
        client: text("client_id").map(|client_id| PreregisteredClient {
            client_id,
            client_secret: text("client_secret").map(Secret::new),
        }),
        client_metadata_url: Some(CLIENT_METADATA_URL.to_owned()),
        authorizer: Arc::new(Headless),
    }
}

/// "Consents" by requesting the authorization URL without following redirects and handing
/// back the `Location` the authorization server answers with, as a browser would follow it.
#[derive(Debug)]
pub struct Headless;

impl Authorizer for Headless {
    fn authorize(&self, url: String) -> CallbackFuture<'_, String> {
        Box::pin(async move {
            let failed = |what: String| CallbackError::new(format!("authorization: {what}"));
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(super::STEP_TIMEOUT)
                .build()
                .map_err(|e| failed(e.to_string()))?;
            let response = http
                .get(&url)
                .send()
                .await
                .map_err(|e| failed(e.to_string()))?;
            if !response.status().is_redirection() {
                return Err(failed(format!(
                    "the authorization endpoint answered {} instead of a redirect",
                    response.status()
                )));
            }
            response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| failed("the redirect has no Location".to_owned()))
        })
    }
}
