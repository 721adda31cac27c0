//! Signing in to HTTP servers that require OAuth.
//!
//! The client library authorizes reactively: a server that answers 401 starts discovery,
//! registration and an authorization-code grant with PKCE, and only the user's part is left
//! to us ([`Authorizer`]). Here that part is a browser: the authorization address is printed
//! on stderr (and opened when a person is at the terminal), and the authorization server sends
//! the browser back to a listener on a loopback port of this process, whose address is the
//! redirect URI. The first request that reaches it ends the wait, whatever it carries: the
//! library checks the `state` and reads the `code` or the `error`.
//!
//! One listener serves every server of the run, one sign-in at a time. Tokens live as long as
//! the connection: each run signs in again.

use std::{io::IsTerminal, sync::Arc, time::Duration};

use axum::{Router, http::Uri, response::Html, routing::get};
use switchboard_client::{
    callbacks::{CallbackError, CallbackFuture},
    oauth::{Authorizer, OAuthOptions},
};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::output;

/// How long a sign-in waits for the browser to come back.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The path of the redirect URI on the loopback listener.
const CALLBACK_PATH: &str = "/callback";
/// What the browser shows once it is back.
const SIGNED_IN_PAGE: &str = "<!doctype html><title>Switchboard</title>\
    <p>Switchboard received the answer of the authorization server. You can close this tab and \
    return to the terminal.</p>";

/// The browser sign-in of one run: a loopback listener and the redirects that reach it.
#[derive(Debug)]
pub struct BrowserSignIn {
    redirect_uri: String,
    /// The full addresses the browser was sent back to, in order.
    arrived: tokio::sync::Mutex<mpsc::Receiver<String>>,
    /// Serves the listener; stops when the sign-in is dropped.
    _server: AbortOnDropHandle<()>,
}

impl BrowserSignIn {
    /// Listen on a free loopback port for the authorization server's redirects.
    pub async fn listen() -> std::io::Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let redirect_uri = format!("{origin}{CALLBACK_PATH}");
        // A few redirects may queue (a browser that reloads the page); one is read per sign-in.
        let (sender, arrived) = mpsc::channel::<String>(8);
        let app = Router::new().route(
            CALLBACK_PATH,
            get(move |uri: Uri| {
                let (sender, origin) = (sender.clone(), origin.clone());
                async move {
                    let _ = sender.try_send(format!("{origin}{uri}"));
                    Html(SIGNED_IN_PAGE)
                }
            }),
        );
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the sign-in listener stopped");
            }
        });
        Ok(Arc::new(BrowserSignIn {
            redirect_uri,
            arrived: tokio::sync::Mutex::new(arrived),
            _server: AbortOnDropHandle::new(server),
        }))
    }

    /// The OAuth options of a run that signs in with this listener.
    pub fn options(self: &Arc<Self>) -> OAuthOptions {
        OAuthOptions::new(self.redirect_uri.clone(), self.clone())
    }
}

impl Authorizer for BrowserSignIn {
    fn authorize(&self, url: String) -> CallbackFuture<'_, String> {
        Box::pin(async move {
            // One sign-in at a time: the next waits here, and its redirect is the next to come.
            let mut arrived = self.arrived.lock().await;
            // A redirect left over from an earlier sign-in is not this one's.
            while arrived.try_recv().is_ok() {}
            output::notice(&format!(
                "A server asks you to sign in. Open this address in a browser (waiting up to {} \
                 minutes):\n  {url}",
                SIGN_IN_TIMEOUT.as_secs() / 60
            ));
            if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                open_browser(&url);
            }
            match tokio::time::timeout(SIGN_IN_TIMEOUT, arrived.recv()).await {
                Ok(Some(back)) => Ok(back),
                Ok(None) => Err(CallbackError::new("the sign-in listener stopped")),
                Err(_) => Err(CallbackError::new(format!(
                    "no answer from the browser within {} minutes",
                    SIGN_IN_TIMEOUT.as_secs() / 60
                ))),
            }
        })
    }
}

/// Ask the desktop to open `url`; the address is printed either way, so a failure is quiet.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    #[tokio::test]
    async fn the_redirect_that_comes_back_ends_the_sign_in() {
        crypto();
        let sign_in = BrowserSignIn::listen().await.expect("listen");
        let options = sign_in.options();
        assert!(options.redirect_uri.starts_with("http://127.0.0.1:"));
        let redirect = format!("{}?code=abc&state=xyz", options.redirect_uri);
        let browser = tokio::spawn(async move {
            // The browser comes back a moment after the address is shown.
            tokio::time::sleep(Duration::from_millis(50)).await;
            reqwest::get(redirect)
                .await
                .expect("the listener answers")
                .text()
                .await
                .expect("a page")
        });
        let back = tokio::time::timeout(
            Duration::from_secs(10),
            sign_in.authorize("http://127.0.0.1:9/authorize?state=xyz".to_owned()),
        )
        .await
        .expect("the browser came back in time")
        .expect("signed in");
        assert!(back.ends_with("/callback?code=abc&state=xyz"), "{back}");
        let page = browser.await.expect("browser");
        assert!(page.contains("close this tab"), "{page}");
    }

    #[tokio::test]
    async fn other_paths_are_not_a_redirect() {
        crypto();
        let sign_in = BrowserSignIn::listen().await.expect("listen");
        let origin = sign_in
            .redirect_uri
            .trim_end_matches(CALLBACK_PATH)
            .to_owned();
        let other = reqwest::get(format!("{origin}/favicon.ico"))
            .await
            .expect("the listener answers");
        assert_eq!(other.status(), 404);
        assert!(sign_in.arrived.lock().await.try_recv().is_err());
    }
}
