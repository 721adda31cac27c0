//! `switchboard serve` hands over to `switchboard-serve`, the serve-only binary beside it, and
//! every command line that binary does not take is answered by the CLI itself.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Command as Process, Stdio},
};

use crate::Sandbox;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

/// Start `switchboard ARGS` (with `in_process`, SWITCHBOARD_SERVE_IN_PROCESS set), initialize
/// it, and say which program answered: the file name of the process's executable.
fn answering_program(sandbox: &Sandbox, args: &[&str], in_process: bool) -> String {
    let mut command = Process::new(assert_cmd::cargo::cargo_bin("switchboard"));
    command
        .args(args)
        .env("HOME", sandbox.path())
        .env("XDG_DATA_HOME", sandbox.path().join("data"))
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD_SERVE_IN_PROCESS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if in_process {
        command.env("SWITCHBOARD_SERVE_IN_PROCESS", "1");
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{INITIALIZE}").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 1, "{line}");
    assert!(answer["result"]["serverInfo"]["name"].is_string(), "{line}");
    // The same process id throughout: what answered is what the host started.
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{args:?}: {status}");
    exe.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn serve_runs_from_the_serve_only_binary_unless_told_otherwise() {
    let sandbox = Sandbox::new();
    let db = sandbox.path().join("expenses.sqlite3");
    let db = db.to_str().unwrap();
    assert_eq!(
        answering_program(&sandbox, &["serve", "echo"], false),
        "switchboard-serve"
    );
    assert_eq!(
        answering_program(&sandbox, &["serve", "expenses", "--db", db], false),
        "switchboard-serve"
    );
    assert_eq!(
        answering_program(&sandbox, &["serve", "echo", "--verbose"], false),
        "switchboard-serve"
    );
    // Asked to stay in-process, it does.
    assert_eq!(
        answering_program(&sandbox, &["serve", "echo"], true),
        "switchboard"
    );
    // A global flag of the CLI (meaningless to a server, but accepted): the CLI serves.
    assert_eq!(
        answering_program(&sandbox, &["serve", "echo", "--json"], false),
        "switchboard"
    );
    // A global flag before `serve`: no hand-over at all.
    assert_eq!(
        answering_program(&sandbox, &["--json", "serve", "echo"], false),
        "switchboard"
    );
}

/// Exit code, stdout and stderr of `switchboard ARGS`, with and without the hand-over.
fn both_ways(sandbox: &Sandbox, args: &[&str]) -> [(Option<i32>, String, String); 2] {
    [false, true].map(|in_process| {
        let mut command = sandbox.cmd();
        command.args(args);
        if in_process {
            command.env("SWITCHBOARD_SERVE_IN_PROCESS", "1");
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
}

#[test]
fn help_and_errors_are_the_clis_own_either_way() {
    let sandbox = Sandbox::new();
    let not_a_file = sandbox.path().join("a-directory");
    std::fs::create_dir(&not_a_file).unwrap();
    let cases: [&[&str]; 5] = [
        &["serve", "--help"],
        &["serve", "nope"],
        &["serve"],
        &["serve", "echo", "--allow-host", "example.com"],
        &["serve", "echo", "--http", "not-an-address"],
    ];
    for args in cases {
        let [handed_over, in_process] = both_ways(&sandbox, args);
        assert_eq!(handed_over, in_process, "{args:?}");
        assert!(
            handed_over.0 != Some(0) || args.contains(&"--help"),
            "{args:?}"
        );
    }
    // Store errors come from switchboard-serve itself, with the same message and exit code:
    // a database that cannot be opened (3), a location that is not one (2).
    let directory = not_a_file.to_str().unwrap();
    for (db, code) in [(directory, 3), ("mysql://localhost/x", 2)] {
        let [handed_over, in_process] = both_ways(&sandbox, &["serve", "bookmarks", "--db", db]);
        assert_eq!(handed_over, in_process, "{db}");
        assert_eq!(handed_over.0, Some(code), "{handed_over:?}");
        assert!(
            handed_over.2.starts_with("switchboard: "),
            "{handed_over:?}"
        );
    }
}

#[test]
fn the_serve_only_binary_run_by_hand_answers_like_the_cli() {
    let sandbox = Sandbox::new();
    let direct = Process::new(assert_cmd::cargo::cargo_bin("switchboard-serve"))
        .arg("nope")
        .env_remove("SWITCHBOARD_SERVE_IN_PROCESS")
        .output()
        .unwrap();
    let [cli, _] = both_ways(&sandbox, &["serve", "nope"]);
    assert_eq!(direct.status.code(), cli.0);
    assert_eq!(String::from_utf8_lossy(&direct.stderr), cli.2);
}
