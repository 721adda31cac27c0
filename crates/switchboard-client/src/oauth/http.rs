//! The HTTP client of every OAuth request one connection makes: discovery, registration,
//! token requests, whether rmcp's steps or our own grants make them.
//!
//! It applies the address policy of [`super::addresses`] to every request and redirect, bounds
//! answers and time, and, once DPoP is on, adds a proof to every token request and answers an
//! authorization server's `use_dpop_nonce` by sending the request once more with the nonce.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt as _;
use http::{HeaderValue, Method, StatusCode, header};
use reqwest::Url;
use rmcp::transport::auth::{
    OAuthHttpClient, OAuthHttpClientError, OAuthHttpClientFuture, OAuthHttpRedirectPolicy,
    OAuthHttpRequest,
};
use serde_json::Value;

use super::{
    addresses::{AddressPolicy, FilteringResolver},
    dpop::{self, Audience, DpopKey},
};

/// How long one OAuth request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest OAuth answer read (metadata, registration, tokens are all far smaller).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Redirects followed where following is allowed (discovery).
const MAX_REDIRECTS: usize = 5;

/// See the module documentation.
pub(crate) struct OAuthNet {
    follow: reqwest::Client,
    stop: reqwest::Client,
    policy: Arc<AddressPolicy>,
    /// The connection's DPoP key, when DPoP may be used.
    dpop: Option<Arc<DpopKey>>,
    /// Whether token requests carry proofs: the authorization server offered DPoP.
    dpop_on: AtomicBool,
}

impl std::fmt::Debug for OAuthNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthNet")
            .field("policy", &self.policy)
            .field("dpop_on", &self.dpop_on)
            .finish_non_exhaustive()
    }
}

fn boxed(error: impl Into<OAuthHttpClientError>) -> OAuthHttpClientError {
    error.into()
}

impl OAuthNet {
    /// The client for the OAuth requests of the MCP server at `server`.
    pub(crate) fn new(server: &Url, dpop: Option<Arc<DpopKey>>) -> Result<OAuthNet, String> {
        let policy = Arc::new(AddressPolicy::for_server(server));
        let redirects = policy.clone();
        let follow = reqwest::redirect::Policy::custom(move |attempt| {
            if !redirects.allows_url(attempt.url()) {
                let refused = format!(
                    "OAuth redirect to {} refused: that address may not be reached from this server",
                    attempt.url()
                );
                attempt.error(refused)
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        });
        let build = |redirect: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(redirect)
                .dns_resolver(Arc::new(FilteringResolver(policy.clone())))
                .build()
                .map_err(|error| format!("could not make the OAuth HTTP client: {error}"))
        };
        Ok(OAuthNet {
            follow: build(follow)?,
            stop: build(reqwest::redirect::Policy::none())?,
            policy,
            dpop,
            dpop_on: AtomicBool::new(false),
        })
    }

    /// Put proofs on token requests from now on (the authorization server offers DPoP).
    pub(crate) fn use_dpop(&self) -> bool {
        let on = self.dpop.is_some();
        self.dpop_on.store(on, Ordering::SeqCst);
        on
    }

    /// Send one request as it is, under the address policy; the whole answer, bounded.
    async fn send_once(
        &self,
        request: http::Request<Vec<u8>>,
        follow: bool,
    ) -> Result<http::Response<Vec<u8>>, OAuthHttpClientError> {
        let request = reqwest::Request::try_from(request).map_err(boxed)?;
        if !self.policy.allows_url(request.url()) {
            return Err(boxed(format!(
                "OAuth request to {} refused: that address may not be reached from this server",
                request.url()
            )));
        }
        let client = if follow { &self.follow } else { &self.stop };
        let response = client.execute(request).await.map_err(boxed)?;
        let mut answer = http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(boxed)?;
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(boxed(format!(
                    "an OAuth answer over {MAX_ANSWER_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        answer.body(body).map_err(boxed)
    }

    /// Send `request`; a token request (a form POST) gets a DPoP proof when DPoP is on, and is
    /// sent once more with the nonce when the authorization server asks for one.
    pub(crate) async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        follow: bool,
    ) -> Result<http::Response<Vec<u8>>, OAuthHttpClientError> {
        let key = match &self.dpop {
            Some(key) if self.dpop_on.load(Ordering::SeqCst) && is_token_request(&request) => key,
            _ => return self.send_once(request, follow).await,
        };
        let url = Url::parse(&request.uri().to_string()).map_err(boxed)?;
        let (parts, body) = request.into_parts();
        let mut nonce_retried = false;
        loop {
            let proof = key
                .proof(
                    Audience::AuthorizationServer,
                    parts.method.as_str(),
                    &url,
                    None,
                )
                .map_err(boxed)?;
            let mut attempt = http::Request::from_parts(parts.clone(), body.clone());
            attempt.headers_mut().insert(
                dpop::PROOF_HEADER,
                HeaderValue::from_str(&proof).map_err(boxed)?,
            );
            let answer = self.send_once(attempt, follow).await?;
            let nonce = answer
                .headers()
                .get(dpop::NONCE_HEADER)
                .and_then(|value| value.to_str().ok());
            if let Some(nonce) = nonce {
                key.set_nonce(Audience::AuthorizationServer, nonce);
            }
            let wants_nonce = answer.status() == StatusCode::BAD_REQUEST
                && nonce.is_some()
                && oauth_error(answer.body()).as_deref() == Some(dpop::USE_NONCE_ERROR);
            if wants_nonce && !nonce_retried {
                nonce_retried = true;
                continue;
            }
            return Ok(answer);
        }
    }

    /// POST a token request of ours (`form`) to `token_endpoint`: the token answer as JSON,
    /// or the authorization server's error, quoted.
    pub(crate) async fn token_request(
        &self,
        token_endpoint: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Value, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(token_endpoint)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if let Some((user, password)) = basic {
            // RFC 6749 §2.3.1: both halves form-encoded before they are joined.
            let encode = |text: &str| {
                url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
            };
            let pair = format!("{}:{}", encode(user), encode(password));
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let request = request
            .body(body.into_bytes())
            .map_err(|error| format!("the token request cannot be made: {error}"))?;
        let answer = self
            .send(request, false)
            .await
            .map_err(|error| format!("the token request to {token_endpoint} failed: {error}"))?;
        let status = answer.status();
        let json: Option<Value> = serde_json::from_slice(answer.body()).ok();
        if !status.is_success() {
            let error = json
                .as_ref()
                .and_then(|json| json.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no OAuth error code");
            let description = json
                .as_ref()
                .and_then(|json| json.get("error_description"))
                .and_then(Value::as_str)
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            return Err(format!(
                "the authorization server refused the token request ({status}, {error}{description})"
            ));
        }
        match json {
            Some(json @ Value::Object(_)) if json.get("access_token").is_some() => Ok(json),
            _ => Err(format!(
                "the authorization server's token answer ({status}) has no access_token"
            )),
        }
    }
}

impl OAuthHttpClient for OAuthNet {
    fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
        let OAuthHttpRequest {
            request,
            redirect_policy,
            ..
        } = request;
        Box::pin(async move {
            self.send(request, redirect_policy == OAuthHttpRedirectPolicy::Follow)
                .await
        })
    }
}

/// A token request: a form-encoded POST.
fn is_token_request(request: &http::Request<Vec<u8>>) -> bool {
    request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| {
                value
                    .as_bytes()
                    .starts_with(b"application/x-www-form-urlencoded")
            })
}

/// The `error` of an OAuth error answer.
fn oauth_error(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("error")?.as_str().map(str::to_owned)
}
