//! The audit log: one [`AuditRecord`] per call through the gateway, with the arguments'
//! secrets redacted, written to a JSONL file (rotated by size; the default) or to a database
//! table (PostgreSQL, or SQLite, through switchboard-store), and read back by `switchboard audit`.
//!
//! # Durability
//!
//! The gateway writes the record before it sends the response ([`AuditLog::record`] returns
//! once the record is stored). The JSONL sink writes each record with one `write` system call
//! on an unbuffered file, so when `record` returns the line is in the kernel: a crash or kill
//! of the gateway cannot lose it. Surviving a power loss or kernel crash needs the data on
//! disk, which costs a disk flush per call; `fsync = true` does that (`fdatasync` after each
//! record). Flush-to-kernel is the default because it covers the failure the gateway itself
//! causes at no cost per call. The database sink commits each record in its own transaction.
//!
//! # Redaction
//!
//! A value is redacted when its key, lowercased and with `_` and `-` removed, contains one of
//! the configured keys (likewise normalised): `password`, `db_password`, `X-Api-Key` and
//! `accessToken` all match the defaults. Matching parts of keys over-redacts a little
//! (`token_count`), which is the safe side. Redaction applies at any depth, in objects inside
//! arrays too, and replaces the whole value, whatever its type.

use std::{
    fmt,
    io::{BufRead, Write},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use switchboard_store::{Location, Migrations, Store, StoreError};

use crate::config::{AuditConfig, AuditSinkConfig};

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";
/// The table that records the audit table's migrations.
pub const MIGRATIONS_TABLE: &str = "_sqlx_migrations_audit";
/// The most rotated files the reader looks at (`audit.jsonl.1` ...).
pub const MAX_ROTATED_FILES: u32 = 1000;
/// The most records one read returns.
pub const MAX_READ_RECORDS: usize = 100_000;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tool ran and succeeded.
    Ok,
    /// The tool ran and reported an error (`isError: true`).
    ToolError,
    /// The gateway refused the call (scope, allow list, rate limit, bad arguments).
    Refused,
    /// The call could not be completed (upstream down, timeout, protocol error).
    Failed,
    /// The call is waiting for its 2026-07-28 client to answer a request for input; the
    /// client's retry is audited as a call of its own.
    InputRequired,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::InputRequired => "input_required",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "ok" => Some(Outcome::Ok),
            "tool_error" => Some(Outcome::ToolError),
            "refused" => Some(Outcome::Refused),
            "failed" => Some(Outcome::Failed),
            "input_required" => Some(Outcome::InputRequired),
            _ => None,
        }
    }
}

/// One call through the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call arrived, UTC, microseconds.
    #[serde(with = "time_format")]
    pub time: DateTime<Utc>,
    pub request_id: String,
    pub client_id: String,
    /// The token's `sub`.
    pub user: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub server: String,
    pub tool: String,
    /// The arguments; [`AuditLog::record`] redacts them before they are stored.
    pub arguments: Value,
    pub outcome: Outcome,
    /// For refusals and failures: a class such as `insufficient_scope`, `rate_limited`,
    /// `timeout` or `connection`.
    pub error_class: Option<String>,
    pub latency_ms: u64,
    /// The scopes the caller held.
    pub scopes: Vec<String>,
}

impl AuditRecord {
    /// The time as it is stored: RFC 3339, UTC, microseconds.
    pub fn time_text(&self) -> String {
        time_format::format(&self.time)
    }
}

/// Times are written with a fixed width (`2026-11-24T09:53:35.123456Z`), so the text sorts
/// like the time (the database sink compares them as text).
mod time_format {
    use super::*;

    pub fn format(time: &DateTime<Utc>) -> String {
        time.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
    }

    pub fn serialize<S: serde::Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(time))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Replaces the values of secret-looking keys.
#[derive(Debug, Clone)]
pub struct Redactor {
    keys: Vec<String>,
}

fn normalise(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

impl Redactor {
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Self {
        Redactor {
            keys: keys
                .into_iter()
                .map(|k| normalise(k.as_ref()))
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    pub fn is_secret_key(&self, key: &str) -> bool {
        let key = normalise(key);
        self.keys.iter().any(|secret| key.contains(secret.as_str()))
    }

    /// Redact in place, at any depth.
    pub fn redact(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if self.is_secret_key(key) {
                        *item = Value::String(REDACTED.to_owned());
                    } else {
                        self.redact(item);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            _ => {}
        }
    }
}

/// The audit log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the audit log {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit table in {location}: {source}")]
    Database {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("an audit record cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("the audit log's background task failed: {0}")]
    Task(String),
    #[error("a stored audit record is not valid: {0}")]
    BadRecord(String),
}

/// Where records go.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Store one (already redacted) record; returns once it is as durable as the sink makes it.
    fn write<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>>;
}

/// What the gateway holds: a sink and the redaction rules.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sink: Arc<dyn AuditSink>,
    redactor: Redactor,
}

impl AuditLog {
    pub fn new(sink: Arc<dyn AuditSink>, redactor: Redactor) -> Self {
        AuditLog { sink, redactor }
    }

    /// Open the sink named by the config (creating the file or table).
    pub async fn open(config: &AuditConfig) -> Result<AuditLog, AuditError> {
        let sink: Arc<dyn AuditSink> = match &config.sink {
            AuditSinkConfig::Jsonl {
                path,
                max_file_bytes,
                keep_files,
                fsync,
            } => Arc::new(
                JsonlSink::open(
                    path.clone(),
                    JsonlOptions {
                        max_file_bytes: *max_file_bytes,
                        keep_files: *keep_files,
                        fsync: *fsync,
                    },
                )
                .await?,
            ),
            AuditSinkConfig::Database { url } => Arc::new(DatabaseAudit::open(url).await?),
        };
        Ok(AuditLog::new(sink, Redactor::new(&config.redact_keys)))
    }

    /// Redact the arguments and store the record. Call before sending the response.
    pub async fn record(&self, mut record: AuditRecord) -> Result<(), AuditError> {
        self.redactor.redact(&mut record.arguments);
        self.sink.write(&record).await
    }
}

// ---------------------------------------------------------------------------------------------
// JSONL

/// Rotation and durability of a [`JsonlSink`].
#[derive(Debug, Clone, Copy)]
pub struct JsonlOptions {
    /// A file that would grow past this is rotated first (a single larger record still gets a
    /// file of its own).
    pub max_file_bytes: u64,
    /// Rotated files kept: `path.1` (newest) to `path.N`; older ones are deleted.
    pub keep_files: u32,
    /// `fdatasync` after every record (see the module docs).
    pub fsync: bool,
}

struct JsonlState {
    file: std::fs::File,
    size: u64,
}

/// Appends one JSON line per record, rotating by size.
pub struct JsonlSink {
    path: PathBuf,
    options: JsonlOptions,
    state: Arc<Mutex<JsonlState>>,
}

impl fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlSink")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish()
    }
}

fn rotated(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> Result<(std::fs::File, u64), AuditError> {
    let write_error = |source| AuditError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_error)?;
    let size = file.metadata().map_err(write_error)?.len();
    Ok((file, size))
}

impl JsonlSink {
    pub async fn open(path: PathBuf, options: JsonlOptions) -> Result<JsonlSink, AuditError> {
        let opened = path.clone();
        let (file, size) = tokio::task::spawn_blocking(move || open_append(&opened))
            .await
            .map_err(|error| AuditError::Task(error.to_string()))??;
        Ok(JsonlSink {
            path,
            options: JsonlOptions {
                keep_files: options.keep_files.max(1),
                ..options
            },
            state: Arc::new(Mutex::new(JsonlState { file, size })),
        })
    }

    fn rotate(path: &Path, keep: u32, state: &mut JsonlState) -> Result<(), AuditError> {
        let write_error = |source| AuditError::Write {
            path: path.to_path_buf(),
            source,
        };
        let oldest = rotated(path, keep);
        if oldest.exists() {
            std::fs::remove_file(&oldest).map_err(write_error)?;
        }
        for index in (1..keep).rev() {
            let from = rotated(path, index);
            if from.exists() {
                std::fs::rename(&from, rotated(path, index + 1)).map_err(write_error)?;
            }
        }
        std::fs::rename(path, rotated(path, 1)).map_err(write_error)?;
        let (file, size) = open_append(path)?;
        *state = JsonlState { file, size };
        Ok(())
    }

    fn append(
        path: &Path,
        options: JsonlOptions,
        state: &Mutex<JsonlState>,
        line: &[u8],
    ) -> Result<(), AuditError> {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let length = u64::try_from(line.len()).unwrap_or(u64::MAX);
        if state.size > 0 && state.size.saturating_add(length) > options.max_file_bytes {
            Self::rotate(path, options.keep_files, &mut state)?;
        }
        let write_error = |source| AuditError::Write {
            path: path.to_path_buf(),
            source,
        };
        // One write of the whole line: the file is in append mode and unbuffered.
        state.file.write_all(line).map_err(write_error)?;
        if options.fsync {
            state.file.sync_data().map_err(write_error)?;
        }
        state.size += length;
        Ok(())
    }
}

impl AuditSink for JsonlSink {
    fn write<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>> {
        Box::pin(async move {
            let mut line = serde_json::to_vec(record).map_err(AuditError::Encode)?;
            line.push(b'\n');
            let path = self.path.clone();
            let options = self.options;
            let state = self.state.clone();
            tokio::task::spawn_blocking(move || Self::append(&path, options, &state, &line))
                .await
                .map_err(|error| AuditError::Task(error.to_string()))?
        })
    }
}

/// Which records a read returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub client_id: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    /// Records at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    /// The newest this many matching records (at most [`MAX_READ_RECORDS`]).
    pub limit: usize,
}

impl AuditQuery {
    /// The newest `n` records.
    pub fn tail(n: usize) -> Self {
        AuditQuery {
            limit: n,
            ..AuditQuery::default()
        }
    }

    pub fn matches(&self, record: &AuditRecord) -> bool {
        self.client_id
            .as_ref()
            .is_none_or(|c| *c == record.client_id)
            && self.server.as_ref().is_none_or(|s| *s == record.server)
            && self.tool.as_ref().is_none_or(|t| *t == record.tool)
            && self.since.is_none_or(|since| record.time >= since)
            && self.outcome.is_none_or(|o| o == record.outcome)
    }
}

/// Reads a JSONL audit log and its rotated files.
#[derive(Debug, Clone)]
pub struct JsonlReader {
    path: PathBuf,
}

impl JsonlReader {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlReader { path: path.into() }
    }

    /// The matching records, oldest first: the newest `query.limit` of them.
    pub async fn read(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, AuditError> {
        let path = self.path.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || Self::read_blocking(&path, &query))
            .await
            .map_err(|error| AuditError::Task(error.to_string()))?
    }

    fn read_blocking(path: &Path, query: &AuditQuery) -> Result<Vec<AuditRecord>, AuditError> {
        let limit = query.limit.min(MAX_READ_RECORDS);
        let mut files = vec![path.to_path_buf()];
        for index in 1..=MAX_ROTATED_FILES {
            let file = rotated(path, index);
            if !file.exists() {
                break;
            }
            files.push(file);
        }
        if !path.exists() && files.len() == 1 {
            return Err(AuditError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        // Newest file first; within a file, the last lines are the newest.
        let mut newest_first = Vec::new();
        for file in files {
            if newest_first.len() >= limit {
                break;
            }
            let opened = match std::fs::File::open(&file) {
                Ok(opened) => opened,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(AuditError::Read { path: file, source }),
            };
            let mut matching = Vec::new();
            for (number, line) in std::io::BufReader::new(opened).lines().enumerate() {
                let line = line.map_err(|source| AuditError::Read {
                    path: file.clone(),
                    source,
                })?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<AuditRecord>(&line) {
                    Ok(record) if query.matches(&record) => matching.push(record),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(
                        file = %file.display(),
                        line = number + 1,
                        %error,
                        "skipping an audit line that is not a record"
                    ),
                }
            }
            newest_first.extend(matching.into_iter().rev().take(limit - newest_first.len()));
        }
        newest_first.reverse();
        Ok(newest_first)
    }
}

// ---------------------------------------------------------------------------------------------
// Database

fn migrations() -> Migrations {
    Migrations {
        table: MIGRATIONS_TABLE,
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// The `audit_log` table, in PostgreSQL (or SQLite) through switchboard-store. Writes and
/// reads.
#[derive(Debug, Clone)]
pub struct DatabaseAudit {
    store: Store,
}

const COLUMNS: &str = "time, request_id, client_id, user_sub, source_ip, server, tool, arguments, outcome, error_class, latency_ms, scopes";

impl DatabaseAudit {
    /// Open (creating and migrating) the database at `url`: `postgres://...` or a SQLite path.
    pub async fn open(url: &str) -> Result<DatabaseAudit, AuditError> {
        let location = Location::parse(url)?;
        let store = Store::open(&location, migrations()).await?;
        Ok(DatabaseAudit { store })
    }

    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The store underneath (for tests and maintenance, e.g. pruning old records).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn database_error(&self, source: sqlx::Error) -> AuditError {
        AuditError::Database {
            location: self.store.location().to_owned(),
            source,
        }
    }

    async fn insert(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let arguments = serde_json::to_string(&record.arguments).map_err(AuditError::Encode)?;
        let scopes = serde_json::to_string(&record.scopes).map_err(AuditError::Encode)?;
        let mut transaction = self
            .store
            .begin_write()
            .await
            .map_err(|e| self.database_error(e))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(time_format::format(&record.time))
        .bind(&record.request_id)
        .bind(&record.client_id)
        .bind(record.user.as_deref())
        .bind(record.source_ip.map(|ip| ip.to_string()))
        .bind(&record.server)
        .bind(&record.tool)
        .bind(arguments)
        .bind(record.outcome.as_str())
        .bind(record.error_class.as_deref())
        .bind(i64::try_from(record.latency_ms).unwrap_or(i64::MAX))
        .bind(scopes)
        .execute(&mut *transaction)
        .await
        .map_err(|e| self.database_error(e))?;
        transaction
            .commit()
            .await
            .map_err(|e| self.database_error(e))
    }

    /// The matching records, oldest first: the newest `query.limit` of them.
    pub async fn read(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, AuditError> {
        let mut conditions = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let mut add = |column: &str, value: String| {
            values.push(value);
            conditions.push(format!("{column} ${}", values.len()));
        };
        if let Some(client) = &query.client_id {
            add("client_id =", client.clone());
        }
        if let Some(server) = &query.server {
            add("server =", server.clone());
        }
        if let Some(tool) = &query.tool {
            add("tool =", tool.clone());
        }
        if let Some(since) = &query.since {
            add("time >=", time_format::format(since));
        }
        if let Some(outcome) = query.outcome {
            add("outcome =", outcome.as_str().to_owned());
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = query.limit.min(MAX_READ_RECORDS);
        let sql =
            format!("SELECT {COLUMNS} FROM audit_log {filter} ORDER BY id DESC LIMIT {limit}");
        let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            statement = statement.bind(value);
        }
        let rows = statement
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.database_error(e))?;
        let mut records = rows
            .iter()
            .map(|row| self.record_from_row(row))
            .collect::<Result<Vec<_>, _>>()?;
        records.reverse();
        Ok(records)
    }

    fn record_from_row(&self, row: &sqlx::any::AnyRow) -> Result<AuditRecord, AuditError> {
        let get = |column: &str| {
            row.try_get::<String, _>(column)
                .map_err(|e| self.database_error(e))
        };
        let get_optional = |column: &str| {
            row.try_get::<Option<String>, _>(column)
                .map_err(|e| self.database_error(e))
        };
        let bad = |what: &str, error: &dyn fmt::Display| {
            AuditError::BadRecord(format!("{what}: {error}"))
        };
        let time = time_format::parse(&get("time")?).map_err(|e| bad("time", &e))?;
        let outcome_text = get("outcome")?;
        Ok(AuditRecord {
            time,
            request_id: get("request_id")?,
            client_id: get("client_id")?,
            user: get_optional("user_sub")?,
            source_ip: get_optional("source_ip")?
                .map(|ip| ip.parse::<IpAddr>())
                .transpose()
                .map_err(|e| bad("source_ip", &e))?,
            server: get("server")?,
            tool: get("tool")?,
            arguments: serde_json::from_str(&get("arguments")?)
                .map_err(|e| bad("arguments", &e))?,
            outcome: Outcome::parse(&outcome_text).ok_or_else(|| bad("outcome", &outcome_text))?,
            error_class: get_optional("error_class")?,
            latency_ms: u64::try_from(
                row.try_get::<i64, _>("latency_ms")
                    .map_err(|e| self.database_error(e))?,
            )
            .unwrap_or(0),
            scopes: serde_json::from_str(&get("scopes")?).map_err(|e| bad("scopes", &e))?,
        })
    }
}

impl AuditSink for DatabaseAudit {
    fn write<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>> {
        Box::pin(self.insert(record))
    }
}

/// Parse a `--since` duration: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`90s`, `15m`, `1h`, `7d`).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("\"{text}\" needs a unit: s, m, h, d or w (e.g. 1h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" does not start with a whole number (e.g. 1h)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("\"{unit}\" is not a unit; use s, m, h, d or w")),
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{text}\" is too long"))
}

/// The time `since` ago, for [`AuditQuery::since`].
pub fn since_ago(since: Duration) -> DateTime<Utc> {
    let ago = chrono::Duration::from_std(since).unwrap_or(chrono::Duration::MAX);
    Utc::now()
        .checked_sub_signed(ago)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
