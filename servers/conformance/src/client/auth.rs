//! OAuth for the `auth/*` scenarios: the fixture's client identity and a headless stand-in for
//! the user's browser.

use std::sync::Arc;

use serde_json::Value;
use switchboard_client::{
    callbacks::{CallbackError, CallbackFuture},
    oauth::{Authorizer, OAuthOptions, PreregisteredClient},
};
use switchboard_config::Secret;

/// The Client ID Metadata Document the suite's authorization servers expect a client to name
/// (SEP-991). The suite never fetches it; a real client hosts its own.
pub const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";
/// The redirect URI we register. Nothing listens there: the headless authorizer reads the
/// redirect from the authorization endpoint's answer instead of following it.
pub const REDIRECT_URI: &str = "http://localhost:3030/callback";

/// How the fixture identifies itself: a pre-registered client when the scenario's context
/// gives one (`client_id`, `client_secret`), otherwise its metadata document or registration.
pub fn options(context: &Value) -> OAuthOptions {
    let text = |key: &str| context.get(key).and_then(Value::as_str).map(str::to_owned);
    OAuthOptions {
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
