//! Issue 9 through the whole gateway: authentication on the front, scopes, allow/deny lists,
//! rate limits (in memory with a controllable clock, and in Redis across two gateways) and the
//! audit log, with real upstreams (the rmcp fixture over stdio, the echo server over HTTP).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::http::HeaderMap;
use futures::StreamExt;
use governor::clock::FakeRelativeClock;
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use serde_json::{Value, json};
use switchboard_client::ConnectOptions;
use switchboard_gateway::{
    Gateway, GatewayConfig,
    switchboard_policy::{
        audit::{AuditQuery, AuditRecord, DatabaseAudit, Outcome},
        auth::hash_key,
        ratelimit::{MemoryRateLimiter, RateLimiter},
    },
};
use tokio::task::JoinHandle;

use crate::{MODERN_META, Running, answer, fixture_upstream, toml_path};

const RSA_PRIVATE: &str =
    include_str!("../../../switchboard-policy/tests/fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../../../switchboard-policy/tests/fixtures/rsa_public.pem");
const ISSUER: &str = "https://auth.test";
const AUDIENCE: &str = "http://127.0.0.1/mcp";
const READER_KEY: &str = "sbk_test_reader-key-3b7f";
const WRITER_KEY: &str = "sbk_test_writer-key-91c2";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@example.com",
        "client_id": "chat-app",
        "scope": "fx:read",
        "exp": now() + 300,
        "nbf": now() - 10,
    })
}

fn sign(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A gateway config with two API-key clients, JWTs from a JWKS file, and the audit log in
/// `dir`. `extra` adds tables (upstreams, clients, scopes).
fn security_config(dir: &std::path::Path, extra: &str) -> String {
    let mut jwk = Jwk::from_encoding_key(&rsa_key(), Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("rsa-1".to_owned());
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    format!(
        r#"
{upstream}
[security]
public_base_url = "http://127.0.0.1"
[[security.api_keys]]
client_id = "reader"
sha256 = "{reader}"
scopes = ["fx:read", "echo:read"]
[[security.api_keys]]
client_id = "writer"
sha256 = "{writer}"
scopes = ["fx:read", "fx:write", "echo:read"]
[security.jwt]
issuer = "{ISSUER}"
audience = ["{AUDIENCE}"]
jwks_file = {jwks}
[security.audit]
sink = "jsonl"
path = {audit}
{extra}
"#,
        upstream = fixture_upstream("fx", &[]),
        reader = hash_key(READER_KEY),
        writer = hash_key(WRITER_KEY),
        jwks = toml_path(&jwks),
        audit = toml_path(&dir.join("audit.jsonl")),
    )
}

/// Start a gateway (with the rate limiter given, if any) on loopback.
async fn start_with(config: &str, limiter: Option<Arc<dyn RateLimiter>>) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = GatewayConfig::parse(config, None, &|_| None).unwrap();
    let gateway = Arc::new(
        Gateway::connect_with_limiter(config, ConnectOptions::default(), limiter)
            .await
            .unwrap(),
    );
    crate::serve(gateway).await
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    ApiKey(&'a str),
}

/// One HTTP client for every request of a test binary (a client is costly to build).
fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

fn request(running: &Running, auth: Auth<'_>, json_only: bool) -> reqwest::RequestBuilder {
    let builder = client()
        .post(running.url())
        .header("content-type", "application/json")
        .header(
            "accept",
            if json_only {
                "application/json"
            } else {
                "application/json, text/event-stream"
            },
        );
    match auth {
        Auth::None => builder,
        Auth::Bearer(token) => builder.header("authorization", format!("Bearer {token}")),
        Auth::ApiKey(key) => builder.header("x-api-key", key),
    }
}

fn call_body(name: &str, arguments: &Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":{},"arguments":{},{MODERN_META}}}}}"#,
        serde_json::to_string(name).unwrap(),
        arguments
    )
}

fn list_body(method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{{MODERN_META}}}}}"#)
}

/// A tools/call: the status, the headers and the JSON-RPC answer.
async fn call(
    running: &Running,
    auth: Auth<'_>,
    name: &str,
    arguments: Value,
    json_only: bool,
) -> (u16, HeaderMap, Value) {
    let response = request(running, auth, json_only)
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .body(call_body(name, &arguments))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, answer(response).await)
}

async fn tool_names(running: &Running, auth: Auth<'_>) -> BTreeSet<String> {
    let response = request(running, auth, false)
        .header("mcp-method", "tools/list")
        .body(list_body("tools/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer = answer(response).await;
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn audit_records(dir: &std::path::Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Authentication

async fn assert_unauthorized(running: &Running, auth: Auth<'_>, description: Option<&str>) {
    let response = request(running, auth, false)
        .header("mcp-method", "tools/list")
        .body(list_body("tools/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{description:?}");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(
            "Bearer resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource\""
        ),
        "{challenge}"
    );
    match description {
        Some(description) => {
            assert!(
                challenge.contains("error=\"invalid_token\"")
                    && challenge.contains(&format!("error_description=\"{description}\"")),
                "{description}: {challenge}"
            );
        }
        None => assert!(!challenge.contains("invalid_token"), "{challenge}"),
    }
}

fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (key, value) in changes.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

#[tokio::test]
async fn bad_credentials_get_401_with_the_reason_and_good_ones_work() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(&security_config(dir.path(), ""), None).await;
    let rs256 = |claims: &Value| sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), claims);
    let encode = |value: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };

    assert_unauthorized(&running, Auth::None, None).await;
    let expired = rs256(&claims_with(
        json!({"exp": now() - 3600, "nbf": now() - 7200}),
    ));
    assert_unauthorized(&running, Auth::Bearer(&expired), Some("token expired")).await;
    let early = rs256(&claims_with(
        json!({"nbf": now() + 3600, "exp": now() + 7200}),
    ));
    assert_unauthorized(&running, Auth::Bearer(&early), Some("token not yet valid")).await;
    let elsewhere = rs256(&claims_with(json!({"aud": "https://other.example/mcp"})));
    assert_unauthorized(
        &running,
        Auth::Bearer(&elsewhere),
        Some("token is for another audience"),
    )
    .await;
    // Forged: signed by a key that is not in the JWKS, under the trusted key's kid.
    let forged = sign(
        Algorithm::ES256,
        Some("rsa-1"),
        &EncodingKey::from_ec_pem(include_bytes!(
            "../../../switchboard-policy/tests/fixtures/ec_other.pem"
        ))
        .unwrap(),
        &claims(),
    );
    assert_unauthorized(
        &running,
        Auth::Bearer(&forged),
        Some("signing algorithm not allowed"),
    )
    .await;
    let valid = rs256(&claims());
    // A real signature over other claims: more scopes than the issuer granted.
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered_claims = encode(&claims_with(json!({"scope": "fx:read fx:write fx:admin"})));
    let tampered = format!("{}.{tampered_claims}.{}", parts[0], parts[2]);
    assert_unauthorized(&running, Auth::Bearer(&tampered), Some("invalid signature")).await;
    let none = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
        encode(&claims())
    );
    assert_unauthorized(
        &running,
        Auth::Bearer(&none),
        Some("signing algorithm not allowed"),
    )
    .await;
    // HS/RS confusion: an HMAC keyed with the RSA public key.
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &claims(),
    );
    assert_unauthorized(
        &running,
        Auth::Bearer(&confused),
        Some("signing algorithm not allowed"),
    )
    .await;
    let unknown_kid = sign(Algorithm::RS256, Some("rsa-9"), &rsa_key(), &claims());
    assert_unauthorized(
        &running,
        Auth::Bearer(&unknown_kid),
        Some("unknown key id (kid)"),
    )
    .await;
    assert_unauthorized(
        &running,
        Auth::ApiKey("sbk_test_not-a-key"),
        Some("unknown API key"),
    )
    .await;

    // The WebSocket upgrade is authenticated too.
    let upgrade = reqwest::Client::new()
        .get(format!("{}/ws", running.base()))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 401);
    assert!(upgrade.headers().contains_key("www-authenticate"));

    // Operations and the RFC 9728 metadata need no credentials.
    for path in [
        "/healthz",
        "/metrics",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = reqwest::get(format!("{}{path}", running.base()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource",
        running.base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["resource"], "http://127.0.0.1/mcp");

    // A valid JWT and an API key work, each as its client with its scopes.
    let (status, _, answer) = call(
        &running,
        Auth::Bearer(&valid),
        "fx__add",
        json!({"a": 2, "b": 3}),
        false,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["structuredContent"]["sum"], 5, "{answer}");
    let (status, _, answer) = call(
        &running,
        Auth::ApiKey(READER_KEY),
        "fx__echo",
        json!({"text": "hi"}),
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    let records = audit_records(dir.path());
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].client_id, "chat-app");
    assert_eq!(records[0].user.as_deref(), Some("alice@example.com"));
    assert_eq!(records[0].scopes, vec!["fx:read".to_owned()]);
    assert_eq!(records[1].client_id, "reader");
    assert_eq!(
        records[1].source_ip,
        Some(std::net::IpAddr::from([127, 0, 0, 1]))
    );
}

/// An HTTP upstream (the echo server) that records the headers of every request it gets.
struct RecordingUpstream {
    url: String,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
    task: JoinHandle<()>,
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn recording_upstream() -> RecordingUpstream {
    let headers: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let seen = headers.clone();
    let router = switchboard_server::router(
        switchboard_echo::server(),
        switchboard_server::HttpConfig::default(),
    )
    .layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            seen.lock().unwrap().push(request.headers().clone());
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    RecordingUpstream {
        url: format!("http://127.0.0.1:{port}/mcp"),
        headers,
        task,
    }
}

#[tokio::test]
async fn no_upstream_ever_sees_the_clients_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = recording_upstream().await;
    let config = security_config(
        dir.path(),
        &format!("[upstreams.echo]\nurl = \"{}\"\n", upstream.url),
    );
    let running = start_with(&config, None).await;
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_key(),
        &claims_with(json!({"scope": "echo:read"})),
    );
    for auth in [Auth::ApiKey(READER_KEY), Auth::Bearer(&token)] {
        let (status, _, answer) = call(
            &running,
            auth,
            "echo__echo",
            json!({"text": "secretless"}),
            false,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["result"]["content"][0]["text"], "secretless",
            "{answer}"
        );
    }
    let seen = upstream.headers.lock().unwrap().clone();
    assert!(seen.len() >= 2, "the upstream saw {} requests", seen.len());
    for headers in &seen {
        assert!(!headers.contains_key("authorization"), "{headers:?}");
        assert!(!headers.contains_key("x-api-key"), "{headers:?}");
        for value in headers.values() {
            let value = value.to_str().unwrap_or_default();
            assert!(
                !value.contains(READER_KEY) && !value.contains(&token),
                "a credential reached the upstream: {headers:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes and allow/deny lists

#[tokio::test]
async fn callers_see_only_what_they_may_use_and_escalation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = recording_upstream().await;
    let extra = format!(
        "[upstreams.echo]\nurl = \"{}\"\n[security.scopes.tools]\n\"fx/pixel\" = \"fx:admin\"\n[security.clients.writer]\ndeny_servers = [\"echo\"]\n",
        upstream.url
    );
    let running = start_with(&security_config(dir.path(), &extra), None).await;

    let reader = tool_names(&running, Auth::ApiKey(READER_KEY)).await;
    let writer = tool_names(&running, Auth::ApiKey(WRITER_KEY)).await;
    let expect = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    // fx's read-only tools are fx:read; the others fx:write; pixel needs fx:admin (policy).
    assert_eq!(reader, expect(&["echo__echo", "fx__add", "fx__echo"]));
    assert_eq!(
        writer,
        expect(&[
            "fx__add",
            "fx__echo",
            "fx__enable_extra",
            "fx__fail",
            "fx__slow"
        ])
    );

    // Calling a hidden tool by its exact name: -32001 naming the scope; 403 on a JSON answer.
    let (status, headers, answer) = call(
        &running,
        Auth::ApiKey(READER_KEY),
        "fx__fail",
        json!({}),
        true,
    )
    .await;
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    assert_eq!(answer["error"]["data"]["required_scope"], "fx:write");
    assert_eq!(status, 403);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"fx:write\""),
        "{challenge}"
    );
    // A client that also accepts an event stream gets the same 403 and in-band error.
    let (status, _, answer) = call(
        &running,
        Auth::ApiKey(WRITER_KEY),
        "fx__pixel",
        json!({}),
        false,
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    assert_eq!(answer["error"]["data"]["required_scope"], "fx:admin");
    // A JWT whose scope claim asks for more does not get more than it was signed with: the
    // reader's token cannot write.
    let token = sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &claims());
    let (_, _, answer) = call(
        &running,
        Auth::Bearer(&token),
        "fx__enable_extra",
        json!({}),
        false,
    )
    .await;
    assert_eq!(
        answer["error"]["data"]["required_scope"], "fx:write",
        "{answer}"
    );
    // The denied server: hidden, and refused by name even though the scope is held.
    let (status, _, answer) = call(
        &running,
        Auth::ApiKey(WRITER_KEY),
        "echo__echo",
        json!({"text": "x"}),
        true,
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], -32001);
    assert_eq!(answer["error"]["data"]["server"], "echo");
    // No refused call reached an upstream: the echo upstream saw only list traffic.
    let records = audit_records(dir.path());
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().all(|r| r.outcome == Outcome::Refused));
    assert_eq!(
        records[0].error_class.as_deref(),
        Some("insufficient_scope")
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limits

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn rate_limits_allow_exactly_the_quota_per_client_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeRelativeClock::default();
    let limiter: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::with_clock(clock.clone()));
    let extra = "[security.clients.reader]\nreads_per_minute = 5\n";
    let running = start_with(&security_config(dir.path(), extra), Some(limiter)).await;

    // The default write quota: 10 a minute, all at once, then one every 6 s.
    let mut allowed = 0;
    let mut denied = 0;
    for _ in 0..15 {
        let (status, headers, answer) = call(
            &running,
            Auth::ApiKey(WRITER_KEY),
            "fx__fail",
            json!({}),
            true,
        )
        .await;
        if answer.get("result").is_some() {
            allowed += 1;
            assert_eq!(status, 200);
        } else {
            denied += 1;
            assert_eq!(answer["error"]["code"], -32000, "{answer}");
            assert_eq!(answer["error"]["data"]["retryable"], true);
            let retry_after_ms = answer["error"]["data"]["retry_after_ms"].as_u64().unwrap();
            assert!(
                (5_000..=6_000).contains(&retry_after_ms),
                "{retry_after_ms}"
            );
            assert_eq!(status, 429);
            assert_eq!(headers["retry-after"], "6");
        }
    }
    eprintln!("writes in one minute: {allowed} allowed, {denied} denied");
    assert_eq!((allowed, denied), (10, 5));
    // Reads are a separate budget, and the reader's own quota is 5.
    let mut reads = (0, 0);
    for _ in 0..8 {
        let (_, _, answer) = call(
            &running,
            Auth::ApiKey(READER_KEY),
            "fx__add",
            json!({"a": 1, "b": 1}),
            false,
        )
        .await;
        if answer.get("result").is_some() {
            reads.0 += 1;
        } else {
            assert_eq!(answer["error"]["data"]["retryable"], true, "{answer}");
            reads.1 += 1;
        }
    }
    eprintln!("reader's reads: {} allowed, {} denied", reads.0, reads.1);
    assert_eq!(reads, (5, 3));
    // 6 s later exactly one more write is allowed.
    clock.advance(Duration::from_secs(6));
    let mut after = (0, 0);
    for _ in 0..3 {
        let (_, _, answer) = call(
            &running,
            Auth::ApiKey(WRITER_KEY),
            "fx__fail",
            json!({}),
            false,
        )
        .await;
        if answer.get("result").is_some() {
            after.0 += 1;
        } else {
            after.1 += 1;
        }
    }
    assert_eq!(after, (1, 2));
    let records = audit_records(dir.path());
    let limited = records
        .iter()
        .filter(|r| r.error_class.as_deref() == Some("rate_limited"))
        .count();
    assert_eq!(records.len(), 15 + 8 + 3);
    assert_eq!(limited, 5 + 3 + 2);
}

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn two_gateways_on_one_redis_enforce_one_limit_of_10_writes_a_minute() {
    let Some(url) = crate::redis_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A client id no earlier run used, so no counter is left over in Redis.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let client = format!("replicated-{}-{nanos}", std::process::id());
    let key = format!("sbk_test_{client}");
    let extra = format!(
        "[[security.api_keys]]\nclient_id = \"{client}\"\nsha256 = \"{}\"\nscopes = [\"fx:read\", \"fx:write\"]\n[security.rate_limits]\nredis_url = \"{url}\"\n",
        hash_key(&key)
    );
    let config = security_config(dir.path(), &extra);
    let replica_a = start_with(&config, None).await;
    let replica_b = start_with(&config, None).await;
    let mut allowed = 0;
    let mut denied = 0;
    for index in 0..20 {
        let replica = if index % 2 == 0 {
            &replica_a
        } else {
            &replica_b
        };
        let (status, _, answer) =
            call(replica, Auth::ApiKey(&key), "fx__fail", json!({}), true).await;
        if answer.get("result").is_some() {
            allowed += 1;
        } else {
            assert_eq!(status, 429, "{answer}");
            assert_eq!(answer["error"]["data"]["retryable"], true);
            denied += 1;
        }
    }
    eprintln!("two replicas on one Redis: {allowed} writes allowed, {denied} denied");
    assert_eq!((allowed, denied), (10, 10));
}

// ---------------------------------------------------------------------------------------------
// Audit

const SECRET: &str = "s3cr3t-value-that-must-not-be-logged";

/// `calls` tools/calls as the writer, a quarter each allowed, tool error, refused (a hidden
/// tool) and failed (bad arguments), 8 at a time, with secrets in the arguments; each
/// request's id and the outcome its answer shows.
async fn mixed_run(running: &Running, calls: usize) -> BTreeMap<String, Outcome> {
    futures::stream::iter(0..calls)
        .map(|index| async move {
            let (name, arguments) = match index % 4 {
                0 => (
                    "fx__echo",
                    json!({"text": format!("call {index}"), "password": SECRET}),
                ),
                1 => ("fx__fail", json!({"nested": [{"api_key": SECRET}]})),
                2 => ("fx__pixel", json!({"token": SECRET})),
                _ => (
                    "fx__add",
                    json!({"a": "not a number", "b": 1, "client_secret": SECRET}),
                ),
            };
            let response = request(running, Auth::Bearer(WRITER_KEY), false)
                .header("x-request-id", format!("audit-{index}"))
                .header("mcp-method", "tools/call")
                .header("mcp-name", name)
                .body(call_body(name, &arguments))
                .send()
                .await
                .unwrap();
            let answer = answer(response).await;
            let outcome = match (&answer["result"], &answer["error"]) {
                (Value::Object(result), _) if result.get("isError") == Some(&json!(true)) => {
                    Outcome::ToolError
                }
                (Value::Object(_), _) => Outcome::Ok,
                (_, error) if error["code"] == -32001 => Outcome::Refused,
                _ => Outcome::Failed,
            };
            (format!("audit-{index}"), outcome)
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// Exactly one record per call, with the outcome the caller saw, and no secret anywhere.
fn check_records(
    outcomes: &BTreeMap<String, Outcome>,
    records: &[AuditRecord],
) -> BTreeMap<&'static str, usize> {
    let text = serde_json::to_string(records).unwrap();
    assert!(
        !text.contains(SECRET),
        "a secret argument reached the audit log"
    );
    assert!(
        !text.contains(WRITER_KEY),
        "the API key reached the audit log"
    );
    let mut per_request: BTreeMap<&str, Vec<&AuditRecord>> = BTreeMap::new();
    for record in records {
        per_request
            .entry(&record.request_id)
            .or_default()
            .push(record);
    }
    let mut counts = BTreeMap::new();
    for (id, outcome) in outcomes {
        let found = per_request
            .get(id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert_eq!(found.len(), 1, "{id} has {} records", found.len());
        assert_eq!(found[0].outcome, *outcome, "{id}");
        assert_eq!(found[0].client_id, "writer");
        *counts.entry(outcome.as_str()).or_default() += 1;
    }
    assert_eq!(records.len(), outcomes.len());
    let redacted = records.iter().find(|r| r.tool == "fail").unwrap();
    assert_eq!(redacted.arguments["nested"][0]["api_key"], "[REDACTED]");
    counts
}

const AUDITED_WRITER: &str = "[security.scopes.tools]\n\"fx/pixel\" = \"fx:admin\"\n[security.clients.writer]\nreads_per_minute = 100000\nwrites_per_minute = 100000\n";

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn a_mixed_run_of_1000_calls_has_exactly_one_redacted_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(&security_config(dir.path(), AUDITED_WRITER), None).await;
    const CALLS: usize = 1000;
    let outcomes = mixed_run(&running, CALLS).await;
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!text.contains(SECRET) && !text.contains(WRITER_KEY));
    let records = audit_records(dir.path());
    let counts = check_records(&outcomes, &records);
    eprintln!(
        "audit (JSONL): {CALLS} calls, {} records, outcomes {counts:?}",
        records.len()
    );
    assert_eq!(
        counts,
        BTreeMap::from([
            ("failed", 250),
            ("ok", 250),
            ("refused", 250),
            ("tool_error", 250)
        ])
    );
}

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn the_audit_log_in_postgresql_has_one_record_per_call() {
    let Some(base) = switchboard_store::testing::postgres_url() else {
        return;
    };
    let schema = switchboard_store::testing::ScratchSchema::create(&base)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = security_config(dir.path(), AUDITED_WRITER).replace(
        &format!(
            "sink = \"jsonl\"\npath = {}",
            toml_path(&dir.path().join("audit.jsonl"))
        ),
        &format!(
            "sink = \"database\"\nurl = {}",
            serde_json::to_string(schema.url()).unwrap()
        ),
    );
    let running = start_with(&config, None).await;
    const CALLS: usize = 200;
    let outcomes = mixed_run(&running, CALLS).await;
    let database = DatabaseAudit::open(schema.url()).await.unwrap();
    let records = database
        .read(&AuditQuery {
            limit: 10 * CALLS,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    database.close().await;
    let counts = check_records(&outcomes, &records);
    eprintln!(
        "audit (PostgreSQL): {CALLS} calls, {} records, outcomes {counts:?}",
        records.len()
    );
    assert_eq!(counts.values().sum::<usize>(), CALLS);
    assert!(!dir.path().join("audit.jsonl").exists());
}

#[tokio::test]
async fn a_call_abandoned_by_its_client_still_has_its_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_with(&security_config(dir.path(), ""), None).await;
    let response = request(&running, Auth::ApiKey(WRITER_KEY), false)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "fx__slow")
        .body(call_body("fx__slow", &json!({"ms": 3000})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The client goes away while the call runs.
    drop(response);
    let deadline = std::time::Instant::now() + crate::TIMEOUT;
    let records = loop {
        let records = audit_records(dir.path());
        if !records.is_empty() || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].outcome, Outcome::Failed);
    assert!(
        matches!(
            records[0].error_class.as_deref(),
            Some("abandoned" | "cancelled")
        ),
        "{records:?}"
    );
    // And no second record comes when the upstream call would have finished.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(audit_records(dir.path()).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Legacy sessions across replicas

fn legacy_post(running: &Running, session: Option<&str>, body: &str) -> reqwest::RequestBuilder {
    let builder = request(running, Auth::ApiKey(READER_KEY), false).body(body.to_owned());
    match session {
        Some(id) => builder.header("mcp-session-id", id),
        None => builder,
    }
}

#[tokio::test]
async fn a_legacy_session_opened_on_one_replica_is_used_on_another_through_redis() {
    let Some(url) = crate::redis_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[security.rate_limits]\nredis_url = \"{url}\"\n");
    let config = security_config(dir.path(), &extra);
    let replica_a = start_with(&config, None).await;
    let replica_b = start_with(&config, None).await;

    let opened = legacy_post(
        &replica_a,
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = legacy_post(
        &replica_b,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(initialized.status(), 202);
    // Replica B has no such session in memory; it reaches A's through the routing table.
    let listed = legacy_post(
        &replica_b,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(listed.status(), 200);
    let tools = answer(listed).await;
    let names = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{tools}"));
    assert!(names.iter().any(|t| t["name"] == "fx__echo"), "{tools}");
    let called = legacy_post(
        &replica_b,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"via B"}}}"#,
    )
    .send()
    .await
    .unwrap();
    let called = answer(called).await;
    assert_eq!(called["result"]["content"][0]["text"], "via B", "{called}");
    // The forwarded request is authenticated by the owner: without credentials it is refused.
    let refused = reqwest::Client::new()
        .post(replica_b.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Ending it through B ends it on A.
    let ended = client()
        .delete(replica_b.url())
        .header("x-api-key", READER_KEY)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let gone = legacy_post(
        &replica_a,
        Some(&session),
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn on_websocket_refusals_are_in_band_and_audited() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let dir = tempfile::tempdir().unwrap();
    let running = start_with(&security_config(dir.path(), ""), None).await;
    let mut upgrade = format!("ws://{}/ws", running.addr)
        .into_client_request()
        .unwrap();
    upgrade
        .headers_mut()
        .insert("x-api-key", READER_KEY.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(upgrade, tcp).await.unwrap();
    let mut exchange = async |message: Value| -> Option<Value> {
        socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        let id = message.get("id")?.clone();
        loop {
            let frame = tokio::time::timeout(crate::TIMEOUT, socket.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(text.as_str()).unwrap();
            if answer.get("id") == Some(&id) {
                return Some(answer);
            }
        }
    };
    exchange(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
    .await
    .unwrap();
    exchange(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    let listed = exchange(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await
        .unwrap();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"fx__echo") && !names.contains(&"fx__fail"),
        "{names:?}"
    );
    let refused = exchange(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "fx__fail", "arguments": {}}}))
    .await
    .unwrap();
    assert_eq!(refused["error"]["code"], -32001, "{refused}");
    assert_eq!(refused["error"]["data"]["required_scope"], "fx:write");
    let allowed = exchange(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"text": "over ws"}}}))
    .await
    .unwrap();
    assert_eq!(
        allowed["result"]["content"][0]["text"], "over ws",
        "{allowed}"
    );
    let records = audit_records(dir.path());
    let outcomes: Vec<(Outcome, &str)> = records
        .iter()
        .map(|r| (r.outcome, r.client_id.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [(Outcome::Refused, "reader"), (Outcome::Ok, "reader")]
    );
}
