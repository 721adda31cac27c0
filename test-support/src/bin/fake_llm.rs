//! `sb-fake-llm --script FILE [--port N]`: the scripted fake LLM endpoint as a process, for
//! end-to-end tests of the CLI and for demos.
//!
//! The first line on stdout is the base URL (`http://127.0.0.1:PORT`): use it as
//! `ANTHROPIC_BASE_URL`, or with `/v1` appended as `OPENAI_BASE_URL`. Requests are logged to
//! stderr. The script format is documented in `test_support::fake_llm`. The process serves
//! until it is killed or gets Ctrl-C.

use std::{io::Write, net::SocketAddr, process::ExitCode};

use test_support::fake_llm::{FakeLlm, Script};

const USAGE: &str = "usage: sb-fake-llm --script FILE [--port N]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let mut script_path = None;
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--script" => script_path = args.next(),
            "--port" => {
                let value = args.next().ok_or(USAGE)?;
                port = value
                    .parse()
                    .map_err(|_| format!("--port {value} is not a port number; {USAGE}"))?;
            }
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unexpected argument `{other}`; {USAGE}")),
        }
    }
    let script_path = script_path.ok_or(USAGE)?;
    let text = std::fs::read_to_string(&script_path)
        .map_err(|error| format!("could not read the script {script_path}: {error}"))?;
    let script = Script::from_json(&text)
        .map_err(|error| format!("the script {script_path} is not valid: {error}"))?;
    let turns = script.turns.len();
    let fake = FakeLlm::start_on(SocketAddr::from(([127, 0, 0, 1], port)), script)
        .await
        .map_err(|error| format!("could not listen on 127.0.0.1:{port}: {error}"))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", fake.base_url())
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("could not write the base URL: {error}"))?;
    tracing::info!(base_url = fake.base_url(), turns, "fake LLM serving");
    tokio::select! {
        () = fake.wait() => Err("the fake LLM stopped serving".to_owned()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
