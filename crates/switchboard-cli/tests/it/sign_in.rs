//! Signing in to a server that requires OAuth: the real `switchboard` process against an
//! in-process protected server and its authorization server (`test_support::oauth_server`).
//! The test is the user's browser: it reads the address the CLI shows on stderr, visits it,
//! and follows the authorization server's redirect to the CLI's loopback listener.

use std::time::Duration;

use serde_json::json;
use test_support::oauth_server::{READ, WRITE, protected_server};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Sandbox;

/// Bounds the whole exchange: a sign-in that never ends fails the test instead of hanging.
const WAIT: Duration = Duration::from_secs(30);

/// What the browser does with an authorization address.
#[derive(Clone, Copy)]
enum Browser {
    /// Visit it; the authorization server consents and redirects back.
    Consent,
    /// Come back to the redirect URI with `error=access_denied`, as when the user declines.
    Decline,
}

/// Run `switchboard` with `args` against the protected server at `base`, acting as the
/// browser for every sign-in it asks for. Returns the exit code, stdout, stderr and how many
/// sign-ins were asked for.
async fn run_signing_in(
    base: &str,
    browser: Browser,
    args: &[&str],
) -> (Option<i32>, String, String, usize) {
    let sandbox = Sandbox::new();
    let config = sandbox
        .config(&json!({"mcpServers": {"protected": {"url": format!("{base}/mcp")}}}).to_string());
    let mut command = tokio::process::Command::from(sandbox.std_cmd());
    command
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let exchange = async {
        let mut lines = BufReader::new(stderr).lines();
        let (mut seen, mut sign_ins) = (String::new(), 0);
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            let Some(address) = line.trim().strip_prefix(base) else {
                continue;
            };
            sign_ins += 1;
            let address = format!("{base}{address}");
            let back = match browser {
                Browser::Consent => {
                    let answer = http.get(&address).send().await.unwrap();
                    answer.headers()["location"].to_str().unwrap().to_owned()
                }
                Browser::Decline => {
                    let url = url::Url::parse(&address).unwrap();
                    let query: std::collections::HashMap<_, _> =
                        url.query_pairs().into_owned().collect();
                    format!(
                        "{}?error=access_denied&state={}",
                        query["redirect_uri"], query["state"]
                    )
                }
            };
            let page = http.get(&back).send().await.unwrap();
            assert_eq!(page.status(), 200, "the CLI's listener takes the redirect");
        }
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
            .await
            .unwrap();
        let status = child.wait().await.unwrap();
        (status.code(), out, seen, sign_ins)
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("the CLI finished within the bound")
}

#[tokio::test]
async fn a_call_signs_in_in_the_browser_and_steps_up_for_the_write_scope() {
    let (base, issued) = protected_server().await;
    let (code, out, err, sign_ins) = run_signing_in(
        &base,
        Browser::Consent,
        &["call", "protected__write", "--args", "{}"],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("written"), "{out}");
    assert!(err.contains("asks you to sign in"), "{err}");
    // Listing the tools needed `mcp:read`; the call needed `mcp:write` as well (step-up).
    assert_eq!(sign_ins, 2, "{err}");
    let authorizations = issued.lock().unwrap().authorizations.clone();
    assert_eq!(authorizations.len(), 2, "{authorizations:?}");
    assert!(authorizations[0].contains(READ), "{authorizations:?}");
    assert!(authorizations[1].contains(WRITE), "{authorizations:?}");
}

#[tokio::test]
async fn declining_the_sign_in_fails_with_the_reason_and_gets_no_token() {
    let (base, issued) = protected_server().await;
    let (code, out, err, sign_ins) = run_signing_in(&base, Browser::Decline, &["tools"]).await;
    assert_ne!(code, Some(0), "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(sign_ins, 1, "a declined sign-in is not asked again: {err}");
    assert!(err.contains("refused the sign-in: access_denied"), "{err}");
    // The reason is said once, by us: no log line of the transport's worker repeats it.
    assert!(!err.contains("ERROR"), "{err}");
    assert!(issued.lock().unwrap().tokens.is_empty());
}
