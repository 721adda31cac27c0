//! `switchboard`: the MCP host and inspector.
//!
//! This binary is thin: it parses flags, resolves settings once (flag > env > file > default),
//! runs one command on a [`switchboard_host::Host`], prints the result, and maps failures to
//! documented exit codes.

mod audit;
mod chat;
mod cli;
mod discover;
mod env;
mod eras;
mod expenses;
mod form;
mod gateway;
mod json_logs;
mod output;
mod run;
mod settings;
mod sign_in;
mod terminal;
mod verbose;

use std::process::ExitCode;

use clap::Parser;

use crate::{cli::Cli, run::Failure};

/// mimalloc rather than the C library's allocator: the gateway's per-call work is mostly small
/// allocations freed on another thread, where glibc's malloc spent a fifth of the gateway's
/// CPU (see `docs/performance.md`). `switchboard-serve` keeps the system allocator, for its
/// idle memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `serve` runs from `switchboard-serve` when it is installed beside this binary; this
    // returns only when it is not (or must not be) used.
    switchboard_cli::serve::hand_over();
    let cli = Cli::parse();
    if !gateway::init_logs(&cli.command, cli.global.verbose) {
        switchboard_cli::serve::init_logs(cli.global.verbose);
    }
    // A stdio server is one connection: a single-threaded runtime avoids cross-thread
    // wake-ups on every message. The host side connects many servers in parallel.
    let mut builder = if matches!(cli.command, cli::Command::Serve(_)) {
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
