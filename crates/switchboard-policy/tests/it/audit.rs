//! The audit log: one record per call, secrets redacted, JSONL with rotation and a database
//! table, read back by tail and query.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::Row;
use switchboard_policy::{
    audit::{
        AuditLog, AuditQuery, AuditRecord, AuditSink, DatabaseAudit, JsonlOptions, JsonlReader,
        JsonlSink, Outcome, REDACTED, Redactor, parse_since, since_ago,
    },
    config::{AuditConfig, AuditSinkConfig, DEFAULT_REDACT_KEYS},
};
use switchboard_store::testing::{ScratchSchema, postgres_url};

const CLIENTS: [&str; 3] = ["chat-app", "ci-bot", "batch"];
const TOOLS: [&str; 4] = ["add_expense", "list_expenses", "delete_expense", "search"];
const OUTCOMES: [Outcome; 4] = [
    Outcome::Ok,
    Outcome::ToolError,
    Outcome::Refused,
    Outcome::Failed,
];
/// Every secret in the test arguments contains this.
const SECRET_MARK: &str = "s3cr3t";

/// Call `i` of a mixed run: three clients, four tools, four outcomes (in cycles of 3, 4 and 5,
/// so they mix), and secrets at several depths and spellings.
fn call(i: usize) -> AuditRecord {
    AuditRecord {
        time: Utc::now(),
        request_id: format!("req-{i}"),
        client_id: CLIENTS[i % 3].to_owned(),
        user: i
            .is_multiple_of(2)
            .then(|| format!("user{}@example.com", i % 7)),
        source_ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
        server: if i % 4 == 3 { "bookmarks" } else { "expenses" }.to_owned(),
        tool: TOOLS[i % 4].to_owned(),
        arguments: json!({
            "amount": i,
            "note": format!("plain-{i}"),
            "password": format!("{SECRET_MARK}-password-{i}"),
            "Authorization": format!("Bearer {SECRET_MARK}-bearer-{i}"),
            "nested": {
                "API_KEY": format!("{SECRET_MARK}-api-{i}"),
                "items": [{"accessToken": format!("{SECRET_MARK}-access-{i}")}, {"ok": true}],
                "client-secret": {"deep": format!("{SECRET_MARK}-object-{i}")},
            },
        }),
        outcome: OUTCOMES[i % 5 % 4],
        error_class: match OUTCOMES[i % 5 % 4] {
            Outcome::Refused => Some("insufficient_scope".to_owned()),
            Outcome::Failed => Some("timeout".to_owned()),
            _ => None,
        },
        latency_ms: u64::try_from(i % 250).expect("small"),
        scopes: vec!["expenses:read".to_owned(), "expenses:write".to_owned()],
    }
}

/// How many of the first `n` calls match.
fn expected(n: usize, keep: impl Fn(&AuditRecord) -> bool) -> usize {
    (0..n).map(call).filter(|record| keep(record)).count()
}

async fn write_mixed_run(log: &AuditLog, n: usize) {
    // Concurrently, in waves, as a busy gateway would.
    for wave in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in wave {
            let log = log.clone();
            tasks.spawn(async move { log.record(call(i)).await });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("task").expect("record written");
        }
    }
}

fn all_files(path: &Path) -> Vec<std::path::PathBuf> {
    let dir = path.parent().expect("a directory");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn secrets_are_redacted_at_any_depth_and_case() {
    let redactor = Redactor::new(DEFAULT_REDACT_KEYS);
    let mut value = call(7).arguments;
    redactor.redact(&mut value);
    assert_eq!(value["password"], REDACTED);
    assert_eq!(value["Authorization"], REDACTED);
    assert_eq!(value["nested"]["API_KEY"], REDACTED);
    assert_eq!(value["nested"]["items"][0]["accessToken"], REDACTED);
    assert_eq!(value["nested"]["client-secret"], REDACTED);
    assert_eq!(value["nested"]["items"][1]["ok"], true);
    assert_eq!(value["note"], "plain-7");
    assert_eq!(value["amount"], 7);
    assert!(!value.to_string().contains(SECRET_MARK));

    let custom = Redactor::new(["pin"]);
    let mut value = json!({"PIN": 1234, "password": "kept"});
    custom.redact(&mut value);
    assert_eq!(value, json!({"PIN": REDACTED, "password": "kept"}));
}

#[tokio::test]
async fn a_mixed_run_of_1000_calls_has_1000_lines_and_no_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit").join("audit.jsonl");
    let config = AuditConfig {
        sink: AuditSinkConfig::Jsonl {
            path: path.clone(),
            max_file_bytes: 64 * 1024,
            keep_files: 100,
            fsync: false,
        },
        ..AuditConfig::default()
    };
    let log = AuditLog::open(&config).await.expect("open");
    write_mixed_run(&log, 1000).await;

    let files = all_files(&path);
    assert!(files.len() > 3, "the run rotated: {files:?}");
    let mut lines = 0;
    let mut request_ids = std::collections::BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        assert!(
            !text.contains(SECRET_MARK),
            "a secret in {}",
            file.display()
        );
        assert!(text.contains("plain-"), "arguments are kept");
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).expect("every line is a record");
            request_ids.insert(record["request_id"].as_str().expect("id").to_owned());
            lines += 1;
        }
        let size = std::fs::metadata(file).expect("metadata").len();
        assert!(size <= 64 * 1024, "{} is {size} bytes", file.display());
    }
    assert_eq!(lines, 1000);
    assert_eq!(request_ids.len(), 1000, "one record per call");

    let reader = JsonlReader::new(&path);
    let all = reader.read(&AuditQuery::tail(5000)).await.expect("read");
    assert_eq!(all.len(), 1000);
    let read_ids: std::collections::BTreeSet<String> =
        all.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(read_ids, request_ids);
    let tail = reader.read(&AuditQuery::tail(10)).await.expect("tail");
    assert_eq!(tail.len(), 10);
    assert_eq!(tail.last(), all.last());

    let query = AuditQuery {
        client_id: Some("ci-bot".into()),
        tool: Some("delete_expense".into()),
        outcome: Some(Outcome::Refused),
        since: Some(since_ago(parse_since("1h").expect("duration"))),
        limit: 5000,
        ..AuditQuery::default()
    };
    let found = reader.read(&query).await.expect("query");
    assert_eq!(found.len(), expected(1000, |r| query.matches(r)));
    assert!(!found.is_empty());
    assert!(found.iter().all(|r| r.client_id == "ci-bot"
        && r.tool == "delete_expense"
        && r.outcome == Outcome::Refused
        && r.error_class.as_deref() == Some("insufficient_scope")));
}

#[tokio::test]
async fn rotation_keeps_only_the_configured_number_of_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let sink = JsonlSink::open(
        path.clone(),
        JsonlOptions {
            max_file_bytes: 2048,
            keep_files: 2,
            fsync: true,
        },
    )
    .await
    .expect("open");
    for i in 0..200 {
        sink.write(&call(i)).await.expect("write");
    }
    let names: Vec<String> = all_files(&path)
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    // The newest records survive, in order.
    let kept = JsonlReader::new(&path)
        .read(&AuditQuery::tail(1000))
        .await
        .expect("read");
    assert_eq!(kept.last().expect("some").request_id, "req-199");
    assert!(kept.len() < 200);
}

#[tokio::test]
async fn query_since_leaves_out_older_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::new(
        Arc::new(
            JsonlSink::open(
                path.clone(),
                JsonlOptions {
                    max_file_bytes: 1 << 20,
                    keep_files: 1,
                    fsync: false,
                },
            )
            .await
            .expect("open"),
        ),
        Redactor::new(DEFAULT_REDACT_KEYS),
    );
    let mut old = call(1);
    old.time = Utc::now() - chrono::Duration::hours(2);
    log.record(old).await.expect("write");
    log.record(call(2)).await.expect("write");
    let query = AuditQuery {
        since: Some(since_ago(Duration::from_secs(3600))),
        limit: 100,
        ..AuditQuery::default()
    };
    let found = JsonlReader::new(&path).read(&query).await.expect("read");
    assert_eq!(
        found
            .iter()
            .map(|r| r.request_id.as_str())
            .collect::<Vec<_>>(),
        ["req-2"]
    );
}

#[test]
fn since_durations_parse_with_clear_errors() {
    assert_eq!(parse_since("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_since("7d"), Ok(Duration::from_secs(7 * 86_400)));
    assert!(parse_since("1").expect_err("no unit").contains("unit"));
    assert!(parse_since("h").expect_err("no number").contains("number"));
    assert!(parse_since("1y").expect_err("bad unit").contains("\"y\""));
}

async fn database_run(url: &str) {
    let audit = DatabaseAudit::open(url).await.expect("open");
    let log = AuditLog::new(Arc::new(audit.clone()), Redactor::new(DEFAULT_REDACT_KEYS));
    write_mixed_run(&log, 1000).await;

    let rows = sqlx::query("SELECT arguments, request_id FROM audit_log")
        .fetch_all(audit.store().pool())
        .await
        .expect("select");
    assert_eq!(rows.len(), 1000);
    let mut ids = std::collections::BTreeSet::new();
    for row in &rows {
        let arguments: String = row.try_get("arguments").expect("arguments");
        assert!(!arguments.contains(SECRET_MARK), "{arguments}");
        assert!(arguments.contains("plain-"));
        ids.insert(row.try_get::<String, _>("request_id").expect("id"));
    }
    assert_eq!(ids.len(), 1000, "one row per call");

    let all = audit.read(&AuditQuery::tail(5000)).await.expect("read");
    assert_eq!(all.len(), 1000);
    let tail = audit.read(&AuditQuery::tail(3)).await.expect("tail");
    assert_eq!(tail, all[997..].to_vec());
    let query = AuditQuery {
        client_id: Some("batch".into()),
        tool: Some("search".into()),
        outcome: Some(Outcome::Failed),
        since: Some(since_ago(Duration::from_secs(3600))),
        limit: 5000,
        ..AuditQuery::default()
    };
    let found = audit.read(&query).await.expect("query");
    assert!(!found.is_empty());
    assert_eq!(found.len(), expected(1000, |r| query.matches(r)));
    assert!(found.iter().all(|r| query.matches(r)));
    audit.close().await;
}

#[tokio::test]
async fn a_mixed_run_of_1000_calls_has_1000_rows_in_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    database_run(&dir.path().join("audit.sqlite3").display().to_string()).await;
}

#[tokio::test]
async fn a_mixed_run_of_1000_calls_has_1000_rows_in_postgres() {
    let Some(base) = postgres_url() else { return };
    let schema = ScratchSchema::create(&base).await.expect("scratch schema");
    database_run(schema.url()).await;
}
