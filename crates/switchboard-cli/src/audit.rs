//! `switchboard audit tail|query`: read the gateway's audit log (a JSONL file or a database
//! table), and [`hash_key_command`] for `switchboard gateway hash-key`.

use std::{
    io::{Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Subcommand, ValueEnum};
use switchboard_policy::audit::{
    AuditError, AuditQuery, AuditRecord, DatabaseAudit, JsonlReader, MAX_READ_RECORDS, Outcome,
    parse_since, since_ago,
};

use crate::run::Failure;

/// The audit file read when neither --file nor --db is given (the gateway's default sink).
pub const DEFAULT_AUDIT_FILE: &str = "audit.jsonl";
/// The longest API key `gateway hash-key` reads from stdin.
const MAX_KEY_BYTES: u64 = 4096;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the newest records.
    Tail {
        /// How many records.
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
        lines: usize,
        #[command(flatten)]
        source: AuditSource,
    },
    /// Show the records that match every filter given (the newest --limit of them).
    Query {
        /// Only calls by this client id.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
        /// Only calls to this server.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// Only calls of this tool (as the upstream names it).
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// Only calls this recent: a number and s, m, h, d or w (e.g. 1h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only calls that ended this way.
        #[arg(long, value_enum)]
        outcome: Option<OutcomeArg>,
        /// At most this many records.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        source: AuditSource,
    },
}

/// Where the audit log is.
#[derive(Debug, Args)]
pub struct AuditSource {
    /// The JSONL audit file (rotated files next to it are read too). Default: ./audit.jsonl.
    #[arg(long, value_name = "PATH", conflicts_with = "db")]
    pub file: Option<PathBuf>,
    /// The audit database: a postgres:// URL (or a SQLite path).
    #[arg(long, value_name = "URL|PATH")]
    pub db: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    Ok,
    ToolError,
    Refused,
    Failed,
}

impl From<OutcomeArg> for Outcome {
    fn from(outcome: OutcomeArg) -> Self {
        match outcome {
            OutcomeArg::Ok => Outcome::Ok,
            OutcomeArg::ToolError => Outcome::ToolError,
            OutcomeArg::Refused => Outcome::Refused,
            OutcomeArg::Failed => Outcome::Failed,
        }
    }
}

fn failure(error: AuditError) -> Failure {
    let message = error.to_string();
    match error {
        AuditError::Read { .. } | AuditError::BadRecord(_) => Failure::usage(message),
        AuditError::Store(_) | AuditError::Database { .. } => Failure::connection(message),
        _ => Failure::internal(message),
    }
}

/// The query a command asks for.
fn query_of(command: &AuditCommand) -> Result<AuditQuery, Failure> {
    let limit_check = |limit: usize| {
        if limit == 0 || limit > MAX_READ_RECORDS {
            Err(Failure::usage(format!(
                "the number of records must be between 1 and {MAX_READ_RECORDS}"
            )))
        } else {
            Ok(limit)
        }
    };
    Ok(match command {
        AuditCommand::Tail { lines, .. } => AuditQuery::tail(limit_check(*lines)?),
        AuditCommand::Query {
            client,
            server,
            tool,
            since,
            outcome,
            limit,
            ..
        } => AuditQuery {
            client_id: client.clone(),
            server: server.clone(),
            tool: tool.clone(),
            since: since
                .as_deref()
                .map(|text| {
                    parse_since(text)
                        .map(since_ago)
                        .map_err(|reason| Failure::usage(format!("--since: {reason}")))
                })
                .transpose()?,
            outcome: outcome.map(Outcome::from),
            limit: limit_check(*limit)?,
        },
    })
}

async fn read(command: &AuditCommand) -> Result<Vec<AuditRecord>, Failure> {
    let query = query_of(command)?;
    let source = match command {
        AuditCommand::Tail { source, .. } | AuditCommand::Query { source, .. } => source,
    };
    match &source.db {
        Some(url) => {
            let audit = DatabaseAudit::open(url).await.map_err(failure)?;
            let records = audit.read(&query).await.map_err(failure);
            audit.close().await;
            records
        }
        None => {
            let path = source
                .file
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_FILE));
            JsonlReader::new(path).read(&query).await.map_err(failure)
        }
    }
}

/// One line per record: time, client, user, server/tool, outcome (and error class),
/// latency, request id.
fn render(records: &[AuditRecord], json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, records)?;
        return writeln!(out);
    }
    for record in records {
        let outcome = match &record.error_class {
            Some(class) => format!("{} ({class})", record.outcome.as_str()),
            None => record.outcome.as_str().to_owned(),
        };
        writeln!(
            out,
            "{}  {}  {}  {}/{}  {}  {} ms  {}",
            record.time_text(),
            record.client_id,
            record.user.as_deref().unwrap_or("-"),
            record.server,
            record.tool,
            outcome,
            record.latency_ms,
            record.request_id,
        )?;
    }
    Ok(())
}

pub async fn run(command: AuditCommand, json: bool) -> Result<ExitCode, Failure> {
    let records = read(&command).await?;
    if records.is_empty() && !json {
        crate::output::notice("no audit records match");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    render(&records, json, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `switchboard gateway hash-key`: read one API key from stdin (never from argv, where other
/// users could see it in the process list) and print its SHA-256, the form the gateway's
/// `[[security.api_keys]]` stores. One trailing newline is ignored, so `echo KEY |` works.
pub fn hash_key_command() -> Result<ExitCode, Failure> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    hash_key_from(stdin.lock(), &mut stdout.lock())?;
    Ok(ExitCode::SUCCESS)
}

fn hash_key_from(input: impl Read, out: &mut impl Write) -> Result<(), Failure> {
    let mut text = String::new();
    input
        .take(MAX_KEY_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read the key from stdin: {e}")))?;
    if text.len() as u64 > MAX_KEY_BYTES {
        return Err(Failure::usage(format!(
            "the key on stdin is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    let key = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if key.is_empty() {
        return Err(Failure::usage(
            "no key on stdin; pipe it in, e.g. `printf %s \"$KEY\" | switchboard gateway hash-key`"
                .to_owned(),
        ));
    }
    if key.contains('\n') {
        return Err(Failure::usage(
            "stdin holds more than one line; give one key".to_owned(),
        ));
    }
    writeln!(out, "{}", switchboard_policy::auth::hash_key(key))?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use switchboard_policy::audit::{AuditLog, JsonlOptions, JsonlSink, Redactor};

    use super::*;

    fn record(i: usize, client: &str, tool: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            time: since_ago(Duration::ZERO),
            request_id: format!("req-{i}"),
            client_id: client.to_owned(),
            user: Some("alice".to_owned()),
            source_ip: None,
            server: "expenses".to_owned(),
            tool: tool.to_owned(),
            arguments: serde_json::json!({"amount": i, "password": "hunter2"}),
            outcome,
            error_class: (outcome == Outcome::Refused).then(|| "rate_limited".to_owned()),
            latency_ms: 3,
            scopes: vec!["expenses:write".to_owned()],
        }
    }

    async fn write_log(path: &std::path::Path) {
        let sink = JsonlSink::open(
            path.to_path_buf(),
            JsonlOptions {
                max_file_bytes: 1 << 20,
                keep_files: 1,
                fsync: false,
            },
        )
        .await
        .expect("open");
        let log = AuditLog::new(Arc::new(sink), Redactor::new(["password"]));
        let mut old = record(0, "ci-bot", "add_expense", Outcome::Refused);
        old.time = since_ago(Duration::from_secs(2 * 3600));
        log.record(old).await.expect("write");
        for (i, (client, tool, outcome)) in [
            ("ci-bot", "add_expense", Outcome::Ok),
            ("chat-app", "add_expense", Outcome::Refused),
            ("ci-bot", "list_expenses", Outcome::Ok),
            ("ci-bot", "add_expense", Outcome::Refused),
        ]
        .into_iter()
        .enumerate()
        {
            log.record(record(i + 1, client, tool, outcome))
                .await
                .expect("write");
        }
    }

    fn source(path: &std::path::Path) -> AuditSource {
        AuditSource {
            file: Some(path.to_path_buf()),
            db: None,
        }
    }

    fn ids(records: &[AuditRecord]) -> Vec<&str> {
        records.iter().map(|r| r.request_id.as_str()).collect()
    }

    #[tokio::test]
    async fn audit_tail_prints_the_newest_records_one_per_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        write_log(&path).await;
        let records = read(&AuditCommand::Tail {
            lines: 2,
            source: source(&path),
        })
        .await
        .expect("read");
        assert_eq!(ids(&records), ["req-3", "req-4"]);
        let mut out = Vec::new();
        render(&records, false, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].ends_with(
                "ci-bot  alice  expenses/add_expense  refused (rate_limited)  3 ms  req-4"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn audit_query_applies_every_filter_and_prints_json() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        write_log(&path).await;
        let query = |client: Option<&str>, since: Option<&str>| AuditCommand::Query {
            client: client.map(str::to_owned),
            server: None,
            tool: Some("add_expense".to_owned()),
            since: since.map(str::to_owned),
            outcome: Some(OutcomeArg::Refused),
            limit: 100,
            source: source(&path),
        };
        let records = read(&query(Some("ci-bot"), Some("1h")))
            .await
            .expect("read");
        assert_eq!(ids(&records), ["req-4"], "req-0 is two hours old");
        let records = read(&query(Some("ci-bot"), None)).await.expect("read");
        assert_eq!(ids(&records), ["req-0", "req-4"]);
        let records = read(&query(None, Some("3h"))).await.expect("read");
        assert_eq!(ids(&records), ["req-0", "req-2", "req-4"]);

        let mut out = Vec::new();
        render(&records, true, &mut out).expect("render");
        let json: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(json.as_array().map(Vec::len), Some(3));
        assert_eq!(json[0]["arguments"]["password"], "[REDACTED]");
        assert!(!String::from_utf8_lossy(&out).contains("hunter2"));
    }

    #[tokio::test]
    async fn audit_bad_input_is_a_usage_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("none.jsonl");
        let error = read(&AuditCommand::Tail {
            lines: 5,
            source: source(&missing),
        })
        .await
        .expect_err("no such file");
        assert!(error.message.contains("none.jsonl"), "{}", error.message);
        let error = read(&AuditCommand::Query {
            client: None,
            server: None,
            tool: None,
            since: Some("yesterday".to_owned()),
            outcome: None,
            limit: 10,
            source: source(&missing),
        })
        .await
        .expect_err("bad duration");
        assert!(error.message.starts_with("--since:"), "{}", error.message);
    }

    #[test]
    fn audit_hash_key_reads_one_key_from_stdin() {
        let mut out = Vec::new();
        hash_key_from(&b"abc\n"[..], &mut out).expect("hashed");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
        );
        let mut out = Vec::new();
        assert!(hash_key_from(&b""[..], &mut out).is_err());
        assert!(hash_key_from(&b"one\ntwo\n"[..], &mut out).is_err());
        assert!(out.is_empty(), "nothing printed on error");
    }
}
