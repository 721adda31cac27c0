//! `switchboard serve expenses` and `switchboard expenses import|export`, with the real binary.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command as Process, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchboard_store::testing::{ScratchSchema, postgres_url};

use crate::{Sandbox, stderr, stdout};

fn switchboard() -> String {
    assert_cmd::cargo::cargo_bin("switchboard")
        .display()
        .to_string()
}

/// `--stdio` text that serves the expenses at `db` (named "expenses" by the ad-hoc naming).
fn serve_spec(db: &str) -> String {
    format!("{} serve expenses --db '{db}'", switchboard())
}

/// Run `switchboard --stdio SPEC ARGS...`; (exit code, stdout, stderr).
fn with_server(sandbox: &Sandbox, db: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = sandbox
        .cmd()
        .env_remove("DATABASE_URL")
        .arg("--stdio")
        .arg(serve_spec(db))
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), stdout(&output), stderr(&output))
}

fn add_and_summarise(sandbox: &Sandbox, db: &str) {
    let (code, out, err) = with_server(
        sandbox,
        db,
        &[
            "call",
            "expenses/add_expense",
            "--arg",
            "amount=12.50",
            "--arg",
            "category=food",
            "--arg",
            "description=lunch",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("Added expense 1: USD 12.50 for food (lunch) on "),
        "{out}"
    );

    let (code, out, err) = with_server(
        sandbox,
        db,
        &["call", "expenses/get_summary", "--arg", "period=month"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("1 expense from ") && out.contains("- food: USD 12.50 (1)"),
        "{out}"
    );

    let (code, out, err) = with_server(
        sandbox,
        db,
        &[
            "--json",
            "call",
            "expenses/get_summary",
            "--arg",
            "period=month",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        result["structuredContent"]["groups"],
        json!([{"key": "food", "currency": "USD", "total": "12.50", "total_minor": 1250, "count": 1}])
    );
}

#[test]
fn serve_expenses_adds_and_summarises_on_sqlite() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("money/expenses.sqlite3");
    add_and_summarise(&sandbox, &db.display().to_string());
    assert!(db.exists());
}

#[test]
fn serve_expenses_adds_and_summarises_on_postgres() {
    let Some(base) = postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = runtime.block_on(ScratchSchema::create(&base)).unwrap();
    let sandbox = Sandbox::new();
    add_and_summarise(&sandbox, schema.url());
    drop(schema);
}

#[test]
fn serve_expenses_reports_bad_arguments_and_unknown_ids() {
    let sandbox = Sandbox::new();
    let db = sandbox
        .path()
        .join("expenses.sqlite3")
        .display()
        .to_string();
    let (code, _, err) = with_server(
        &sandbox,
        &db,
        &[
            "call",
            "expenses/add_expense",
            "--arg",
            "amount=12.345",
            "--arg",
            "category=food",
            "--arg",
            "description=x",
        ],
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("12.345 has 3 decimal places, but USD amounts have at most 2"),
        "{err}"
    );
    let (code, out, err) = with_server(
        &sandbox,
        &db,
        &["call", "expenses/delete_expense", "--arg", "id=42"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        out,
        "No expense has id 42. Call list_expenses to see the ids.\n"
    );
}

#[test]
fn the_default_database_is_in_the_data_directory() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("tutorial.json");
    std::fs::write(&file, TUTORIAL_JSON).unwrap();
    let output = sandbox
        .cmd()
        .env_remove("DATABASE_URL")
        .args(["expenses", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let expected = sandbox.path().join("data/switchboard/expenses.sqlite3");
    assert!(expected.exists(), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "Imported 3 expenses into {} (3 kept the id in the file, 0 got a new id).\n",
            expected.display()
        )
    );
    // DATABASE_URL stands in for --db.
    let elsewhere = sandbox.path().join("elsewhere.sqlite3");
    let output = sandbox
        .cmd()
        .env("DATABASE_URL", &elsewhere)
        .args(["--json", "expenses", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["imported"], 3);
    assert_eq!(report["database"], elsewhere.display().to_string());
}

const TUTORIAL_JSON: &str = r#"[
  {"id": 1, "amount": 12.5, "category": "food", "description": "lunch", "date": "2026-07-15"},
  {"id": 2, "amount": 40, "category": "travel", "description": "train, return", "date": "2026-07-16"},
  {"id": 3, "amount": 1500, "category": "gifts", "description": "omiyage", "date": "2026-07-18", "currency": "JPY"}
]"#;

fn expenses_cmd(sandbox: &Sandbox, db: &Path, args: &[&str]) -> std::process::Output {
    sandbox
        .cmd()
        .env_remove("DATABASE_URL")
        .arg("expenses")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

#[test]
fn export_and_import_round_trip_in_both_formats() {
    let sandbox = Sandbox::new();
    let first = sandbox.path().join("first.sqlite3");
    let file = sandbox.path().join("tutorial.json");
    std::fs::write(&file, TUTORIAL_JSON).unwrap();
    let output = expenses_cmd(&sandbox, &first, &["import", &file.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let json_export = expenses_cmd(&sandbox, &first, &["export"]);
    assert_eq!(
        json_export.status.code(),
        Some(0),
        "{}",
        stderr(&json_export)
    );
    let exported: Value = serde_json::from_slice(&json_export.stdout).unwrap();
    assert_eq!(
        exported,
        json!([
            {"id": 1, "amount": 12.5, "category": "food", "description": "lunch", "date": "2026-07-15", "currency": "USD"},
            {"id": 2, "amount": 40.0, "category": "travel", "description": "train, return", "date": "2026-07-16", "currency": "USD"},
            {"id": 3, "amount": 1500, "category": "gifts", "description": "omiyage", "date": "2026-07-18", "currency": "JPY"}
        ])
    );
    assert!(stdout(&json_export).contains("\"amount\": 12.50,"));

    let csv_file = sandbox.path().join("out/expenses.csv");
    std::fs::create_dir_all(csv_file.parent().unwrap()).unwrap();
    let output = expenses_cmd(
        &sandbox,
        &first,
        &[
            "export",
            "--format",
            "csv",
            "--output",
            &csv_file.display().to_string(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let csv = std::fs::read_to_string(&csv_file).unwrap();
    assert_eq!(
        csv,
        "id,date,amount,currency,category,description\n\
         1,2026-07-15,12.50,USD,food,lunch\n\
         2,2026-07-16,40.00,USD,travel,\"train, return\"\n\
         3,2026-07-18,1500,JPY,gifts,omiyage\n"
    );

    // CSV into a second database, then both formats out again: the same.
    let second = sandbox.path().join("second.sqlite3");
    let output = expenses_cmd(
        &sandbox,
        &second,
        &["import", &csv_file.display().to_string()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "Imported 3 expenses into {} (3 kept the id in the file, 0 got a new id).\n",
            second.display()
        )
    );
    let again = expenses_cmd(&sandbox, &second, &["export", "--format", "csv"]);
    assert_eq!(stdout(&again), csv);
    let again = expenses_cmd(&sandbox, &second, &["export", "--format", "json"]);
    assert_eq!(stdout(&again), stdout(&json_export));

    // JSON exported by us imports into a third database (a .txt name needs --format).
    let third = sandbox.path().join("third.sqlite3");
    let txt = sandbox.path().join("export.txt");
    std::fs::write(&txt, &json_export.stdout).unwrap();
    let output = expenses_cmd(&sandbox, &third, &["import", &txt.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "switchboard: cannot tell the format of {} from its name; give --format json or --format csv\n",
            txt.display()
        )
    );
    let output = expenses_cmd(
        &sandbox,
        &third,
        &["import", "--format", "json", &txt.display().to_string()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let again = expenses_cmd(&sandbox, &third, &["export"]);
    assert_eq!(stdout(&again), stdout(&json_export));
}

#[test]
fn a_bad_import_names_the_row_and_imports_nothing() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("expenses.sqlite3");
    let file = sandbox.path().join("bad.csv");
    std::fs::write(
        &file,
        "date,amount,category,description\n2026-01-01,5,food,ok\n2026-01-02,-3,food,refund\n",
    )
    .unwrap();
    let output = expenses_cmd(&sandbox, &db, &["import", &file.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "switchboard: {}: row 2 (line 3), field amount: -3 must be greater than 0; nothing was imported\n",
            file.display()
        )
    );
    let export = expenses_cmd(&sandbox, &db, &["export"]);
    assert_eq!(stdout(&export), "[]\n");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL in the middle of a stream of writes.

/// Most requests the writer sends; the kill comes long before.
const MAX_REQUESTS: usize = 5_000;
/// Requests sent but not yet answered, at most.
const WINDOW: usize = 16;
/// Acknowledged writes after which the server is killed.
const KILL_AFTER: usize = 200;
const DEADLINE: Duration = Duration::from_secs(60);

fn spawn_server(db: &Path, sandbox: &Sandbox) -> Child {
    Process::new(switchboard())
        .args(["serve", "expenses", "--db"])
        .arg(db)
        .env("HOME", sandbox.path())
        .env("XDG_DATA_HOME", sandbox.path().join("data"))
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Read stdout lines on a thread, so the test can wait on them with a deadline.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().take(MAX_REQUESTS + 10) {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

fn initialize(stdin: &mut ChildStdin, lines: &mpsc::Receiver<String>) {
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":"init","method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"kill-test","version":"0"}}}}}}"#
    )
    .unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    let answer: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(
        answer["result"]["serverInfo"]["name"],
        "switchboard-expenses"
    );
}

fn amount_of(n: usize) -> String {
    format!("{}.{:02}", n / 100 + 1, n % 100)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("killed.sqlite3");
    let mut child = spawn_server(&db, &sandbox);
    let lines = line_reader(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    initialize(&mut stdin, &lines);

    // The writer keeps at most WINDOW requests unanswered, until the pipe breaks.
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let answered = answered.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut sent = 0;
            while sent < MAX_REQUESTS
                && !stop.load(Ordering::Relaxed)
                && started.elapsed() < DEADLINE
            {
                if sent >= answered.load(Ordering::Relaxed) + WINDOW {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let line = format!(
                    r#"{{"jsonrpc":"2.0","id":{sent},"method":"tools/call","params":{{"name":"add_expense","arguments":{{"amount":"{}","category":"kill-test","description":"write {sent}","date":"2026-05-05"}}}}}}"#,
                    amount_of(sent)
                );
                if writeln!(stdin, "{line}")
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            sent
        })
    };

    // Collect acknowledgements: request number -> the stored expense.
    let mut acknowledged: Vec<(usize, Value)> = Vec::new();
    let started = Instant::now();
    while acknowledged.len() < KILL_AFTER && started.elapsed() < DEADLINE {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) else {
            break;
        };
        let answer: Value = serde_json::from_str(&line).unwrap();
        answered.fetch_add(1, Ordering::Relaxed);
        assert!(
            answer["result"]["isError"] != true && answer.get("error").is_none(),
            "a write failed: {answer}"
        );
        let n = answer["id"].as_u64().unwrap() as usize;
        acknowledged.push((n, answer["result"]["structuredContent"]["expense"].clone()));
    }
    assert_eq!(
        acknowledged.len(),
        KILL_AFTER,
        "the server stopped answering"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().unwrap();
    assert!(
        sent > KILL_AFTER,
        "requests were still in flight when the server was killed"
    );
    // Answers already on their way count as acknowledged too.
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        let answer: Value = serde_json::from_str(&line).unwrap();
        if let Some(n) = answer["id"].as_u64() {
            acknowledged.push((
                n as usize,
                answer["result"]["structuredContent"]["expense"].clone(),
            ));
        }
        if acknowledged.len() > MAX_REQUESTS {
            break;
        }
    }

    // Restart on the same file and list everything, page by page.
    let mut child = spawn_server(&db, &sandbox);
    let lines = line_reader(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    initialize(&mut stdin, &lines);
    let mut stored: Vec<Value> = Vec::new();
    let mut cursor = Value::Null;
    for page in 0..20 {
        let mut arguments = json!({"limit": 1000});
        if !cursor.is_null() {
            arguments["cursor"] = cursor.clone();
        }
        writeln!(
            stdin,
            "{}",
            json!({"jsonrpc": "2.0", "id": page, "method": "tools/call", "params": {"name": "list_expenses", "arguments": arguments}})
        )
        .unwrap();
        stdin.flush().unwrap();
        let answer: Value =
            serde_json::from_str(&lines.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
        let content = &answer["result"]["structuredContent"];
        stored.extend(content["expenses"].as_array().unwrap().iter().cloned());
        cursor = content["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();

    eprintln!(
        "sent {sent} writes, {} acknowledged before SIGKILL, {} stored after restart",
        acknowledged.len(),
        stored.len()
    );
    assert!(
        stored.len() >= acknowledged.len(),
        "{} < {}",
        stored.len(),
        acknowledged.len()
    );
    assert!(
        stored.len() <= sent,
        "{} rows from {sent} requests",
        stored.len()
    );
    for (n, expense) in &acknowledged {
        let found = stored
            .iter()
            .find(|e| e["id"] == expense["id"])
            .unwrap_or_else(|| panic!("acknowledged write {n} ({expense}) is missing"));
        assert_eq!(found, expense, "write {n}");
        assert_eq!(found["description"], format!("write {n}"));
        assert_eq!(found["amount"], amount_of(*n));
    }
    // No partial rows: every row has every field, as written.
    for row in &stored {
        let description = row["description"].as_str().unwrap();
        let n: usize = description.strip_prefix("write ").unwrap().parse().unwrap();
        assert_eq!(row["amount"], amount_of(n), "{row}");
        assert_eq!(row["category"], "kill-test", "{row}");
        assert_eq!(row["date"], "2026-05-05", "{row}");
        assert_eq!(row["currency"], "USD", "{row}");
        assert!(row["amount_minor"].as_i64().unwrap() > 0, "{row}");
    }
}
