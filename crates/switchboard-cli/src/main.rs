//! `switchboard`: the MCP host and inspector.
//!
//! This binary is thin: it parses flags, resolves settings once (flag > env > file > default),
//! runs one command on a [`switchboard_host::Host`], prints the result, and maps failures to
//! documented exit codes.

mod audit;
mod bookmarks;
mod chat;
mod cli;
mod discover;
mod env;
mod eras;
mod expenses;
mod form;
mod gateway;
mod output;
mod run;
mod serve;
mod settings;
mod terminal;
mod verbose;

use std::process::ExitCode;

use clap::Parser;

use crate::{cli::Cli, run::Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !gateway::init_logs(&cli.command, cli.global.verbose) {
        init_tracing(cli.global.verbose);
    }
    // A stdio server is one connection: a single-threaded runtime avoids cross-thread
    // wake-ups on every message. The host side connects many servers in parallel.
    let mut builder = if matches!(cli.command, cli::Command::Serve { .. }) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(&Failure::internal(format!(
                "cannot start the async runtime: {error}"
            )));
        }
    };
    // `ask` and `chat` handle Ctrl-C themselves: it cancels the current answer.
    let own_interrupts = matches!(
        cli.command,
        cli::Command::Ask { .. } | cli::Command::Chat { .. } | cli::Command::Gateway(_)
    );
    let outcome = runtime.block_on(async {
        if own_interrupts {
            return run::run(cli).await;
        }
        tokio::select! {
            outcome = run::run(cli) => outcome,
            _ = tokio::signal::ctrl_c() => Err(Failure::interrupted()),
        }
    });
    // Servers are stopped when the host is dropped; do not wait on stray blocking tasks.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(failure) => report(&failure),
    }
}

#[allow(clippy::print_stderr)]
fn report(failure: &Failure) -> ExitCode {
    if !failure.message.is_empty() {
        eprintln!("switchboard: {}", failure.message);
    }
    failure.code
}

fn init_tracing(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose {
        "warn,switchboard=debug"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env(env::LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
