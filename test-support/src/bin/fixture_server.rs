//! `sb-fixture-server`: the fixture MCP server over stdio, with fault modes.
//!
//! ```text
//! sb-fixture-server [--mode normal|banner|garbage|silent|exit-during-init] [--crash-after N] [--legacy-only]
//!                   [--fail-first N] [--retry-after-ms MS] [--failure-percent P] [--lose-first N]
//!                   [--delay-ms MS] [--record FILE]
//! ```
//!
//! `--record FILE` appends every tools/call and cancellation the server sees as JSON lines.
//!
//! ```text
//! ```

#![allow(clippy::print_stderr, clippy::print_stdout, clippy::unwrap_used)]

use std::io::{BufRead, Write};

use rmcp::ServiceExt;
use test_support::fixture::{Fixture, FixtureOptions, Journal};

fn number<T: std::str::FromStr>(value: Option<String>, flag: &str) -> T {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{flag} takes a number"))
}

fn main() {
    let mut mode = "normal".to_owned();
    let mut options = FixtureOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mode" => mode = args.next().expect("--mode takes a value"),
            "--crash-after" => {
                options.crash_after_calls = Some(
                    args.next()
                        .expect("--crash-after takes N")
                        .parse()
                        .expect("N is a number"),
                );
            }
            "--legacy-only" => options.legacy_only = true,
            "--fail-first" => options.fail_first_calls = number(args.next(), "--fail-first"),
            "--retry-after-ms" => {
                options.retry_after_ms = Some(number(args.next(), "--retry-after-ms"));
            }
            "--failure-percent" => {
                options.failure_percent = number(args.next(), "--failure-percent");
            }
            "--lose-first" => options.lose_first_responses = number(args.next(), "--lose-first"),
            "--delay-ms" => options.delay_ms = number(args.next(), "--delay-ms"),
            "--record" => {
                let path = args.next().expect("--record takes a file path");
                options.journal = Some(Journal::to_file(path));
            }
            other => {
                eprintln!("sb-fixture-server: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    match mode.as_str() {
        "normal" => serve(options),
        "banner" => {
            // Some real servers print a banner to stdout before speaking the protocol.
            println!("fixture server starting up");
            std::io::stdout().flush().unwrap();
            serve(options);
        }
        "garbage" => {
            for line in std::io::stdin().lock().lines() {
                let Ok(_line) = line else { return };
                println!("this is not json-rpc");
                std::io::stdout().flush().unwrap();
            }
        }
        "silent" => {
            for line in std::io::stdin().lock().lines() {
                if line.is_err() {
                    return;
                }
            }
        }
        "exit-during-init" => {
            let mut first = String::new();
            let _ = std::io::stdin().lock().read_line(&mut first);
            eprintln!("fixture: missing API key, refusing to start");
            std::process::exit(2);
        }
        other => {
            eprintln!("sb-fixture-server: unknown mode {other}");
            std::process::exit(2);
        }
    }
}

fn serve(options: FixtureOptions) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let running = Fixture::new(options)
            .serve(rmcp::transport::stdio())
            .await
            .unwrap();
        let _ = running.waiting().await;
    });
}
